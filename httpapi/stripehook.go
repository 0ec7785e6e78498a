package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/gorilla/mux"
	"github.com/stripe/stripe-go/v82/webhook"
)

// StripeWebhooks receives Stripe's events at POST /webhooks/stripe.
type StripeWebhooks struct {
	// Secret is the endpoint's signing secret (whsec_…); Tolerance how old
	// a signature may be (Stripe's default 5 minutes when 0).
	Secret    string
	Tolerance time.Duration
	Events    bridge.EventLog
	// Settle applies a payment's outcome to its order (checkout.Engine).
	Settle func(ctx context.Context, s checkout.Settlement) (bool, error)
	Log    *slog.Logger
}

func (h *StripeWebhooks) routes(r *mux.Router) {
	r.HandleFunc("/webhooks/stripe", h.serve).Methods(http.MethodPost)
}

// serve checks the signature over the raw body before anything is parsed
// (stripe-go's webhook package, never hand-rolled), skips events already
// handled, acts, and only then records the event: a failure answers 500 so
// Stripe delivers it again, and acting is idempotent.
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
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Message string `json:"message"`
	} `json:"last_payment_error"`
	CancellationReason string `json:"cancellation_reason"`
}

func (h *StripeWebhooks) handle(ctx context.Context, typ string, raw json.RawMessage) error {
	switch typ {
	case "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled":
		var pi paymentIntent
		if err := json.Unmarshal(raw, &pi); err != nil {
			return err
		}
		order, key := pi.Metadata["order_id"], pi.Metadata["payment_key"]
		if order == "" || key == "" {
			return nil // not a bridge payment (or one it cannot place)
		}
		st := checkout.Settlement{OrderID: order, PaymentKey: key, Succeeded: typ == "payment_intent.succeeded", Ref: pi.ID}
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
	default:
		// Refunds and disputes become order adjustments with the orders
		// issue; until then they are acknowledged and logged.
		h.Log.Info("stripe webhook acknowledged", "event_type", typ)
		return nil
	}
}

func hookAnswer(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"received": status < 300, "message": msg})
}
