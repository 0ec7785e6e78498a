package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/internal/fsx"
)

// versionMarker records which snapshot, and which feed settings, the feed
// files in a folder were rendered from, so a restart serves them at once
// instead of re-rendering — and re-renders when either changed.
const versionMarker = ".snapshot-version"

// Feeds says where and how the feed files of the snapshot are rendered.
type Feeds struct {
	Dir      string
	Formats  []feed.Format
	Settings feed.Settings
}

// Files lists the files the configured formats publish.
func (f *Feeds) Files() []string { return feed.Files(f.Formats) }

// marker identifies the files of snapshot version rendered with f's
// formats and settings (the render time aside).
func (f *Feeds) marker(version string) string {
	s := f.Settings
	s.GeneratedAt = time.Time{}
	b, _ := json.Marshal(struct {
		Formats  []feed.Format
		Settings feed.Settings
	}{f.Formats, s})
	sum := sha256.Sum256(b)
	return version + " " + hex.EncodeToString(sum[:8])
}

// build renders the formats from each; GeneratedAt is the snapshot's time.
// version is read after each has run (the snapshot's version is known only
// then) and written as the folder's marker once the files are in place;
// files of formats no longer configured are removed.
func (f *Feeds) build(ctx context.Context, at time.Time, version func() string, each func(context.Context, func(bridge.CatalogEntry) error) error) error {
	s := f.Settings
	s.GeneratedAt = at
	if _, err := feed.Build(ctx, f.Dir, f.Formats, s, each); err != nil {
		return err
	}
	if err := feed.RemoveStale(f.Dir, f.Formats); err != nil {
		return fmt.Errorf("remove feed files no longer configured: %w", err)
	}
	return f.writeMarker(version())
}

// writeMarker replaces the marker atomically and durably: a torn or stale
// marker could name new files over old ones after a power cut.
func (f *Feeds) writeMarker(version string) error {
	if err := fsx.WriteFileAtomic(filepath.Join(f.Dir, versionMarker), []byte(f.marker(version)), 0o644); err != nil {
		return fmt.Errorf("feed version marker: %w", err)
	}
	return nil
}

// RenderStored makes the feed files match the stored snapshot: nothing to do
// when the folder's marker names the snapshot's version and the current
// formats and settings, else a render from storage (after a crash between
// commit and render, or a changed feed or merchant config). Leftovers of
// interrupted builds are removed first. It returns bridge.ErrNotFound when
// there is no snapshot yet. Call it while this process builds no files in
// Dir: before syncs start, or under the Syncer's lock (Follow). Replicas
// each have a Dir of their own.
func (f *Feeds) RenderStored(ctx context.Context, store bridge.CatalogStore) (bridge.CatalogInfo, bool, error) {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return bridge.CatalogInfo{}, false, fmt.Errorf("feed folder: %w", err)
	}
	if err := feed.RemoveStale(f.Dir, f.Formats); err != nil {
		return bridge.CatalogInfo{}, false, fmt.Errorf("clean feed folder: %w", err)
	}
	info, err := store.CatalogInfo(ctx)
	if err != nil {
		return bridge.CatalogInfo{}, false, err
	}
	marker, err := os.ReadFile(filepath.Join(f.Dir, versionMarker))
	if err == nil && string(marker) == f.marker(info.Version) && f.complete() {
		return info, false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, false, fmt.Errorf("read feed version marker: %w", err)
	}
	err = f.build(ctx, info.SyncedAt, func() string { return info.Version }, store.EachCatalogEntry)
	return info, true, err
}

// complete reports whether every configured file exists.
func (f *Feeds) complete() bool {
	for _, name := range f.Files() {
		if _, err := os.Stat(filepath.Join(f.Dir, filepath.FromSlash(name))); err != nil {
			return false
		}
	}
	return true
}
