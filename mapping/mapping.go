// Package mapping turns store records into canonical product records with the
// field mapping a shop admin writes in YAML. Each adapter ships a default
// mapping; the admin's `mapping:` section in the config overrides single
// fields. A mapping is compiled once at load — every syntax error, unknown
// field or filter names the file and line — and then applied to every record
// without reparsing.
//
// A field is one of:
//
//	title: product.title                          # a path into the record
//	title: product.title | strip_html | truncate 150   # a path through filters
//	condition: '"new"'                            # a quoted constant
//	condition: {const: new}                       # the same, spelled out
//	title: '{{ .product.title }} ({{ .variant.color }})'  # a Go text/template
//
// Paths start with product., variant. or merchant.; filters are listed in
// filters.go and the README.
package mapping

import (
	"fmt"
	"sort"
	"strings"

	"github.com/acp-bridge/bridge"
	"gopkg.in/yaml.v3"
)

type kind int

const (
	kindText kind = iota
	kindMoney
	kindInt
	kindBool
	kindAvailability
	kindList
)

type fieldDef struct {
	name string
	kind kind
	doc  string
}

// productFields and variantFields are the mapping's targets: the canonical
// record's fields (see bridge.Product and bridge.Variant).
var productFields = []fieldDef{
	{"id", kindText, "stable product id (ACP Product.id, flat feeds' group_id)"},
	{"title", kindText, "product title"},
	{"description", kindText, "plain-text description"},
	{"description_html", kindText, "HTML description, kept for feeds that take it"},
	{"url", kindText, "product page URL"},
	{"brand", kindText, "brand"},
	{"category", kindText, "category path with > separators"},
	{"image", kindText, "main image URL"},
	{"images", kindList, "more image URLs"},
}

var variantFields = []fieldDef{
	{"id", kindText, "stable variant id: the item id agents buy (ACP Variant.id, flat feeds' item_id)"},
	{"sku", kindText, "SKU"},
	{"title", kindText, "variant title; empty → product title and option values"},
	{"description", kindText, "plain-text description; empty → the product's"},
	{"description_html", kindText, "HTML description; empty → the product's"},
	{"url", kindText, "variant page URL; empty → the product's"},
	{"gtin", kindText, "GTIN/UPC/EAN, 8–14 digits"},
	{"mpn", kindText, "manufacturer part number"},
	{"currency", kindText, "ISO 4217 code of the prices; empty → merchant.currency"},
	{"price", kindMoney, "price the buyer pays, a decimal such as 49.99"},
	{"list_price", kindMoney, "regular price when price is a sale price"},
	{"availability", kindAvailability, "in_stock, out_of_stock, backorder, preorder, limited_stock, discontinued"},
	{"availability_date", kindText, "ISO 8601 date a preorder ships"},
	{"quantity", kindInt, "stock on hand; empty → not tracked"},
	{"image", kindText, "variant image URL"},
	{"images", kindList, "more variant image URLs"},
	{"condition", kindText, "new, refurbished, used"},
	{"weight", kindText, "weight value"},
	{"weight_unit", kindText, "g, kg, oz, lb"},
	{"digital", kindBool, "delivered without shipping (default false)"},
	{"eligible_search", kindBool, "may agents show it"},
	{"eligible_checkout", kindBool, "may agents sell it in chat"},
	{"options", kindText, "a map of option name → expression (Color: variant.color)"},
}

// Source names where a mapping layer comes from, for error messages.
type Source struct {
	File string // "config.yaml", or "csv adapter default mapping"
	Node *yaml.Node
	// Builtin marks a layer the admin does not see as a file (an adapter's
	// default): its errors quote the expression instead of a line.
	Builtin bool
}

// origin says where a field's expression came from, for issue messages.
func (l Source) origin(n *yaml.Node) string {
	if l.Builtin {
		return fmt.Sprintf("%s: %q", l.File, n.Value)
	}
	return fmt.Sprintf("%s:%d", l.File, n.Line)
}

// field is one compiled target.
type field struct {
	def     fieldDef
	e       expr
	origin  string // "bridge.yaml:12", or a builtin layer's expression
	builtin bool
}

type option struct {
	name    string
	e       expr
	origin  string
	builtin bool
}

// Mapping is a compiled mapping, safe for concurrent use.
type Mapping struct {
	product  map[string]field
	variant  map[string]field
	options  []option
	merchant MerchantFields
}

// Compile merges the layers (later layers override earlier ones field by
// field; a field set to null or "" is removed) and compiles every field.
// merchant provides merchant.* values and the default currency.
func Compile(merchant MerchantFields, layers ...Source) (*Mapping, error) {
	m := &Mapping{product: map[string]field{}, variant: map[string]field{}, merchant: merchant}
	var problems bridge.Problems
	add := func(file string, line int, key, format string, args ...any) {
		problems = append(problems, bridge.Problem{File: file, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
	}
	for _, layer := range layers {
		n := layer.Node
		if n == nil || n.Kind == 0 {
			continue
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			n = n.Content[0]
		}
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			continue
		}
		if n.Kind != yaml.MappingNode {
			add(layer.File, n.Line, "mapping", "want a mapping with product: and variant: sections")
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch k.Value {
			case "product":
				m.compileSection(layer, "mapping.product", v, productFields, m.product, add)
			case "variant":
				m.compileSection(layer, "mapping.variant", v, variantFields, m.variant, add)
			default:
				add(layer.File, k.Line, "mapping."+k.Value, "unknown section (want product or variant)")
			}
		}
	}
	for _, req := range []struct {
		fields map[string]field
		name   string
	}{{m.product, "mapping.product.id"}, {m.variant, "mapping.variant.id"}, {m.variant, "mapping.variant.price"}} {
		key := req.name[strings.LastIndex(req.name, ".")+1:]
		if _, ok := req.fields[key]; !ok {
			add("", 0, req.name, "required: no layer of the mapping sets it")
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return m, nil
}

func (m *Mapping) compileSection(layer Source, prefix string, n *yaml.Node, defs []fieldDef, into map[string]field, add func(string, int, string, string, ...any)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		add(layer.File, n.Line, prefix, "want a mapping of field: expression")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + "." + k.Value
		def, ok := lookupDef(defs, k.Value)
		if !ok {
			add(layer.File, k.Line, key, "unknown field (fields: %s)", defNames(defs))
			continue
		}
		if def.name == "options" {
			m.compileOptions(layer, key, v, add)
			continue
		}
		if removed(v) {
			delete(into, def.name)
			continue
		}
		e, err := compileNode(v, m.merchant)
		if err != nil {
			add(layer.File, v.Line, key, "%v", err)
			continue
		}
		into[def.name] = field{def: def, e: e, origin: layer.origin(v), builtin: layer.Builtin}
	}
}

// compileOptions replaces the option list as a whole: options are one
// setting, and merging two lists of colours and sizes would surprise.
func (m *Mapping) compileOptions(layer Source, key string, n *yaml.Node, add func(string, int, string, string, ...any)) {
	m.options = nil
	if removed(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		add(layer.File, n.Line, key, "want a mapping of option name: expression, such as Color: variant.color")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		e, err := compileNode(v, m.merchant)
		if err != nil {
			add(layer.File, v.Line, key+"."+k.Value, "%v", err)
			continue
		}
		m.options = append(m.options, option{name: k.Value, e: e, origin: layer.origin(v), builtin: layer.Builtin})
	}
}

func removed(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "")
}

func compileNode(n *yaml.Node, merchant MerchantFields) (expr, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" {
			// An unquoted 5 or true is a constant, not a path.
			return constExpr{n.Value}, nil
		}
		return compileExpr(n.Value, merchant)
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return nil, fmt.Errorf("want exactly one key: const, template or value")
		}
		k, v := n.Content[0], n.Content[1]
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: want a single value", k.Value)
		}
		switch k.Value {
		case "const":
			return constExpr{v.Value}, nil
		case "template":
			return compileTemplate(v.Value, merchant)
		case "value":
			return compileExpr(v.Value, merchant)
		}
		return nil, fmt.Errorf("unknown form %q (want const:, template: or value:)", k.Value)
	}
	return nil, fmt.Errorf("want an expression, such as variant.sku")
}

func lookupDef(defs []fieldDef, name string) (fieldDef, bool) {
	for _, d := range defs {
		if d.name == name {
			return d, true
		}
	}
	return fieldDef{}, false
}

func defNames(defs []fieldDef) string {
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.name
	}
	return strings.Join(names, ", ")
}

func filterNames() string {
	names := make([]string, 0, len(filters))
	for n := range filters {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// PathUse is one record path an admin's mapping field reads.
type PathUse struct {
	Field  string // "mapping.product.title"
	Path   string // "product.titel"
	Origin string // "bridge.yaml:12"
}

// MissingPaths lists the paths of the admin's own fields (not a builtin
// layer's) whose first key the record lacks: in a CSV every row has every
// column, so such a path is a typo or a column the export does not have,
// and the field would silently read as empty.
func (m *Mapping) MissingPaths(rec bridge.Record) []PathUse {
	var out []PathUse
	check := func(name, origin string, e expr) {
		for _, p := range paths(e) {
			var fields map[string]any
			switch p.root {
			case "product":
				fields = rec.Product
			case "variant":
				if len(rec.Variants) > 0 {
					fields = rec.Variants[0]
				}
			default:
				continue
			}
			if _, ok := fields[p.keys[0]]; !ok {
				out = append(out, PathUse{Field: name, Path: p.root + "." + strings.Join(p.keys, "."), Origin: origin})
			}
		}
	}
	for _, sec := range []struct {
		name   string
		fields map[string]field
		defs   []fieldDef
	}{{"product", m.product, productFields}, {"variant", m.variant, variantFields}} {
		for _, d := range sec.defs { // in definition order, for stable output
			if f, ok := sec.fields[d.name]; ok && !f.builtin {
				check("mapping."+sec.name+"."+d.name, f.origin, f.e)
			}
		}
	}
	for _, o := range m.options {
		if !o.builtin {
			check("mapping.variant.options."+o.name, o.origin, o.e)
		}
	}
	return out
}

// paths lists the record paths an expression reads (templates excluded:
// they report a missing key themselves).
func paths(e expr) []pathExpr {
	switch x := e.(type) {
	case pathExpr:
		return []pathExpr{x}
	case pipeExpr:
		out := paths(x.src)
		for _, s := range x.steps {
			for _, a := range s.args {
				out = append(out, paths(a)...)
			}
		}
		return out
	}
	return nil
}
