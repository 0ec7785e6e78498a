package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fsx"
)

// FileResult describes one file Build wrote.
type FileResult struct {
	// Format is the feed format; empty for FileACPMetadata.
	Format Format `json:"format,omitempty"`
	// Path is the file's slash-separated path under the build directory.
	Path string `json:"path"`
	// Products and Variants count what the file publishes.
	Products int `json:"products"`
	Variants int `json:"variants"`
	// Bytes is the file's size as written (compressed for .gz files).
	Bytes int64 `json:"bytes"`
}

// BuildResult is what Build wrote.
type BuildResult struct {
	// Entries counts the catalog entries read, published or not.
	Entries int          `json:"entries"`
	Files   []FileResult `json:"files"`
}

// File returns the result for format f.
func (r BuildResult) File(f Format) (FileResult, bool) {
	for _, fr := range r.Files {
		if fr.Format == f {
			return fr, true
		}
	}
	return FileResult{}, false
}

// batchSize is how many entries Build hands to the format writers at a time;
// batching keeps channel traffic negligible next to encoding.
const batchSize = 256

// Build writes the given formats into dir, reading the catalog once through
// each (a bridge.CatalogStore's EachCatalogEntry fits). File names are the
// Format strings, plus FileACPMetadata with FormatACP. Each file is written
// to a temporary file in the same directory and renamed into place only
// after every format is complete, so readers never see half a file and a
// failing each, a cancelled ctx or a full disk leaves the previous files as
// they were. The formats are encoded concurrently, one goroutine each.
func Build(ctx context.Context, dir string, formats []Format, s Settings,
	each func(ctx context.Context, fn func(bridge.CatalogEntry) error) error) (BuildResult, error) {
	s = s.withDefaults()
	formats, err := uniqueFormats(formats)
	if err != nil {
		return BuildResult{}, err
	}

	var files []*tempFile
	defer func() {
		for _, f := range files {
			f.discard() // no-op once renamed
		}
	}()
	for _, f := range formats {
		tf, err := createTemp(dir, string(f))
		if err != nil {
			return BuildResult{}, err
		}
		files = append(files, tf)
		w, err := NewWriter(f, tf.counter, s)
		if err != nil {
			return BuildResult{}, err
		}
		tf.format, tf.writer = f, w
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pipes := make([]chan []bridge.CatalogEntry, len(files))
	var wg sync.WaitGroup
	for i, tf := range files {
		pipes[i] = make(chan []bridge.CatalogEntry, 4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range pipes[i] {
				if tf.err != nil {
					continue // drain, so the reader never blocks on a failed format
				}
				for j := range batch {
					if err := tf.writer.Write(&batch[j]); err != nil {
						tf.err = fmt.Errorf("%s: %w", tf.format, err)
						cancel(tf.err)
						break
					}
				}
			}
		}()
	}

	entries := 0
	batch := make([]bridge.CatalogEntry, 0, batchSize)
	send := func() {
		for _, p := range pipes {
			p <- batch
		}
		batch = make([]bridge.CatalogEntry, 0, batchSize)
	}
	readErr := each(ctx, func(e bridge.CatalogEntry) error {
		if entries%batchSize == 0 {
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
		}
		entries++
		batch = append(batch, e)
		if len(batch) == batchSize {
			send()
		}
		return nil
	})
	if readErr == nil && len(batch) > 0 {
		send()
	}
	for _, p := range pipes {
		close(p)
	}
	wg.Wait()

	for _, tf := range files {
		if tf.err != nil {
			return BuildResult{}, tf.err
		}
	}
	if readErr != nil {
		return BuildResult{}, readErr // the caller's source knows what failed
	}
	if err := ctx.Err(); err != nil {
		return BuildResult{}, fmt.Errorf("feed: build: %w", context.Cause(ctx))
	}

	res := BuildResult{Entries: entries}
	for _, tf := range files {
		if err := tf.writer.Close(); err != nil {
			return BuildResult{}, fmt.Errorf("%s: %w", tf.format, err)
		}
		fr := FileResult{Format: tf.format, Path: tf.name, Bytes: tf.counter.n}
		if c, ok := tf.writer.(interface{ Counts() (int, int) }); ok {
			fr.Products, fr.Variants = c.Counts()
		}
		res.Files = append(res.Files, fr)
		if tf.format == FormatACP {
			mf, err := createTemp(dir, FileACPMetadata)
			if err != nil {
				return BuildResult{}, err
			}
			files = append(files, mf)
			if err := WriteACPMetadata(mf.counter, s); err != nil {
				return BuildResult{}, err
			}
			res.Files = append(res.Files, FileResult{Path: mf.name, Bytes: mf.counter.n})
		}
	}
	// Everything is complete: make it durable, then visible. A crash after
	// the rename must not leave an empty feed in place (agents would read
	// it as an empty catalog), so the data is synced first; the files sync
	// in parallel so that their writebacks overlap.
	errs := make([]error, len(files))
	var fwg sync.WaitGroup
	for i, tf := range files {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			errs[i] = tf.finish()
		}()
	}
	fwg.Wait()
	if err := errors.Join(errs...); err != nil {
		return BuildResult{}, err
	}
	dirs := map[string]bool{}
	for _, tf := range files {
		if err := tf.rename(); err != nil {
			return BuildResult{}, err
		}
		dirs[filepath.Dir(tf.final)] = true
	}
	// The renames are durable only once their directories are synced.
	for d := range dirs {
		if err := fsx.SyncDir(d); err != nil {
			return BuildResult{}, fmt.Errorf("feed: sync directory %s: %w", d, err)
		}
	}
	return res, nil
}

// RemoveStale deletes leftovers of builds a crash interrupted (the hidden
// temporary files Build writes beside its outputs) and the files of formats
// that are not in keep, so a format dropped from the configuration stops
// being published instead of being served stale.
func RemoveStale(dir string, keep []Format) error {
	want := map[string]bool{}
	for _, f := range keep {
		want[string(f)] = true
		if f == FormatACP {
			want[FileACPMetadata] = true
		}
	}
	var errs []error
	for _, f := range Formats() {
		names := []string{string(f)}
		if f == FormatACP {
			names = append(names, FileACPMetadata)
		}
		for _, name := range names {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if !want[name] {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp"))
			for _, t := range tmps {
				if err := os.Remove(t); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Files lists the files Build writes for formats, as slash paths under the
// build directory.
func Files(formats []Format) []string {
	var out []string
	for _, f := range formats {
		out = append(out, string(f))
		if f == FormatACP {
			out = append(out, FileACPMetadata)
		}
	}
	return out
}

func uniqueFormats(formats []Format) ([]Format, error) {
	known := Formats()
	var out []Format
	for _, f := range formats {
		ok := false
		for _, k := range known {
			ok = ok || f == k
		}
		if !ok {
			return nil, fmt.Errorf("feed: unknown format %q", f)
		}
		dup := false
		for _, o := range out {
			dup = dup || o == f
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out, nil
}

// tempFile is a file being built beside its final name.
type tempFile struct {
	name    string // slash path under dir
	final   string
	f       *os.File
	counter *countingWriter
	format  Format
	writer  Writer
	err     error
	done    bool
}

func createTemp(dir, name string) (*tempFile, error) {
	final := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("feed: create directory for %s: %w", name, err)
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("feed: create temporary file for %s: %w", name, err)
	}
	return &tempFile{name: name, final: final, f: f, counter: &countingWriter{w: f}}, nil
}

// finish flushes the file to disk and closes it; feeds are served by other
// processes too, so they get ordinary read permissions.
func (t *tempFile) finish() error {
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(t.f.Name(), 0o644)
	}
	if err != nil {
		return fmt.Errorf("feed: finish %s: %w", t.name, err)
	}
	return nil
}

func (t *tempFile) rename() error {
	if err := os.Rename(t.f.Name(), t.final); err != nil {
		return fmt.Errorf("feed: publish %s: %w", t.name, err)
	}
	t.done = true
	return nil
}

func (t *tempFile) discard() {
	if t.done {
		return
	}
	// Errors are ignored: the file may be closed already, and a leftover
	// temporary file is hidden (dot name) and harmless.
	_ = t.f.Close()
	_ = os.Remove(t.f.Name())
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
