package csv

import (
	"context"
	"errors"
	"fmt"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

// scanResult is everything one ReadCatalog call produced.
type scanResult struct {
	records  []bridge.Record
	problems []bridge.Problem
	err      error
}

func newAdapter(t *testing.T, opts Options) *Adapter {
	t.Helper()
	a, err := New(opts, nil, nil)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return a
}

func readAll(t *testing.T, a *Adapter) scanResult {
	t.Helper()
	var r scanResult
	r.err = a.ReadCatalog(context.Background(),
		func(rec bridge.Record) error { r.records = append(r.records, rec); return nil },
		func(p bridge.Problem) { r.problems = append(r.problems, p) })
	return r
}

func readBytes(t *testing.T, opts Options, data string) scanResult {
	t.Helper()
	if opts.Path == "" {
		opts.Path = "inline.csv"
	}
	a := newAdapter(t, opts)
	var r scanResult
	r.err = a.readCatalog(context.Background(), strings.NewReader(data),
		func(rec bridge.Record) error { r.records = append(r.records, rec); return nil },
		func(p bridge.Problem) { r.problems = append(r.problems, p) })
	return r
}

type wantRecord struct {
	key   string
	lines []int // VariantLines; Line is lines[0]
	ids   []string
}

type wantProblem struct {
	line int
	key  string
	msg  string // substring of Message
}

func TestReadCatalogFixtures(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		opts     Options
		records  []wantRecord
		problems []wantProblem
	}{
		{
			name: "grouping",
			file: "grouping.csv",
			records: []wantRecord{
				{"tee", []int{2, 3, 4}, []string{"tee-s", "tee-m", "tee-l"}},
				{"mug", []int{5}, []string{"mug-1"}},
				{"cap", []int{6, 7}, []string{"cap-red", "cap-blue"}},
			},
		},
		{
			name: "semicolon",
			file: "semicolon.csv",
			opts: Options{Delimiter: ';'},
			records: []wantRecord{
				{"tee", []int{2, 3}, []string{"tee-s", "tee-m"}},
				{"mug", []int{4}, []string{"mug-1"}},
			},
		},
		{
			name: "tab",
			file: "tab.tsv",
			opts: Options{Delimiter: '\t'},
			records: []wantRecord{
				{"tee", []int{2, 3}, []string{"tee-s", "tee-m"}},
				{"mug", []int{4}, []string{"mug-1"}},
			},
		},
		{
			name: "quoted fields spanning lines keep true line numbers",
			file: "quoted.csv",
			records: []wantRecord{
				{"tee", []int{2, 4}, []string{"tee-s", "tee-m"}},
				{"mug", []int{7}, []string{"mug-1"}},
				{"cap", []int{9}, []string{"cap-1"}},
			},
			problems: []wantProblem{{8, "", "6 fields, header has 5"}},
		},
		{
			name: "byte order mark, quoted and padded header, CRLF",
			file: "bom.csv",
			records: []wantRecord{
				{"tee", []int{2, 3}, []string{"tee-s", "tee-m"}},
				{"mug", []int{4}, []string{"mug-1"}},
			},
		},
		{
			name: "unnamed columns and rows of bare delimiters",
			file: "spreadsheet.csv",
			records: []wantRecord{
				{"tee", []int{2}, []string{"tee-s"}},
			},
		},
		{
			name: "each kind of bad row",
			file: "bad_rows.csv",
			records: []wantRecord{
				{"tee", []int{2, 5}, []string{"tee-s", "tee-xl"}},
				{"mug", []int{8}, []string{"mug-1"}},
				{"cap", []int{12}, []string{"cap-3"}},
				// Ids shared across products are the pipeline's to refuse,
				// after mapping has chosen the id.
				{"hat", []int{14, 15}, []string{"mug-1", "hat-1"}},
				{"box", []int{18}, []string{"box-2"}},
			},
			problems: []wantProblem{
				{3, "", "3 fields, header has 4"},
				{4, "", `a " appears inside a value that is not in quotes (line 4, column 13)`},
				{6, "", "group_id is empty"},
				{7, "mug", "sku is empty"},
				{9, "mug", `sku "mug-1" is already used on line 8 of the same product`},
				{10, "", `column "title" is not valid UTF-8 text; save the file with UTF-8 encoding`},
				{11, "cap", `quantity "many" is not a whole number`},
				{13, "tee", `rows of product "tee" must be adjacent, but it already appeared on line 2 before other products; sort the file by the group_id column`},
				{17, "", "a quoted value is not closed properly (line 17, column 16)"},
			},
		},
		{
			name:    "unterminated quote swallows the rest",
			file:    "unterminated.csv",
			records: []wantRecord{{"tee", []int{2}, []string{"tee-s"}}},
			problems: []wantProblem{
				{3, "", "a quoted value starting on this line is not closed properly (found at line 5, column 15), so the lines up to there were read as part of it"},
			},
		},
		{
			name: "group column equal to id column: one product per row",
			file: "grouping.csv",
			opts: Options{GroupColumn: "sku", IDColumn: "sku"},
			records: []wantRecord{
				{"tee-s", []int{2}, []string{"tee-s"}},
				{"tee-m", []int{3}, []string{"tee-m"}},
				{"tee-l", []int{4}, []string{"tee-l"}},
				{"mug-1", []int{5}, []string{"mug-1"}},
				{"cap-red", []int{6}, []string{"cap-red"}},
				{"cap-blue", []int{7}, []string{"cap-blue"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Path = filepath.Join("testdata", tc.file)
			r := readAll(t, newAdapter(t, opts))
			if r.err != nil {
				t.Fatalf("ReadCatalog: %v", r.err)
			}
			checkRecords(t, r.records, tc.records, opts)
			checkProblems(t, r.problems, tc.problems)
		})
	}
}

func checkRecords(t *testing.T, got []bridge.Record, want []wantRecord, opts Options) {
	t.Helper()
	idCol := opts.IDColumn
	if idCol == "" {
		idCol = DefaultIDColumn
	}
	if len(got) != len(want) {
		t.Errorf("got %d records, want %d", len(got), len(want))
		for _, r := range got {
			t.Logf("  %s line %d lines %v", r.Key, r.Line, r.VariantLines)
		}
		return
	}
	for i, w := range want {
		g := got[i]
		var ids []string
		for _, v := range g.Variants {
			ids = append(ids, v[idCol].(string))
		}
		if g.Key != w.key || g.Line != w.lines[0] || !reflect.DeepEqual(g.VariantLines, w.lines) || !reflect.DeepEqual(ids, w.ids) {
			t.Errorf("record %d = key %q line %d lines %v ids %v; want key %q lines %v ids %v",
				i, g.Key, g.Line, g.VariantLines, ids, w.key, w.lines, w.ids)
		}
		if !reflect.DeepEqual(g.Product, g.Variants[0]) {
			t.Errorf("record %d: Product %v is not the first row %v", i, g.Product, g.Variants[0])
		}
	}
}

func checkProblems(t *testing.T, got []bridge.Problem, want []wantProblem) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Line != w.line || g.Key != w.key || !strings.Contains(g.Message, w.msg) {
			t.Errorf("problem %d = {%d %q %q}; want {%d %q …%q…}", i, g.Line, g.Key, g.Message, w.line, w.key, w.msg)
		}
	}
	for i := len(want); i < len(got); i++ {
		t.Errorf("unexpected problem {%d %q %q}", got[i].Line, got[i].Key, got[i].Message)
	}
}

// TestRecordFormat pins the exact shape the mapping receives.
func TestRecordFormat(t *testing.T) {
	r := readAll(t, newAdapter(t, Options{Path: "testdata/quoted.csv"}))
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := bridge.Record{
		Key:  "tee",
		Line: 2,
		Product: map[string]any{
			"group_id": "tee", "sku": "tee-s", "title": "T-Shirt, organic",
			"description": "Soft.\nWashes well, \"really\".", "price": "19.99",
		},
		Variants: []map[string]any{
			{"group_id": "tee", "sku": "tee-s", "title": "T-Shirt, organic",
				"description": "Soft.\nWashes well, \"really\".", "price": "19.99"},
			{"group_id": "tee", "sku": "tee-m", "title": "T-Shirt, organic",
				"description": "Two\nline\nbreak", "price": "19.99"},
		},
		VariantLines: []int{2, 4},
	}
	if !reflect.DeepEqual(r.records[0], want) {
		t.Errorf("record =\n%#v\nwant\n%#v", r.records[0], want)
	}
	// Product is a copy: a consumer changing it must not change the variant.
	r.records[0].Product["title"] = "changed"
	if r.records[0].Variants[0]["title"] != "T-Shirt, organic" {
		t.Error("Product and Variants[0] share one map")
	}
}

func TestReadCatalogGroupIsID(t *testing.T) {
	r := readBytes(t, Options{GroupColumn: "sku", IDColumn: "sku"}, "sku,title\na,A\na,A again\nb,B\na,A later\n")
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkRecords(t, r.records, []wantRecord{{"a", []int{2}, []string{"a"}}, {"b", []int{4}, []string{"b"}}}, Options{IDColumn: "sku"})
	checkProblems(t, r.problems, []wantProblem{
		{3, "a", `sku "a" is already used on line 2 of the same product`},
		{5, "a", `sku "a" is already used on line 2; every row needs its own sku`},
	})
}

func TestReadCatalogTrimsKeyValues(t *testing.T) {
	r := readBytes(t, Options{}, "group_id,sku,quantity,note\n tee , tee-s , 5 , padded \n")
	if r.err != nil || len(r.problems) > 0 {
		t.Fatalf("err %v problems %v", r.err, r.problems)
	}
	v := r.records[0].Variants[0]
	want := map[string]any{"group_id": "tee", "sku": "tee-s", "quantity": "5", "note": " padded "}
	if !reflect.DeepEqual(v, want) || r.records[0].Key != "tee" {
		t.Errorf("variant %q key %q; want %q", v, r.records[0].Key, want)
	}
}

func TestReadCatalogNegativeAndEmptyStock(t *testing.T) {
	r := readBytes(t, Options{StockColumn: "stock"}, "group_id,sku,stock\na,a1,-2\na,a2,\na,a3,1.5\n")
	if r.err != nil {
		t.Fatal(r.err)
	}
	checkRecords(t, r.records, []wantRecord{{"a", []int{2, 3}, []string{"a1", "a2"}}}, Options{})
	checkProblems(t, r.problems, []wantProblem{{4, "a", `stock "1.5" is not a whole number`}})
}

func TestReadCatalogNoStockColumn(t *testing.T) {
	// Without the stock column any value goes: stock is simply untracked.
	r := readBytes(t, Options{}, "group_id,sku,stock\na,a1,lots\n")
	if r.err != nil || len(r.problems) != 0 || len(r.records) != 1 {
		t.Fatalf("err %v problems %v records %d", r.err, r.problems, len(r.records))
	}
}

func TestReadCatalogLogsUntrackedStockOnce(t *testing.T) {
	var logs syncbuf.Buffer
	a := newAdapter(t, Options{Path: "testdata/bom.csv", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 2 {
		if r := readAll(t, a); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if n := strings.Count(logs.String(), "no stock column"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestReadCatalogTooManyVariants(t *testing.T) {
	var b strings.Builder
	b.WriteString("group_id,sku\n")
	for i := range maxVariants + 2 {
		fmt.Fprintf(&b, "all,v%d\n", i)
	}
	b.WriteString("next,n1\n")
	r := readBytes(t, Options{}, b.String())
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.records) != 2 || len(r.records[0].Variants) != maxVariants {
		t.Fatalf("records %d, first has %d variants", len(r.records), len(r.records[0].Variants))
	}
	if len(r.problems) != 2 || r.problems[0].Line != maxVariants+2 || !strings.Contains(r.problems[0].Message, "has more than 10000 rows") {
		t.Errorf("problems = %v", r.problems[:min(2, len(r.problems))])
	}
}

func TestReadCatalogHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		opts Options
		want []string
	}{
		{"missing group and id", "handle,variant_sku,title\ntee,tee-s,T\n", Options{},
			[]string{`no column "group_id" or "sku"`, `it has "handle", "variant_sku", "title"`}},
		{"missing id only", "group_id,variant_sku\n", Options{},
			[]string{`no column "sku";`}},
		{"wrong delimiter", "group_id;sku;title\n", Options{},
			[]string{`no column "group_id" or "sku"`, `"group_id;sku;title"`, "check the delimiter"}},
		{"empty file", "", Options{}, []string{"is empty: it needs a header row"}},
		{"only a BOM", "\uFEFF", Options{}, []string{"is empty"}},
		{"duplicate column", "group_id,sku,title,title\n", Options{}, []string{`names column "title" twice (columns 3 and 4)`}},
		{"broken header", "group_id,s\"ku\n", Options{}, []string{"header row: line 1: a \" appears"}},
		{"header not UTF-8", "group_id,sku,t\xe9\n", Options{}, []string{"header row (line 1) is not valid UTF-8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := readBytes(t, tc.opts, tc.data)
			if r.err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q lacks %q", r.err, w)
				}
			}
			if len(r.records) != 0 {
				t.Errorf("emitted %d records", len(r.records))
			}
		})
	}
}

func TestReadCatalogMissingColumnFixture(t *testing.T) {
	r := readAll(t, newAdapter(t, Options{Path: "testdata/missing_column.csv"}))
	if r.err == nil || !strings.Contains(r.err.Error(), `no column "group_id" or "sku"; it has "handle", "variant_sku", "title"`) {
		t.Fatalf("err = %v", r.err)
	}
	r = readAll(t, newAdapter(t, Options{Path: "testdata/missing_column.csv", GroupColumn: "handle", IDColumn: "variant_sku"}))
	if r.err != nil || len(r.records) != 1 {
		t.Fatalf("with configured columns: err %v, %d records", r.err, len(r.records))
	}
}

func TestReadCatalogMissingFile(t *testing.T) {
	r := readAll(t, newAdapter(t, Options{Path: filepath.Join(t.TempDir(), "nope.csv")}))
	if !errors.Is(r.err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", r.err)
	}
}

func TestReadCatalogEmitError(t *testing.T) {
	stop := errors.New("stop")
	a := newAdapter(t, Options{Path: "testdata/grouping.csv"})
	n := 0
	err := a.ReadCatalog(context.Background(), func(bridge.Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	}, func(bridge.Problem) {})
	if err != stop || n != 2 {
		t.Fatalf("err %v after %d emits; want the emit error after 2", err, n)
	}
}

// endless yields a header and then rows forever.
type endless struct {
	n   int
	buf []byte
}

func (e *endless) Read(p []byte) (int, error) {
	if len(e.buf) == 0 {
		if e.n == 0 {
			e.buf = []byte("group_id,sku,title\n")
		} else {
			e.buf = fmt.Appendf(nil, "g%d,s%d,Thing\n", e.n, e.n)
		}
		e.n++
	}
	n := copy(p, e.buf)
	e.buf = e.buf[n:]
	return n, nil
}

func TestReadCatalogCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newAdapter(t, Options{Path: "x.csv"})
	emitted := 0
	done := make(chan error, 1)
	go func() {
		done <- a.readCatalog(ctx, &endless{}, func(bridge.Record) error {
			emitted++
			if emitted == 1000 {
				cancel()
			}
			return nil
		}, func(bridge.Problem) {})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if emitted > 1000+ctxEvery {
			t.Errorf("emitted %d records after cancel at 1000", emitted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scan did not stop after cancel")
	}
}

func TestReadCatalogReadError(t *testing.T) {
	boom := errors.New("connection reset")
	a := newAdapter(t, Options{Path: "x.csv"})
	var n int
	err := a.readCatalog(context.Background(),
		io.MultiReader(strings.NewReader("group_id,sku\na,a1\nb,b1\n"), iotest.ErrReader(boom)),
		func(bridge.Record) error { n++; return nil }, func(bridge.Problem) {})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the read error: a broken download must not look like a short catalog", err)
	}
}

func TestReadCatalogHTTPS(t *testing.T) {
	body, err := os.ReadFile("testdata/grouping.csv")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/catalog.csv":
			w.Header().Set("Content-Type", "text/csv")
			_, _ = w.Write(body)
		case "/moved.csv":
			http.Redirect(w, r, "/catalog.csv", http.StatusFound)
		case "/short.csv":
			w.Header().Set("Content-Length", "10000")
			_, _ = w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	// The untrusted-certificate case makes the server log a handshake error.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer plain.Close()
	downgrade := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/catalog.csv", http.StatusFound)
	}))
	defer downgrade.Close()

	t.Run("ok", func(t *testing.T) {
		r := readAll(t, newAdapter(t, Options{Path: srv.URL + "/catalog.csv?token=secret", HTTPClient: srv.Client()}))
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkRecords(t, r.records, []wantRecord{
			{"tee", []int{2, 3, 4}, []string{"tee-s", "tee-m", "tee-l"}},
			{"mug", []int{5}, []string{"mug-1"}},
			{"cap", []int{6, 7}, []string{"cap-red", "cap-blue"}},
		}, Options{})
	})
	t.Run("redirect", func(t *testing.T) {
		r := readAll(t, newAdapter(t, Options{Path: srv.URL + "/moved.csv", HTTPClient: srv.Client()}))
		if r.err != nil || len(r.records) != 3 {
			t.Fatalf("err %v, %d records", r.err, len(r.records))
		}
	})
	t.Run("404", func(t *testing.T) {
		r := readAll(t, newAdapter(t, Options{Path: srv.URL + "/gone.csv?token=secret", HTTPClient: srv.Client()}))
		if r.err == nil || !strings.Contains(r.err.Error(), "404 Not Found") {
			t.Fatalf("err = %v, want the 404 status", r.err)
		}
		if strings.Contains(r.err.Error(), "secret") {
			t.Errorf("error %q shows the URL's query", r.err)
		}
	})
	t.Run("truncated body", func(t *testing.T) {
		r := readAll(t, newAdapter(t, Options{Path: srv.URL + "/short.csv", HTTPClient: srv.Client()}))
		if !errors.Is(r.err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want unexpected EOF", r.err)
		}
	})
	t.Run("redirect to http refused", func(t *testing.T) {
		r := readAll(t, newAdapter(t, Options{Path: downgrade.URL + "/catalog.csv", HTTPClient: downgrade.Client()}))
		if r.err == nil || !strings.Contains(r.err.Error(), "not https") {
			t.Fatalf("err = %v, want the downgrade refused", r.err)
		}
	})
	t.Run("http refused without AllowHTTP", func(t *testing.T) {
		_, err := New(Options{Path: plain.URL + "/catalog.csv"}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "plain http") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("http allowed in development", func(t *testing.T) {
		r := readAll(t, newAdapter(t, Options{Path: plain.URL + "/catalog.csv", AllowHTTP: true}))
		if r.err != nil || len(r.records) != 3 {
			t.Fatalf("err %v, %d records", r.err, len(r.records))
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		// The default client does not trust the test server's certificate.
		r := readAll(t, newAdapter(t, Options{Path: srv.URL + "/catalog.csv?token=secret"}))
		if r.err == nil || strings.Contains(r.err.Error(), "secret") {
			t.Fatalf("err = %v; want a TLS error without the query", r.err)
		}
	})
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" means valid
	}{
		{"defaults", Options{Path: "c.csv"}, ""},
		{"https", Options{Path: "https://shop.example/c.csv"}, ""},
		{"empty path", Options{}, "catalog path is empty"},
		{"blank path", Options{Path: "  "}, "catalog path is empty"},
		{"http", Options{Path: "http://shop.example/c.csv"}, "uses plain http"},
		{"http allowed", Options{Path: "http://shop.example/c.csv", AllowHTTP: true}, ""},
		{"ftp", Options{Path: "ftp://shop.example/c.csv"}, `scheme "ftp" is not supported`},
		{"no host", Options{Path: "https:///c.csv"}, "has no host"},
		{"semicolon", Options{Path: "c.csv", Delimiter: ';'}, ""},
		{"tab", Options{Path: "c.csv", Delimiter: '\t'}, ""},
		{"pipe", Options{Path: "c.csv", Delimiter: '|'}, `delimiter '|' is not supported`},
		{"quote", Options{Path: "c.csv", Delimiter: '"'}, "is not supported"},
		{"stock is id", Options{Path: "c.csv", StockColumn: "sku"}, "also the group or id column"},
		{"orders URL", Options{Path: "c.csv", OrdersPath: "s3://b/o.jsonl"}, "must be a local file path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.opts, nil, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if a.opts.Delimiter == 0 || a.opts.GroupColumn == "" || a.opts.IDColumn == "" || a.opts.StockColumn == "" {
					t.Errorf("defaults not applied: %+v", a.opts)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
