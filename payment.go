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
	// AuthorizeOnly asks for an authorization to capture later (capture
	// after_store): the money is held, not taken, until Capture.
	AuthorizeOnly bool
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
	// Authorized is set with PaymentSucceeded when the money is only held
	// (AuthorizeOnly): it still has to be captured or released.
	Authorized bool
}

// PaymentAction captures, releases or refunds a payment made before. Like
// charges, actions are idempotent by IdempotencyKey.
type PaymentAction struct {
	IdempotencyKey string
	OrderID        string
	// Ref is the provider's id of the payment (PaymentResult.Ref).
	Ref      string
	Amount   int64 // minor units; 0 means the whole payment
	Currency string
	Reason   string
}

// ErrPaymentFinal wraps provider refusals that no retry can change (the
// authorization expired, the payment was already refunded): the order
// needs a person.
var ErrPaymentFinal = errors.New("payment action refused for good")

// ErrPaymentUnavailable wraps provider failures worth retrying later
// (timeouts, 5xx): the request is not stored as answered.
var ErrPaymentUnavailable = errors.New("payment provider unavailable")
