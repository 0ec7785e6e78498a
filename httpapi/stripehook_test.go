package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/httpapi"
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

// eventLog is an in-memory bridge.EventLog.
type eventLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (l *eventLog) EventSeen(_ context.Context, source, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[source+"/"+id], nil
}

func (l *eventLog) RecordEvent(_ context.Context, source, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[source+"/"+id] = true
	return nil
}

// adjusted is one call of Adjust.
type adjusted struct {
	Ref string
	A   bridge.Adjustment
}

// adjuster records Adjust calls; while fail is set it refuses them.
type adjuster struct {
	mu    sync.Mutex
	calls []adjusted
	fail  error
}

func (a *adjuster) Adjust(_ context.Context, ref string, adj bridge.Adjustment) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.calls = append(a.calls, adjusted{ref, adj})
	return nil
}

func (a *adjuster) got() []adjusted {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]adjusted(nil), a.calls...)
}

const hookSecret = "whsec_test_adjustments"

// hookServer serves only Stripe's webhooks, with orders as the adjuster
// (nil: none).
func hookServer(t *testing.T, orders httpapi.OrderAdjuster) (*httptest.Server, *eventLog) {
	t.Helper()
	return hookServerSettling(t, orders, func(context.Context, checkout.Settlement) (bool, error) {
		return false, errors.New("no settlements here")
	})
}

func hookServerSettling(t *testing.T, orders httpapi.OrderAdjuster, settle func(context.Context, checkout.Settlement) (bool, error)) (*httptest.Server, *eventLog) {
	t.Helper()
	events := &eventLog{seen: map[string]bool{}}
	hooks := &httpapi.StripeWebhooks{Secret: hookSecret, Events: events, Orders: orders, Settle: settle}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StripeWebhooks: hooks}))
	t.Cleanup(srv.Close)
	return srv, events
}

// postEvent sends an event of type typ about object, signed the way Stripe
// signs (t=…,v1=HMAC-SHA256 of "t.body" with the endpoint secret).
func postEvent(t *testing.T, url, id, typ, object string) int {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"api_version":"2026-04-22.preview","created":1767225600,"livemode":false,"pending_webhooks":1,"data":{"object":%s}}`,
		id, typ, object))
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: hookSecret, Timestamp: time.Now()}).Header
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/stripe", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Stripe-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func refundJSON(id, status, reason string, amount int64, metadata string) string {
	return fmt.Sprintf(`{"id":%q,"object":"refund","amount":%d,"currency":"usd","status":%q,"reason":%s,"created":1767225000,"charge":"ch_1","payment_intent":"pi_1","metadata":%s}`,
		id, amount, status, reason, metadata)
}

func disputeJSON(status, reason string) string {
	return fmt.Sprintf(`{"id":"dp_1","object":"dispute","amount":4999,"currency":"EUR","status":%q,"reason":%q,"created":1767220000,"charge":"ch_1","payment_intent":"pi_1","is_charge_refundable":false}`,
		status, reason)
}

// Refunds and disputes become adjustments of the order paid by their
// PaymentIntent.
func TestStripeWebhookAdjustments(t *testing.T) {
	refundedAt, disputedAt := time.Unix(1767225000, 0).UTC(), time.Unix(1767220000, 0).UTC()
	refund := func(id, status, reason string, amount int64) adjusted {
		return adjusted{"pi_1", bridge.Adjustment{ID: id, Type: "refund", Status: status, OccurredAt: refundedAt, Amount: amount, Currency: "usd", Reason: reason}}
	}
	dispute := func(status string) adjusted {
		return adjusted{"pi_1", bridge.Adjustment{ID: "dp_1", Type: "dispute", Status: status, OccurredAt: disputedAt, Amount: 4999, Currency: "eur", Reason: "fraudulent"}}
	}
	tests := []struct {
		name   string
		typ    string
		object string
		want   []adjusted
	}{
		{"charge.refunded: one adjustment per refund", "charge.refunded",
			`{"id":"ch_1","object":"charge","amount":5000,"amount_refunded":3000,"currency":"usd","payment_intent":"pi_1","refunded":false,
			  "refunds":{"object":"list","has_more":false,"data":[` + refundJSON("re_1", "succeeded", `"requested_by_customer"`, 1000, `{}`) + `,` +
				refundJSON("re_2", "pending", "null", 2000, `{"order_id":"ord_1","reason":"damaged"}`) + `]}}`,
			[]adjusted{refund("re_1", "completed", "requested_by_customer", 1000), refund("re_2", "pending", "damaged", 2000)}},
		{"charge.refunded without its refunds (API ≥ 2022-11-15)", "charge.refunded",
			`{"id":"ch_1","object":"charge","amount":5000,"amount_refunded":5000,"currency":"usd","payment_intent":"pi_1","refunded":true}`, nil},
		{"refund.created pending", "refund.created", refundJSON("re_1", "pending", "null", 1000, `{}`), []adjusted{refund("re_1", "pending", "", 1000)}},
		{"refund.created requires_action", "refund.created", refundJSON("re_1", "requires_action", "null", 1000, `{}`), []adjusted{refund("re_1", "pending", "", 1000)}},
		{"refund.updated succeeded, the bridge's reason", "refund.updated", refundJSON("re_1", "succeeded", "null", 1000, `{"reason":"out_of_stock"}`),
			[]adjusted{refund("re_1", "completed", "out_of_stock", 1000)}},
		{"refund.updated failed", "refund.updated", refundJSON("re_1", "failed", `"duplicate"`, 1000, `{}`), []adjusted{refund("re_1", "failed", "duplicate", 1000)}},
		{"refund.failed", "refund.failed", refundJSON("re_1", "failed", "null", 1000, `{}`), []adjusted{refund("re_1", "failed", "", 1000)}},
		{"refund.updated canceled", "refund.updated", refundJSON("re_1", "canceled", "null", 1000, `{}`), []adjusted{refund("re_1", "failed", "", 1000)}},
		{"charge.refund.updated (the older name)", "charge.refund.updated", refundJSON("re_1", "succeeded", "null", 1000, `{}`), []adjusted{refund("re_1", "completed", "", 1000)}},
		{"refund of a charge without a PaymentIntent", "refund.created",
			`{"id":"re_9","object":"refund","amount":100,"currency":"usd","status":"succeeded","created":1,"charge":"ch_9","payment_intent":null}`, nil},
		{"charge.dispute.created", "charge.dispute.created", disputeJSON("needs_response", "fraudulent"), []adjusted{dispute("pending")}},
		{"charge.dispute.updated under review", "charge.dispute.updated", disputeJSON("under_review", "fraudulent"), []adjusted{dispute("pending")}},
		{"charge.dispute.closed lost", "charge.dispute.closed", disputeJSON("lost", "fraudulent"), []adjusted{dispute("completed")}},
		{"charge.dispute.closed won", "charge.dispute.closed", disputeJSON("won", "fraudulent"), []adjusted{dispute("failed")}},
		{"charge.dispute.closed inquiry", "charge.dispute.closed", disputeJSON("warning_closed", "fraudulent"), []adjusted{dispute("failed")}},
		{"other events are only acknowledged", "customer.created", `{"id":"cus_1","object":"customer"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adj := &adjuster{}
			srv, events := hookServer(t, adj)
			if code := postEvent(t, srv.URL, "evt_1", tt.typ, tt.object); code != http.StatusOK {
				t.Fatalf("HTTP %d", code)
			}
			if got := adj.got(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Adjust calls:\n got %+v\nwant %+v", got, tt.want)
			}
			if seen, _ := events.EventSeen(t.Context(), "stripe", "evt_1"); !seen {
				t.Error("event not recorded")
			}
		})
	}
}

// A replayed event is acknowledged without adjusting again; a new event
// about the same refund adjusts it again (the adjuster replaces it by ID).
func TestStripeWebhookAdjustmentReplay(t *testing.T) {
	adj := &adjuster{}
	srv, _ := hookServer(t, adj)
	pending := refundJSON("re_1", "pending", "null", 1000, `{}`)
	for range 3 {
		if code := postEvent(t, srv.URL, "evt_1", "refund.created", pending); code != http.StatusOK {
			t.Fatalf("HTTP %d", code)
		}
	}
	if n := len(adj.got()); n != 1 {
		t.Fatalf("%d Adjust calls for one event delivered 3 times, want 1", n)
	}
	if code := postEvent(t, srv.URL, "evt_2", "refund.updated", refundJSON("re_1", "succeeded", "null", 1000, `{}`)); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	got := adj.got()
	if len(got) != 2 || got[1].A.ID != "re_1" || got[1].A.Status != "completed" {
		t.Errorf("Adjust calls = %+v, want the refund completed second", got)
	}
}

// An adjuster that fails answers 500 and leaves the event unrecorded, so
// Stripe's retry is handled; nothing is adjusted twice.
func TestStripeWebhookAdjusterFailure(t *testing.T) {
	adj := &adjuster{fail: errors.New("database is locked")}
	srv, events := hookServer(t, adj)
	dispute := disputeJSON("needs_response", "product_not_received")
	if code := postEvent(t, srv.URL, "evt_d", "charge.dispute.created", dispute); code != http.StatusInternalServerError {
		t.Fatalf("failing adjuster: HTTP %d, want 500", code)
	}
	if seen, _ := events.EventSeen(t.Context(), "stripe", "evt_d"); seen {
		t.Fatal("an event that failed was recorded as seen: Stripe's retry would be skipped")
	}
	adj.mu.Lock()
	adj.fail = nil
	adj.mu.Unlock()
	if code := postEvent(t, srv.URL, "evt_d", "charge.dispute.created", dispute); code != http.StatusOK {
		t.Fatalf("retry: HTTP %d", code)
	}
	if got := adj.got(); len(got) != 1 || got[0].Ref != "pi_1" || got[0].A.ID != "dp_1" || got[0].A.Status != "pending" || got[0].A.Reason != "product_not_received" {
		t.Errorf("Adjust calls = %+v", got)
	}
	if seen, _ := events.EventSeen(t.Context(), "stripe", "evt_d"); !seen {
		t.Error("handled event not recorded")
	}
	if code := postEvent(t, srv.URL, "evt_d", "charge.dispute.created", dispute); code != http.StatusOK || len(adj.got()) != 1 {
		t.Errorf("replay after success: HTTP %d, %d calls", code, len(adj.got()))
	}
}

// Without an adjuster refunds and disputes are acknowledged and logged.
func TestStripeWebhookNoAdjuster(t *testing.T) {
	srv, events := hookServer(t, nil)
	if code := postEvent(t, srv.URL, "evt_1", "refund.created", refundJSON("re_1", "succeeded", "null", 1000, `{}`)); code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	if seen, _ := events.EventSeen(t.Context(), "stripe", "evt_1"); !seen {
		t.Error("event not recorded")
	}
}

// PaymentIntent events settle a payment in doubt; an authorization
// (capture: after_store) is settled by amount_capturable_updated, since
// Stripe sends succeeded only once it is captured.
func TestStripeWebhookSettlements(t *testing.T) {
	intent := func(status string) string {
		return fmt.Sprintf(`{"id":"pi_1","object":"payment_intent","status":%q,"amount":5000,"amount_capturable":5000,"metadata":{"order_id":"ord_1","payment_key":"ord_1_0"}}`, status)
	}
	settled := func(ok bool) []checkout.Settlement {
		return []checkout.Settlement{{OrderID: "ord_1", PaymentKey: "ord_1_0", Succeeded: ok, Ref: "pi_1"}}
	}
	tests := []struct {
		name   string
		typ    string
		object string
		want   []checkout.Settlement
	}{
		{"succeeded", "payment_intent.succeeded", intent("succeeded"), settled(true)},
		{"authorization held", "payment_intent.amount_capturable_updated", intent("requires_capture"),
			[]checkout.Settlement{{OrderID: "ord_1", PaymentKey: "ord_1_0", Succeeded: true, Authorized: true, Ref: "pi_1"}}},
		{"capturable amount changed otherwise", "payment_intent.amount_capturable_updated", intent("processing"), nil},
		{"failed", "payment_intent.payment_failed", intent("requires_payment_method"), settled(false)},
		{"not a bridge payment", "payment_intent.succeeded", `{"id":"pi_2","object":"payment_intent","status":"succeeded","metadata":{}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []checkout.Settlement
			srv, _ := hookServerSettling(t, nil, func(_ context.Context, s checkout.Settlement) (bool, error) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, s)
				return true, nil
			})
			if code := postEvent(t, srv.URL, "evt_1", tt.typ, tt.object); code != http.StatusOK {
				t.Fatalf("HTTP %d", code)
			}
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("settlements = %+v, want %+v", got, tt.want)
			}
		})
	}
}
