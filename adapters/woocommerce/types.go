package woocommerce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/acp-bridge/bridge/upstream"
)

// product is the part of a WooCommerce product (or variation: the same
// fields, plus parent_id, image and single-option attributes) the adapter
// reads.
type product struct {
	ID               int64       `json:"id"`
	ParentID         int64       `json:"parent_id"`
	Name             string      `json:"name"`
	Slug             string      `json:"slug"`
	Permalink        string      `json:"permalink"`
	Type             string      `json:"type"`
	Status           string      `json:"status"`
	DateModifiedGMT  string      `json:"date_modified_gmt"`
	Description      string      `json:"description"`
	ShortDescription string      `json:"short_description"`
	SKU              string      `json:"sku"`
	Price            string      `json:"price"`
	RegularPrice     string      `json:"regular_price"`
	SalePrice        string      `json:"sale_price"`
	Purchasable      bool        `json:"purchasable"`
	Virtual          bool        `json:"virtual"`
	Downloadable     bool        `json:"downloadable"`
	ManageStock      manageStock `json:"manage_stock"`
	StockQuantity    *int64      `json:"stock_quantity"`
	StockStatus      string      `json:"stock_status"`
	Backorders       string      `json:"backorders"`
	Weight           string      `json:"weight"`
	Images           []image     `json:"images"`
	Image            *image      `json:"image"`
	Categories       []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"categories"`
	Tags []struct {
		Name string `json:"name"`
	} `json:"tags"`
	// Brands is WooCommerce's own brand taxonomy (9.6 and later).
	Brands []struct {
		Name string `json:"name"`
	} `json:"brands"`
	Attributes []attribute `json:"attributes"`
	Variations []int64     `json:"variations"`
	MetaData   []meta      `json:"meta_data"`
}

type image struct {
	ID   int64  `json:"id"`
	Src  string `json:"src"`
	Name string `json:"name"`
	Alt  string `json:"alt"`
}

// attribute is a product's attribute (options: every value) or a
// variation's (option: its value).
type attribute struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Variation bool     `json:"variation"`
	Visible   bool     `json:"visible"`
	Options   []string `json:"options"`
	Option    string   `json:"option"`
}

type meta struct {
	ID    int64           `json:"id,omitempty"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// manageStock is a product's manage_stock: true, false, or — on a
// variation whose stock is its parent's — the string "parent"
// (woocommerce#19500).
type manageStock struct {
	On     bool
	Parent bool
}

func (m *manageStock) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "true":
		*m = manageStock{On: true}
	case "false", "null":
		*m = manageStock{}
	case `"parent"`:
		*m = manageStock{Parent: true}
	default:
		// Some plugins write "yes"/"no" or 1/0.
		s := string(bytes.Trim(b, `"`))
		on, err := strconv.ParseBool(s)
		if err != nil && s != "yes" && s != "no" {
			return fmt.Errorf("manage_stock %s is neither a boolean nor \"parent\"", upstream.Excerpt(string(b), 20))
		}
		*m = manageStock{On: on || s == "yes"}
	}
	return nil
}

func (m manageStock) MarshalJSON() ([]byte, error) {
	if m.Parent {
		return []byte(`"parent"`), nil
	}
	return strconv.AppendBool(nil, m.On), nil
}

// stock is a variant's stock as it counts for selling: resolved to the
// parent's when the variation's manage_stock is "parent".
type stock struct {
	// Managed: WooCommerce counts the stock of this item.
	Managed  bool
	Quantity int64
	// Backorders: WooCommerce sells past zero ("notify" or "yes").
	Backorders bool
	Status     string // instock, outofstock, onbackorder
	// FromParent: a variation selling from its parent's stock, which its
	// siblings that do the same share.
	FromParent bool
}

// stockOf resolves item's stock; parent is nil for simple products.
// WooCommerce's own rule (WC_Product_Variation::get_manage_stock) is that a
// variation whose manage_stock is "parent" — or false while its parent
// manages stock — sells from the parent's quantity.
func stockOf(item product, parent *product) stock {
	src := item
	fromParent := parent != nil && (item.ManageStock.Parent || !item.ManageStock.On && parent.ManageStock.On)
	if fromParent {
		src = *parent
	}
	s := stock{Managed: src.ManageStock.On, Backorders: src.Backorders != "" && src.Backorders != "no", Status: item.StockStatus, FromParent: fromParent}
	if s.Managed && src.StockQuantity != nil {
		s.Quantity = *src.StockQuantity
	}
	return s
}

// orderFields are the fields of order, asked for with _fields= when the
// adapter scans lists of orders: a whole order (addresses, lines, notes of
// plugins) is many times larger, and FindOrder may read days of orders.
const orderFields = "id,status,currency,total,date_created_gmt,date_modified_gmt,date_paid_gmt,transaction_id,meta_data"

// order is the part of a WooCommerce order the adapter reads.
type order struct {
	ID              int64  `json:"id"`
	Status          string `json:"status"`
	Currency        string `json:"currency"`
	Total           string `json:"total"`
	DateCreatedGMT  string `json:"date_created_gmt"`
	DateModifiedGMT string `json:"date_modified_gmt"`
	// DatePaidGMT is set by payment_complete; null while unpaid.
	DatePaidGMT   *string `json:"date_paid_gmt"`
	TransactionID string  `json:"transaction_id"`
	CustomerNote  string  `json:"customer_note"`
	MetaData      []meta  `json:"meta_data"`
}

// unpaid reports whether o still waits for its payment to complete: set_paid
// runs payment_complete after the order is saved, so a plugin failing in
// its hooks leaves it pending, unpaid, with its stock not taken. An order
// ended in the shop (cancelled, refunded, trashed) is not unpaid: it must
// not be revived, and OrderUpdates reports it.
func (o order) unpaid() bool {
	switch o.Status {
	case "cancelled", "refunded", "trash":
		return false
	case "pending":
		return true
	}
	return o.DatePaidGMT == nil || *o.DatePaidGMT == ""
}

// Order meta_data keys the bridge writes. No leading underscore:
// WooCommerce hides protected meta from the REST API.
const (
	// metaKey carries the bridge's order id: how the bridge finds its
	// orders again (WooCommerce has no idempotency key and no meta filter
	// on GET /orders).
	metaKey = "acp_bridge_order_id"
	// metaCharged carries what the buyer was charged ("87.99 USD"), so an
	// order found again can still be checked against it.
	metaCharged = "acp_bridge_charged"
)

// meta returns the string value of o's meta_data key, or "".
func (o order) meta(key string) string {
	for _, m := range o.MetaData {
		if m.Key != key {
			continue
		}
		var s string
		if json.Unmarshal(m.Value, &s) == nil {
			return s
		}
	}
	return ""
}

// bridgeOrderID is the bridge's order id in o's meta_data, or "".
func (o order) bridgeOrderID() string { return o.meta(metaKey) }
