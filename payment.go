package bridge

import (
	"context"
	"errors"
)

// PaymentProvider charges the buyer for an order. Implementations must be
// idempotent by PaymentRequest.IdempotencyKey: the same key never charges
// twice, whatever happens to the network or the bridge between attempts.
type PaymentProvider interface {
	Charge(ctx context.Context, r PaymentRequest) (PaymentResult, error)
}

// PaymentRequest is one charge attempt.
type PaymentRequest struct {
	// IdempotencyKey is derived from the order id and the attempt number.
	IdempotencyKey string
	OrderID        string
	SessionID      string
	// HandlerID and Token are the agent's payment data (for Stripe, the
	// Shared Payment Token).
	HandlerID string
	Token     string
	Amount    int64 // minor units of Currency
	Currency  string
	// PaymentRef and Auth continue a payment that asked for 3-D Secure.
	PaymentRef string
	Auth       *AuthResult
}

// AuthResult is the agent's 3-D Secure outcome.
type AuthResult struct {
	Outcome       string // authenticated | denied | …
	Cryptogram    string
	ECI           string
	TransactionID string
	Version       string
}

// PaymentStatus is how a charge attempt ended.
type PaymentStatus string

// Payment statuses.
const (
	PaymentSucceeded      PaymentStatus = "succeeded"
	PaymentDeclined       PaymentStatus = "declined"
	PaymentRequiresAction PaymentStatus = "requires_action"
)

// PaymentResult is the provider's answer.
type PaymentResult struct {
	Status PaymentStatus
	// Ref is the provider's id of the payment (a PaymentIntent id).
	Ref string
	// DeclineCode and DeclineMessage say why, in the provider's code and
	// in words for the buyer.
	DeclineCode    string
	DeclineMessage string
	// Challenge is set with PaymentRequiresAction.
	Challenge *AuthChallenge
}

// ErrPaymentUnavailable wraps provider failures worth retrying later
// (timeouts, 5xx): the request is not stored as answered.
var ErrPaymentUnavailable = errors.New("payment provider unavailable")
