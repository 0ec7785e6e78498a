package bridge

import (
	"context"
	"time"
)

// Order is a paid order as the bridge writes it to the store. The checkout and
// order lifecycle will grow it; the store-facing part is here so adapters can
// implement write-back now.
type Order struct {
	ID string `json:"id"`
	// SessionID is the checkout session that made the order; Owner the API
	// key name it belongs to.
	SessionID string `json:"session_id,omitempty"`
	Owner     string `json:"owner,omitempty"`
	// Status is the order's state in ACP's words: pending_payment while
	// the charge runs, created once paid, canceled if the charge failed.
	Status       string      `json:"status,omitempty"`
	PermalinkURL string      `json:"permalink_url,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	Currency     string      `json:"currency"`
	Lines        []OrderLine `json:"lines"`
	Subtotal     Money       `json:"subtotal"`
	Shipping     Money       `json:"shipping"`
	Tax          Money       `json:"tax"`
	Total        Money       `json:"total"`
	Buyer        Buyer       `json:"buyer"`
	ShipTo       *Address    `json:"ship_to,omitempty"`
	// PaymentRef is the payment provider's id for the charge.
	PaymentRef string `json:"payment_ref,omitempty"`
}

// OrderLine is one ordered variant.
type OrderLine struct {
	VariantID string `json:"variant_id"`
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	Quantity  int64  `json:"quantity"`
	UnitPrice Money  `json:"unit_price"`
	Total     Money  `json:"total"`
}

// Buyer is who pays.
type Buyer struct {
	// Name is the full name; FirstName and LastName are kept when the
	// agent gave them apart (ACP 2025-09-29 requires them).
	Name      string `json:"name,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// Address is a postal address.
type Address struct {
	Name       string `json:"name,omitempty"`
	Company    string `json:"company,omitempty"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// StoreOrder is the store's record of a written order.
type StoreOrder struct {
	// StoreID is the store's own id for the order.
	StoreID string `json:"store_id"`
	// URL is a page where the buyer can see the order, when the store has one.
	URL string `json:"url,omitempty"`
}

// OrderStore is implemented by adapters that write orders back to the store.
// WriteOrder is idempotent by Order.ID: writing an order already in the store
// returns the existing StoreOrder and creates nothing.
type OrderStore interface {
	WriteOrder(ctx context.Context, o Order) (StoreOrder, error)
	FindOrder(ctx context.Context, orderID string) (StoreOrder, error)
}

// StockReader reports live stock of a variant: how many can still be sold, and
// whether the store tracks stock for it at all.
type StockReader interface {
	Stock(ctx context.Context, variantID string) (available int64, tracked bool, err error)
}
