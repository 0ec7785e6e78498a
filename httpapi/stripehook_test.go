package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/stripe/stripe-go/v82/webhook"
)

// flaky is a payment provider that never answers: every outcome is
// unknown.
type flaky struct{}

func (flaky) Charge(context.Context, bridge.PaymentRequest) (bridge.PaymentResult, error) {
	return bridge.PaymentResult{}, fmt.Errorf("%w: timeout (test)", bridge.ErrPaymentUnavailable)
}

func stripeEvent(id, typ, orderID, paymentKey string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"api_version":"2026-04-22.preview","created":1,"livemode":false,"pending_webhooks":1,
"data":{"object":{"id":"pi_123","object":"payment_intent","status":"succeeded","metadata":{"order_id":%q,"payment_key":%q}}}}`, id, typ, orderID, paymentKey))
}

func sendHook(t *testing.T, st *ct.Stack, body []byte, header string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, st.URL+"/webhooks/stripe", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Stripe-Signature", header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func signed(body []byte) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: ct.StripeSecret, Timestamp: time.Now()}).Header
}

// A payment whose outcome the complete call never learned is settled by
// Stripe's webhook; bad signatures and replays change nothing.
func TestStripeWebhookSettlesUnknownPayment(t *testing.T) {
	st := ct.New(t, ct.Options{Payments: flaky{}})
	res := st.Engine.Create(t.Context(), checkout.Caller{Owner: ct.AgentName}, checkout.CreateRequest{Items: []checkout.Item{{ID: "ebook", Quantity: 1}}})
	id := res.Session.ID
	if r := st.Engine.Complete(t.Context(), checkout.Caller{Owner: ct.AgentName}, id, checkout.CompleteRequest{Payment: checkout.Payment{Token: "spt_4242"}}); r.Err == nil {
		t.Fatalf("complete: %+v", r)
	}
	orderID := st.Engine.Get(t.Context(), ct.AgentName, id).Session.OrderID

	// News of another attempt of the same order changes nothing.
	stale := stripeEvent("evt_0", "payment_intent.payment_failed", orderID, orderID+"_7")
	if code := sendHook(t, st, stale, signed(stale)); code != http.StatusOK {
		t.Fatalf("stale attempt: HTTP %d", code)
	}
	if s := st.Engine.Get(t.Context(), ct.AgentName, id).Session; s.Status != bridge.StatusCompleteInProgress {
		t.Fatalf("news of another attempt settled this one: %s", s.Status)
	}
	body := stripeEvent("evt_1", "payment_intent.succeeded", orderID, orderID+"_0")
	if code := sendHook(t, st, body, "t=1,v1=deadbeef"); code != http.StatusBadRequest {
		t.Fatalf("bad signature: HTTP %d", code)
	}
	tampered := bytes.Replace(body, []byte("succeeded\",\"metadata"), []byte("canceled\",\"metadata"), 1)
	if code := sendHook(t, st, tampered, signed(body)); code != http.StatusBadRequest {
		t.Fatalf("tampered body: HTTP %d", code)
	}
	old := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: ct.StripeSecret, Timestamp: time.Now().Add(-time.Hour)}).Header
	if code := sendHook(t, st, body, old); code != http.StatusBadRequest {
		t.Fatalf("old signature: HTTP %d", code)
	}
	if s := st.Engine.Get(t.Context(), ct.AgentName, id).Session; s.Status != bridge.StatusCompleteInProgress {
		t.Fatalf("refused webhooks changed the session: %s", s.Status)
	}
	if code := sendHook(t, st, body, signed(body)); code != http.StatusOK {
		t.Fatalf("signed event: HTTP %d", code)
	}
	s := st.Engine.Get(t.Context(), ct.AgentName, id).Session
	if s.Status != bridge.StatusCompleted || s.Order == nil {
		t.Fatalf("after the webhook: %s %+v", s.Status, s.Order)
	}
	if seen, _ := st.DB.EventSeen(t.Context(), "stripe", "evt_1"); !seen {
		t.Fatal("event not recorded")
	}
	// A replay, and a contradicting late event, change nothing.
	if code := sendHook(t, st, body, signed(body)); code != http.StatusOK {
		t.Fatalf("replay: HTTP %d", code)
	}
	late := stripeEvent("evt_2", "payment_intent.payment_failed", orderID, orderID+"_0")
	if code := sendHook(t, st, late, signed(late)); code != http.StatusOK {
		t.Fatalf("late event: HTTP %d", code)
	}
	if s := st.Engine.Get(t.Context(), ct.AgentName, id).Session; s.Status != bridge.StatusCompleted {
		t.Fatalf("a late failure undid the order: %s", s.Status)
	}
}
