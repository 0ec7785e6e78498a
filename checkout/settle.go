package checkout

import (
	"context"
	"errors"
	"fmt"

	"github.com/acp-bridge/bridge"
)

// Settlement is what the payment provider says, later, about an order's
// payment (a Stripe webhook).
type Settlement struct {
	OrderID string
	// PaymentKey is the payment idempotency key of the attempt the news is
	// about (Stripe: the PaymentIntent's metadata): an order's attempts
	// share its id, and news of an old attempt must not settle a new one.
	PaymentKey string
	// Succeeded is true when the money was taken; otherwise the payment
	// failed or was canceled, and Reason says why in words.
	Succeeded bool
	// Authorized is set with Succeeded when the money is only held (a
	// manual-capture payment): it must still be captured.
	Authorized bool
	Ref        string
	Reason     string
}

// Settle applies a settlement to a session whose payment outcome is still
// unknown (the provider did not answer the complete, or the bridge died
// mid-payment): a success completes the session and its order, a failure
// releases the stock and lets the buyer pay again. It returns whether it
// changed anything; settlements for sessions that already know their
// outcome (the usual case: the complete call got the answer) change
// nothing, so repeated and late deliveries are harmless.
func (e *Engine) Settle(ctx context.Context, st Settlement) (bool, error) {
	for range 5 {
		o, err := e.Store.Order(ctx, st.OrderID)
		if errors.Is(err, bridge.ErrNotFound) {
			return false, nil // not an order of this bridge
		}
		if err != nil {
			return false, fmt.Errorf("settle order %s: %w", st.OrderID, err)
		}
		s, err := e.Store.Session(ctx, o.Owner, o.SessionID)
		if err != nil {
			return false, fmt.Errorf("settle order %s: session: %w", st.OrderID, err)
		}
		if s.Status != bridge.StatusCompleteInProgress || s.Pending == nil || s.OrderID != o.ID || s.Pending.Key != st.PaymentKey {
			return false, nil
		}
		if e.paymentRunning(s) {
			// Its complete is still running and will record the outcome.
			return false, nil
		}
		s.Rev++
		s.UpdatedAt = e.now()
		o.Rev++ // written over the revision read, like the session
		ch := bridge.Change{Session: &s, Order: &o}
		if st.Succeeded {
			// The provider says whether the money is taken or held, not
			// the config, which may have changed since the payment began.
			e.paid(&s, &o, &ch, bridge.PaymentResult{Status: bridge.PaymentSucceeded, Ref: st.Ref, Authorized: st.Authorized})
		} else {
			unpaid(&s, &o, &ch, bridge.Message{Type: bridge.MessageError, Code: bridge.MsgPaymentDeclined, Param: "$.payment_data",
				Content: declineText(bridge.PaymentResult{DeclineMessage: st.Reason}), Resolution: "requires_buyer_input"})
		}
		s.Pending = nil
		if err := e.Store.Commit(ctx, ch); err != nil {
			if errors.Is(err, bridge.ErrStale) {
				continue // a retried complete settled it meanwhile: look again
			}
			return false, fmt.Errorf("settle order %s: %w", st.OrderID, err)
		}
		e.log().Info("payment settled by the provider", "order", o.ID, "session", s.ID, "succeeded", st.Succeeded)
		e.place(ctx, &o)
		return true, nil
	}
	return false, fmt.Errorf("settle order %s: the session keeps changing", st.OrderID)
}
