package feed

import (
	"io"
	"strconv"
	"strings"
	"time"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/htmltext"
)

// maxAdditionalImages caps additional image URLs per row (Google's limit for
// the same field, which OpenAI's flat feeds inherited); products with dozens
// of images would otherwise repeat them all on every variant row.
const maxAdditionalImages = 10

// flatRow is one variant flattened the way OpenAI's flat feeds (G1 seed and
// G2) want it. Its byte slices are reused from row to row.
type flatRow struct {
	desc      string // plain text, at most maxDescription runes
	ownDesc   bool   // desc is the variant's own, not its product's
	url       string
	image     string
	extra     []string // additional images, deduplicated
	condition string
	color     string
	size      string
	price     []byte // "49.99 USD"; the list price when on sale
	sale      []byte // the price paid, when on sale
	weight    []byte // "1.2 kg"
	images    []byte // extra joined by commas
	dict      []byte // variant_dict as a JSON object
	scratch   []byte // HTML → text
}

// productDesc is the plain description a product gives its variants.
func (r *flatRow) productDesc(p *bridge.Product) string {
	return r.plain(p.Description)
}

// plain returns d as plain text for flat feeds: the plain form, else the
// text of the HTML form, cut to the flat feeds' limit.
func (r *flatRow) plain(d bridge.Description) string {
	if d.Plain != "" {
		return truncateRunes(d.Plain, maxDescription)
	}
	if d.HTML == "" {
		return ""
	}
	r.scratch = htmltext.AppendText(r.scratch[:0], d.HTML)
	return truncateRunes(string(r.scratch), maxDescription)
}

// fill derives the row of variant v of p; pdesc is p's plain description.
func (r *flatRow) fill(p *bridge.Product, v *bridge.Variant, pdesc string) {
	r.desc, r.ownDesc = pdesc, !v.Description.IsZero()
	if r.ownDesc {
		r.desc = r.plain(v.Description)
	}
	r.url = v.URL
	if r.url == "" {
		r.url = p.URL
	}

	r.image, r.extra = "", r.extra[:0]
	addImages := func(ms []bridge.Media) {
		for _, m := range ms {
			if !isImage(m) || m.URL == "" {
				continue
			}
			if r.image == "" {
				r.image = m.URL
				continue
			}
			if m.URL == r.image || len(r.extra) >= maxAdditionalImages || contains(r.extra, m.URL) {
				continue
			}
			r.extra = append(r.extra, m.URL)
		}
	}
	addImages(v.Media)
	addImages(p.Media)
	r.images = r.images[:0]
	for i, u := range r.extra {
		if i > 0 {
			r.images = append(r.images, ',')
		}
		r.images = append(r.images, u...)
	}

	// Flat feeds show a sale as price = regular price, sale_price = what
	// the buyer pays; a list price that is not higher is no sale.
	r.price, r.sale = r.price[:0], r.sale[:0]
	if lp := v.ListPrice; lp != nil && lp.Currency == v.Price.Currency && lp.Amount > v.Price.Amount {
		r.price = lp.AppendString(r.price)
		r.sale = v.Price.AppendString(r.sale)
	} else {
		r.price = v.Price.AppendString(r.price)
	}

	r.weight = r.weight[:0]
	if v.Weight != "" && v.WeightUnit != "" {
		r.weight = append(r.weight, strings.TrimSpace(v.Weight)...)
		r.weight = append(r.weight, ' ')
		r.weight = append(r.weight, strings.TrimSpace(v.WeightUnit)...)
	}
	r.condition = strings.ToLower(v.Condition)

	r.color, r.size, r.dict = "", "", r.dict[:0]
	for i, o := range v.Options {
		if o.Name == "" || o.Value == "" || optionSeen(v.Options[:i], o.Name) {
			continue // a JSON object cannot carry a name twice
		}
		if len(r.dict) == 0 {
			r.dict = append(r.dict, '{')
		} else {
			r.dict = append(r.dict, ',')
		}
		r.dict = appendJSONString(r.dict, o.Name)
		r.dict = append(r.dict, ':')
		r.dict = appendJSONString(r.dict, o.Value)
		name := strings.TrimSpace(o.Name)
		switch {
		case r.color == "" && (strings.EqualFold(name, "color") || strings.EqualFold(name, "colour")):
			r.color = o.Value
		case r.size == "" && strings.EqualFold(name, "size"):
			r.size = o.Value
		}
	}
	if len(r.dict) > 0 {
		r.dict = append(r.dict, '}')
	}
}

func optionSeen(os []bridge.Option, name string) bool {
	for _, o := range os {
		if o.Name == name && o.Value != "" {
			return true
		}
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// availabilityDate is the date flat feeds carry: only for the states where a
// date means something (validation rejects bad ones there).
func availabilityDate(v *bridge.Variant) string {
	if v.Availability == bridge.Preorder || v.Availability == bridge.Backorder {
		return v.AvailabilityDate
	}
	return ""
}

// g2Availability maps the canonical state onto OpenAI's flat enum, which
// has no limited_stock (still in stock) and no discontinued (cannot be
// bought any more).
func g2Availability(a bridge.Availability) string {
	switch a {
	case bridge.InStock, bridge.LimitedStock:
		return "in_stock"
	case bridge.Backorder:
		return "backorder"
	case bridge.Preorder:
		return "pre_order"
	case bridge.OutOfStock, bridge.Discontinued:
		return "out_of_stock"
	}
	return "unknown"
}

// g1Availability maps the canonical state onto the seed's enum (in_stock,
// out_of_stock, preorder). A backorder can be bought now and ships later: it
// becomes preorder when the store knows the date (G1 requires one for
// preorder) and in_stock otherwise. States a buyer cannot order, including
// unknown, become out_of_stock.
func g1Availability(v *bridge.Variant) string {
	switch v.Availability {
	case bridge.InStock, bridge.LimitedStock:
		return "in_stock"
	case bridge.Preorder:
		return "preorder"
	case bridge.Backorder:
		if v.AvailabilityDate != "" {
			return "preorder"
		}
		return "in_stock"
	}
	return "out_of_stock"
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendOptString appends ,"key":"value" when value is set; key carries the
// leading comma and quotes.
func appendOptString(dst []byte, key, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, key...)
	return appendJSONString(dst, value)
}

func appendOptRaw(dst []byte, key string, value []byte) []byte {
	if len(value) == 0 {
		return dst
	}
	dst = append(dst, key...)
	return append(dst, value...)
}

func appendOptJSONBytes(dst []byte, key string, value []byte) []byte {
	if len(value) == 0 {
		return dst
	}
	dst = append(dst, key...)
	return appendJSONBytes(dst, value)
}

// --- the seed's feed.json (G1) ---

// seedFormat names the field set of feed.json in its meta block.
const seedFormat = "openai-product-feed-2025-09"

// seedWriter writes feed.json. A JSON document cannot be streamed with its
// total up front, so the layout is
//
//	{"meta":{"format":…,"generated_at":…,"merchant":{…}},"products":[
//	{…one variant…},
//	…
//	],"count":N}
//
// meta comes first so a streaming reader knows what it reads before the
// products, and count, the number of products entries, comes last, after
// them. One variant per line keeps the file greppable and diffable.
type seedWriter struct {
	out
	row   flatRow
	tail  []byte // the merchant fields every row ends with
	pdesc []byte // the product's description, encoded once for its variants
	count int
}

func newSeedWriter(w io.Writer, s Settings) *seedWriter {
	sw := &seedWriter{out: newOut(w, false)}
	m := &s.Merchant
	b := append(sw.buf, `{"meta":{"format":"`+seedFormat+`"`...)
	if !s.GeneratedAt.IsZero() {
		b = append(b, `,"generated_at":"`...)
		b = s.GeneratedAt.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, '"')
	}
	b = append(b, `,"merchant":{"name":`...)
	b = appendJSONString(b, m.Name)
	b = appendOptString(b, `,"url":`, m.URL)
	b = appendOptString(b, `,"country":`, m.Country)
	b = appendOptString(b, `,"currency":`, m.Currency)
	sw.buf = append(b, "}},\"products\":["...)

	t := appendOptString(nil, `,"seller_name":`, m.Name)
	t = appendOptString(t, `,"seller_url":`, m.URL)
	t = appendOptString(t, `,"seller_privacy_policy":`, m.PrivacyPolicyURL)
	t = appendOptString(t, `,"seller_tos":`, m.TermsURL)
	t = appendOptString(t, `,"return_policy":`, m.ReturnPolicyURL)
	if m.ReturnWindowDays > 0 {
		t = append(t, `,"return_window":`...)
		t = strconv.AppendInt(t, int64(m.ReturnWindowDays), 10)
	}
	sw.tail = append(t, '}')
	return sw
}

func (w *seedWriter) Write(e *bridge.CatalogEntry) error {
	if err := w.write(e); err != nil {
		return err
	}
	ok, filter := publishable(e)
	if !ok {
		return nil
	}
	p := &e.Product
	pdesc := w.row.productDesc(p)
	w.pdesc = appendJSONString(w.pdesc[:0], pdesc)
	n := 0
	for i := range p.Variants {
		v := &p.Variants[i]
		if filter && !e.VariantValid(v.ID) {
			continue
		}
		n++
		w.row.fill(p, v, pdesc)
		w.buf = w.appendRow(w.buf, p, v)
	}
	if n > 0 {
		w.products++
		w.variants += n
	}
	return w.maybeFlush()
}

func (w *seedWriter) appendRow(b []byte, p *bridge.Product, v *bridge.Variant) []byte {
	r := &w.row
	if w.count > 0 {
		b = append(b, ',')
	}
	w.count++
	b = append(b, "\n{\"enable_search\":"...)
	b = appendBool(b, v.EligibleSearch)
	b = append(b, `,"enable_checkout":`...)
	b = appendBool(b, v.EligibleCheckout)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"item_group_id":`...)
	b = appendJSONString(b, p.ID)
	b = appendOptString(b, `,"item_group_title":`, p.Title)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, v.Title)
	b = append(b, `,"description":`...)
	if r.ownDesc {
		b = appendJSONString(b, r.desc)
	} else {
		b = append(b, w.pdesc...)
	}
	b = append(b, `,"link":`...)
	b = appendJSONString(b, r.url)
	b = append(b, `,"image_link":`...)
	b = appendJSONString(b, r.image)
	if len(r.images) > 0 {
		b = append(b, `,"additional_image_link":`...)
		b = appendJSONBytes(b, r.images)
	}
	b = appendOptJSONBytes(b, `,"price":`, r.price)
	b = appendOptJSONBytes(b, `,"sale_price":`, r.sale)
	avail := g1Availability(v)
	b = append(b, `,"availability":"`...)
	b = append(b, avail...)
	b = append(b, '"')
	if avail == "preorder" {
		b = appendOptString(b, `,"availability_date":`, v.AvailabilityDate)
	}
	// Untracked stock has no count; a made-up number or a 0 next to
	// in_stock would mislead whoever reads it, so the field is left out and
	// availability alone tells. An oversold (negative) count is 0.
	if v.Quantity != nil {
		b = append(b, `,"inventory_quantity":`...)
		b = strconv.AppendInt(b, max(*v.Quantity, 0), 10)
	}
	b = append(b, `,"brand":`...)
	b = appendJSONString(b, p.Brand)
	b = appendOptString(b, `,"gtin":`, v.GTIN)
	b = appendOptString(b, `,"mpn":`, v.MPN)
	b = appendOptString(b, `,"condition":`, r.condition)
	b = appendOptString(b, `,"product_category":`, p.Category)
	if len(r.weight) > 0 {
		b = append(b, `,"weight":`...)
		b = appendJSONBytes(b, r.weight)
	}
	return append(b, w.tail...)
}

func (w *seedWriter) Close() error {
	if !w.closed && w.err == nil {
		if w.count > 0 {
			w.buf = append(w.buf, '\n')
		}
		w.buf = append(w.buf, `],"count":`...)
		w.buf = strconv.AppendInt(w.buf, int64(w.count), 10)
		w.buf = append(w.buf, "}\n"...)
	}
	return w.close()
}
