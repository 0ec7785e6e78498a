package feed

import (
	"io"
	"strconv"
	"strings"

	bridge "github.com/acp-bridge/bridge"
)

// flatKind is the file syntax of an OpenAI flat (G2) feed.
type flatKind int

const (
	flatJSONL flatKind = iota
	flatCSV
	flatTSV
)

// g2Columns is the header of the CSV and TSV files and the key order of the
// JSONL rows: OpenAI's flat file-upload field names (docs/product-feed.md §1a).
var g2Columns = []string{
	"is_eligible_search", "is_eligible_checkout", "item_id", "title", "description", "url",
	"brand", "gtin", "mpn", "condition", "product_category", "image_url", "additional_image_urls",
	"price", "sale_price", "availability", "availability_date", "group_id", "listing_has_variations",
	"variant_dict", "item_group_title", "color", "size", "weight", "item_weight_unit", "seller_name", "seller_url",
	"seller_privacy_policy", "seller_tos", "return_policy", "return_deadline_in_days",
	"target_countries", "store_country",
}

// flatWriter writes OpenAI's flat feed, one row per valid variant.
//
// In JSONL, booleans are JSON booleans, target_countries is a JSON array,
// variant_dict a JSON object, and empty optional fields are left out. In CSV
// and TSV every row has every column of g2Columns: booleans are "true" or
// "false", variant_dict is its JSON text, lists (additional_image_urls,
// target_countries) are comma-separated. CSV is quoted like encoding/csv;
// TSV cannot quote, so tabs and line breaks inside values become spaces.
type flatWriter struct {
	out
	kind flatKind
	row  flatRow
	// The merchant fields end every row and are the same on all: encoded
	// once, in the file's syntax, with the row's end.
	tail []byte
	// pdesc is the product's description, encoded once for its variants:
	// it is the longest field, repeated on every variant row.
	pdesc []byte
}

func newFlatWriter(w io.Writer, s Settings, kind flatKind) *flatWriter {
	fw := &flatWriter{out: newOut(w, true), kind: kind}
	m := &s.Merchant
	returnDays := ""
	if m.ReturnWindowDays > 0 {
		returnDays = strconv.Itoa(m.ReturnWindowDays)
	}

	switch kind {
	case flatJSONL:
		t := appendOptString(nil, `,"seller_name":`, m.Name)
		t = appendOptString(t, `,"seller_url":`, m.URL)
		t = appendOptString(t, `,"seller_privacy_policy":`, m.PrivacyPolicyURL)
		t = appendOptString(t, `,"seller_tos":`, m.TermsURL)
		t = appendOptString(t, `,"return_policy":`, m.ReturnPolicyURL)
		if returnDays != "" {
			t = append(t, `,"return_deadline_in_days":`...)
			t = append(t, returnDays...)
		}
		if len(s.TargetCountries) > 0 {
			t = append(t, `,"target_countries":[`...)
			for i, c := range s.TargetCountries {
				if i > 0 {
					t = append(t, ',')
				}
				t = appendJSONString(t, c)
			}
			t = append(t, ']')
		}
		t = appendOptString(t, `,"store_country":`, m.Country)
		fw.tail = append(t, "}\n"...)
	case flatCSV, flatTSV:
		field, sep := fw.field(), fw.sep()
		t := []byte{sep}
		countries := strings.Join(s.TargetCountries, ",")
		for _, v := range []string{m.Name, m.URL, m.PrivacyPolicyURL, m.TermsURL, m.ReturnPolicyURL, returnDays, countries} {
			t = append(field(t, v), sep)
		}
		t = field(t, m.Country)
		fw.tail = append(t, '\n')
		for i, c := range g2Columns {
			if i > 0 {
				fw.buf = append(fw.buf, fw.sep())
			}
			fw.buf = append(fw.buf, c...)
		}
		fw.buf = append(fw.buf, '\n')
	}
	return fw
}

// field returns the encoder of one string value in w's syntax.
func (w *flatWriter) field() func([]byte, string) []byte {
	switch w.kind {
	case flatCSV:
		return appendCSVField
	case flatTSV:
		return appendTSVField
	}
	return appendJSONString
}

func (w *flatWriter) sep() byte {
	if w.kind == flatTSV {
		return '\t'
	}
	return ','
}

func (w *flatWriter) Write(e *bridge.CatalogEntry) error {
	if err := w.write(e); err != nil {
		return err
	}
	ok, filter := publishable(e)
	if !ok {
		return nil
	}
	p := &e.Product
	pdesc := w.row.productDesc(p)
	w.pdesc = w.field()(w.pdesc[:0], pdesc)
	// Recommended for variant listings; a product of one variant is not.
	hasVariations := len(p.Variants) > 1
	n := 0
	for i := range p.Variants {
		v := &p.Variants[i]
		if filter && !e.VariantValid(v.ID) {
			continue
		}
		n++
		w.row.fill(p, v, pdesc)
		if w.kind == flatJSONL {
			w.buf = w.appendJSON(w.buf, p, v, hasVariations)
		} else {
			w.buf = w.appendDelimited(w.buf, p, v, hasVariations)
		}
	}
	if n > 0 {
		w.products++
		w.variants += n
	}
	return w.maybeFlush()
}

func (w *flatWriter) appendJSON(b []byte, p *bridge.Product, v *bridge.Variant, hasVariations bool) []byte {
	r := &w.row
	b = append(b, `{"is_eligible_search":`...)
	b = appendBool(b, v.EligibleSearch)
	b = append(b, `,"is_eligible_checkout":`...)
	b = appendBool(b, v.EligibleCheckout)
	b = append(b, `,"item_id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, v.Title)
	b = append(b, `,"description":`...)
	if r.ownDesc {
		b = appendJSONString(b, r.desc)
	} else {
		b = append(b, w.pdesc...)
	}
	b = append(b, `,"url":`...)
	b = appendJSONString(b, r.url)
	b = append(b, `,"brand":`...)
	b = appendJSONString(b, p.Brand)
	b = appendOptString(b, `,"gtin":`, v.GTIN)
	b = appendOptString(b, `,"mpn":`, v.MPN)
	b = appendOptString(b, `,"condition":`, r.condition)
	b = appendOptString(b, `,"product_category":`, p.Category)
	b = append(b, `,"image_url":`...)
	b = appendJSONString(b, r.image)
	b = appendOptJSONBytes(b, `,"additional_image_urls":`, r.images)
	b = appendOptJSONBytes(b, `,"price":`, r.price)
	b = appendOptJSONBytes(b, `,"sale_price":`, r.sale)
	b = append(b, `,"availability":"`...)
	b = append(b, g2Availability(v.Availability)...)
	b = append(b, '"')
	b = appendOptString(b, `,"availability_date":`, availabilityDate(v))
	b = append(b, `,"group_id":`...)
	b = appendJSONString(b, p.ID)
	b = append(b, `,"listing_has_variations":`...)
	b = appendBool(b, hasVariations)
	b = appendOptRaw(b, `,"variant_dict":`, r.dict)
	b = appendOptString(b, `,"item_group_title":`, p.Title)
	b = appendOptString(b, `,"color":`, r.color)
	b = appendOptString(b, `,"size":`, r.size)
	// G2 carries the unit in its own column; item_weight_unit is required
	// with weight, and validation refuses a weight without a unit.
	if wt := strings.TrimSpace(v.Weight); wt != "" {
		b = appendOptString(b, `,"weight":`, wt)
		b = appendOptString(b, `,"item_weight_unit":`, strings.TrimSpace(v.WeightUnit))
	}
	return append(b, w.tail...)
}

func (w *flatWriter) appendDelimited(b []byte, p *bridge.Product, v *bridge.Variant, hasVariations bool) []byte {
	r := &w.row
	sep := w.sep()
	field := w.field()
	bytesField := func(b, v []byte) []byte { return field(b, bstr(v)) }
	b = appendBool(b, v.EligibleSearch)
	b = append(b, sep)
	b = appendBool(b, v.EligibleCheckout)
	b = append(field(append(b, sep), v.ID), sep)
	b = append(field(b, v.Title), sep)
	if r.ownDesc {
		b = field(b, r.desc)
	} else {
		b = append(b, w.pdesc...)
	}
	b = append(b, sep)
	b = append(field(b, r.url), sep)
	b = append(field(b, p.Brand), sep)
	b = append(field(b, v.GTIN), sep)
	b = append(field(b, v.MPN), sep)
	b = append(field(b, r.condition), sep)
	b = append(field(b, p.Category), sep)
	b = append(field(b, r.image), sep)
	b = append(bytesField(b, r.images), sep)
	b = append(bytesField(b, r.price), sep)
	b = append(bytesField(b, r.sale), sep)
	b = append(append(b, g2Availability(v.Availability)...), sep)
	b = append(field(b, availabilityDate(v)), sep)
	b = append(field(b, p.ID), sep)
	b = append(appendBool(b, hasVariations), sep)
	b = append(bytesField(b, r.dict), sep)
	b = append(field(b, p.Title), sep)
	b = append(field(b, r.color), sep)
	b = append(field(b, r.size), sep)
	if wt := strings.TrimSpace(v.Weight); wt != "" {
		b = append(field(b, wt), sep)
		b = field(b, strings.TrimSpace(v.WeightUnit))
	} else {
		b = append(b, sep)
	}
	return append(b, w.tail...)
}

func (w *flatWriter) Close() error { return w.close() }
