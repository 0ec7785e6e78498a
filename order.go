package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Order is an order as the bridge keeps it: shaped like ACP 2026-04-17's
// Order (lines with ordered/current/fulfilled quantities, fulfillments,
// adjustments), stored before the charge and kept for good, with the
// history of its statuses. Adapters write it to the store; webhooks tell
// the agent about it in the API version of its session.
type Order struct {
	ID string `json:"id"`
	// Rev is the stored revision. A change with Rev 0 replaces the order
	// whatever its revision (the checkout owns an order until it is paid);
	// any other Rev is written only over Rev−1 (ErrStale otherwise), so
	// the write-back, store updates and Stripe news never lose each
	// other's changes.
	Rev int64 `json:"-"`
	// SessionID is the checkout session that made the order; Owner the API
	// key name it belongs to; APIVersion the ACP version the session was
	// created with, the shape of the agent's webhooks.
	SessionID  string `json:"session_id,omitempty"`
	Owner      string `json:"owner,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	// Status is the order's state in ACP's words (OrderCreated …) or, before
	// the payment succeeded, one of the pre-payment states
	// (pending_payment, payment_declined …) that agents never see.
	Status       string      `json:"status,omitempty"`
	PermalinkURL string      `json:"permalink_url,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at,omitzero"`
	Currency     string      `json:"currency"`
	Lines        []OrderLine `json:"lines"`
	Subtotal     Money       `json:"subtotal"`
	Shipping     Money       `json:"shipping"`
	Tax          Money       `json:"tax"`
	Total        Money       `json:"total"`
	// TaxIncluded says the shop's prices contain the tax: UnitPrice and
	// Shipping include it, and Tax is the part of Total that is tax, not
	// an amount added to it. The store must be told, or it adds the tax
	// again.
	TaxIncluded bool     `json:"tax_included,omitempty"`
	Buyer       Buyer    `json:"buyer"`
	ShipTo      *Address `json:"ship_to,omitempty"`
	// ShippingMethod is the fulfillment option chosen (its id and title).
	ShippingMethod *ShippingMethod `json:"shipping_method,omitempty"`
	// PaymentRef is the payment provider's id for the charge; Payment
	// says where the money stands (PaymentCaptured …).
	PaymentRef string `json:"payment_ref,omitempty"`
	Payment    string `json:"payment,omitempty"`
	// StoreID and StoreURL are the store's record of the order once it
	// was written there.
	StoreID  string `json:"store_id,omitempty"`
	StoreURL string `json:"store_url,omitempty"`
	// StoreWriteAt is when the orders service last started writing the
	// order to the store, recorded before the write: a write whose answer
	// is lost (a dropped connection, a 5xx, the process dying) may have
	// reached the store, and a store whose lookups lag (a search index)
	// may not show it for a while. Until the store's lag after it has
	// passed, "not found" does not mean "not written".
	StoreWriteAt time.Time `json:"store_write_at,omitzero"`
	// Fulfillments and Adjustments are what the store and the payment
	// provider reported since.
	Fulfillments []Fulfillment `json:"fulfillments,omitempty"`
	Adjustments  []Adjustment  `json:"adjustments,omitempty"`
	// Token opens the order's status page (permalink_url ?t=).
	Token   string       `json:"token,omitempty"`
	History []OrderEvent `json:"history,omitempty"`
}

// Order statuses agents see (ACP 2026-04-17; older versions map
// OrderCompleted to "fulfilled" and have no OrderProcessing).
const (
	OrderCreated      = "created"
	OrderConfirmed    = "confirmed"
	OrderManualReview = "manual_review"
	OrderProcessing   = "processing"
	OrderShipped      = "shipped"
	OrderCompleted    = "completed"
	OrderCanceled     = "canceled"
)

// Where an order's money stands (Order.Payment).
const (
	PaymentStateAuthorized = "authorized" // held, to be captured
	PaymentStateCaptured   = "captured"
	PaymentStateReleased   = "released" // authorization canceled
	PaymentStateRefunded   = "refunded"
)

// Placed reports whether the order was paid for (or its money is held):
// from then on it is the shop's to fulfil and the agent's to hear about.
func (o *Order) Placed() bool {
	switch o.Status {
	case "", "pending_payment", "payment_unknown", "requires_authentication", "payment_declined":
		return false
	}
	return true
}

// SetStatus moves the order to status, noting it in the history with why;
// it reports whether the status changed.
func (o *Order) SetStatus(at time.Time, status, note string) bool {
	if o.Status == status {
		return false
	}
	o.Status = status
	o.UpdatedAt = at.UTC()
	o.History = append(o.History, OrderEvent{At: at.UTC(), Status: status, Note: note})
	return true
}

// Note adds an entry to the history without a change of status.
func (o *Order) Note(at time.Time, note string) {
	o.UpdatedAt = at.UTC()
	o.History = append(o.History, OrderEvent{At: at.UTC(), Status: o.Status, Note: note})
}

// Refunded is the sum of completed refunds, in minor units.
func (o *Order) Refunded() int64 {
	var n int64
	for _, a := range o.Adjustments {
		if a.Type == "refund" && a.Status == "completed" {
			n += a.Amount
		}
	}
	return n
}

// OrderEvent is one entry of an order's history.
type OrderEvent struct {
	At     time.Time `json:"at"`
	Status string    `json:"status"`
	Note   string    `json:"note,omitempty"`
}

// OrderLine is one ordered variant. Quantity is what was ordered; Current
// what is still ordered after cancellations and returns (nil: Quantity);
// Fulfilled what has been shipped or delivered.
type OrderLine struct {
	ID        string `json:"id,omitempty"`
	VariantID string `json:"variant_id"`
	ProductID string `json:"product_id"`
	Title     string `json:"title"`
	Quantity  int64  `json:"quantity"`
	Current   *int64 `json:"current,omitempty"`
	Fulfilled int64  `json:"fulfilled,omitempty"`
	UnitPrice Money  `json:"unit_price"`
	// Total is what the buyer pays for the line (after discounts), tax
	// included. Tax is the tax added to the line, so Total − Tax is its
	// net amount; with prices that include tax (Order.TaxIncluded) the
	// line's Tax is 0 and its share of the tax is only in Order.Tax.
	Total Money `json:"total"`
	Tax   Money `json:"tax,omitzero"`
}

// PricesIncludeTax reports whether o's prices contain its tax: TaxIncluded,
// or, for an order recorded without that flag (before it existed, or
// while the config changed), a total that is subtotal plus shipping
// although there is tax.
func (o Order) PricesIncludeTax() bool {
	return o.TaxIncluded || o.Tax.Amount > 0 && o.Total.Amount == o.Subtotal.Amount+o.Shipping.Amount
}

// CurrentQuantity is what is still ordered.
func (l OrderLine) CurrentQuantity() int64 {
	if l.Current != nil {
		return *l.Current
	}
	return l.Quantity
}

// ShippingMethod is the fulfillment option of an order.
type ShippingMethod struct {
	ID    string `json:"id"`
	Title string `json:"title,omitempty"`
	// Type is shipping, digital or pickup.
	Type string `json:"type,omitempty"`
}

// Fulfillment is one shipment or delivery of some of an order's lines.
type Fulfillment struct {
	ID string `json:"id"`
	// Type is shipping, pickup or digital; Status one of ACP's fulfillment
	// statuses (pending, shipped, in_transit, delivered, canceled …).
	Type           string             `json:"type"`
	Status         string             `json:"status,omitempty"`
	Lines          []LineRef          `json:"lines,omitempty"`
	Carrier        string             `json:"carrier,omitempty"`
	TrackingNumber string             `json:"tracking_number,omitempty"`
	TrackingURL    string             `json:"tracking_url,omitempty"`
	Events         []FulfillmentEvent `json:"events,omitempty"`
}

// LineRef names a quantity of one order line.
type LineRef struct {
	ID       string `json:"id"`
	Quantity int64  `json:"quantity"`
}

// FulfillmentEvent is one step of a fulfillment (shipped, delivered …).
type FulfillmentEvent struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Adjustment is a change to an order after it was placed: a refund, a
// dispute, a cancellation. Amount is tax-inclusive, in minor units.
type Adjustment struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	OccurredAt time.Time `json:"occurred_at"`
	Amount     int64     `json:"amount,omitempty"`
	Currency   string    `json:"currency,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Lines      []LineRef `json:"lines,omitempty"`
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
	// Discrepancy says, in words, how the store's record differs from what
	// the buyer was charged (a total the store computed differently, its
	// own tax added); empty when they agree or the store cannot tell. The
	// order stands, but a person must look: the orders service notes it in
	// the order's history and raises the store_total_mismatch alert.
	Discrepancy string `json:"discrepancy,omitempty"`
	// Permalink asks for URL to become the order's permalink_url (the
	// shop chose the store's own order status page over the bridge's).
	Permalink bool `json:"permalink,omitempty"`
}

// OrderStore is implemented by adapters that write orders back to the store.
// FindOrder finds an order by the bridge's order id (ErrNotFound if the store
// has none). WriteOrder creates it; a store API that cannot deduplicate may
// create a second order when called twice, so after any failed WriteOrder
// the caller (the orders outbox) looks the order up with FindOrder before
// writing again. A refusal no retry can change wraps ErrOrderRefused; only
// refusals of the order itself (stock gone, product deleted) may, never
// the bridge's own setup (a wrong token), since a refusal cancels the order.
type OrderStore interface {
	WriteOrder(ctx context.Context, o Order) (StoreOrder, error)
	FindOrder(ctx context.Context, orderID string) (StoreOrder, error)
}

// StockReader reports a variant's live stock as the store counts it. The
// bridge's own holds (orders it took that the store has not counted yet)
// are the bridge's to subtract: the checkout does, in the same transaction
// that holds more, so that replicas sharing a database never sell the last
// unit twice.
type StockReader interface {
	Stock(ctx context.Context, variantID string) (StockLevel, error)
}

// LaggingOrderStore is implemented by store adapters whose FindOrder may
// not show an order for a while after the store took it (lookups through
// a search index). After a write with no clear answer
// (Order.StoreWriteAt), the orders service trusts their "not found" only
// once LookupLag has passed; before, writing again could make a second
// order.
type LaggingOrderStore interface {
	LookupLag() time.Duration
}

// OrderStockCounter is implemented by store adapters whose stock figure
// takes an order's units as soon as WriteOrder has created it (store APIs
// decrement stock when they create the order). For them an order's hold
// ends with its write: counted by the store and held by the bridge, the
// units would be counted twice. The CSV adapter's export counts orders
// only once the shop imported them, so its holds stay.
type OrderStockCounter interface {
	CountsWrittenOrders() bool
}

// StockLevel is a variant's stock in the store.
type StockLevel struct {
	// Tracked is false when the store does not count the variant's stock:
	// there is nothing to run out of, and OnHand means nothing.
	Tracked bool
	// OnHand is the store's own figure, before the bridge's holds. It may be
	// negative (a store that lets stock go below zero).
	OnHand int64
	// HoldsSince says which holds OnHand does not include yet: those of
	// orders placed at or after it. The zero time counts every hold (a
	// store whose figure never includes an order the bridge still holds).
	HoldsSince time.Time
	// Shared lists the other variants that sell from the same figure
	// (WooCommerce variations on their parent's stock): their holds count
	// against OnHand too.
	Shared []string
}

// HoldCounter counts the bridge's holds (ReservationStore.Reserved).
type HoldCounter interface {
	Reserved(ctx context.Context, variantID string, since time.Time) (int64, error)
}

// Available is what can still be sold of variantID at level: OnHand less
// what orders hold that the store has not counted (since HoldsSince). It
// is the true difference and may be negative: a store figure that still
// shows stock orders have since taken means the shop is oversold, and a
// comforting zero would hide that from the admin too. An untracked level
// has nothing to count: 0.
func (l StockLevel) Available(ctx context.Context, holds HoldCounter, variantID string) (int64, error) {
	if !l.Tracked {
		return 0, nil
	}
	if holds == nil {
		return 0, errors.New("no hold counter to subtract the bridge's holds with")
	}
	n := l.OnHand
	for _, v := range append([]string{variantID}, l.Shared...) {
		held, err := holds.Reserved(ctx, v, l.HoldsSince)
		if err != nil {
			return 0, fmt.Errorf("holds of variant %q: %w", v, err)
		}
		n -= held
	}
	return n, nil
}

// StockCheck is one variant's limit on a hold (Change.StockChecks): what
// orders placed at or after Since hold of VariantID and of the variants
// Shared with it, plus what the change holds of them, must not exceed
// OnHand.
type StockCheck struct {
	VariantID string
	Shared    []string
	OnHand    int64
	Since     time.Time
}

// ErrShortStock: a change's hold would take more than a variant's stock.
// Commit returns it inside a *ShortStockError naming the variant.
var ErrShortStock = errors.New("not enough stock")

// ShortStockError names the variant a hold lacked stock of.
type ShortStockError struct{ VariantID string }

func (e *ShortStockError) Error() string {
	return fmt.Sprintf("not enough stock of variant %q", e.VariantID)
}

// Unwrap makes errors.Is(err, ErrShortStock) hold.
func (e *ShortStockError) Unwrap() error { return ErrShortStock }

// OrderNotice is an event the agent hears about an order (an ACP webhook).
// It is fixed when it happens: every delivery attempt sends the same event
// id and the order as it was then.
type OrderNotice struct {
	ID    string    `json:"id"`
	Type  string    `json:"type"` // NoticeOrderCreate or NoticeOrderUpdate
	At    time.Time `json:"at"`
	Order Order     `json:"order"`
}

// Notice types (ACP webhook event types).
const (
	NoticeOrderCreate = "order_create"
	NoticeOrderUpdate = "order_update"
)

// OrderUpdate is news about an order from the store: a new status, a
// fulfillment added or changed, or both. Applying the same update twice
// changes nothing, so sources may report an update more than once.
type OrderUpdate struct {
	// OrderID is the bridge's order id.
	OrderID string
	// StoreID is the store's id of the order the update is about; empty
	// when the source cannot tell. A store may hold a copy carrying the
	// bridge's order id (a duplicate create, an admin's "duplicate order"
	// copying its meta): an update whose StoreID differs from the order's
	// StoreID is about that copy and is ignored.
	StoreID string
	// Status is the order's new status (OrderShipped …); "" leaves it.
	Status string
	// Fulfillment is added, or replaces the one with its ID.
	Fulfillment *Fulfillment
	// Reason says why, in words (a cancellation's reason, say).
	Reason string
	At     time.Time
}

// OrderUpdateSource is implemented by adapters that learn of fulfillments
// and cancellations by polling (the CSV adapter's status file). Each call
// returns the updates seen since the last one; after a restart it may
// return old ones again.
type OrderUpdateSource interface {
	OrderUpdates(ctx context.Context) ([]OrderUpdate, error)
}

// ErrOrderRefused wraps a store's refusal of an order that no retry can
// change (the stock is gone, a product was deleted): the order must be
// canceled or looked at by a person, not retried.
var ErrOrderRefused = errors.New("the store refused the order")

// TotalDiscrepancy says, in words, how the total a store recorded for an
// order (its currency code and decimal amount, as the store wrote them)
// differs from what the buyer was charged; "" when they agree. store
// names the store in the words ("Shopify", "the shop"). What the store
// wrote is cut short: it ends up in logs and in the order's history.
func TotalDiscrepancy(store string, paid Money, currency, amount string) string {
	if currency != paid.Currency {
		return fmt.Sprintf("%s recorded the order in %s, the buyer paid in %s", store, excerpt(currency, 8), paid.Currency)
	}
	total, err := ParseMoney(amount, paid.Currency)
	switch {
	case err != nil:
		return fmt.Sprintf("%s's order total %q could not be read: %v", store, excerpt(amount, 32), err)
	case total.Amount != paid.Amount:
		return fmt.Sprintf("%s's order total is %s, the buyer was charged %s", store, total, paid)
	}
	return ""
}

// excerpt is s cut to at most n bytes, on a rune boundary.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
