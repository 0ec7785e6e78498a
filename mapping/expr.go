package mapping

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Env is what an expression sees: the store record's product fields, the
// current variant's fields, and the merchant settings.
type Env struct {
	Product  map[string]any
	Variant  map[string]any
	Merchant MerchantFields
	// data is the same as a template sees it, built once per variant.
	data map[string]any
}

// MerchantFields are the merchant settings expressions may read as
// merchant.<name>.
type MerchantFields struct {
	Name, URL, Currency, Country string
}

func (m MerchantFields) get(key string) (any, bool) {
	switch key {
	case "name":
		return m.Name, true
	case "url":
		return m.URL, true
	case "currency":
		return m.Currency, true
	case "country":
		return m.Country, true
	}
	return nil, false
}

// expr is a compiled field expression.
type expr interface {
	eval(env *Env) (any, error)
}

// constExpr is a constant.
type constExpr struct{ v any }

func (c constExpr) eval(*Env) (any, error) { return c.v, nil }

// pathExpr reads product.a.b, variant.x or merchant.name. A missing key reads
// as empty: stores omit empty fields, and required fields are caught by
// validation with a clearer message than "no such key".
type pathExpr struct {
	root string
	keys []string
}

func (p pathExpr) eval(env *Env) (any, error) {
	var cur any
	switch p.root {
	case "product":
		cur = env.Product
	case "variant":
		cur = env.Variant
	case "merchant":
		v, _ := env.Merchant.get(p.keys[0])
		return v, nil
	}
	for _, k := range p.keys {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, nil
			}
			cur = c[i]
		default:
			return nil, nil
		}
	}
	return cur, nil
}

// pipeExpr is a source followed by filters: "product.body | strip_html | truncate 5000".
type pipeExpr struct {
	src   expr
	steps []step
}

type step struct {
	f    filter
	args []expr
}

func (p pipeExpr) eval(env *Env) (any, error) {
	v, err := p.src.eval(env)
	if err != nil {
		return nil, err
	}
	for _, s := range p.steps {
		args := make([]any, len(s.args))
		for i, a := range s.args {
			if args[i], err = a.eval(env); err != nil {
				return nil, err
			}
		}
		if v, err = s.f.fn(env, v, args); err != nil {
			if strings.HasPrefix(err.Error(), s.f.name) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", s.f.name, err)
		}
	}
	return v, nil
}

// templateExpr runs a Go text/template; it is the escape hatch for values
// built from several fields. Slower than a pipe, so defaults avoid it.
type templateExpr struct{ t *template.Template }

func (t templateExpr) eval(env *Env) (out any, err error) {
	defer func() {
		// text/template recovers panics of funcs; this guards the rest so a
		// bad record can never take the sync down.
		if r := recover(); r != nil {
			err = fmt.Errorf("template: %v", r)
		}
	}()
	if env.data == nil {
		m := map[string]any{"name": env.Merchant.Name, "url": env.Merchant.URL, "currency": env.Merchant.Currency, "country": env.Merchant.Country}
		env.data = map[string]any{"product": env.Product, "variant": env.Variant, "merchant": m}
	}
	var b strings.Builder
	if err := t.t.Execute(&b, env.data); err != nil {
		return nil, templateError(err)
	}
	return strings.TrimSpace(b.String()), nil
}

// compileExpr parses the shorthand string form of a field.
func compileExpr(src string, m MerchantFields) (expr, error) {
	if strings.Contains(src, "{{") {
		return compileTemplate(src, m)
	}
	segs, err := splitPipes(src)
	if err != nil {
		return nil, err
	}
	toks, err := tokenize(segs[0])
	if err != nil {
		return nil, err
	}
	if len(toks) != 1 {
		return nil, fmt.Errorf("%q: a value is one path (variant.sku) or one quoted constant (\"new\"); use | to add filters", segs[0])
	}
	head, err := operand(toks[0])
	if err != nil {
		return nil, err
	}
	if len(segs) == 1 {
		return head, nil
	}
	p := pipeExpr{src: head}
	for _, seg := range segs[1:] {
		toks, err := tokenize(seg)
		if err != nil {
			return nil, err
		}
		if len(toks) == 0 {
			return nil, fmt.Errorf("empty filter after |")
		}
		f, ok := filters[toks[0].text]
		if !ok || toks[0].quoted {
			return nil, fmt.Errorf("unknown filter %q (filters: %s)", toks[0].text, filterNames())
		}
		n := len(toks) - 1
		if n < f.minArgs || n > f.maxArgs {
			return nil, fmt.Errorf("filter %s takes %s, got %d", f.name, argCount(f), n)
		}
		s := step{f: f}
		for i, t := range toks[1:] {
			if i == f.intArg {
				v, err := strconv.Atoi(t.text)
				if err != nil || t.quoted || v <= 0 {
					return nil, fmt.Errorf("filter %s needs a positive whole number, got %q", f.name, t.text)
				}
				s.args = append(s.args, constExpr{v})
				continue
			}
			// For keyword filters an argument without a dot is a word, not
			// a path: money EUR, availability backorder, join /.
			if f.words && !t.quoted && !strings.Contains(t.text, ".") {
				s.args = append(s.args, constExpr{t.text})
				continue
			}
			a, err := operand(t)
			if err != nil {
				return nil, err
			}
			s.args = append(s.args, a)
		}
		p.steps = append(p.steps, s)
	}
	return p, nil
}

func argCount(f filter) string {
	switch {
	case f.maxArgs == 0:
		return "no argument"
	case f.minArgs == f.maxArgs:
		return fmt.Sprintf("%d argument(s)", f.minArgs)
	default:
		return fmt.Sprintf("%d to %d arguments", f.minArgs, f.maxArgs)
	}
}

type token struct {
	text   string
	quoted bool
}

// operand is a quoted constant, a number, true/false, or a path.
func operand(t token) (expr, error) {
	if t.quoted {
		return constExpr{t.text}, nil
	}
	if _, err := strconv.ParseFloat(t.text, 64); err == nil {
		return constExpr{t.text}, nil
	}
	if t.text == "true" || t.text == "false" {
		return constExpr{t.text}, nil
	}
	return compilePath(t.text)
}

func compilePath(s string) (expr, error) {
	parts := strings.Split(s, ".")
	root := parts[0]
	if root != "product" && root != "variant" && root != "merchant" {
		return nil, fmt.Errorf("%q: a path starts with product., variant. or merchant. (write a constant in quotes: '\"%s\"')", s, s)
	}
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q: name a field, as in %s.title", s, root)
	}
	for _, p := range parts[1:] {
		if p == "" {
			return nil, fmt.Errorf("%q: empty name between dots", s)
		}
	}
	if root == "merchant" {
		if _, ok := (MerchantFields{}).get(parts[1]); !ok || len(parts) > 2 {
			return nil, fmt.Errorf("%q: merchant fields are name, url, currency, country", s)
		}
	}
	return pathExpr{root: root, keys: parts[1:]}, nil
}

// splitPipes splits on | outside quotes.
func splitPipes(s string) ([]string, error) {
	var segs []string
	var cur strings.Builder
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
			cur.WriteRune(r)
		case r == '|':
			segs = append(segs, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	return append(segs, cur.String()), nil
}

// tokenize splits a segment on spaces, keeping quoted strings whole.
func tokenize(s string) ([]token, error) {
	var toks []token
	s = strings.TrimSpace(s)
	for s != "" {
		if s[0] == '"' || s[0] == '\'' {
			q := s[0]
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return nil, fmt.Errorf("unclosed quote in %q", s)
			}
			toks = append(toks, token{text: s[1 : end+1], quoted: true})
			s = strings.TrimSpace(s[end+2:])
			continue
		}
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			end = len(s)
		}
		toks = append(toks, token{text: s[:end]})
		s = strings.TrimSpace(s[end:])
	}
	return toks, nil
}

func compileTemplate(src string, m MerchantFields) (expr, error) {
	funcs := template.FuncMap{}
	for name, f := range filters {
		funcs[name] = templateFunc(f, m)
	}
	t, err := template.New("field").Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template: %s", templatePrefix.ReplaceAllString(err.Error(), ""))
	}
	return templateExpr{t}, nil
}

// templateFunc adapts a filter to text/template, where the piped value comes
// last: {{ .product.title | truncate 150 }} calls truncate(150, title).
func templateFunc(f filter, m MerchantFields) func(args ...any) (any, error) {
	env := &Env{Merchant: m}
	return func(args ...any) (any, error) {
		if len(args) == 0 {
			return nil, fmt.Errorf("%s needs a value", f.name)
		}
		in, rest := args[len(args)-1], args[:len(args)-1]
		if len(rest) < f.minArgs || len(rest) > f.maxArgs {
			return nil, fmt.Errorf("%s takes %s, got %d", f.name, argCount(f), len(rest))
		}
		if f.intArg >= 0 && f.intArg < len(rest) {
			if _, ok := rest[f.intArg].(int); !ok {
				return nil, fmt.Errorf("%s needs a whole number", f.name)
			}
		}
		return f.fn(env, in, rest)
	}
}

// templatePrefix is text/template's position prefix ("template: field:1:11:
// executing "field" at <.product.titel>: "), noise to a shop admin.
var templatePrefix = regexp.MustCompile(`^template: field:\d+(:\d+)?: (executing "field" at <[^>]*>: )?`)

var missingKey = regexp.MustCompile(`map has no entry for key "([^"]*)"`)

// templateError rewrites text/template's errors for a shop admin.
func templateError(err error) error {
	if m := missingKey.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("template: the store record has no field %q", m[1])
	}
	return fmt.Errorf("template: %s", templatePrefix.ReplaceAllString(err.Error(), ""))
}
