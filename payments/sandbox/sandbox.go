// Package sandbox is a payment provider for local trials: it takes no
// money and answers by test card. It is for development only — the config
// refuses payments.provider: sandbox unless mode: development.
//
// The outcome depends on the last four digits of the payment token, like a
// PSP's test cards:
//
//	4242  succeeds
//	3155  requires 3-D Secure; the retry carrying PaymentRef and an Auth
//	      whose Outcome is authenticated, attempt_acknowledged or
//	      informational succeeds, any other outcome is declined
//	      ("authentication failed"); a retry with PaymentRef but no Auth
//	      gets the same challenge again
//	9995  declined: insufficient_funds
//	0069  declined: expired_card
//	other succeeds
//
// Charges are idempotent by IdempotencyKey, in memory: the same key gets
// the same result and the same Ref for the life of the process. Refs are
// derived from the key ("pi_sandbox_" + 16 hex digits of its SHA-256), so
// they are stable across restarts too.
//
// A charge with AuthorizeOnly holds the money (Authorized in the result)
// until Capture or Release, like Stripe's manual capture. Capture, Release
// and Refund follow the Stripe provider's rules, on the payments this
// process made:
//
//	Capture  authorized → captured (the whole or Amount, at most what is
//	         held); already captured → nil when the amount matches;
//	         released → ErrPaymentFinal
//	Release  authorized → released; already released → nil;
//	         captured → ErrPaymentFinal (refund it instead)
//	Refund   captured → a refund ("re_sandbox_…", from the key) of Amount
//	         or all that is left; nothing left, more than is left, or not
//	         captured → ErrPaymentFinal
//
// An unknown Ref is ErrPaymentFinal: the sandbox forgets its payments on
// restart. Actions are idempotent by IdempotencyKey: the same key replays
// the first answer (refusals too); the same key with another action or
// other parameters is ErrPaymentFinal, as Stripe's idempotency_error.
package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
)

// Test card endings.
const (
	CardSuccess           = "4242"
	CardRequires3DS       = "3155"
	CardInsufficientFunds = "9995"
	CardExpired           = "0069"
)

// The 3-D Secure challenge the sandbox asks for.
const (
	AcquirerBIN        = "424242"
	AcquirerCountry    = "US"
	AcquirerMerchantID = "sandbox_merchant"
	DirectoryServer    = "visa"
)

// maxMerchantName is the protocol's limit on acquirer_details.merchant_name.
const maxMerchantName = 40

// Provider is the sandbox bridge.PaymentProvider. Use New; the zero value
// is not ready.
type Provider struct {
	merchantName string

	mu       sync.Mutex
	results  map[string]bridge.PaymentResult // by idempotency key
	pending  map[string]pendingCharge        // refs waiting for 3-D Secure
	payments map[string]*payment             // by ref: what succeeded
	actions  map[string]actionResult         // by idempotency key
}

// pendingCharge is what a payment waiting for 3-D Secure will charge: the
// first attempt's terms, not the continuation's.
type pendingCharge struct {
	amount        int64
	authorizeOnly bool
}

// payment is where the money of a successful charge stands.
type payment struct {
	amount   int64 // charged or held
	state    string
	captured int64
	refunded int64
}

// actionResult is the first answer to an action's idempotency key.
type actionResult struct {
	fingerprint string
	refundID    string
	err         error
}

var _ bridge.PaymentProvider = (*Provider)(nil)

// New returns a sandbox provider; merchantName is shown in 3-D Secure
// challenges (cut to 40 characters).
func New(merchantName string) *Provider {
	name := strings.TrimSpace(merchantName)
	if utf8.RuneCountInString(name) > maxMerchantName {
		name = string([]rune(name)[:maxMerchantName])
	}
	if name == "" {
		name = "Sandbox merchant"
	}
	return &Provider{merchantName: name, results: map[string]bridge.PaymentResult{}, pending: map[string]pendingCharge{},
		payments: map[string]*payment{}, actions: map[string]actionResult{}}
}

// ErrInvalidRequest is returned for a request no provider would accept: no
// idempotency key, an amount ≤ 0, no currency, no token.
var ErrInvalidRequest = errors.New("sandbox: invalid payment request")

// authenticated are the 3-D Secure outcomes that let a payment through.
var authenticated = map[string]bool{"authenticated": true, "attempt_acknowledged": true, "informational": true}

// Charge answers by test card; see the package documentation.
func (p *Provider) Charge(ctx context.Context, r bridge.PaymentRequest) (bridge.PaymentResult, error) {
	if err := ctx.Err(); err != nil {
		return bridge.PaymentResult{}, fmt.Errorf("%w: %v", bridge.ErrPaymentUnavailable, err)
	}
	switch {
	case r.IdempotencyKey == "":
		return bridge.PaymentResult{}, fmt.Errorf("%w: no idempotency key", ErrInvalidRequest)
	case r.Amount <= 0:
		return bridge.PaymentResult{}, fmt.Errorf("%w: amount %d is not positive", ErrInvalidRequest, r.Amount)
	case r.Currency == "":
		return bridge.PaymentResult{}, fmt.Errorf("%w: no currency", ErrInvalidRequest)
	case r.Token == "" && r.PaymentRef == "":
		return bridge.PaymentResult{}, fmt.Errorf("%w: no payment token", ErrInvalidRequest)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if res, ok := p.results[r.IdempotencyKey]; ok {
		return res, nil
	}
	if _, waiting := p.pending[r.PaymentRef]; r.PaymentRef != "" && r.Auth == nil && waiting {
		// Continued without a 3-D Secure result: the payment still waits
		// for one. Nothing happened, so nothing is remembered under the
		// key — the retry that brings the result may use the same key.
		return p.challenge(r.PaymentRef), nil
	}
	var res bridge.PaymentResult
	if r.PaymentRef != "" {
		res = p.continue3DS(r)
	} else {
		res = p.charge(r, pendingCharge{amount: r.Amount, authorizeOnly: r.AuthorizeOnly})
	}
	p.results[r.IdempotencyKey] = res
	return res, nil
}

// paid records a successful payment of c under ref; p.mu is held.
func (p *Provider) paid(ref string, c pendingCharge) bridge.PaymentResult {
	pay := &payment{amount: c.amount, state: bridge.PaymentStateCaptured, captured: c.amount}
	if c.authorizeOnly {
		pay.state, pay.captured = bridge.PaymentStateAuthorized, 0
	}
	p.payments[ref] = pay
	return bridge.PaymentResult{Status: bridge.PaymentSucceeded, Ref: ref, Authorized: c.authorizeOnly}
}

func (p *Provider) challenge(ref string) bridge.PaymentResult {
	return bridge.PaymentResult{Status: bridge.PaymentRequiresAction, Ref: ref, Challenge: &bridge.AuthChallenge{
		AcquirerBIN:        AcquirerBIN,
		AcquirerCountry:    AcquirerCountry,
		AcquirerMerchantID: AcquirerMerchantID,
		MerchantName:       p.merchantName,
		DirectoryServer:    DirectoryServer,
		PaymentRef:         ref,
	}}
}

func (p *Provider) charge(r bridge.PaymentRequest, c pendingCharge) bridge.PaymentResult {
	ref := Ref(r.IdempotencyKey)
	switch last4(r.Token) {
	case CardRequires3DS:
		p.pending[ref] = c
		return p.challenge(ref)
	case CardInsufficientFunds:
		return declined(ref, "insufficient_funds", "Your card has insufficient funds.")
	case CardExpired:
		return declined(ref, "expired_card", "Your card has expired.")
	}
	return p.paid(ref, c)
}

// continue3DS finishes a payment that asked for 3-D Secure: it keeps the
// payment's ref, succeeds on an authenticated outcome and declines
// otherwise. A ref the sandbox never issued (or already finished) is
// declined too.
func (p *Provider) continue3DS(r bridge.PaymentRequest) bridge.PaymentResult {
	ref := r.PaymentRef
	c, ok := p.pending[ref]
	if !ok {
		return declined(ref, "payment_intent_unexpected_state", "This payment cannot be continued; start again.")
	}
	delete(p.pending, ref)
	if r.Auth == nil || !authenticated[r.Auth.Outcome] {
		return declined(ref, "authentication_failed", "authentication failed")
	}
	return p.paid(ref, c)
}

func declined(ref, code, msg string) bridge.PaymentResult {
	return bridge.PaymentResult{Status: bridge.PaymentDeclined, Ref: ref, DeclineCode: code, DeclineMessage: msg}
}

// Ref is the payment reference the sandbox gives the idempotency key key.
func Ref(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "pi_sandbox_" + hex.EncodeToString(sum[:8])
}

// last4 returns the token's last four characters (the whole token when
// shorter).
func last4(token string) string {
	token = strings.TrimSpace(token)
	if len(token) <= 4 {
		return token
	}
	return token[len(token)-4:]
}
