package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/gorilla/mux"
	"github.com/stripe/stripe-go/v82/webhook"
)

// OrderAdjuster records what the payment provider reports about a placed
// order: refunds and disputes, as adjustments.
//
// Adjust adds a to the order whose payment is paymentRef (Order.PaymentRef,
// a PaymentIntent id), or replaces the order's adjustment with a.ID. It
// must be idempotent by a.ID: Stripe delivers an event more than once,
// the same refund arrives in several events (charge.refunded,
// refund.updated), and a refused delivery is retried. Events also arrive
// out of order, so a pending adjustment must never replace a completed or
// failed one with the same ID (a completed refund may still become failed).
// A paymentRef no order has (a payment the bridge did not make) is not an
// error: Adjust returns nil and records nothing. An error makes Stripe
// deliver the event again.
type OrderAdjuster interface {
	Adjust(ctx context.Context, paymentRef string, a bridge.Adjustment) error
}

// StripeWebhooks receives Stripe's events at POST /webhooks/stripe.
type StripeWebhooks struct {
	// Secret is the endpoint's signing secret (whsec_…); Tolerance how old
	// a signature may be (Stripe's default 5 minutes when 0).
	Secret    string
	Tolerance time.Duration
	Events    bridge.EventLog
	// Settle applies a payment's outcome to its order (checkout.Engine).
	Settle func(ctx context.Context, s checkout.Settlement) (bool, error)
	// Orders records refunds and disputes on their orders; nil logs them
	// only.
	Orders OrderAdjuster
	Log    *slog.Logger
}

func (h *StripeWebhooks) routes(r *mux.Router) {
	r.HandleFunc("/webhooks/stripe", h.serve).Methods(http.MethodPost)
}

// serve checks the signature over the raw body before anything is parsed
// (stripe-go's webhook package, never hand-rolled), skips events already
// handled, acts, and only then records the event: a failure answers 500 so
// Stripe delivers it again, never skipped as seen. Acting is idempotent —
// a redelivery arriving while the first is still being handled passes the
// check too.
func (h *StripeWebhooks) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		hookAnswer(w, http.StatusBadRequest, "unreadable body")
		return
	}
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), h.Secret,
		webhook.ConstructEventOptions{Tolerance: h.Tolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		h.Log.Warn("stripe webhook refused", "err", err)
		hookAnswer(w, http.StatusBadRequest, "invalid signature")
		return
	}
	if ev.Data == nil {
		hookAnswer(w, http.StatusOK, "no data") // a thin event: nothing the bridge acts on
		return
	}
	ctx := r.Context()
	if seen, err := h.Events.EventSeen(ctx, "stripe", ev.ID); err != nil {
		h.Log.Error("stripe webhook", "event", ev.ID, "err", err)
		hookAnswer(w, http.StatusInternalServerError, "try again")
		return
	} else if seen {
		hookAnswer(w, http.StatusOK, "duplicate")
		return
	}
	if err := h.handle(ctx, string(ev.Type), ev.Data.Raw); err != nil {
		h.Log.Error("stripe webhook", "event", ev.ID, "type", ev.Type, "err", err)
		hookAnswer(w, http.StatusInternalServerError, "try again")
		return
	}
	if err := h.Events.RecordEvent(ctx, "stripe", ev.ID); err != nil {
		h.Log.Error("stripe webhook: recording the event", "event", ev.ID, "err", err)
	}
	hookAnswer(w, http.StatusOK, "ok")
}

// paymentIntent is the part of a PaymentIntent the bridge reads.
type paymentIntent struct {
	ID               string            `json:"id"`
	Status           string            `json:"status"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Message string `json:"message"`
	} `json:"last_payment_error"`
	CancellationReason string `json:"cancellation_reason"`
}

func (h *StripeWebhooks) handle(ctx context.Context, typ string, raw json.RawMessage) error {
	switch typ {
	case "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
		"payment_intent.amount_capturable_updated":
		var pi paymentIntent
		if err := json.Unmarshal(raw, &pi); err != nil {
			return err
		}
		order, key := pi.Metadata["order_id"], pi.Metadata["payment_key"]
		if order == "" || key == "" {
			return nil // not a bridge payment (or one it cannot place)
		}
		// An authorization (capture: after_store) never sends succeeded
		// until it is captured: Stripe says amount_capturable_updated when
		// the money is held (requires_capture), and that is the payment's
		// success for the checkout.
		held := typ == "payment_intent.amount_capturable_updated"
		if held && pi.Status != "requires_capture" {
			return nil
		}
		st := checkout.Settlement{OrderID: order, PaymentKey: key, Succeeded: held || typ == "payment_intent.succeeded", Authorized: held, Ref: pi.ID}
		switch {
		case pi.LastPaymentError != nil:
			st.Reason = pi.LastPaymentError.Message
		case pi.CancellationReason != "":
			st.Reason = "The payment was canceled (" + pi.CancellationReason + ")."
		}
		changed, err := h.Settle(ctx, st)
		if err == nil && changed {
			h.Log.Info("stripe webhook settled a payment", "order", order, "event_type", typ, "payment_intent", pi.ID)
		}
		return err
	case "charge.refunded":
		var ch struct {
			ID            string `json:"id"`
			PaymentIntent string `json:"payment_intent"`
			Refunds       *struct {
				Data    []stripeRefund `json:"data"`
				HasMore bool           `json:"has_more"`
			} `json:"refunds"`
		}
		if err := json.Unmarshal(raw, &ch); err != nil {
			return fmt.Errorf("charge.refunded: %w", err)
		}
		if ch.Refunds == nil || ch.Refunds.HasMore {
			// Since API version 2022-11-15 a charge no longer lists its
			// refunds (and a long list is cut): each refund comes in its
			// own refund.created / refund.updated event.
			h.Log.Info("stripe webhook: charge.refunded without its full list of refunds; the refund.* events carry them",
				"charge", ch.ID, "payment_intent", ch.PaymentIntent)
		}
		if ch.Refunds == nil {
			return nil
		}
		for _, re := range ch.Refunds.Data {
			if err := h.adjust(ctx, typ, ch.PaymentIntent, re.adjustment()); err != nil {
				return err
			}
		}
		return nil
	case "refund.created", "refund.updated", "refund.failed", "charge.refund.updated":
		var re stripeRefund
		if err := json.Unmarshal(raw, &re); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		return h.adjust(ctx, typ, re.PaymentIntent, re.adjustment())
	case "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed":
		var d stripeDispute
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("%s: %w", typ, err)
		}
		return h.adjust(ctx, typ, d.PaymentIntent, d.adjustment(typ))
	default:
		h.Log.Info("stripe webhook acknowledged", "event_type", typ)
		return nil
	}
}

// adjust hands an adjustment to h.Orders, or logs it when there is none.
func (h *StripeWebhooks) adjust(ctx context.Context, typ, paymentRef string, a bridge.Adjustment) error {
	if paymentRef == "" {
		// A charge made without a PaymentIntent is not the bridge's.
		h.Log.Info("stripe webhook acknowledged: no payment_intent", "event_type", typ, "adjustment", a.ID)
		return nil
	}
	if h.Orders == nil {
		h.Log.Info("stripe webhook acknowledged", "event_type", typ, "payment_intent", paymentRef,
			"adjustment", a.ID, "type", a.Type, "status", a.Status, "amount", a.Amount, "currency", a.Currency)
		return nil
	}
	if err := h.Orders.Adjust(ctx, paymentRef, a); err != nil {
		return fmt.Errorf("%s: adjustment %s of payment %s: %w", typ, a.ID, paymentRef, err)
	}
	return nil
}

// stripeRefund is the part of a Refund the bridge reads.
type stripeRefund struct {
	ID            string            `json:"id"`
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	Status        string            `json:"status"`
	Reason        string            `json:"reason"`
	Created       int64             `json:"created"`
	PaymentIntent string            `json:"payment_intent"`
	Metadata      map[string]string `json:"metadata"`
}

// adjustment maps a refund: succeeded → completed, failed or canceled →
// failed, anything else (pending, requires_action, a status Stripe adds
// later) → pending. Stripe's reason code wins; without one, the bridge's
// own reason, which its refunds carry in metadata[reason].
func (re stripeRefund) adjustment() bridge.Adjustment {
	status := "pending"
	switch re.Status {
	case "succeeded":
		status = "completed"
	case "failed", "canceled":
		status = "failed"
	}
	reason := re.Reason
	if reason == "" {
		reason = re.Metadata["reason"]
	}
	return bridge.Adjustment{ID: re.ID, Type: "refund", Status: status, OccurredAt: unixTime(re.Created),
		Amount: re.Amount, Currency: strings.ToLower(re.Currency), Reason: reason}
}

// stripeDispute is the part of a Dispute the bridge reads.
type stripeDispute struct {
	ID            string `json:"id"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	Status        string `json:"status"`
	Reason        string `json:"reason"`
	Created       int64  `json:"created"`
	PaymentIntent string `json:"payment_intent"`
}

// adjustment maps a dispute. A new or open one is pending (the money is
// withdrawn while the bank decides, but may come back). Closed: lost →
// completed (the buyer got the money back); won, an inquiry closed without
// a chargeback (warning_closed) or anything else → failed (the shop keeps
// the money). The adjustment's time is the dispute's creation, whichever
// event reports it.
func (d stripeDispute) adjustment(typ string) bridge.Adjustment {
	status := "pending"
	switch {
	case typ == "charge.dispute.created":
	case d.Status == "lost":
		status = "completed"
	case typ == "charge.dispute.closed", d.Status == "won", d.Status == "warning_closed", d.Status == "prevented":
		status = "failed"
	}
	return bridge.Adjustment{ID: d.ID, Type: "dispute", Status: status, OccurredAt: unixTime(d.Created),
		Amount: d.Amount, Currency: strings.ToLower(d.Currency), Reason: d.Reason}
}

func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

func hookAnswer(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"received": status < 300, "message": msg})
}
