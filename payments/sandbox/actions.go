package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/acp-bridge/bridge"
)

// Capture takes the money an authorization holds; see the package
// documentation.
func (p *Provider) Capture(ctx context.Context, a bridge.PaymentAction) error {
	_, err := p.act(ctx, "capture", a, func(pay *payment) (string, error) {
		switch pay.state {
		case bridge.PaymentStateAuthorized:
			amount := a.Amount
			if amount == 0 {
				amount = pay.amount
			}
			if amount > pay.amount {
				return "", fmt.Errorf("%w: sandbox: capture %s: %d is more than the %d held", bridge.ErrPaymentFinal, a.Ref, amount, pay.amount)
			}
			pay.state, pay.captured = bridge.PaymentStateCaptured, amount
			return "", nil
		case bridge.PaymentStateCaptured:
			// Captured before, under another key: done, as with Stripe.
			if a.Amount == 0 || a.Amount == pay.captured {
				return "", nil
			}
			return "", fmt.Errorf("%w: sandbox: capture %s: already captured %d, not %d", bridge.ErrPaymentFinal, a.Ref, pay.captured, a.Amount)
		}
		return "", fmt.Errorf("%w: sandbox: capture %s: the payment is %s", bridge.ErrPaymentFinal, a.Ref, pay.state)
	})
	return err
}

// Release ends an authorization without taking the money; see the package
// documentation.
func (p *Provider) Release(ctx context.Context, a bridge.PaymentAction) error {
	_, err := p.act(ctx, "release", a, func(pay *payment) (string, error) {
		switch pay.state {
		case bridge.PaymentStateAuthorized:
			pay.state = bridge.PaymentStateReleased
			return "", nil
		case bridge.PaymentStateReleased:
			return "", nil
		}
		return "", fmt.Errorf("%w: sandbox: release %s: the payment is %s; refund it instead", bridge.ErrPaymentFinal, a.Ref, pay.state)
	})
	return err
}

// Refund gives captured money back and returns the refund's id; see the
// package documentation.
func (p *Provider) Refund(ctx context.Context, a bridge.PaymentAction) (string, error) {
	return p.act(ctx, "refund", a, func(pay *payment) (string, error) {
		if pay.state != bridge.PaymentStateCaptured && pay.state != bridge.PaymentStateRefunded {
			return "", fmt.Errorf("%w: sandbox: refund %s: the payment is %s, not captured", bridge.ErrPaymentFinal, a.Ref, pay.state)
		}
		left := pay.captured - pay.refunded
		amount := a.Amount
		if amount == 0 {
			amount = left
		}
		switch {
		case left == 0:
			return "", fmt.Errorf("%w: sandbox: refund %s: already refunded", bridge.ErrPaymentFinal, a.Ref)
		case amount > left:
			return "", fmt.Errorf("%w: sandbox: refund %s: %d is more than the %d left", bridge.ErrPaymentFinal, a.Ref, amount, left)
		}
		pay.refunded += amount
		if pay.refunded == pay.captured {
			pay.state = bridge.PaymentStateRefunded
		}
		return RefundID(a.IdempotencyKey), nil
	})
}

// act runs one action under its idempotency key: a key seen before replays
// its first answer; an unknown ref is refused for good.
func (p *Provider) act(ctx context.Context, kind string, a bridge.PaymentAction, do func(*payment) (string, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", bridge.ErrPaymentUnavailable, err)
	}
	switch {
	case a.IdempotencyKey == "":
		return "", fmt.Errorf("%w: %w: no idempotency key", ErrInvalidRequest, bridge.ErrPaymentFinal)
	case a.Ref == "":
		return "", fmt.Errorf("%w: %w: no payment reference", ErrInvalidRequest, bridge.ErrPaymentFinal)
	case a.Amount < 0:
		return "", fmt.Errorf("%w: %w: amount %d is negative", ErrInvalidRequest, bridge.ErrPaymentFinal, a.Amount)
	}
	fp := fmt.Sprintf("%s %s %d %s", kind, a.Ref, a.Amount, a.Reason)

	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.actions[a.IdempotencyKey]; ok {
		if prev.fingerprint != fp {
			return "", fmt.Errorf("%w: sandbox: idempotency key %q was used with other parameters", bridge.ErrPaymentFinal, a.IdempotencyKey)
		}
		return prev.refundID, prev.err
	}
	var id string
	var err error
	if pay, ok := p.payments[a.Ref]; ok {
		id, err = do(pay)
	} else {
		err = fmt.Errorf("%w: sandbox: %s: no payment %s (the sandbox forgets its payments on restart)", bridge.ErrPaymentFinal, kind, a.Ref)
	}
	p.actions[a.IdempotencyKey] = actionResult{fingerprint: fp, refundID: id, err: err}
	return id, err
}

// RefundID is the refund id the sandbox gives the idempotency key key.
func RefundID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "re_sandbox_" + hex.EncodeToString(sum[:8])
}
