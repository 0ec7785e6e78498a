package fakeshopify

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Product is a product as the fake store keeps it. Ids are the numeric
// (legacy) ids; the API shows them as gid://shopify/Product/<id>.
type Product struct {
	ID          int64
	Title       string
	Handle      string
	Description string // HTML
	Vendor      string
	ProductType string
	// Status is ACTIVE, ARCHIVED, DRAFT or UNLISTED.
	Status    string
	Tags      []string
	Images    []Image
	Variants  []*Variant
	UpdatedAt time.Time
}

// Image is a product image (a MediaImage).
type Image struct {
	ID  int64
	URL string
	Alt string
}

// Variant is a product variant. Stock is kept per location.
type Variant struct {
	ID             int64
	InventoryItem  int64
	Title          string
	SKU            string
	Barcode        string
	Price          string // decimal, shop currency
	CompareAtPrice string // "" when none
	Tracked        bool
	// Policy is DENY or CONTINUE (oversell allowed).
	Policy  string
	Options []Option
	// Available is the "available" quantity per location id.
	Available map[int64]int64
	UpdatedAt time.Time
}

// Option is a selected option of a variant.
type Option struct{ Name, Value string }

// Location is a stock location.
type Location struct {
	ID   int64
	Name string
}

// total is the variant's available stock over every location.
func (v *Variant) total() int64 {
	var n int64
	for _, q := range v.Available {
		n += q
	}
	return n
}

func (v *Variant) clone() *Variant {
	c := *v
	c.Options = slices.Clone(v.Options)
	c.Available = make(map[int64]int64, len(v.Available))
	for k, q := range v.Available {
		c.Available[k] = q
	}
	return &c
}

func (p *Product) clone() *Product {
	c := *p
	c.Tags = slices.Clone(p.Tags)
	c.Images = slices.Clone(p.Images)
	c.Variants = make([]*Variant, len(p.Variants))
	for i, v := range p.Variants {
		c.Variants[i] = v.clone()
	}
	return &c
}

// Order is an order created through orderCreate.
type Order struct {
	ID               int64
	Name             string
	Email            string
	Phone            string
	Note             string
	Tags             []string
	SourceName       string
	SourceIdentifier string
	Currency         string
	Total            string
	// TotalTax is the tax in (TaxesIncluded) or added to Total.
	TotalTax        string
	TaxesIncluded   bool
	FinancialStatus string
	Lines           []OrderLine
	ShippingAddress map[string]any
	ShippingLines   []map[string]any
	TaxLines        []map[string]any
	Transactions    []Transaction
	Fulfillments    []Fulfillment
	Refunds         []Refund
	CancelledAt     *time.Time
	CancelReason    string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// Inventory is the inventoryBehaviour the order was created with.
	Inventory string
}

// OrderLine is a line of an order.
type OrderLine struct {
	ID        int64
	VariantID int64
	SKU       string
	Title     string
	Quantity  int64
	Price     string
}

// Transaction is a payment recorded on an order.
type Transaction struct {
	ID                int64
	Kind, Status      string
	Gateway           string
	AuthorizationCode string
	Amount            string
}

// Fulfillment is a shipment of an order.
type Fulfillment struct {
	ID        int64
	Status    string // SUCCESS, CANCELLED …
	Company   string
	Number    string
	URL       string
	CreatedAt time.Time
}

// Refund is money given back on an order.
type Refund struct {
	ID        int64
	Amount    string
	Note      string
	CreatedAt time.Time
}

func gid(kind string, id int64) string {
	return "gid://shopify/" + kind + "/" + strconv.FormatInt(id, 10)
}

// parseGID returns the numeric id of a gid of kind.
func parseGID(kind, s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, "gid://shopify/"+kind+"/")
	if !ok {
		return 0, false
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil && n > 0
}

// cursor is what Shopify's opaque cursors carry: the sort value and id of
// the last item of a page.
type cursor struct {
	LastID    int64  `json:"last_id"`
	LastValue string `json:"last_value"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.LastID == 0 {
		return cursor{}, fmt.Errorf("invalid cursor %q", s)
	}
	return c, nil
}

// sortKey orders items for pagination: a value (fixed width, so strings
// compare like the values) and the id as a tie-break.
type sortKey struct {
	value string
	id    int64
}

func (a sortKey) less(b sortKey) bool {
	if a.value != b.value {
		return a.value < b.value
	}
	return a.id < b.id
}

func idKey(id int64) sortKey { return sortKey{value: fmt.Sprintf("%020d", id), id: id} }

func timeKey(t time.Time, id int64) sortKey {
	return sortKey{value: t.UTC().Format("2006-01-02T15:04:05.000000000Z"), id: id}
}

// page is one page of a connection over items already sorted by key.
type page[T any] struct {
	items   []T
	keys    []sortKey
	hasNext bool
	hasPrev bool
}

// paginate cuts a page out of items (sorted by key) as first/after ask.
// all ignores first (bulk operations read whole connections).
func paginate[T any](items []T, key func(T) sortKey, args map[string]any, all bool) (page[T], error) {
	first, hasFirst := argInt(args, "first")
	if _, hasLast := argInt(args, "last"); hasLast {
		return page[T]{}, fmt.Errorf("the fake serves forward pagination only (first/after)")
	}
	if !all {
		if !hasFirst {
			return page[T]{}, fmt.Errorf("you must provide one of first or last")
		}
		if first < 0 || first > 250 {
			return page[T]{}, fmt.Errorf("the first argument must be between 0 and 250, have %d", first)
		}
	}
	start := 0
	if after, _ := args["after"].(string); after != "" {
		c, err := parseCursor(after)
		if err != nil {
			return page[T]{}, err
		}
		ck := sortKey{value: c.LastValue, id: c.LastID}
		start = sort.Search(len(items), func(i int) bool { return ck.less(key(items[i])) })
	}
	end := len(items)
	if !all && start+first < end {
		end = start + first
	}
	p := page[T]{items: items[start:end], hasNext: end < len(items), hasPrev: start > 0}
	for _, it := range p.items {
		p.keys = append(p.keys, key(it))
	}
	return p, nil
}

// connection renders a page as a Shopify connection (nodes, edges,
// pageInfo).
func connection[T any](p page[T], node func(T) obj) obj {
	nodes := make([]obj, len(p.items))
	edges := make([]obj, len(p.items))
	var start, end any
	for i, it := range p.items {
		n := node(it)
		c := cursor{LastID: p.keys[i].id, LastValue: p.keys[i].value}.String()
		nodes[i] = n
		edges[i] = obj{"__typename": "Edge", "cursor": c, "node": n}
		if i == 0 {
			start = c
		}
		end = c
	}
	return obj{
		"__typename": "Connection",
		"nodes":      nodes,
		"edges":      edges,
		"pageInfo": obj{"__typename": "PageInfo", "hasNextPage": p.hasNext, "hasPreviousPage": p.hasPrev,
			"startCursor": start, "endCursor": end},
	}
}

// argInt reads an Int argument: an int64 from a literal or a coerced
// variable, a json.Number from inside an input object.
func argInt(args map[string]any, name string) (int, bool) {
	switch v := args[name].(type) {
	case int64:
		return int(v), true
	case int:
		return v, true
	case json.Number:
		n, err := v.Int64()
		return int(n), err == nil
	case float64:
		return int(v), true
	}
	return 0, false
}
