package mapping

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/acp-bridge/bridge"
)

// Apply maps one store record to a canonical product. Fields whose
// expression fails (a price that is not a number, a template naming a
// missing key) come back as error issues naming the field and the mapping
// line; the rest of the record is still mapped, so a report can show
// everything wrong at once.
func (m *Mapping) Apply(rec bridge.Record) (bridge.Product, []bridge.Issue) {
	var issues []bridge.Issue
	fail := func(variantID string, f field, err error) {
		issues = append(issues, bridge.Issue{Severity: bridge.SeverityError, VariantID: variantID, Field: f.def.name,
			Message: err.Error() + " (mapping " + f.origin + ")"})
	}

	env := &Env{Product: rec.Product, Merchant: m.merchant}
	if len(rec.Variants) > 0 {
		env.Variant = rec.Variants[0]
	}
	var p bridge.Product
	text := func(fields map[string]field, name, variantID string) string {
		f, ok := fields[name]
		if !ok {
			return ""
		}
		v, err := f.e.eval(env)
		if err != nil {
			fail(variantID, f, err)
			return ""
		}
		return strings.TrimSpace(toString(v))
	}
	list := func(fields map[string]field, name, variantID string) []string {
		f, ok := fields[name]
		if !ok {
			return nil
		}
		v, err := f.e.eval(env)
		if err != nil {
			fail(variantID, f, err)
			return nil
		}
		l, _ := splitFilter(env, v, nil)
		out := make([]string, 0, len(l.([]any)))
		for _, x := range l.([]any) {
			out = append(out, toString(x))
		}
		return out
	}

	p.ID = text(m.product, "id", "")
	p.Title = text(m.product, "title", "")
	p.Description = bridge.Description{Plain: text(m.product, "description", ""), HTML: text(m.product, "description_html", "")}
	p.URL = text(m.product, "url", "")
	p.Brand = text(m.product, "brand", "")
	p.Category = text(m.product, "category", "")
	p.Media = media(text(m.product, "image", ""), list(m.product, "images", ""))

	p.Variants = make([]bridge.Variant, 0, len(rec.Variants))
	for _, vm := range rec.Variants {
		env.Variant, env.data = vm, nil
		var v bridge.Variant
		v.ID = text(m.variant, "id", "")
		id := v.ID
		v.SKU = text(m.variant, "sku", id)
		v.GTIN = text(m.variant, "gtin", id)
		v.MPN = text(m.variant, "mpn", id)
		v.URL = text(m.variant, "url", id)
		v.Description = bridge.Description{Plain: text(m.variant, "description", id), HTML: text(m.variant, "description_html", id)}
		v.AvailabilityDate = text(m.variant, "availability_date", id)
		v.Condition = text(m.variant, "condition", id)
		v.Weight = text(m.variant, "weight", id)
		v.WeightUnit = text(m.variant, "weight_unit", id)
		v.Media = media(text(m.variant, "image", id), list(m.variant, "images", id))
		for _, o := range m.options {
			val, err := o.e.eval(env)
			if err != nil {
				fail(id, field{def: fieldDef{name: "options." + o.name}, origin: o.origin}, err)
				continue
			}
			if s := strings.TrimSpace(toString(val)); s != "" {
				v.Options = append(v.Options, bridge.Option{Name: o.name, Value: s})
			}
		}
		v.Title = text(m.variant, "title", id)
		if v.Title == "" {
			v.Title = variantTitle(p.Title, v.Options)
		}
		if v.URL == "" {
			v.URL = p.URL
		}
		if v.Description.IsZero() {
			v.Description = p.Description
		}

		cur := text(m.variant, "currency", id)
		if cur == "" {
			cur = m.merchant.Currency
		}
		if f, ok := m.variant["price"]; ok {
			if s := text(m.variant, "price", id); s == "" {
				fail(id, f, fmt.Errorf("price is empty"))
			} else if mon, err := bridge.ParseMoney(s, cur); err != nil {
				fail(id, f, err)
			} else {
				v.Price = mon
			}
		}
		if f, ok := m.variant["list_price"]; ok {
			if s := text(m.variant, "list_price", id); s != "" {
				if mon, err := bridge.ParseMoney(s, cur); err != nil {
					fail(id, f, err)
				} else {
					v.ListPrice = &mon
				}
			}
		}
		v.Availability = bridge.InStock
		if f, ok := m.variant["availability"]; ok {
			if s := text(m.variant, "availability", id); s != "" {
				if a, err := ParseAvailability(s); err != nil {
					fail(id, f, err)
				} else {
					v.Availability = a
				}
			}
		}
		if f, ok := m.variant["quantity"]; ok {
			if s := text(m.variant, "quantity", id); s != "" {
				if q, err := parseQuantity(s); err != nil {
					fail(id, f, err)
				} else {
					v.Quantity = &q
				}
			}
		}
		v.EligibleSearch = m.flag("eligible_search", id, true, text, fail)
		v.EligibleCheckout = m.flag("eligible_checkout", id, false, text, fail)
		v.Digital = m.flag("digital", id, false, text, fail)
		p.Variants = append(p.Variants, v)
	}
	return p, issues
}

func (m *Mapping) flag(name, id string, def bool, text func(map[string]field, string, string) string, fail func(string, field, error)) bool {
	f, ok := m.variant[name]
	if !ok {
		return def
	}
	s := text(m.variant, name, id)
	if s == "" {
		return def
	}
	b, err := parseBool(s)
	if err != nil {
		fail(id, f, err)
		return def
	}
	return b
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "1", "on":
		return true, nil
	case "false", "no", "n", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}

func parseQuantity(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e15 {
		return 0, fmt.Errorf("quantity %q is not a whole number", s)
	}
	return int64(f), nil
}

func media(first string, more []string) []bridge.Media {
	var out []bridge.Media
	addURL := func(u string) {
		if u == "" || slices.ContainsFunc(out, func(m bridge.Media) bool { return m.URL == u }) {
			return
		}
		out = append(out, bridge.Media{Type: "image", URL: u})
	}
	addURL(first)
	for _, u := range more {
		addURL(u)
	}
	return out
}

// maxTitle is the feeds' title limit, in characters.
const maxTitle = 150

// variantTitle names a variant by its product and options, the way stores
// show it: "Classic Tee - Red / S".
func variantTitle(product string, opts []bridge.Option) string {
	if len(opts) == 0 {
		return product
	}
	vals := make([]string, len(opts))
	for i, o := range opts {
		vals[i] = o.Value
	}
	// Feeds allow 150 characters; a product title already cut to 150
	// must not overflow once the options are added.
	return Truncate(product+" - "+strings.Join(vals, " / "), maxTitle)
}
