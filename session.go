package bridge

import (
	"context"
	"errors"
	"time"
)

// Session is a checkout session in the bridge's canonical form, shaped after
// ACP 2026-04-17. Each API version is an encoding of it (package acp); the
// engine (package checkout) is the only writer. Amounts are integers in the
// minor units of Currency, like every Money inside the bridge.
type Session struct {
	ID string `json:"id"`
	// Owner is the name of the API key that created the session; any other
	// key gets "not found".
	Owner string `json:"owner"`
	// Rev counts committed changes; storage writes a session only over the
	// revision it was read at, so concurrent changes cannot overwrite each
	// other.
	Rev    int64         `json:"rev"`
	Status SessionStatus `json:"status"`
	// APIVersion is the ACP version the session was created with; its
	// order's webhooks speak it.
	APIVersion string        `json:"api_version,omitempty"`
	Currency   string        `json:"currency"` // ISO 4217, upper case
	Lines      []SessionLine `json:"lines"`
	Buyer      *Buyer        `json:"buyer,omitempty"`
	// ShipTo is the fulfillment address; Contact the fulfillment contact.
	ShipTo  *Address `json:"ship_to,omitempty"`
	Contact *Buyer   `json:"contact,omitempty"`
	// Options are the fulfillment options the current items and address
	// allow; Selected is the id of the chosen one ("" = none yet).
	Options  []FulfillmentOption `json:"options"`
	Selected string              `json:"selected,omitempty"`
	Totals   Totals              `json:"totals"`
	Messages []Message           `json:"messages"`
	Links    []Link              `json:"links"`
	// Interventions is what the agent and the bridge both support ("3ds");
	// nil when the agent declared no capabilities (older versions), empty
	// when it declared none in common — so the JSON keeps [] apart from
	// null.
	Interventions []string `json:"interventions"`
	// Auth is set while the payment waits for 3-D Secure.
	Auth *AuthChallenge `json:"auth,omitempty"`
	// OrderID is fixed at the first complete attempt and kept, so a retried
	// complete charges under the same order; Order is set once completed.
	OrderID string `json:"order_id,omitempty"`
	// OrderToken opens the order's status page (permalink_url ?t=).
	OrderToken string        `json:"order_token,omitempty"`
	Order      *SessionOrder `json:"order,omitempty"`
	// PaymentAttempts counts definitive payment failures; each new attempt
	// gets its own payment idempotency key (a declined card must not replay
	// as declined). AuthRounds numbers the answers to 3-D Secure challenges.
	PaymentAttempts int `json:"payment_attempts,omitempty"`
	AuthRounds      int `json:"auth_rounds,omitempty"`
	// Pending is the payment started by the current complete; it stays
	// while its outcome is unknown, so a retry settles it under the same
	// key and amount.
	Pending *PendingPayment `json:"pending,omitempty"`
	// StockFallback is true when live stock could not be read and the
	// snapshot's figures were used.
	StockFallback bool      `json:"stock_fallback,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// UTC returns s with every time in UTC, the form storage keeps (and
// compares) it in.
func (s Session) UTC() Session {
	s.CreatedAt, s.UpdatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC(), s.ExpiresAt.UTC()
	if s.Options != nil {
		opts := make([]FulfillmentOption, len(s.Options))
		for i, o := range s.Options {
			o.Earliest, o.Latest = o.Earliest.UTC(), o.Latest.UTC()
			opts[i] = o
		}
		s.Options = opts
	}
	return s
}

// SessionStatus is a session's state, in ACP 2026-04-17's names; older
// versions encode the states they lack (expired → canceled, …).
type SessionStatus string

// The states the engine uses.
const (
	StatusNotReady           SessionStatus = "not_ready_for_payment"
	StatusReady              SessionStatus = "ready_for_payment"
	StatusAuthRequired       SessionStatus = "authentication_required"
	StatusCompleteInProgress SessionStatus = "complete_in_progress"
	StatusCompleted          SessionStatus = "completed"
	StatusCanceled           SessionStatus = "canceled"
	StatusExpired            SessionStatus = "expired"
)

// Final reports whether no further change is possible.
func (s SessionStatus) Final() bool {
	return s == StatusCompleted || s == StatusCanceled || s == StatusExpired
}

// SessionLine is one item of a session, priced from the catalog snapshot.
type SessionLine struct {
	// ID is the line's id in the session ("li_…"); VariantID is the item id
	// the agent asked for.
	ID        string `json:"id"`
	VariantID string `json:"variant_id"`
	ProductID string `json:"product_id,omitempty"`
	Title     string `json:"title,omitempty"`
	ImageURL  string `json:"image_url,omitempty"`
	URL       string `json:"url,omitempty"`
	Quantity  int64  `json:"quantity"`
	// Digital lines need no shipping.
	Digital bool `json:"digital,omitempty"`
	// WeightGrams is the unit weight used by per-weight shipping rates (0 =
	// unknown).
	WeightGrams int64 `json:"weight_grams,omitempty"`
	// Available is the stock figure the line was checked against; nil when
	// the store does not track stock for the variant.
	Available *int64 `json:"available,omitempty"`
	// UnitAmount is the unit price; Base = UnitAmount × Quantity; Subtotal =
	// Base − Discount; Total = Subtotal + Tax (Tax is 0 and included in
	// Base when prices include tax).
	UnitAmount int64 `json:"unit_amount"`
	Base       int64 `json:"base"`
	Discount   int64 `json:"discount"`
	Subtotal   int64 `json:"subtotal"`
	Tax        int64 `json:"tax"`
	Total      int64 `json:"total"`
}

// FulfillmentOption is one way to get the items to the buyer.
type FulfillmentOption struct {
	ID       string `json:"id"`
	Type     string `json:"type"` // shipping | digital
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
	Carrier  string `json:"carrier,omitempty"`
	// Earliest and Latest bound the delivery; zero when unknown.
	Earliest time.Time `json:"earliest,omitzero"`
	Latest   time.Time `json:"latest,omitzero"`
	Subtotal int64     `json:"subtotal"`
	Tax      int64     `json:"tax"`
	Total    int64     `json:"total"`
}

// Totals are the session's sums; Total = Subtotal + Fulfillment + Tax
// (Subtotal = ItemsBase − ItemsDiscount − Discount). Tax is 0 when prices
// include tax; TaxIncluded then says how much of the total is tax.
type Totals struct {
	ItemsBase     int64 `json:"items_base"`
	ItemsDiscount int64 `json:"items_discount"`
	Subtotal      int64 `json:"subtotal"`
	Discount      int64 `json:"discount"`
	Fulfillment   int64 `json:"fulfillment"`
	Tax           int64 `json:"tax"`
	TaxIncluded   int64 `json:"tax_included,omitempty"`
	Total         int64 `json:"total"`
}

// Message is something the agent should tell the buyer or act on. Codes
// are ACP 2026-04-17's; older versions map codes they lack.
type Message struct {
	Type MessageType `json:"type"`
	// Code is one of the Msg* constants (empty for info).
	Code string `json:"code,omitempty"`
	// Param is an RFC 9535 JSONPath into the canonical session
	// ("$.line_items[0]"); codecs rewrite it for versions that name things
	// differently.
	Param      string `json:"param,omitempty"`
	Content    string `json:"content"`
	Resolution string `json:"resolution,omitempty"`
}

// MessageType is info, warning or error.
type MessageType string

// Message types.
const (
	MessageInfo    MessageType = "info"
	MessageWarning MessageType = "warning"
	MessageError   MessageType = "error"
)

// Message codes the engine uses (ACP 2026-04-17 names).
const (
	MsgMissing              = "missing"
	MsgInvalid              = "invalid"
	MsgOutOfStock           = "out_of_stock"
	MsgQuantityExceeded     = "quantity_exceeded"
	MsgPaymentDeclined      = "payment_declined"
	MsgRequires3DS          = "requires_3ds"
	MsgNotFound             = "not_found"
	MsgRegionRestricted     = "region_restricted"
	MsgInterventionRequired = "intervention_required"
	MsgLowStock             = "low_stock" // warning
)

// Link is one of the merchant's policy pages.
type Link struct {
	Type string `json:"type"` // terms_of_use | privacy_policy | return_policy | …
	URL  string `json:"url"`
}

// AuthChallenge is what the agent needs to run 3-D Secure.
type AuthChallenge struct {
	AcquirerBIN        string `json:"acquirer_bin"`
	AcquirerCountry    string `json:"acquirer_country"`
	AcquirerMerchantID string `json:"acquirer_merchant_id"`
	MerchantName       string `json:"merchant_name"`
	DirectoryServer    string `json:"directory_server"` // visa | mastercard | american_express
	// PaymentRef is the provider's id of the payment waiting for it;
	// TokenHash identifies the payment token it was started with (the
	// token itself is never stored).
	PaymentRef string `json:"payment_ref,omitempty"`
	TokenHash  string `json:"token_hash,omitempty"`
}

// PendingPayment is a charge sent to the payment provider whose outcome
// is not recorded yet.
type PendingPayment struct {
	// Key is the payment idempotency key; Amount the total charged.
	Key    string `json:"key"`
	Amount int64  `json:"amount"`
	// TokenHash identifies the payment token (never stored itself);
	// PaymentRef continues a 3-D Secure payment.
	TokenHash  string `json:"token_hash"`
	PaymentRef string `json:"payment_ref,omitempty"`
	// Unknown is set when the provider did not answer.
	Unknown bool `json:"unknown,omitempty"`
}

// SessionOrder is the order a completed session made.
type SessionOrder struct {
	ID           string `json:"id"`
	PermalinkURL string `json:"permalink_url"`
}

// IdempotencyRecord remembers a request made with an Idempotency-Key, so a
// retry gets the first answer instead of a second side effect.
type IdempotencyRecord struct {
	// Scope is the caller's identity and the operation's path; Key the
	// caller's Idempotency-Key.
	Scope string `json:"scope"`
	Key   string `json:"key"`
	// RequestHash identifies the request body semantically (key order and
	// number spelling do not matter).
	RequestHash string `json:"request_hash"`
	// Token identifies the request holding an in-flight claim; LockedUntil
	// is when another request may take it over (the holder crashed).
	Token       string    `json:"token,omitempty"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	// Done is true once Outcome holds the answer.
	Done bool `json:"done"`
	// Outcome is the answer, version-independent (package checkout's
	// encoding); replays encode it for the caller's version.
	Outcome   []byte    `json:"outcome,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// IdempotencyOp says what a Change does with its idempotency record.
type IdempotencyOp int

// Idempotency operations.
const (
	// IdemNone leaves records alone.
	IdemNone IdempotencyOp = iota
	// IdemInsert adds the record; ErrIdempotencyExists if scope+key is taken.
	IdemInsert
	// IdemFinish replaces the caller's own in-flight claim (same Token)
	// with the record; ErrIdempotencyLost if the claim is gone or another's.
	IdemFinish
	// IdemRelease deletes the caller's own in-flight claim (same Token): the
	// request failed in a way that must not be replayed (5xx).
	IdemRelease
	// IdemTakeover replaces an in-flight claim whose LockedUntil has passed
	// with the record (a new claim); ErrIdempotencyExists if it is done or
	// still locked.
	IdemTakeover
)

// Errors of CheckoutStore.Commit.
var (
	// ErrStale: the session changed since it was read.
	ErrStale = errors.New("session changed concurrently")
	// ErrIdempotencyExists: another request holds or has answered the key.
	ErrIdempotencyExists = errors.New("idempotency key already used")
	// ErrIdempotencyLost: the in-flight claim was taken over.
	ErrIdempotencyLost = errors.New("idempotency claim lost")
)

// Change is one atomic write of the checkout: the session, the order it
// made, the stock it holds and the idempotency record guarding the request
// all commit together or not at all.
type Change struct {
	// Session is inserted when Rev is 1 and otherwise written only over
	// revision Rev−1 (ErrStale if the stored one differs).
	Session *Session
	// Order is inserted or replaced by its ID (see Order.Rev).
	Order *Order
	// Jobs are queued; a job whose ID exists already is left alone.
	Jobs []Job
	// Hold reserves stock for HoldOrderID (idempotent per order);
	// ReleaseOrderID drops an order's reservations.
	HoldOrderID    string
	Hold           []Reservation
	ReleaseOrderID string
	// StockChecks limit Hold: unless the order holds stock already, the
	// change fails with a *ShortStockError (nothing of it written) when a
	// variant checked would be held beyond its StockCheck. The check and
	// the hold are one step: concurrent commits, from any process sharing
	// the database, behave as if made one at a time. Variants not checked
	// are held without a limit.
	StockChecks []StockCheck
	// Idempotency is applied as IdemOp says.
	IdemOp      IdempotencyOp
	Idempotency *IdempotencyRecord
}

// CheckoutStore keeps sessions, their orders and the idempotency records.
type CheckoutStore interface {
	// Session returns the session id of owner; ErrNotFound if there is none
	// or it belongs to another owner.
	Session(ctx context.Context, owner, id string) (Session, error)
	// Idempotency returns the record of key in scope; ErrNotFound if none
	// or expired.
	Idempotency(ctx context.Context, scope, key string) (IdempotencyRecord, error)
	// Commit applies c in one transaction.
	Commit(ctx context.Context, c Change) error
	// Order returns an order by id, with its Rev; ErrNotFound if none.
	Order(ctx context.Context, id string) (Order, error)
	// Orders lists orders, most recent first; status "" matches all.
	Orders(ctx context.Context, status string, limit int) ([]Order, error)
	// OrderByPaymentRef finds the order of a payment by the provider's id
	// of it (the payment provider's webhooks name the charge, not the
	// order); ErrNotFound if none.
	OrderByPaymentRef(ctx context.Context, ref string) (Order, error)
	// PurgeExpired deletes idempotency records expired at now and sessions
	// whose expiry passed more than keep ago; it returns how many rows went.
	PurgeExpired(ctx context.Context, now time.Time, keep time.Duration) (int64, error)
}
