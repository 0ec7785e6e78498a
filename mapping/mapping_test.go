package mapping

import (
	"strings"
	"testing"

	"github.com/acp-bridge/bridge"
	"gopkg.in/yaml.v3"
)

var shop = MerchantFields{Name: "Demo Shop", URL: "https://shop.example", Currency: "USD", Country: "US"}

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return &n
}

func evalOne(t *testing.T, src string, env *Env) (any, error) {
	t.Helper()
	e, err := compileExpr(src, env.Merchant)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return e.eval(env)
}

func TestFilters(t *testing.T) {
	env := &Env{
		Product: map[string]any{
			"title": "Classic Tee", "html": "<p>Soft <b>cotton</b> tee.</p><script>alert(1)</script><ul><li>Red</li><li>Blue</li></ul> &amp; more",
			"tags": []any{"a", "b", "", "c"}, "empty": "", "long": "The quick brown fox jumps over the lazy dog",
			"nested": map[string]any{"list": []any{map[string]any{"src": "https://img/1.jpg"}}},
		},
		Variant:  map[string]any{"price": "49.9", "qty": "3", "zero": "0", "neg": "-2", "status": "onbackorder", "yen": "1500", "csv": "x, y|z"},
		Merchant: shop,
	}
	tests := []struct {
		expr    string
		want    any
		wantErr string
	}{
		{`product.title`, "Classic Tee", ""},
		{`product.missing`, nil, ""},
		{`product.nested.list.0.src`, "https://img/1.jpg", ""},
		{`product.nested.list.5.src`, nil, ""},
		{`"new"`, "new", ""},
		{`'used'`, "used", ""},
		{`variant.price | money`, "49.90", ""},
		{`variant.yen | money "JPY"`, "1500", ""},
		{`variant.yen | money JPY`, "1500", ""},
		{`variant.neg | availability backorder`, "backorder", ""},
		{`variant.price | money "JPY"`, nil, "more than 0 decimal places"},
		{`product.title | money`, nil, "not a decimal"},
		{`product.html | strip_html`, "Soft cotton tee. Red Blue & more", ""},
		{`product.long | truncate 20`, "The quick brown fox…", ""},
		{`product.title | truncate 50`, "Classic Tee", ""},
		{`product.tags | join`, "a, b, c", ""},
		{`product.tags | join " / "`, "a / b / c", ""},
		{`variant.csv | split | join ";"`, "x;y;z", ""},
		{`product.title | lower`, "classic tee", ""},
		{`product.title | upper`, "CLASSIC TEE", ""},
		{`product.empty | default "n/a"`, "n/a", ""},
		{`product.empty | default product.title`, "Classic Tee", ""},
		{`product.title | default "x"`, "Classic Tee", ""},
		{`variant.qty | availability`, "in_stock", ""},
		{`variant.zero | availability`, "out_of_stock", ""},
		{`variant.neg | availability "backorder"`, "backorder", ""},
		{`product.empty | availability`, "in_stock", ""},
		{`variant.status | availability`, "backorder", ""},
		{`product.title | availability`, nil, "not a known stock state"},
		{`merchant.currency`, "USD", ""},
		{`{{ .product.title }} / {{ .variant.price | money }}`, "Classic Tee / 49.90", ""},
		{`{{ .product.long | truncate 9 }}`, "The quic…", ""},
		{`{{ .variant.nope }}`, nil, "nope"},
		{`{{ truncate "x" .product.title }}`, nil, "whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := evalOne(t, tt.expr, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`title`, `a path starts with product., variant. or merchant.`},
		{`product`, `name a field`},
		{`product..x`, `empty name`},
		{`merchant.secret`, `merchant fields are`},
		{`product.title | shout`, `unknown filter "shout"`},
		{`product.title | truncate`, `truncate takes 1 argument`},
		{`product.title | truncate ten`, `positive whole number`},
		{`product.title | truncate -3`, `positive whole number`},
		{`product.title | lower 3`, `lower takes no argument`},
		{`product.brand | default merchant_name`, `a path starts with product., variant. or merchant.`},
		{`product.title |`, `empty filter`},
		{`"unclosed`, `unclosed quote`},
		{`product.a product.b`, `one path`},
		{`{{ .product.title `, `unclosed action`},
		{`{{ .product.title | nosuch }}`, `"nosuch" not defined`},
	}
	for _, tt := range tests {
		if _, err := compileExpr(tt.expr, shop); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("compileExpr(%q) error = %v, want %q", tt.expr, err, tt.want)
		}
	}
}

const baseMapping = `product:
  id: product.group
  title: product.title
  description: product.body | strip_html
  url: product.url
  brand: product.vendor
  image: product.image
variant:
  id: variant.sku
  price: variant.price
  list_price: variant.compare_at
  quantity: variant.qty
  availability: variant.qty | availability
  options:
    Color: variant.color
    Size: variant.size
`

func TestCompileLayersAndLines(t *testing.T) {
	override := node(t, `# admin overrides
product:
  brand: '"House Brand"'
  titel: product.title
variant:
  price: variant.price | nosuch
  options:
    Colour: variant.color
`)
	_, err := Compile(shop, Source{File: "csv default", Node: node(t, baseMapping)}, Source{File: "bridge.yaml", Node: override})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"bridge.yaml:4: mapping.product.titel: unknown field",
		"bridge.yaml:6: mapping.variant.price: unknown filter \"nosuch\"",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	if _, err := Compile(shop, Source{File: "x", Node: node(t, "variant:\n  id: variant.sku\n")}); err == nil || !strings.Contains(err.Error(), "mapping.product.id: required") {
		t.Errorf("missing required field error, got %v", err)
	}
	if _, err := Compile(shop, Source{File: "x.yaml", Node: node(t, "product:\n  title: '{{ .product.title'\n")}); err == nil || !strings.Contains(err.Error(), "x.yaml:2: mapping.product.title:") {
		t.Errorf("malformed template must be a load error with its line, got %v", err)
	}
}

func TestApply(t *testing.T) {
	override := node(t, `product:
  brand: {const: House Brand}
variant:
  condition: '"new"'
  list_price: ~
  options:
    Colour: variant.color
`)
	m, err := Compile(shop, Source{File: "default", Node: node(t, baseMapping)}, Source{File: "bridge.yaml", Node: override})
	if err != nil {
		t.Fatal(err)
	}
	rec := bridge.Record{
		Key:     "tee",
		Product: map[string]any{"group": "tee", "title": "Classic Tee", "body": "<p>Soft</p>", "url": "https://shop.example/tee", "vendor": "Acme", "image": "https://shop.example/tee.jpg"},
		Variants: []map[string]any{
			{"sku": "tee-r", "price": "19.99", "compare_at": "24.99", "qty": "5", "color": "Red"},
			{"sku": "tee-b", "price": "19.5", "qty": "", "color": "Blue"},
			{"sku": "tee-x", "price": "abc", "qty": "1.5", "color": ""},
		},
	}
	p, issues := m.Apply(rec)
	if p.ID != "tee" || p.Brand != "House Brand" || p.Description.Plain != "Soft" || len(p.Media) != 1 {
		t.Errorf("product = %+v", p)
	}
	if len(p.Variants) != 3 {
		t.Fatalf("variants = %d", len(p.Variants))
	}
	r, b := p.Variants[0], p.Variants[1]
	if r.Price != (bridge.Money{Amount: 1999, Currency: "USD"}) || r.ListPrice != nil {
		t.Errorf("red price = %+v list %+v (list_price removed by override)", r.Price, r.ListPrice)
	}
	if r.Quantity == nil || *r.Quantity != 5 || r.Availability != bridge.InStock {
		t.Errorf("red stock = %v %s", r.Quantity, r.Availability)
	}
	if b.Quantity != nil || b.Availability != bridge.InStock {
		t.Errorf("blue stock must be untracked and in stock, got %v %s", b.Quantity, b.Availability)
	}
	if r.Title != "Classic Tee - Red" || r.Condition != "new" || r.URL != "https://shop.example/tee" || r.Description.Plain != "Soft" {
		t.Errorf("red = %+v", r)
	}
	if len(r.Options) != 1 || r.Options[0] != (bridge.Option{Name: "Colour", Value: "Red"}) {
		t.Errorf("options replaced as a whole: %+v", r.Options)
	}
	if !r.EligibleSearch || r.EligibleCheckout {
		t.Errorf("eligibility defaults: search %v checkout %v", r.EligibleSearch, r.EligibleCheckout)
	}
	var fields []string
	for _, is := range issues {
		if is.VariantID != "tee-x" || is.Severity != bridge.SeverityError {
			t.Errorf("unexpected issue %+v", is)
		}
		fields = append(fields, is.Field)
	}
	if strings.Join(fields, ",") != "price,quantity" {
		t.Errorf("issue fields = %v, want price,quantity", fields)
	}
	if !strings.Contains(issues[0].Message, "(mapping default:10)") {
		t.Errorf("issue must cite the mapping line: %q", issues[0].Message)
	}
}

func TestTruncateRunes(t *testing.T) {
	if got := Truncate("ééééé", 3); got != "éé…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate("abc", 0); got != "" {
		t.Errorf("Truncate 0 = %q", got)
	}
}

func BenchmarkApply(b *testing.B) {
	m, err := Compile(shop, Source{File: "default", Node: func() *yaml.Node {
		var n yaml.Node
		_ = yaml.Unmarshal([]byte(baseMapping), &n)
		return &n
	}()})
	if err != nil {
		b.Fatal(err)
	}
	rec := bridge.Record{Key: "tee", Product: map[string]any{"group": "tee", "title": "Classic Tee", "body": "<p>Soft <b>cotton</b> tee in many colours, machine washable.</p>", "url": "https://shop.example/tee", "vendor": "Acme", "image": "https://shop.example/tee.jpg"},
		Variants: []map[string]any{
			{"sku": "tee-r", "price": "19.99", "compare_at": "24.99", "qty": "5", "color": "Red", "size": "S"},
			{"sku": "tee-b", "price": "19.99", "qty": "0", "color": "Blue", "size": "M"},
			{"sku": "tee-g", "price": "19.99", "qty": "3", "color": "Green", "size": "L"},
		}}
	b.ReportAllocs()
	for b.Loop() {
		m.Apply(rec)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*3), "ns/variant")
}

func TestIssueOrigins(t *testing.T) {
	m, err := Compile(shop,
		Source{File: "csv adapter default mapping", Node: node(t, baseMapping), Builtin: true},
		Source{File: "bridge.yaml", Node: node(t, "product:\n  title: '{{ .product.titel }}'\n")})
	if err != nil {
		t.Fatal(err)
	}
	rec := bridge.Record{Key: "tee", Product: map[string]any{"group": "tee", "title": "Tee"},
		Variants: []map[string]any{{"sku": "t1", "price": "abc"}}}
	_, issues := m.Apply(rec)
	var msgs []string
	for _, is := range issues {
		msgs = append(msgs, is.Field+": "+is.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		`title: template: the store record has no field "titel" (mapping bridge.yaml:2)`,
		`price: price "abc" is not a decimal number (mapping csv adapter default mapping: "variant.price")`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func TestDigitalFlag(t *testing.T) {
	rec := bridge.Record{Key: "gift", Product: map[string]any{"group": "gift", "title": "Gift card"},
		Variants: []map[string]any{
			{"sku": "g1", "price": "25", "kind": "digital", "dl": "yes"},
			{"sku": "g2", "price": "50", "kind": "physical", "dl": ""},
			{"sku": "g3", "price": "75", "kind": "", "dl": "maybe"},
		}}
	// Without a mapping for it, nothing is digital.
	m, err := Compile(shop, Source{File: "default", Node: node(t, baseMapping)})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.Apply(rec)
	for _, v := range p.Variants {
		if v.Digital {
			t.Errorf("%s: digital without a mapping", v.ID)
		}
	}
	m, err = Compile(shop, Source{File: "default", Node: node(t, baseMapping)},
		Source{File: "bridge.yaml", Node: node(t, "variant:\n  digital: variant.dl\n")})
	if err != nil {
		t.Fatal(err)
	}
	p, issues := m.Apply(rec)
	if got := []bool{p.Variants[0].Digital, p.Variants[1].Digital, p.Variants[2].Digital}; got[0] != true || got[1] || got[2] {
		t.Errorf("digital = %v, want [true false false]", got)
	}
	if len(issues) != 1 || issues[0].VariantID != "g3" || issues[0].Field != "digital" || !strings.Contains(issues[0].Message, `"maybe" is not true or false`) {
		t.Errorf("issues = %+v", issues)
	}
	// A template works too.
	m, err = Compile(shop, Source{File: "default", Node: node(t, baseMapping)},
		Source{File: "bridge.yaml", Node: node(t, "variant:\n  digital: '{{ eq .variant.kind \"digital\" }}'\n")})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := m.Apply(rec); !p.Variants[0].Digital || p.Variants[1].Digital {
		t.Errorf("template digital = %v %v", p.Variants[0].Digital, p.Variants[1].Digital)
	}
}
