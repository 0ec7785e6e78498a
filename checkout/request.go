package checkout

import "github.com/acp-bridge/bridge"

// The canonical requests: what every API version's request decodes to
// (package acp). Pointers and nil slices mean "not given" — an update
// changes only what it names.

// Item is one requested item: a variant id and how many.
type Item struct {
	ID       string
	Quantity int64
}

// CreateRequest opens a session.
type CreateRequest struct {
	Items []Item
	// Currency is the agent's currency ("" when its version has none); it
	// must be the shop's.
	Currency string
	Buyer    *bridge.Buyer
	ShipTo   *bridge.Address
	Contact  *bridge.Buyer
	// Interventions the agent supports ("3ds", …); nil when it sent no
	// capabilities.
	Interventions []string
}

// UpdateRequest changes an open session.
type UpdateRequest struct {
	Items   []Item // nil = unchanged
	Buyer   *bridge.Buyer
	ShipTo  *bridge.Address
	Contact *bridge.Buyer
	// SelectedOption picks a fulfillment option by id (nil = unchanged).
	SelectedOption *string
}

// CompleteRequest pays for a ready session.
type CompleteRequest struct {
	Buyer   *bridge.Buyer
	Payment Payment
	// Auth is the 3-D Secure result, when the session asked for it.
	Auth *bridge.AuthResult
}

// Payment is the agent's payment data.
type Payment struct {
	// HandlerID names the payment handler (2026-01-30+); Provider the PSP
	// (up to 2026-01-16, "stripe").
	HandlerID      string
	Provider       string
	Token          string
	BillingAddress *bridge.Address
}

// CancelRequest ends a session; the reason is the agent's intent trace.
type CancelRequest struct {
	ReasonCode string
	Summary    string
}
