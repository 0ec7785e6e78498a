package mapping

import (
	"testing"

	"github.com/acp-bridge/bridge"
	"gopkg.in/yaml.v3"
)

// FuzzMapping feeds arbitrary mapping text and record values through Compile
// and Apply: a mapping the admin typed may be rejected, never crash the
// bridge, and whatever compiles must map any record without panicking.
func FuzzMapping(f *testing.F) {
	f.Add("product:\n  id: product.id\nvariant:\n  id: variant.sku\n  price: variant.price | money\n", "49.99", "<b>x</b>")
	f.Add("product:\n  id: '{{ .product.id | truncate 3 }}'\nvariant:\n  id: variant.sku\n  price: variant.price\n  options:\n    Size: variant.size | upper\n", "1,5", "")
	f.Add("product:\n  id: product.x | default \"a\"\nvariant:\n  id: '{{ index .variant \"sku\" }}'\n  price: '\"1\"'\n  quantity: variant.q\n", "abc", "&amp;")
	f.Add("variant:\n  availability: variant.q | availability \"backorder\"\n", "-1", "<script>")
	f.Fuzz(func(t *testing.T, src, price, text string) {
		var n yaml.Node
		if yaml.Unmarshal([]byte(src), &n) != nil {
			return
		}
		m, err := Compile(shop, Source{File: "fuzz", Node: &n})
		if err != nil {
			return
		}
		rec := bridge.Record{Key: "k", Product: map[string]any{"id": text, "x": "", "title": text},
			Variants: []map[string]any{{"sku": "s1", "price": price, "q": price, "size": text}, {"sku": text, "price": text}}}
		p, issues := m.Apply(rec)
		if len(p.Variants) != 2 {
			t.Fatalf("variants lost: %d", len(p.Variants))
		}
		for _, is := range issues {
			if is.Severity != bridge.SeverityError || is.Field == "" || is.Message == "" {
				t.Fatalf("malformed issue %+v", is)
			}
		}
	})
}
