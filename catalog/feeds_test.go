package catalog

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/acp-bridge/bridge/feed"
)

// countLines counts the rows of a gzipped JSONL feed file.
func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		n++
	}
	return n
}

func TestSyncerRendersFeedsInTheSamePass(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	dir := t.TempDir()
	src := &fakeSource{recs: records(40)}
	p := newPipeline(t, src)
	target := &Feeds{Dir: dir, Formats: []feed.Format{feed.FormatOpenAIJSONL, feed.FormatACP}, Settings: p.Settings}
	s := &Syncer{Pipeline: p, Store: db, Feeds: target}
	info, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jsonl := filepath.Join(dir, "openai.jsonl.gz")
	if n := countLines(t, jsonl); n != 80 {
		t.Fatalf("openai.jsonl.gz has %d rows, want 80", n)
	}
	if src.reads.Load() != 1 {
		t.Errorf("store read %d times, want once", src.reads.Load())
	}
	if m, _ := os.ReadFile(filepath.Join(dir, versionMarker)); string(m) != target.marker(info.Version) {
		t.Errorf("marker %q, want %q", m, target.marker(info.Version))
	}

	// A failing sync changes neither storage nor the files.
	src.recs, src.err = records(5), errors.New("store unreachable")
	if _, err := s.Sync(ctx); err == nil {
		t.Fatal("want failure")
	}
	if n := countLines(t, jsonl); n != 80 {
		t.Fatalf("after a failed sync the feed has %d rows, want the old 80", n)
	}

	// RenderStored: nothing to do while marker and files match.
	if _, rendered, err := target.RenderStored(ctx, db); err != nil || rendered {
		t.Fatalf("RenderStored with a matching marker: rendered=%v err=%v", rendered, err)
	}
	// Files lost (or a format added): rendered from storage, same rows.
	if err := os.Remove(jsonl); err != nil {
		t.Fatal(err)
	}
	if _, rendered, err := target.RenderStored(ctx, db); err != nil || !rendered {
		t.Fatalf("RenderStored after losing a file: rendered=%v err=%v", rendered, err)
	}
	if n := countLines(t, jsonl); n != 80 {
		t.Fatalf("re-rendered feed has %d rows, want 80", n)
	}
	// Changed merchant settings: the files must be rendered again.
	target.Settings.Merchant.Name = "Renamed Shop"
	if _, rendered, err := target.RenderStored(ctx, db); err != nil || !rendered {
		t.Fatalf("RenderStored after a settings change: rendered=%v err=%v", rendered, err)
	}
	// A format dropped from the config: its file goes, leftovers of a
	// crashed build go, the others stay.
	tmp := filepath.Join(dir, ".openai.jsonl.gz.123.tmp")
	if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	target.Formats = []feed.Format{feed.FormatACP}
	if _, _, err := target.RenderStored(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{jsonl, tmp} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s should be removed: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "acp", "products.jsonl.gz")); err != nil {
		t.Errorf("configured format removed: %v", err)
	}
	// Stale marker (crash between commit and render): rendered again.
	if err := os.WriteFile(filepath.Join(dir, versionMarker), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, rendered, err := target.RenderStored(ctx, db); err != nil || !rendered {
		t.Fatalf("RenderStored with a stale marker: rendered=%v err=%v", rendered, err)
	}
	if n := countLines(t, filepath.Join(dir, "acp", "products.jsonl.gz")); n != 40 {
		t.Fatalf("re-rendered ACP feed has %d products, want 40", n)
	}
}

func TestRenderStoredWithoutSnapshot(t *testing.T) {
	target := &Feeds{Dir: t.TempDir(), Formats: feed.Formats()}
	if _, _, err := target.RenderStored(context.Background(), openDB(t)); err == nil {
		t.Fatal("want ErrNotFound before the first snapshot")
	}
}
