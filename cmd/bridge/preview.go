package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

// cmdMappingPreview shows one product the way the mapping sees it: the store
// record on the left, the mapped record on the right, validation below, so an
// admin editing the mapping sees the effect of each field at once.
func cmdMappingPreview(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("mapping preview", stderr)
	id := fs.String("id", "", "store key (CSV group value), product id or variant id to preview")
	width := fs.Int("width", 160, "total output width in columns")
	a, err := openApp(ctx, fs, cfgPath, args, stderr, false, "id")
	if err != nil {
		return err
	}
	defer a.close()

	var rec bridge.Record
	var prod bridge.Product
	var issues []bridge.Issue
	found := false
	err = a.source.ReadCatalog(ctx, func(r bridge.Record) error {
		p, is := a.mapping.Apply(r)
		if r.Key != *id && p.ID != *id && !hasVariant(p, *id) {
			return nil
		}
		rec, prod, issues, found = r, p, is, true
		return errStop
	}, func(bridge.Problem) {})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("read catalog: %w", err)
	}
	if !found {
		fmt.Fprintf(stderr, "no store record, product or variant with id %q\n", *id)
		return exitError{1}
	}
	issues = append(issues, feed.Validate(&prod, a.settingsAt(time.Now()))...)

	left, right := indentJSON(storeView(rec)), indentJSON(prod)
	where := ""
	if rec.Line > 0 {
		where = fmt.Sprintf(" (line %d)", rec.Line)
	}
	sideBySide(stdout, "STORE RECORD "+rec.Key+where, left, "MAPPED PRODUCT "+prod.ID, right, *width)
	fmt.Fprintf(stdout, "\nVALIDATION: %d issue(s)\n", len(issues))
	for _, is := range issues {
		fmt.Fprintf(stdout, "  %s\n", formatIssue(is))
	}
	entry := bridge.CatalogEntry{Product: prod, Issues: issues}
	if entry.Excluded() {
		fmt.Fprintln(stdout, "result: the product is LEFT OUT of the feeds")
	} else {
		fmt.Fprintf(stdout, "result: %d of %d variant(s) go into the feeds\n", len(entry.ValidVariants()), len(prod.Variants))
	}
	fmt.Fprintln(stdout, `(ids reused across products are found by "bridge feed validate", which reads the whole catalog)`)
	return nil
}

// indentJSON renders v for people: indented, and without the \u003e
// escapes encoding/json uses for HTML safety ("Apparel > Shirts").
func indentJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err.Error()
	}
	return strings.TrimRight(b.String(), "\n")
}

func hasVariant(p bridge.Product, id string) bool {
	for _, v := range p.Variants {
		if v.ID == id {
			return true
		}
	}
	return false
}

// storeView shows the product's fields once and, per variant, the fields
// whose values vary between variants (in a CSV every row repeats the
// product's columns).
func storeView(r bridge.Record) map[string]any {
	varying := map[string]bool{}
	for _, v := range r.Variants {
		for k, val := range v {
			if pv, ok := r.Product[k]; !ok || fmt.Sprint(pv) != fmt.Sprint(val) {
				varying[k] = true
			}
		}
	}
	variants := make([]map[string]any, len(r.Variants))
	for i, v := range r.Variants {
		variants[i] = map[string]any{}
		for k := range varying {
			variants[i][k] = v[k]
		}
	}
	return map[string]any{"product": r.Product, "variants (fields that vary)": variants}
}

// sideBySide prints two texts in two columns, wrapping long lines.
func sideBySide(w io.Writer, lt, left, rt, right string, width int) {
	col := max((width-3)/2, 20)
	l := wrap(strings.Split(left, "\n"), col)
	r := wrap(strings.Split(right, "\n"), col)
	fmt.Fprintf(w, "%s | %s\n%s-+-%s\n", pad(lt, col), rt, strings.Repeat("-", col), strings.Repeat("-", col))
	for i := 0; i < max(len(l), len(r)); i++ {
		var a, b string
		if i < len(l) {
			a = l[i]
		}
		if i < len(r) {
			b = r[i]
		}
		fmt.Fprintf(w, "%s | %s\n", pad(a, col), b)
	}
}

func wrap(lines []string, col int) []string {
	var out []string
	for _, ln := range lines {
		for utf8.RuneCountInString(ln) > col {
			rs := []rune(ln)
			out = append(out, string(rs[:col]))
			ln = "    " + string(rs[col:])
		}
		out = append(out, ln)
	}
	return out
}

func pad(s string, n int) string {
	if c := utf8.RuneCountInString(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}
