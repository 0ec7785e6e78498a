package csv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	bridge "github.com/acp-bridge/bridge"
)

// FuzzReadCatalog feeds arbitrary bytes as the catalog. Whatever the input,
// the scan must not panic, and what it emits must hold the promises the
// mapping relies on.
//
//	go test -run='^$' -fuzz=FuzzReadCatalog -fuzztime=60s ./adapters/csv/
func FuzzReadCatalog(f *testing.F) {
	const maxFuzzInput = 1024
	files, err := filepath.Glob("testdata/*.*sv")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		delim := byte(0)
		switch {
		case strings.HasSuffix(name, ".tsv"):
			delim = 2
		case strings.Contains(name, "semicolon"):
			delim = 1
		}
		f.Add(data, delim)
	}
	for _, s := range []string{
		"",
		"\uFEFF",
		"group_id,sku\n",
		"group_id,sku\na,1\na,1\nb,2\na,3\n",
		"group_id,sku,quantity\na,1,9223372036854775808\na,2,-0\n",
		"sku,group_id\n\"a\nb\",g\ng,\"\"\"\"\n",
		"group_id,sku\n\"a,1\n",
		"group_id,sku\r\na,1\r\n\r\n,\r\n",
		"group_id,group_id\n",
		"\xff,sku\n",
	} {
		f.Add([]byte(s), byte(0))
	}
	delims := []rune{',', ';', '\t'}
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		if len(data) > maxFuzzInput {
			// Go's minimizer tries every byte range of a new input (n²
			// runs); on inputs of kilobytes it spends the whole fuzz time
			// minimizing instead of fuzzing. Every row rule shows on a few
			// short lines.
			t.Skip("input too long")
		}
		opts := Options{Path: "fuzz.csv", Delimiter: delims[int(delim)%len(delims)]}
		if delim&0x80 != 0 {
			opts.GroupColumn, opts.IDColumn = "sku", "sku"
		}
		a, err := New(opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		lastLine := 0
		err = a.readCatalog(context.Background(), strings.NewReader(string(data)),
			func(r bridge.Record) error {
				if r.Key == "" || keys[r.Key] {
					t.Fatalf("record key %q empty or repeated", r.Key)
				}
				keys[r.Key] = true
				ids := map[string]bool{}
				if len(r.Variants) == 0 || len(r.Variants) != len(r.VariantLines) {
					t.Fatalf("record %q: %d variants, %d lines", r.Key, len(r.Variants), len(r.VariantLines))
				}
				if r.Line <= lastLine || r.Line != r.VariantLines[0] {
					t.Fatalf("record %q at line %d after line %d, first variant line %d", r.Key, r.Line, lastLine, r.VariantLines[0])
				}
				if r.Product == nil || r.Product[a.opts.GroupColumn] != r.Key {
					t.Fatalf("record %q: product map %v lacks its key", r.Key, r.Product)
				}
				for i, v := range r.Variants {
					if r.VariantLines[i] < r.Line || (i > 0 && r.VariantLines[i] <= r.VariantLines[i-1]) {
						t.Fatalf("record %q: variant lines %v", r.Key, r.VariantLines)
					}
					lastLine = r.VariantLines[i]
					if v[a.opts.GroupColumn] != r.Key {
						t.Fatalf("record %q: variant %d has group %v", r.Key, i, v[a.opts.GroupColumn])
					}
					id, _ := v[a.opts.IDColumn].(string)
					if id == "" || ids[id] {
						t.Fatalf("record %q: variant id %q empty or repeated in the product", r.Key, id)
					}
					ids[id] = true
					for col, val := range v {
						s, ok := val.(string)
						if !ok || !utf8.ValidString(s) || col == "" {
							t.Fatalf("record %q: column %q = %#v", r.Key, col, val)
						}
					}
				}
				return nil
			},
			func(p bridge.Problem) {
				if p.Line <= 0 || p.Message == "" || !utf8.ValidString(p.Key) || !utf8.ValidString(p.Message) {
					t.Fatalf("problem %+v", p)
				}
			})
		if err != nil && !strings.HasPrefix(err.Error(), "csv: catalog fuzz.csv") {
			t.Fatalf("unexpected kind of error: %v", err)
		}
	})
}
