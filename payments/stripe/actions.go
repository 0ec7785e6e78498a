package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
	stripego "github.com/stripe/stripe-go/v82"
)

// Capture takes the money an authorization holds (a Charge with
// AuthorizeOnly): POST /v1/payment_intents/{a.Ref}/capture, with
// amount_to_capture when a.Amount > 0 (the whole authorization otherwise)
// and a.IdempotencyKey as Stripe's Idempotency-Key.
//
// A PaymentIntent already captured counts as captured (nil) when the amount
// received is the one asked for (or the whole): the capture happened under
// another key, from the Dashboard, or before a crash the idempotency store
// has forgotten. An expired or canceled authorization, an amount above the
// authorization and an unknown PaymentIntent are refusals no retry can
// change (bridge.ErrPaymentFinal). See the package documentation for the
// other errors.
func (p *Provider) Capture(ctx context.Context, a bridge.PaymentAction) error {
	c, err := p.actionCall(ctx, a)
	if err != nil {
		return err
	}
	params := &stripego.PaymentIntentCaptureParams{}
	if a.Amount > 0 {
		params.AmountToCapture = stripego.Int64(a.Amount)
	}
	params.IdempotencyKey = stripego.String(a.IdempotencyKey)
	what := "capture PaymentIntent " + a.Ref
	return c.actOrSettled(ctx, what, a.Ref, func(actx context.Context) error {
		params.Context = actx
		params.Headers = p.headers()
		// Any 200 is a capture: Stripe answers one only when it took the
		// money (the status then is succeeded, or processing for slow
		// payment methods).
		_, err := p.client.V1PaymentIntents.Capture(actx, a.Ref, params)
		return err
	}, func(pi *stripego.PaymentIntent) (bool, error) {
		switch {
		case pi.Status == stripego.PaymentIntentStatusSucceeded && (a.Amount == 0 || pi.AmountReceived == a.Amount):
			return true, nil
		case pi.Status == stripego.PaymentIntentStatusSucceeded:
			return true, fmt.Errorf("%w: stripe: %s: already captured %d, not %d", bridge.ErrPaymentFinal, what, pi.AmountReceived, a.Amount)
		}
		return false, nil
	})
}

// actOrSettled runs call under c's retries. When Stripe answers that the
// PaymentIntent is in an unexpected state, an earlier attempt (or the
// Dashboard) may have done the work already: the PaymentIntent is read and
// judge says whether that settles it (with the error to return, nil for
// done); otherwise Stripe's refusal stands.
func (c *call) actOrSettled(ctx context.Context, what, ref string, call func(context.Context) error,
	judge func(*stripego.PaymentIntent) (settled bool, err error)) error {
	err := c.do(ctx, what, call)
	if err == nil || !unexpectedState(err) {
		return actionErr(err)
	}
	pi, rerr := c.retrieve(ctx, ref)
	if rerr != nil {
		return actionErr(rerr)
	}
	if settled, jerr := judge(pi); settled {
		return jerr
	}
	return actionErr(err)
}

// Release cancels an authorization (POST /v1/payment_intents/{a.Ref}/cancel)
// so the buyer's money is no longer held. a.Amount is ignored: Stripe
// releases the whole authorization.
//
// cancellation_reason is sent only when a.Reason is one of Stripe's values
// (abandoned, duplicate, fraudulent, requested_by_customer). Any other
// reason is not sent: the parameter is optional, and a made-up one would
// misreport to Stripe (requested_by_customer claims the buyer asked;
// fraudulent feeds Radar). The bridge keeps its own reason in the order's
// history.
//
// A PaymentIntent already canceled counts as released (nil) — by an
// earlier attempt, the Dashboard, or Stripe itself when the authorization
// expired: the money is not held either way. One already captured is a
// refusal for good (bridge.ErrPaymentFinal): it needs a refund instead.
func (p *Provider) Release(ctx context.Context, a bridge.PaymentAction) error {
	c, err := p.actionCall(ctx, a)
	if err != nil {
		return err
	}
	params := &stripego.PaymentIntentCancelParams{}
	if cancellationReasons[a.Reason] {
		params.CancellationReason = stripego.String(a.Reason)
	}
	params.IdempotencyKey = stripego.String(a.IdempotencyKey)
	return c.actOrSettled(ctx, "cancel PaymentIntent "+a.Ref, a.Ref, func(actx context.Context) error {
		params.Context = actx
		params.Headers = p.headers()
		_, err := p.client.V1PaymentIntents.Cancel(actx, a.Ref, params)
		return err
	}, func(pi *stripego.PaymentIntent) (bool, error) {
		return pi.Status == stripego.PaymentIntentStatusCanceled, nil
	})
}

// Refund gives money back (POST /v1/refunds with payment_intent = a.Ref,
// amount when a.Amount > 0 — the rest of the payment otherwise —,
// metadata[order_id] and metadata[reason], and reason when a.Reason is one
// of Stripe's values: duplicate, fraudulent, requested_by_customer). It
// returns the refund's id.
//
// A refund Stripe accepted may still be pending; its outcome arrives by
// webhook (refund.updated). A refund created already failed or canceled
// returns its id with an error wrapping bridge.ErrPaymentFinal. A payment
// already refunded, an amount above what is left, an uncaptured
// authorization (release it instead) and an unknown PaymentIntent are
// refusals for good too.
func (p *Provider) Refund(ctx context.Context, a bridge.PaymentAction) (string, error) {
	c, err := p.actionCall(ctx, a)
	if err != nil {
		return "", err
	}
	params := &stripego.RefundCreateParams{PaymentIntent: stripego.String(a.Ref)}
	if a.Amount > 0 {
		params.Amount = stripego.Int64(a.Amount)
	}
	if a.OrderID != "" {
		params.AddMetadata("order_id", a.OrderID)
	}
	if a.Reason != "" {
		// The bridge's own words travel in metadata (Stripe keeps up to
		// 500 characters), so the refund webhook can report them.
		params.AddMetadata("reason", truncate(a.Reason, maxMetadataValue))
		if refundReasons[a.Reason] {
			params.Reason = stripego.String(a.Reason)
		}
	}
	params.IdempotencyKey = stripego.String(a.IdempotencyKey)
	what := "refund PaymentIntent " + a.Ref
	var re *stripego.Refund
	err = c.do(ctx, what, func(actx context.Context) error {
		params.Context = actx
		params.Headers = p.headers()
		var err error
		re, err = p.client.V1Refunds.Create(actx, params)
		return err
	})
	if err != nil {
		return "", actionErr(err)
	}
	switch re.Status {
	case stripego.RefundStatusFailed, stripego.RefundStatusCanceled:
		msg := string(re.Status)
		if re.FailureReason != "" {
			msg += " (" + string(re.FailureReason) + ")"
		}
		return re.ID, fmt.Errorf("%w: stripe: %s: refund %s %s", bridge.ErrPaymentFinal, what, re.ID, msg)
	}
	return re.ID, nil
}

// Stripe's enumerations. A value outside them is refused with a 400, so
// the bridge's free-text reasons never go into these parameters.
var (
	cancellationReasons = map[string]bool{"abandoned": true, "duplicate": true, "fraudulent": true, "requested_by_customer": true}
	refundReasons       = map[string]bool{"duplicate": true, "fraudulent": true, "requested_by_customer": true}
)

// maxMetadataValue is Stripe's limit on a metadata value, in characters.
const maxMetadataValue = 500

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// actionCall checks a and starts its call. Invalid actions never reach
// Stripe and wrap both ErrInvalidRequest and bridge.ErrPaymentFinal: no
// retry of the same action can succeed.
func (p *Provider) actionCall(ctx context.Context, a bridge.PaymentAction) (*call, error) {
	var problem string
	switch {
	case a.IdempotencyKey == "":
		problem = "no idempotency key"
	case len(a.IdempotencyKey) > 255:
		problem = "idempotency key longer than 255 characters"
	case a.Ref == "":
		problem = "no payment reference"
	case !idRE.MatchString(a.Ref):
		// The reference goes into a URL path.
		problem = fmt.Sprintf("payment reference %q is not a Stripe id", a.Ref)
	case a.Amount < 0:
		problem = fmt.Sprintf("amount %d is negative", a.Amount)
	}
	if problem != "" {
		return nil, fmt.Errorf("%w: %w: %s", ErrInvalidRequest, bridge.ErrPaymentFinal, problem)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", bridge.ErrPaymentUnavailable, err)
	}
	return p.newCall(nil), nil
}

// actionErr sorts a failed action's error (nil stays nil):
// bridge.ErrPaymentUnavailable passes as it is (c.do spent the retry
// budget on it); a key Stripe refuses (401, 403) stays a plain *Error — a
// configuration to fix, after which the same action succeeds; any other
// Stripe refusal (400, 402, 404 …) wraps bridge.ErrPaymentFinal.
func actionErr(err error) error {
	if err == nil || errors.Is(err, bridge.ErrPaymentUnavailable) {
		return err
	}
	var se *Error
	if errors.As(err, &se) {
		switch se.Err.HTTPStatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return err
		}
		return fmt.Errorf("%w: %w", bridge.ErrPaymentFinal, err)
	}
	// An answer without a Stripe error (a proxy's 4xx page; c.do named
	// the action): nothing says Stripe refused, so not final.
	return err
}

// unexpectedState reports whether Stripe refused because the
// PaymentIntent's status does not allow the action (already captured,
// canceled …): the caller then reads the status to decide.
func unexpectedState(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Err.Code == stripego.ErrorCodePaymentIntentUnexpectedState
}
