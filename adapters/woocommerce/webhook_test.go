package woocommerce

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakewoo"
)

const hookSecret = "whsecret0123456789"

// memEvents is an event log in memory.
type memEvents struct {
	mu   sync.Mutex
	seen map[string]bool
	fail bool
}

func (e *memEvents) EventSeen(_ context.Context, source, id string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail {
		return false, errors.New("storage down")
	}
	return e.seen[source+"/"+id], nil
}

func (e *memEvents) RecordEvent(_ context.Context, source, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	e.seen[source+"/"+id] = true
	return nil
}

// memUpdater records order updates.
type memUpdater struct {
	mu   sync.Mutex
	got  []bridge.OrderUpdate
	fail bool
}

func (u *memUpdater) Update(_ context.Context, up bridge.OrderUpdate) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fail {
		return false, errors.New("storage down")
	}
	u.got = append(u.got, up)
	return true, nil
}

type hookRig struct {
	shop     *fakewoo.Server
	a        *Adapter
	events   *memEvents
	orders   *memUpdater
	refresh  int
	endpoint string
}

func newHookRig(t *testing.T) *hookRig {
	t.Helper()
	r := &hookRig{shop: newShop(t), events: &memEvents{}, orders: &memUpdater{}}
	r.a = newAdapter(t, r.shop, nil)
	h := &Webhooks{Secret: hookSecret, Adapter: r.a, Events: r.events, Orders: r.orders, Refresh: func() { r.refresh++ }, Log: quiet}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.endpoint = srv.URL + "/webhooks/woocommerce"
	return r
}

func TestWebhooks(t *testing.T) {
	r := newHookRig(t)
	so, err := r.a.WriteOrder(context.Background(), paidOrder("ord_w", 1))
	if err != nil {
		t.Fatal(err)
	}
	oid, _ := parseID(so.StoreID)
	r.shop.SetOrderStatus(oid, "completed")

	tests := []struct {
		name   string
		send   func() (int, error)
		status int
	}{
		{"unsigned creation ping", func() (int, error) { return fakewoo.Ping(nil, r.endpoint, 7) }, 200},
		{"variation updated", func() (int, error) {
			return r.shop.Deliver(nil, r.endpoint, hookSecret, "product.updated", 12)
		}, 200},
		{"product deleted", func() (int, error) {
			return r.shop.Deliver(nil, r.endpoint, hookSecret, "product.deleted", 70)
		}, 200},
		{"order updated", func() (int, error) {
			return r.shop.Deliver(nil, r.endpoint, hookSecret, "order.updated", oid)
		}, 200},
		{"wrong secret", func() (int, error) {
			return r.shop.Deliver(nil, r.endpoint, "another-secret", "product.updated", 20)
		}, 401},
		{"unsigned body", func() (int, error) {
			req, _ := http.NewRequest(http.MethodPost, r.endpoint, strings.NewReader(`{"id":20}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-WC-Webhook-Topic", "product.updated")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}, 401},
	}
	for _, tt := range tests {
		status, err := tt.send()
		if err != nil || status != tt.status {
			t.Errorf("%s: %d %v, want %d", tt.name, status, err, tt.status)
		}
	}
	if r.refresh != 2 {
		t.Errorf("%d catalog refreshes, want 2", r.refresh)
	}
	r.a.mu.Lock()
	dirty, gone := r.a.dirty[10], r.a.gone[70]
	r.a.mu.Unlock()
	if !dirty || !gone {
		t.Errorf("marks: dirty parent %v, gone %v", dirty, gone)
	}
	if len(r.orders.got) != 1 || r.orders.got[0].OrderID != "ord_w" || r.orders.got[0].Status != bridge.OrderCompleted {
		t.Errorf("order updates: %+v", r.orders.got)
	}
}

// A delivery is acted on once; a failure answers 500 and is not recorded,
// so the same delivery is acted on when it comes again.
func TestWebhookDedupAndFailure(t *testing.T) {
	r := newHookRig(t)
	so, err := r.a.WriteOrder(context.Background(), paidOrder("ord_d", 1))
	if err != nil {
		t.Fatal(err)
	}
	oid, _ := parseID(so.StoreID)
	r.shop.SetOrderStatus(oid, "cancelled")
	body := []byte(`{"id":` + so.StoreID + `,"status":"cancelled","meta_data":[{"key":"` + metaKey + `","value":"ord_d"}]}`)
	send := func() int {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/woocommerce", strings.NewReader(string(body)))
		req.Header.Set("X-WC-Webhook-Signature", fakewoo.Sign(body, hookSecret))
		req.Header.Set("X-WC-Webhook-Topic", "order.updated")
		req.Header.Set("X-WC-Webhook-ID", "3")
		req.Header.Set("X-WC-Webhook-Delivery-ID", "41")
		w := httptest.NewRecorder()
		(&Webhooks{Secret: hookSecret, Adapter: r.a, Events: r.events, Orders: r.orders, Log: quiet}).ServeHTTP(w, req)
		return w.Code
	}
	r.orders.fail = true
	if c := send(); c != 500 {
		t.Fatalf("failing update: %d", c)
	}
	r.orders.fail = false
	if c := send(); c != 200 {
		t.Fatalf("retry: %d", c)
	}
	if c := send(); c != 200 || len(r.orders.got) != 1 {
		t.Fatalf("duplicate: %d, %d updates", c, len(r.orders.got))
	}
}

func TestIsPing(t *testing.T) {
	tests := []struct {
		ct, body string
		want     bool
	}{
		{"application/x-www-form-urlencoded", "webhook_id=12", true},
		{"application/x-www-form-urlencoded; charset=UTF-8", "webhook_id=12", true},
		{"", "webhook_id=12", true},
		{"application/json", "webhook_id=12", false},
		{"", `{"id":12}`, false},
		{"application/x-www-form-urlencoded", "webhook_id=12&x=1", false},
		{"application/x-www-form-urlencoded", "webhook_id=abc", false},
		{"application/x-www-form-urlencoded", `{"id":1}`, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", tt.ct)
		if got := isPing(r, []byte(tt.body)); got != tt.want {
			t.Errorf("%q %q: %v", tt.ct, tt.body, got)
		}
	}
}
