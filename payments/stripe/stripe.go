// Package stripe is the bridge.PaymentProvider for Stripe Shared Payment
// Tokens (SPT), built on stripe-go v82.
//
// One Charge:
//
//  1. reads the granted token (GET /v1/shared_payment/granted_tokens/{id})
//     and refuses it early, as a decline with a plain-words message, when
//     it is unknown, expired, deactivated, in another currency or limited
//     below the amount;
//  2. creates and confirms a PaymentIntent for the amount with the token
//     in the configured wire form, metadata order_id and session_id, and
//     the request's IdempotencyKey as Stripe's Idempotency-Key; with
//     PaymentRequest.AuthorizeOnly, capture_method=manual (the money is
//     held until Capture or Release);
//  3. maps the outcome: succeeded → PaymentSucceeded (Ref = PaymentIntent
//     id); requires_capture → PaymentSucceeded with Authorized set (whether
//     asked for or set so on the Stripe account: the money is held either
//     way and must be captured); a 402 card_error → PaymentDeclined with the
//     decline code and a sentence for the buyer; requires_action →
//     PaymentRequiresAction, with a Challenge when Config.ThreeDS is set
//     (see below); Stripe 5xx, 409, 429, timeouts and dropped
//     connections → retried under the same Idempotency-Key with
//     exponential backoff and jitter within Config.MaxRetryTime, then an
//     error wrapping bridge.ErrPaymentUnavailable; any other refusal
//     (400, 401, …) → a plain error (Stripe refused the request, nothing
//     was charged).
//
// A token that fails the early check is still sent to Stripe under the
// request's Idempotency-Key before the decline is returned: the check can
// fail because an earlier attempt under the same key (whose answer was
// lost to a timeout or a crash) used the token up. Stripe then replays that
// attempt's outcome, which wins; otherwise Stripe refuses the token itself
// and nothing is charged.
//
// 3-D Secure (see threeds.go): the agent authenticates the buyer itself
// (ACP 2026-04-17 authentication_metadata → authentication_result) and the
// bridge imports the result into the PaymentIntent, as Stripe allows for
// 3-D Secure run outside Stripe. With Config.ThreeDS (the acquirer details
// an agent's 3DS server needs), a PaymentIntent in requires_action is
// reported as PaymentRequiresAction with a Challenge: those details, the
// directory server of the card's brand (visa, mastercard,
// american_express; read from the PaymentIntent's payment method, the
// granted token's payment_method_details or the PaymentMethod itself) and
// the PaymentIntent id. A brand ACP has no directory server for, or no
// ThreeDS at all, gives no Challenge: the engine then asks the agent for
// another payment method (the PaymentIntent holds no money and is left as
// it is).
//
// The continuation (PaymentRequest.PaymentRef and Auth set) confirms that
// PaymentIntent (POST /v1/payment_intents/{id}/confirm, under the
// request's Idempotency-Key) with
// payment_method_options[card][three_d_secure][cryptogram|
// electronic_commerce_indicator|transaction_id|version] and
// error_on_requires_action=true when the outcome is authenticated,
// attempt_acknowledged or informational, and maps the answer like a
// charge's: succeeded → PaymentSucceeded, requires_capture → Authorized,
// a card_error or requires_payment_method → PaymentDeclined, still
// requires_action → declined "authentication_failed". Any other outcome
// (denied, rejected, abandoned, canceled, not_supported, errors) is
// declined at once with a sentence for the buyer and no call to Stripe;
// the PaymentIntent is not canceled (it holds no money, and a cancel is
// one more call that can fail) and stays unusable once the token expires.
// Without Auth (or without a cryptogram) the continuation only reads the
// PaymentIntent: paid if it is, else declined "authentication_failed".
// Failures worth retrying are ErrPaymentUnavailable as for charges.
//
// After the charge, Capture, Release and Refund act on the payment (see
// actions.go), idempotent by PaymentAction.IdempotencyKey and retried
// within the same budget. Their errors: bridge.ErrPaymentUnavailable for
// what a later retry may fix (5xx, 409, 429, timeouts, dropped
// connections, once the budget is spent); bridge.ErrPaymentFinal, with
// Stripe's message, for refusals no retry can change (an expired or
// canceled authorization, a payment already refunded, an amount too large,
// an unknown PaymentIntent, an idempotency key reused with other
// parameters); a plain *Error when Stripe refuses the key itself (401,
// 403), a configuration to fix.
//
// Neither the token nor the secret key ever appears in a returned error,
// and stripe-go's own logging is silenced (it logs request paths, which
// carry the token id).
package stripe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	stripego "github.com/stripe/stripe-go/v82"
)

// Defaults.
const (
	// DefaultStripeVersion is the preview API version that has SPT.
	DefaultStripeVersion = "2026-04-22.preview"
	// SPTParamPaymentMethodData is the current wire form of the token on
	// POST /v1/payment_intents (the default).
	SPTParamPaymentMethodData = "payment_method_data[shared_payment_granted_token]"
	// SPTParamTopLevel is the wire form of older doc revisions.
	SPTParamTopLevel = "shared_payment_granted_token"

	DefaultMaxRetryTime   = 10 * time.Second
	DefaultRequestTimeout = 20 * time.Second
)

// Config configures the provider.
type Config struct {
	// SecretKey is the Stripe secret (sk_…) or restricted (rk_…) key.
	SecretKey string
	// APIBase is the API's base URL; "" means Stripe's.
	APIBase string
	// StripeVersion is sent as Stripe-Version on every request; "" means
	// DefaultStripeVersion.
	StripeVersion string
	// SPTParam is the form field the token goes in: SPTParamPaymentMethodData
	// (default) or SPTParamTopLevel.
	SPTParam string
	// MaxRetryTime bounds the retries of 5xx, 409, 429, timeouts and dropped
	// connections inside one Charge, Capture, Release or Refund; default
	// 10s. The caller's context
	// bounds the whole call too.
	MaxRetryTime time.Duration
	// RequestTimeout bounds one HTTP attempt; default 20s.
	RequestTimeout time.Duration
	// HTTPClient is used for the requests; nil means a default client.
	// Its Transport is wrapped, not changed.
	HTTPClient *http.Client
	// ThreeDS, when set, answers a PaymentIntent that needs 3-D Secure
	// with a Challenge for the agent; nil keeps the behaviour without it
	// (no Challenge: the engine asks for another payment method).
	ThreeDS *ThreeDS
}

// Provider charges Shared Payment Tokens through Stripe. Use New.
type Provider struct {
	key            string
	version        string
	sptParam       string
	maxRetryTime   time.Duration
	requestTimeout time.Duration
	backend        stripego.Backend
	client         *stripego.Client
	threeDS        *ThreeDS

	// Backoff: the first retry waits about baseDelay, doubling up to
	// maxDelay, with jitter. Tests shorten them.
	baseDelay time.Duration
	maxDelay  time.Duration
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
}

var _ bridge.PaymentProvider = (*Provider)(nil)

// New checks cfg and returns a provider.
func New(cfg Config) (*Provider, error) {
	key := strings.TrimSpace(cfg.SecretKey)
	if key == "" {
		return nil, errors.New("stripe: no secret key")
	}
	if !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_") {
		return nil, errors.New("stripe: the secret key must start with sk_ or rk_")
	}
	p := &Provider{
		key:            key,
		version:        cfg.StripeVersion,
		sptParam:       cfg.SPTParam,
		maxRetryTime:   cfg.MaxRetryTime,
		requestTimeout: cfg.RequestTimeout,
		baseDelay:      200 * time.Millisecond,
		maxDelay:       2 * time.Second,
		now:            time.Now,
		sleep:          sleepCtx,
	}
	if p.version == "" {
		p.version = DefaultStripeVersion
	}
	switch p.sptParam {
	case "":
		p.sptParam = SPTParamPaymentMethodData
	case SPTParamPaymentMethodData, SPTParamTopLevel:
	default:
		return nil, fmt.Errorf("stripe: spt_param %q is not one of %q, %q", p.sptParam, SPTParamPaymentMethodData, SPTParamTopLevel)
	}
	if cfg.ThreeDS != nil {
		if err := cfg.ThreeDS.check(); err != nil {
			return nil, err
		}
		td := *cfg.ThreeDS
		p.threeDS = &td
	}
	if p.maxRetryTime < 0 || p.requestTimeout < 0 {
		return nil, errors.New("stripe: negative max retry time or request timeout")
	}
	if p.maxRetryTime == 0 {
		p.maxRetryTime = DefaultMaxRetryTime
	}
	if p.requestTimeout == 0 {
		p.requestTimeout = DefaultRequestTimeout
	}
	base := cfg.APIBase
	if base == "" {
		base = stripego.APIURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("stripe: api_base %q is not an http(s) URL", base)
	}

	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &recordingTransport{base: rt}

	p.backend = stripego.GetBackendWithConfig(stripego.APIBackend, &stripego.BackendConfig{
		URL:        stripego.String(base),
		HTTPClient: hc,
		// The retry budget is ours (same Idempotency-Key, our backoff).
		MaxNetworkRetries: stripego.Int64(0),
		// stripe-go logs request paths, which carry the token id.
		LeveledLogger:   &stripego.LeveledLogger{Level: stripego.LevelNull},
		EnableTelemetry: stripego.Bool(false),
	})
	p.client = stripego.NewClient(key, stripego.WithBackends(&stripego.Backends{API: p.backend}))
	return p, nil
}

// ErrInvalidRequest is returned, without calling Stripe, for a request no
// provider would accept.
var ErrInvalidRequest = errors.New("stripe: invalid payment request")

// Charge charges r.Token (or continues r.PaymentRef); see the package
// documentation.
func (p *Provider) Charge(ctx context.Context, r bridge.PaymentRequest) (bridge.PaymentResult, error) {
	switch {
	case r.IdempotencyKey == "":
		return bridge.PaymentResult{}, fmt.Errorf("%w: no idempotency key", ErrInvalidRequest)
	case len(r.IdempotencyKey) > 255:
		return bridge.PaymentResult{}, fmt.Errorf("%w: idempotency key longer than 255 characters", ErrInvalidRequest)
	case r.Amount <= 0:
		return bridge.PaymentResult{}, fmt.Errorf("%w: amount %d is not positive", ErrInvalidRequest, r.Amount)
	case len(r.Currency) != 3:
		return bridge.PaymentResult{}, fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidRequest, r.Currency)
	case r.Token == "" && r.PaymentRef == "":
		return bridge.PaymentResult{}, fmt.Errorf("%w: no payment token", ErrInvalidRequest)
	}
	if err := ctx.Err(); err != nil {
		return bridge.PaymentResult{}, fmt.Errorf("%w: %w", bridge.ErrPaymentUnavailable, err)
	}
	c := p.newCall(nil, r.Token)
	if r.PaymentRef != "" {
		return c.continueAfterAction(ctx, r)
	}
	return c.charge(ctx, r)
}

// call is one Charge: its retry budget and the strings never to show.
// newCall starts a call within the provider's retry budget. unavail is
// what its retriable failures wrap once the budget is spent (nil:
// bridge.ErrPaymentUnavailable); secrets, with the API key, never appear
// in its errors.
func (p *Provider) newCall(unavail error, secrets ...string) *call {
	return &call{p: p, deadline: p.now().Add(p.maxRetryTime), secrets: append([]string{p.key}, secrets...), unavail: unavail}
}

type call struct {
	p        *Provider
	deadline time.Time
	secrets  []string
	// unavail is what retriable failures wrap once the budget is spent;
	// nil means bridge.ErrPaymentUnavailable.
	unavail error
	// tokenCard is the card behind the granted token, when the token read
	// showed it: its brand picks the 3-D Secure directory server.
	tokenCard *cardBrand
}

func (c *call) unavailable() error {
	if c.unavail != nil {
		return c.unavail
	}
	return bridge.ErrPaymentUnavailable
}

func (c *call) charge(ctx context.Context, r bridge.PaymentRequest) (bridge.PaymentResult, error) {
	if !tokenRE.MatchString(r.Token) {
		return declined("", "token_invalid", "The payment token is not valid."), nil
	}
	currency := strings.ToLower(r.Currency)
	refusal, err := c.checkToken(ctx, r.Token, currency, r.Amount)
	if err != nil {
		return bridge.PaymentResult{}, err
	}

	params := &stripego.PaymentIntentCreateParams{
		Amount:   stripego.Int64(r.Amount),
		Currency: stripego.String(currency),
		Confirm:  stripego.Bool(true),
	}
	if r.AuthorizeOnly {
		params.CaptureMethod = stripego.String(string(stripego.PaymentIntentCaptureMethodManual))
	}
	params.AddExtra(c.p.sptParam, r.Token)
	if r.OrderID != "" {
		params.AddMetadata("order_id", r.OrderID)
	}
	if r.SessionID != "" {
		params.AddMetadata("session_id", r.SessionID)
	}
	// The payment key tells webhooks which attempt an event is about: an
	// order's attempts share its id.
	params.AddMetadata("payment_key", r.IdempotencyKey)
	params.IdempotencyKey = stripego.String(r.IdempotencyKey)

	var pi *stripego.PaymentIntent
	err = c.do(ctx, "create the PaymentIntent", func(actx context.Context) error {
		params.Context = actx
		params.Headers = c.p.headers()
		var err error
		pi, err = c.p.client.V1PaymentIntents.Create(actx, params)
		return err
	})
	if refusal != nil {
		// The early check failed. Stripe answered for the key: a replay of
		// an earlier attempt's outcome wins over the check; a refusal of
		// the token itself means nothing was charged.
		var se *stripego.Error
		switch {
		case err == nil:
			return c.intentResult(ctx, pi, atCharge)
		case errors.Is(err, bridge.ErrPaymentUnavailable):
			return bridge.PaymentResult{}, err
		case errors.As(err, &se) && se.Type == stripego.ErrorTypeCard && se.PaymentIntent != nil && se.PaymentIntent.ID != "":
			return c.cardDecline(se), nil
		case errors.As(err, &se) && se.Type == stripego.ErrorTypeIdempotency:
			// The key was used with other parameters: an earlier attempt
			// exists whose outcome this call cannot see.
			return bridge.PaymentResult{}, fmt.Errorf("%w: %w", bridge.ErrPaymentUnavailable, err)
		}
		return *refusal, nil
	}
	if err != nil {
		var se *stripego.Error
		if errors.As(err, &se) && se.Type == stripego.ErrorTypeCard {
			return c.cardDecline(se), nil
		}
		return bridge.PaymentResult{}, err
	}
	return c.intentResult(ctx, pi, atCharge)
}

// stage is where in a payment a PaymentIntent's status is read.
type stage int

const (
	// atCharge: after the create; requires_action asks for 3-D Secure.
	atCharge stage = iota
	// afterAuth: after the 3-D Secure result; a PaymentIntent still
	// needing action (or failing for want of authentication) did not
	// accept it.
	afterAuth
)

// intentResult maps a PaymentIntent's status. A processing PaymentIntent is
// read again within the budget; one still processing is reported as
// unavailable (the engine's retry replays the create and reads it again).
func (c *call) intentResult(ctx context.Context, pi *stripego.PaymentIntent, at stage) (bridge.PaymentResult, error) {
	for {
		switch pi.Status {
		case stripego.PaymentIntentStatusSucceeded, stripego.PaymentIntentStatusRequiresCapture:
			return paid(pi), nil
		case stripego.PaymentIntentStatusRequiresAction:
			if at == afterAuth {
				return authFailed(pi.ID), nil
			}
			return c.needsAction(ctx, pi)
		case stripego.PaymentIntentStatusRequiresPaymentMethod:
			code, msg := "card_declined", ""
			if e := pi.LastPaymentError; e != nil {
				code, msg = declineCode(e), e.Msg
			}
			if at == afterAuth && (pi.LastPaymentError == nil || code == string(stripego.ErrorCodeAuthenticationRequired)) {
				return authFailed(pi.ID), nil
			}
			return declined(pi.ID, code, c.declineMessage(code, msg)), nil
		case stripego.PaymentIntentStatusCanceled:
			return declined(pi.ID, "payment_canceled", "The payment was canceled."), nil
		case stripego.PaymentIntentStatusProcessing:
			if err := c.wait(ctx, c.p.baseDelay, 0); err != nil {
				return bridge.PaymentResult{}, fmt.Errorf("%w: stripe: PaymentIntent %s is still processing", bridge.ErrPaymentUnavailable, pi.ID)
			}
			next, err := c.retrieve(ctx, pi.ID)
			if err != nil {
				// The PaymentIntent exists: its outcome is unknown, not refused.
				if !errors.Is(err, bridge.ErrPaymentUnavailable) {
					err = fmt.Errorf("%w: %w", bridge.ErrPaymentUnavailable, err)
				}
				return bridge.PaymentResult{}, err
			}
			pi = next
		default:
			return bridge.PaymentResult{}, fmt.Errorf("%w: stripe: PaymentIntent %s has unexpected status %q", bridge.ErrPaymentUnavailable, pi.ID, pi.Status)
		}
	}
}

// paid is the result for a PaymentIntent that took the money or holds it
// (requires_capture: Authorized, to be captured or released).
func paid(pi *stripego.PaymentIntent) bridge.PaymentResult {
	return bridge.PaymentResult{Status: bridge.PaymentSucceeded, Ref: pi.ID,
		Authorized: pi.Status == stripego.PaymentIntentStatusRequiresCapture}
}

func (c *call) retrieve(ctx context.Context, id string) (*stripego.PaymentIntent, error) {
	var pi *stripego.PaymentIntent
	err := c.do(ctx, "read the PaymentIntent", func(actx context.Context) error {
		params := &stripego.PaymentIntentRetrieveParams{}
		params.Context = actx
		params.Headers = c.p.headers()
		var err error
		pi, err = c.p.client.V1PaymentIntents.Retrieve(actx, id, params)
		return err
	})
	return pi, err
}

// grantedToken is the part of a shared_payment.granted_token the bridge
// reads (stripe-go v82 has no type for it).
type grantedToken struct {
	stripego.APIResource
	ID            string `json:"id"`
	Object        string `json:"object"`
	DeactivatedAt *int64 `json:"deactivated_at"`
	UsageLimits   *struct {
		Currency  string `json:"currency"`
		MaxAmount *int64 `json:"max_amount"`
		ExpiresAt *int64 `json:"expires_at"`
	} `json:"usage_limits"`
	// PaymentMethodDetails describes the shared payment method; its card
	// brand picks the 3-D Secure directory server.
	PaymentMethodDetails *struct {
		Type string     `json:"type"`
		Card *cardBrand `json:"card"`
	} `json:"payment_method_details"`
}

func (c *call) readToken(ctx context.Context, token string) (*grantedToken, error) {
	var tok *grantedToken
	err := c.do(ctx, "read the payment token", func(actx context.Context) error {
		params := &stripego.Params{Context: actx, Headers: c.p.headers()}
		tok = &grantedToken{}
		return c.p.backend.Call(http.MethodGet, "/v1/shared_payment/granted_tokens/"+url.PathEscape(token), c.p.key, params, tok)
	})
	return tok, err
}

// checkToken returns the decline for a token Stripe will not charge the
// amount with, or nil when it may.
func (c *call) checkToken(ctx context.Context, token, currency string, amount int64) (*bridge.PaymentResult, error) {
	tok, err := c.readToken(ctx, token)
	if err != nil {
		var se *stripego.Error
		if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
			res := declined("", "token_invalid", "The payment token is not known to the payment provider.")
			return &res, nil
		}
		// A key Stripe refuses charges nothing (configuration error, said
		// as such). Any other failure leaves the token's state unknown, and
		// this may be the retry of an attempt that charged: never a decline.
		if errors.As(err, &se) && (se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden) {
			return nil, err
		}
		if !errors.Is(err, bridge.ErrPaymentUnavailable) {
			err = fmt.Errorf("%w: %w", bridge.ErrPaymentUnavailable, err)
		}
		return nil, err
	}
	if d := tok.PaymentMethodDetails; d != nil && d.Card != nil {
		c.tokenCard = d.Card
	}
	var res bridge.PaymentResult
	lim := tok.UsageLimits
	switch {
	case tok.DeactivatedAt != nil && *tok.DeactivatedAt > 0:
		res = declined("", "token_deactivated", "The payment token was revoked.")
	case lim != nil && lim.ExpiresAt != nil && *lim.ExpiresAt > 0 && !c.p.now().Before(time.Unix(*lim.ExpiresAt, 0)):
		res = declined("", "token_expired", "The payment token has expired.")
	case lim != nil && lim.Currency != "" && !strings.EqualFold(lim.Currency, currency):
		res = declined("", "token_currency_mismatch", fmt.Sprintf("The payment token is for %s, not %s.", strings.ToUpper(lim.Currency), strings.ToUpper(currency)))
	case lim != nil && lim.MaxAmount != nil && *lim.MaxAmount < amount:
		res = declined("", "token_amount_exceeded", "The payment token's spending limit is below the order total.")
	default:
		return nil, nil
	}
	return &res, nil
}

func (p *Provider) headers() http.Header {
	return http.Header{"Stripe-Version": {p.version}}
}

// do runs one Stripe request with retries. Retriable failures (5xx, 409,
// 429, timeouts, connection errors) are retried with backoff while the
// budget lasts, then reported as c.unavailable() (bridge.ErrPaymentUnavailable
// for payments, ErrTaxUnavailable for tax); other
// errors come back as they are (a *stripego.Error inside, with secrets
// removed from the message).
func (c *call) do(ctx context.Context, what string, f func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		info := &attemptInfo{}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, attemptKey{}, info), c.p.requestTimeout)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w: stripe: %s: %w", c.unavailable(), what, cerr)
		}
		retry, desc := c.classify(err, info)
		if !retry {
			var se *stripego.Error
			if errors.As(err, &se) {
				return &Error{What: what, Err: c.clean(se)}
			}
			return fmt.Errorf("stripe: %s: %s", what, desc)
		}
		if werr := c.wait(ctx, c.backoff(attempt), info.retryAfter); werr != nil {
			return fmt.Errorf("%w: stripe: %s: %s (retries stopped: %s)", c.unavailable(), what, desc, werr)
		}
	}
}

// classify says whether err is worth retrying, and describes it without
// secrets.
func (c *call) classify(err error, info *attemptInfo) (bool, string) {
	var se *stripego.Error
	if errors.As(err, &se) {
		desc := fmt.Sprintf("HTTP %d %s", se.HTTPStatusCode, se.Type)
		if se.Code != "" {
			desc += " " + string(se.Code)
		}
		if se.Msg != "" {
			desc += ": " + c.redact(se.Msg)
		}
		switch {
		case se.HTTPStatusCode >= 500, se.HTTPStatusCode == http.StatusTooManyRequests, se.HTTPStatusCode == http.StatusConflict:
			return true, desc
		}
		return false, desc
	}
	if info.status != 0 {
		// An answer that was not a Stripe error (a proxy's page, …).
		desc := fmt.Sprintf("HTTP %d without a Stripe error", info.status)
		return info.status >= 500 || info.status == http.StatusTooManyRequests || info.status == http.StatusConflict, desc
	}
	// No answer: timeout, refused or dropped connection. The request may
	// have reached Stripe; the same Idempotency-Key makes a retry safe.
	return true, "no answer: " + c.redact(err.Error())
}

// backoff is the wait before retry attempt+1: exponential with jitter
// (between half and all of the exponential delay).
func (c *call) backoff(attempt int) time.Duration {
	d := c.p.baseDelay << min(attempt, 20)
	if d > c.p.maxDelay || d <= 0 {
		d = c.p.maxDelay
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// wait sleeps d (or retryAfter when longer) unless that passes the budget
// or the context's deadline.
func (c *call) wait(ctx context.Context, d, retryAfter time.Duration) error {
	d = max(d, retryAfter)
	end := c.p.now().Add(d)
	if end.After(c.deadline) {
		return errors.New("retry time budget spent")
	}
	if dl, ok := ctx.Deadline(); ok && end.After(dl) {
		return errors.New("context deadline too near")
	}
	return c.p.sleep(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Error is a request Stripe refused (not retriable). Err is Stripe's error
// with secrets removed.
type Error struct {
	What string
	Err  *stripego.Error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("stripe: %s: refused (HTTP %d %s", e.What, e.Err.HTTPStatusCode, e.Err.Type)
	if e.Err.Code != "" {
		s += " " + string(e.Err.Code)
	}
	if e.Err.Param != "" {
		s += ", param " + e.Err.Param
	}
	s += ")"
	if e.Err.Msg != "" {
		s += ": " + e.Err.Msg
	}
	if e.Err.RequestID != "" {
		s += " [request " + e.Err.RequestID + "]"
	}
	return s
}

// Unwrap gives Stripe's error (a *stripego.Error).
func (e *Error) Unwrap() error { return e.Err }

// clean returns a copy of se with only the fields the bridge shows, secrets
// redacted.
func (c *call) clean(se *stripego.Error) *stripego.Error {
	out := &stripego.Error{
		Code: se.Code, DeclineCode: se.DeclineCode, DocURL: se.DocURL, Err: se.Err,
		HTTPStatusCode: se.HTTPStatusCode, Msg: c.redact(se.Msg), Param: se.Param,
		RequestID: se.RequestID, Type: se.Type,
	}
	if se.PaymentIntent != nil {
		out.PaymentIntent = &stripego.PaymentIntent{ID: se.PaymentIntent.ID, Status: se.PaymentIntent.Status}
	}
	return out
}

var (
	// tokenRE is what a token id may look like: it goes into a URL path.
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)
	idRE    = tokenRE
	// secretRE finds keys and token ids in text from Stripe or the network.
	secretRE = regexp.MustCompile(`\b(sk|rk|spt|pk|whsec)_[A-Za-z0-9_]+`)
)

// redact removes the call's token and key, and anything shaped like a key
// or a token id, from s.
func (c *call) redact(s string) string {
	for _, sec := range c.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return secretRE.ReplaceAllString(s, "[redacted]")
}

func (c *call) cardDecline(se *stripego.Error) bridge.PaymentResult {
	ref := ""
	if se.PaymentIntent != nil {
		ref = se.PaymentIntent.ID
	}
	code := declineCode(se)
	return declined(ref, code, c.declineMessage(code, se.Msg))
}

func declineCode(se *stripego.Error) string {
	if se.DeclineCode != "" {
		return string(se.DeclineCode)
	}
	if se.Code != "" {
		return string(se.Code)
	}
	return "card_declined"
}

// declineMessages are buyer-facing sentences for common decline codes.
var declineMessages = map[string]string{
	"insufficient_funds":      "The card has insufficient funds.",
	"expired_card":            "The card has expired.",
	"card_declined":           "The card was declined.",
	"generic_decline":         "The card was declined.",
	"do_not_honor":            "The card issuer declined the payment.",
	"incorrect_cvc":           "The card's security code is incorrect.",
	"invalid_cvc":             "The card's security code is incorrect.",
	"incorrect_number":        "The card number is incorrect.",
	"processing_error":        "An error occurred while processing the card; try again later.",
	"lost_card":               "The card was declined.",
	"stolen_card":             "The card was declined.",
	"fraudulent":              "The card was declined.",
	"pickup_card":             "The card was declined.",
	"card_velocity_exceeded":  "The card has reached its spending limit.",
	"authentication_required": "The card issuer requires authentication, which is not available here.",
}

// declineMessage is the buyer-facing sentence for code; Stripe's own
// message (redacted) when the code is not a common one. Lost and stolen
// cards get the generic sentence on purpose: the buyer is not told why.
func (c *call) declineMessage(code, stripeMsg string) string {
	if m, ok := declineMessages[code]; ok {
		return m
	}
	if m := strings.TrimSpace(c.redact(stripeMsg)); m != "" {
		if !strings.HasSuffix(m, ".") {
			m += "."
		}
		return m
	}
	return "The card was declined."
}

func declined(ref, code, msg string) bridge.PaymentResult {
	return bridge.PaymentResult{Status: bridge.PaymentDeclined, Ref: ref, DeclineCode: code, DeclineMessage: msg}
}

// attemptInfo is what the transport saw of one attempt's answer.
type attemptInfo struct {
	status     int
	retryAfter time.Duration
}

type attemptKey struct{}

// recordingTransport notes each answer's status and Retry-After in the
// attempt's attemptInfo, so answers without a Stripe error body are
// classified by status too.
type recordingTransport struct{ base http.RoundTripper }

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if info, ok := req.Context().Value(attemptKey{}).(*attemptInfo); ok && resp != nil {
		info.status = resp.StatusCode
		if s, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); perr == nil && s > 0 {
			info.retryAfter = time.Duration(s) * time.Second
		}
	}
	return resp, err
}
