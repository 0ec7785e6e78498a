package feed

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bridge "github.com/acp-bridge/bridge"
)

// snapshot reads every file under dir, temporary ones included.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b, err := os.ReadFile(path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func fileNames(files map[string][]byte) []string {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func TestBuildDeterministic(t *testing.T) {
	s := usdSettings()
	es := append(entries(usdProducts(), s), syntheticEntries(300, s)...)
	a, _ := buildFiles(t, es, s)
	b, _ := buildFiles(t, es, s)
	fa, fb := snapshot(t, a), snapshot(t, b)
	want := []string{"acp/metadata.json", "acp/products.jsonl.gz", "feed.json", "openai.csv.gz", "openai.jsonl.gz", "openai.tsv.gz"}
	if got := fileNames(fa); !slices.Equal(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	for name, data := range fa {
		if !bytes.Equal(data, fb[name]) {
			t.Errorf("%s differs between two builds of the same catalog", name)
		}
	}
}

func TestBuildResult(t *testing.T) {
	s := usdSettings()
	dir, res := buildFiles(t, entries(usdProducts(), s), s)
	if res.Entries != 6 {
		t.Errorf("Entries = %d, want 6", res.Entries)
	}
	for _, f := range Formats() {
		fr, ok := res.File(f)
		if !ok {
			t.Fatalf("no result for %s", f)
		}
		if fr.Products != 5 || fr.Variants != 8 {
			t.Errorf("%s: %d products, %d variants; want 5, 8", f, fr.Products, fr.Variants)
		}
		st, err := os.Stat(filepath.Join(dir, fr.Path))
		if err != nil || st.Size() != fr.Bytes || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: stat %v, %v; result says %d bytes", f, st, err, fr.Bytes)
		}
	}
}

// TestBuildAtomic: while a build runs nothing new is visible, and a build
// that fails leaves the previous files as they were and no temporary files.
func TestBuildAtomic(t *testing.T) {
	s := usdSettings()
	es := entries(usdProducts(), s)
	dir, _ := buildFiles(t, es, s)
	before := snapshot(t, dir)

	boom := errors.New("store went away")
	fail := func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
		for i, e := range syntheticEntries(600, s) {
			if err := fn(e); err != nil {
				return err
			}
			if i == 500 {
				mid := snapshot(t, dir)
				for name, data := range before {
					if !bytes.Equal(mid[name], data) {
						t.Errorf("%s changed while the build was running", name)
					}
				}
				return boom
			}
		}
		return nil
	}
	if _, err := Build(context.Background(), dir, Formats(), s, fail); !errors.Is(err, boom) {
		t.Fatalf("Build error = %v, want %v", err, boom)
	}
	after := snapshot(t, dir)
	if got, want := fileNames(after), fileNames(before); !slices.Equal(got, want) {
		t.Errorf("files after a failed build = %v, want %v", got, want)
	}
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed by a failed build", name)
		}
	}

	// A first build that fails leaves nothing at all.
	empty := t.TempDir()
	if _, err := Build(context.Background(), empty, Formats(), s, fail); err == nil {
		t.Fatal("want an error")
	}
	if left := snapshot(t, empty); len(left) != 0 {
		t.Errorf("a failed first build left %v", fileNames(left))
	}
}

func TestBuildCancel(t *testing.T) {
	s := usdSettings()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	_, err := Build(ctx, dir, []Format{FormatOpenAIJSONL}, s, func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
		for i, e := range syntheticEntries(2000, s) {
			if i == 700 {
				cancel()
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left := snapshot(t, dir); len(left) != 0 {
		t.Errorf("a cancelled build left %v", fileNames(left))
	}
}

// TestBuildWriteError: a format that cannot be written stops the build
// instead of publishing a truncated file.
func TestBuildWriteError(t *testing.T) {
	s := usdSettings()
	dir := t.TempDir()
	// A directory where the file should go makes the rename fail.
	if err := os.MkdirAll(filepath.Join(dir, "feed.json", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), dir, []Format{FormatSeedJSON}, s, eachOf(entries(usdProducts(), s)))
	if err == nil || !strings.Contains(err.Error(), "feed.json") {
		t.Fatalf("err = %v, want a publish error naming feed.json", err)
	}
}

func TestBuildFormats(t *testing.T) {
	s := usdSettings()
	dir := t.TempDir()
	if _, err := Build(context.Background(), dir, []Format{"feed.xml"}, s, eachOf(nil)); err == nil {
		t.Error("unknown format accepted")
	}
	res, err := Build(context.Background(), dir, []Format{FormatOpenAICSV, FormatOpenAICSV}, s, eachOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 {
		t.Errorf("files = %+v, want one", res.Files)
	}
	// An empty catalog still gives well-formed files.
	text := readFeedFile(t, filepath.Join(dir, string(FormatOpenAICSV)))
	if rows, err := csv.NewReader(bytes.NewReader(text)).ReadAll(); err != nil || len(rows) != 1 {
		t.Errorf("empty CSV: %v rows, %v", len(rows), err)
	}
}

// TestFlatFilesParse reads the flat files back with ordinary parsers.
func TestFlatFilesParse(t *testing.T) {
	s := usdSettings()
	es := append(entries(usdProducts(), s), syntheticEntries(200, s)...)
	nasty := syntheticProduct(999_999)
	nasty.Title = "Tab\there, \"quotes\", comma, new\nline"
	nasty.Variants[0].Title = " leading space"
	nasty.Variants[1].Options = []bridge.Option{{Name: "Größe", Value: "XL\t\"big\""}}
	es = append(es, bridge.CatalogEntry{Product: nasty, Issues: Validate(&nasty, s)})
	wantRows := 8 + 200*3 + 3
	dir, _ := buildFiles(t, es, s)

	rows, err := csv.NewReader(bytes.NewReader(readFeedFile(t, filepath.Join(dir, string(FormatOpenAICSV))))).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if len(rows) != wantRows+1 || !slices.Equal(rows[0], g2Columns) {
		t.Fatalf("CSV has %d rows, header %v", len(rows), rows[0])
	}
	for i, r := range rows {
		if len(r) != len(g2Columns) {
			t.Fatalf("CSV row %d has %d columns", i, len(r))
		}
	}
	last := rows[len(rows)-2] // nasty's second variant
	var dict map[string]string
	if err := json.Unmarshal([]byte(last[slices.Index(g2Columns, "variant_dict")]), &dict); err != nil || dict["Größe"] != "XL\t\"big\"" {
		t.Errorf("variant_dict read back as %v, %v", dict, err)
	}
	if got := rows[len(rows)-3][slices.Index(g2Columns, "title")]; got != " leading space" {
		t.Errorf("title read back as %q", got)
	}

	tsv := strings.TrimSuffix(string(readFeedFile(t, filepath.Join(dir, string(FormatOpenAITSV)))), "\n")
	lines := strings.Split(tsv, "\n")
	if len(lines) != wantRows+1 {
		t.Fatalf("TSV has %d lines, want %d", len(lines), wantRows+1)
	}
	for i, l := range lines {
		if n := len(strings.Split(l, "\t")); n != len(g2Columns) {
			t.Fatalf("TSV line %d has %d columns: %q", i, n, l)
		}
	}

	jsonl := strings.TrimSuffix(string(readFeedFile(t, filepath.Join(dir, string(FormatOpenAIJSONL)))), "\n")
	for i, l := range strings.Split(jsonl, "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatalf("JSONL line %d: %v\n%s", i, err, l)
		}
		if _, ok := row["is_eligible_search"].(bool); !ok {
			t.Fatalf("JSONL line %d: is_eligible_search is not a boolean", i)
		}
		for k, v := range row {
			if !slices.Contains(g2Columns, k) {
				t.Fatalf("JSONL line %d: unknown field %q", i, k)
			}
			if v == "" {
				t.Fatalf("JSONL line %d: empty %s should be left out", i, k)
			}
		}
	}

	var seed struct {
		Meta     map[string]any   `json:"meta"`
		Products []map[string]any `json:"products"`
		Count    int              `json:"count"`
	}
	if err := json.Unmarshal(readFeedFile(t, filepath.Join(dir, string(FormatSeedJSON))), &seed); err != nil {
		t.Fatal(err)
	}
	if seed.Count != wantRows || len(seed.Products) != wantRows || seed.Meta["format"] != seedFormat {
		t.Errorf("feed.json: count %d, %d products, meta %v", seed.Count, len(seed.Products), seed.Meta)
	}
}

// failWriter fails after n bytes, and records a Close the writers must not
// make.
type failWriter struct {
	n      int
	closed bool
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return w.n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func (w *failWriter) Close() error { w.closed = true; return nil }

func TestWriterErrors(t *testing.T) {
	s := usdSettings()
	es := syntheticEntries(400, s)
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			fw := &failWriter{n: 1000}
			w, err := NewWriter(f, fw, s)
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for i := range es {
				if werr = w.Write(&es[i]); werr != nil {
					break
				}
			}
			if werr == nil {
				werr = w.Close()
			}
			if werr == nil || !strings.Contains(werr.Error(), "disk full") {
				t.Errorf("error = %v, want the underlying one", werr)
			}
			if err := w.Write(&es[0]); err == nil {
				t.Error("Write after a failure succeeded")
			}

			ok := &failWriter{n: 1 << 30}
			w, _ = NewWriter(f, ok, s)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(&es[0]); err == nil {
				t.Error("Write after Close succeeded")
			}
			if ok.closed {
				t.Error("Close closed the underlying writer")
			}
		})
	}
	if _, err := NewWriter("nope", io.Discard, s); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestWriterSkipsBadEntries: entries that validation never saw, or that are
// odd in ways validation would reject, still never break a writer's output.
func TestWriterSkipsBadEntries(t *testing.T) {
	s := usdSettings()
	odd := []bridge.CatalogEntry{
		{},                                 // no variants
		{Product: bridge.Product{ID: "x"}}, // no variants either
		{Product: bridge.Product{ID: "y", Variants: []bridge.Variant{{ID: "y1", Price: bridge.Money{Amount: 5, Currency: "???"}}}}},
		{Product: bridge.Product{ID: "z", Variants: []bridge.Variant{{ID: "z1"}}}, Issues: []bridge.Issue{{Severity: bridge.SeverityError, Field: "brand"}}},
	}
	for _, f := range []Format{FormatOpenAIJSONL, FormatACP, FormatSeedJSON} {
		var buf bytes.Buffer
		w, _ := NewWriter(f, &buf, s)
		for i := range odd {
			if err := w.Write(&odd[i]); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if f == FormatSeedJSON {
			if !json.Valid(buf.Bytes()) {
				t.Errorf("feed.json invalid:\n%s", buf.Bytes())
			}
			continue
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "f.gz")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(readFeedFile(t, path))), "\n") {
			if l != "" && !json.Valid([]byte(l)) {
				t.Errorf("%s: invalid line %s", f, l)
			}
			if strings.Contains(l, `"z`) {
				t.Errorf("%s: excluded product written: %s", f, l)
			}
		}
	}
}
