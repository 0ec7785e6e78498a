package feed

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/htmltext"
)

// acpWriter writes the ACP 2026-04-17 feed (schema.feed.json): one Product
// per line of products.jsonl, holding only its valid variants. The schema
// forbids unknown keys everywhere, so only its own names are written.
type acpWriter struct {
	out
	enc *ACPEncoder
}

func newACPWriter(w io.Writer, s Settings) *acpWriter {
	return &acpWriter{out: newOut(w, true), enc: NewACPEncoder(s)}
}

// ACPEncoder encodes catalog entries as ACP 2026-04-17 Product objects
// (schema.feed.json), the same bytes acp/products.jsonl.gz holds per line:
// the Feed API push sends exactly what the file publishes, and hashes it to
// tell which products changed. An ACPEncoder is not safe for concurrent use.
type ACPEncoder struct {
	seller  []byte // ,"seller":{…} — the same on every variant
	scratch []byte
}

// NewACPEncoder returns an encoder for products sold under s.Merchant.
func NewACPEncoder(s Settings) *ACPEncoder {
	aw := &ACPEncoder{}
	m := &s.Merchant
	var b []byte
	if m.Name != "" {
		b = append(b, `"name":`...)
		b = appendJSONString(b, m.Name)
	}
	links := 0
	link := func(typ, url string) {
		if url == "" {
			return
		}
		if links == 0 {
			if len(b) > 0 {
				b = append(b, ',')
			}
			b = append(b, `"links":[`...)
		} else {
			b = append(b, ',')
		}
		links++
		b = append(b, `{"type":"`+typ+`","url":`...)
		b = appendJSONString(b, url)
		b = append(b, '}')
	}
	link("privacy_policy", m.PrivacyPolicyURL)
	link("terms_of_service", m.TermsURL)
	link("refund_policy", m.ReturnPolicyURL)
	if links > 0 {
		b = append(b, ']')
	}
	if len(b) > 0 {
		aw.seller = append(append([]byte(`,"seller":{`), b...), '}')
	}
	return aw
}

func (w *acpWriter) Write(e *bridge.CatalogEntry) error {
	if err := w.write(e); err != nil {
		return err
	}
	b, n := w.enc.AppendProduct(w.buf, e)
	if n == 0 {
		return nil
	}
	w.buf = append(b, '\n')
	w.products++
	w.variants += n
	return w.maybeFlush()
}

// AppendProduct appends e's Product object (without a line break) to b,
// holding only the variants validation let through, and returns the
// extended buffer and the number of variants written. When the product is
// excluded or has no valid variant it returns b unchanged and 0.
func (w *ACPEncoder) AppendProduct(b []byte, e *bridge.CatalogEntry) ([]byte, int) {
	ok, filter := publishable(e)
	if !ok {
		return b, 0
	}
	n := validCount(e, filter)
	if n == 0 {
		return b, 0
	}
	p := &e.Product
	b = append(b, `{"id":`...)
	b = appendJSONString(b, p.ID)
	b = appendOptString(b, `,"title":`, p.Title)
	b = w.appendDescription(b, p.Description)
	b = appendOptString(b, `,"url":`, p.URL)
	b = appendMedia(b, p.Media)
	b = append(b, `,"variants":[`...)
	first := true
	for i := range p.Variants {
		v := &p.Variants[i]
		if filter && !e.VariantValid(v.ID) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = w.appendVariant(b, p, v)
	}
	return append(b, "]}"...), n
}

// AppendRetraction appends the Product that withdraws e's published
// variants from an agent's feed, to b: each with its id and title and
// availability {available: false, status: "discontinued"}. The Feed API
// cannot delete (rfc.product_feeds §3.4: mark variants unavailable or
// discontinued instead), so this is what is sent when the product leaves
// the catalog. It returns b unchanged when AppendProduct would publish
// nothing.
func (w *ACPEncoder) AppendRetraction(b []byte, e *bridge.CatalogEntry) []byte {
	ok, filter := publishable(e)
	if !ok || validCount(e, filter) == 0 {
		return b
	}
	p := &e.Product
	b = append(b, `{"id":`...)
	b = appendJSONString(b, p.ID)
	b = appendOptString(b, `,"title":`, p.Title)
	b = append(b, `,"variants":[`...)
	first := true
	for i := range p.Variants {
		v := &p.Variants[i]
		if filter && !e.VariantValid(v.ID) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"id":`...)
		b = appendJSONString(b, v.ID)
		b = append(b, `,"title":`...)
		b = appendJSONString(b, v.Title)
		b = append(b, `,"availability":{"available":false,"status":"discontinued"}}`...)
	}
	return append(b, "]}"...)
}

func (w *ACPEncoder) appendVariant(b []byte, p *bridge.Product, v *bridge.Variant) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, v.Title)
	b = w.appendDescription(b, v.Description)
	b = appendOptString(b, `,"url":`, v.URL)
	if v.GTIN != "" {
		b = append(b, `,"barcodes":[{"type":"GTIN","value":`...)
		b = appendJSONString(b, v.GTIN)
		b = append(b, "}]"...)
	}
	b = append(b, `,"price":`...)
	b = appendPrice(b, v.Price)
	// list_price is the pre-discount price; one that is not above the
	// price is no discount and would show a sale that isn't one.
	if lp := v.ListPrice; lp != nil && lp.Currency == v.Price.Currency && lp.Amount > v.Price.Amount {
		b = append(b, `,"list_price":`...)
		b = appendPrice(b, *lp)
	}
	b = append(b, `,"availability":{"available":`...)
	b = appendBool(b, v.Availability.Purchasable())
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(v.Availability))
	b = append(b, '}')
	if p.Category != "" {
		b = append(b, `,"categories":[{"value":`...)
		b = appendJSONString(b, p.Category)
		b = append(b, `,"taxonomy":"merchant"}]`...)
	}
	if v.Condition != "" {
		b = append(b, `,"condition":[`...)
		b = appendJSONString(b, strings.ToLower(v.Condition))
		b = append(b, ']')
	}
	opts := 0
	for _, o := range v.Options {
		if o.Name == "" || o.Value == "" {
			continue
		}
		if opts == 0 {
			b = append(b, `,"variant_options":[`...)
		} else {
			b = append(b, ',')
		}
		opts++
		b = append(b, `{"name":`...)
		b = appendJSONString(b, o.Name)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, o.Value)
		b = append(b, '}')
	}
	if opts > 0 {
		b = append(b, ']')
	}
	b = appendMedia(b, v.Media)
	b = append(b, w.seller...)
	return append(b, '}')
}

// appendDescription writes a Description object when there is one. Agents
// that do not render HTML need plain text, so an HTML-only description also
// gets the plain text derived from it.
func (w *ACPEncoder) appendDescription(b []byte, d bridge.Description) []byte {
	if d.IsZero() {
		return b
	}
	b = append(b, `,"description":{`...)
	plain := d.Plain
	if plain == "" {
		w.scratch = htmltext.AppendText(w.scratch[:0], d.HTML)
		plain = bstr(w.scratch)
	}
	if plain != "" {
		b = append(b, `"plain":`...)
		b = appendJSONString(b, plain)
		if d.HTML != "" {
			b = append(b, ',')
		}
	}
	if d.HTML != "" {
		b = append(b, `"html":`...)
		b = appendJSONString(b, d.HTML)
	}
	return append(b, '}')
}

func appendPrice(b []byte, m bridge.Money) []byte {
	b = append(b, `{"amount":`...)
	b = strconv.AppendInt(b, m.Amount, 10)
	b = append(b, `,"currency":`...)
	b = appendJSONString(b, m.Currency)
	return append(b, '}')
}

func appendMedia(b []byte, ms []bridge.Media) []byte {
	n := 0
	for _, m := range ms {
		if m.URL == "" {
			continue
		}
		if n == 0 {
			b = append(b, `,"media":[`...)
		} else {
			b = append(b, ',')
		}
		n++
		typ := m.Type
		if typ == "" {
			typ = "image" // the schema requires a type; untyped store media are images
		}
		b = append(b, `{"type":`...)
		b = appendJSONString(b, typ)
		b = append(b, `,"url":`...)
		b = appendJSONString(b, m.URL)
		b = appendOptString(b, `,"alt_text":`, m.AltText)
		b = append(b, '}')
	}
	if n > 0 {
		b = append(b, ']')
	}
	return b
}

func (w *acpWriter) Close() error { return w.close() }

// WriteACPMetadata writes the ACP FeedMetadata document (acp/metadata.json)
// for s: the feed id, the first target country and GeneratedAt as
// updated_at. Fields the schema would reject (a country that is not two
// upper-case letters, a zero time) are left out rather than written wrong.
func WriteACPMetadata(w io.Writer, s Settings) error {
	s = s.withDefaults()
	b := append([]byte(nil), `{"id":`...)
	b = appendJSONString(b, s.FeedID)
	if c := s.targetCountry(); isCountryCode(c) {
		b = append(b, `,"target_country":"`...)
		b = append(b, c...)
		b = append(b, '"')
	}
	if !s.GeneratedAt.IsZero() {
		b = append(b, `,"updated_at":"`...)
		b = s.GeneratedAt.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("feed: write ACP metadata: %w", err)
	}
	return nil
}
