package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

// versionMarker records which snapshot the feed files in a folder were
// rendered from, so a restart serves them at once instead of re-rendering.
const versionMarker = ".snapshot-version"

// Feeds says where and how the feed files of the snapshot are rendered.
type Feeds struct {
	Dir      string
	Formats  []feed.Format
	Settings feed.Settings
}

// build renders the formats from each; GeneratedAt is the snapshot's time.
// version is read after each has run (the snapshot's version is known only
// then) and written as the folder's marker once the files are in place.
func (f *Feeds) build(ctx context.Context, at time.Time, version func() string, each func(context.Context, func(bridge.CatalogEntry) error) error) error {
	s := f.Settings
	s.GeneratedAt = at
	if _, err := feed.Build(ctx, f.Dir, f.Formats, s, each); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.Dir, versionMarker), []byte(version()), 0o644); err != nil {
		return fmt.Errorf("write feed version marker: %w", err)
	}
	return nil
}

// RenderStored makes the feed files match the stored snapshot: nothing to do
// when the folder's marker names the snapshot's version, else a render from
// storage (after a crash between commit and render, or a changed feed
// config). It returns bridge.ErrNotFound when there is no snapshot yet.
func (f *Feeds) RenderStored(ctx context.Context, store bridge.CatalogStore) (bridge.CatalogInfo, bool, error) {
	info, err := store.CatalogInfo(ctx)
	if err != nil {
		return bridge.CatalogInfo{}, false, err
	}
	marker, err := os.ReadFile(filepath.Join(f.Dir, versionMarker))
	if err == nil && string(marker) == info.Version && f.complete() {
		return info, false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, false, fmt.Errorf("read feed version marker: %w", err)
	}
	err = f.build(ctx, info.SyncedAt, func() string { return info.Version }, store.EachCatalogEntry)
	return info, true, err
}

// complete reports whether every configured format's file exists, so a
// format added to the config is rendered at the next start.
func (f *Feeds) complete() bool {
	for _, format := range f.Formats {
		if _, err := os.Stat(filepath.Join(f.Dir, filepath.FromSlash(string(format)))); err != nil {
			return false
		}
	}
	return true
}
