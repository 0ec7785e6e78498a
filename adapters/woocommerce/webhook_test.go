package woocommerce

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// sendHook delivers one signed webhook of topic with body to h, as
// WooCommerce would within one second (the same delivery id), and returns
// the status.
func sendHook(h http.Handler, topic string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/woocommerce", strings.NewReader(string(body)))
	req.Header.Set("X-WC-Webhook-Signature", fakewoo.Sign(body, hookSecret))
	req.Header.Set("X-WC-Webhook-Topic", topic)
	req.Header.Set("X-WC-Webhook-ID", "3")
	req.Header.Set("X-WC-Webhook-Delivery-ID", "c4ca4238a0b923820dcc509a6f75849b")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// WooCommerce never retries, so every signed delivery is answered 200 — a
// failure too (it would only count towards WooCommerce disabling the
// webhook; the poll catches up). Distinct events sharing a delivery id (one
// webhook, one second) are each acted on; the very same body twice is
// acted on once.
func TestWebhookDedupAndFailure(t *testing.T) {
	r := newHookRig(t)
	orderBody := func(id, status string) []byte {
		return []byte(`{"id":` + id + `,"status":"` + status + `","date_modified_gmt":"2026-11-27T10:00:00","meta_data":[{"key":"` + metaKey + `","value":"ord_` + id + `"}]}`)
	}
	h := &Webhooks{Secret: hookSecret, Adapter: r.a, Events: r.events, Orders: r.orders, Log: quiet}
	steps := []struct {
		name       string
		failOrders bool
		failEvents bool
		topic      string
		body       []byte
		status     int
		updates    int // order updates applied so far
	}{
		{"update fails: 200, not recorded", true, false, "order.updated", orderBody("5", "cancelled"), 200, 0},
		{"the same again, works", false, false, "order.updated", orderBody("5", "cancelled"), 200, 1},
		{"the very same body: once", false, false, "order.updated", orderBody("5", "cancelled"), 200, 1},
		{"another order, same delivery id", false, false, "order.updated", orderBody("6", "completed"), 200, 2},
		{"the same order's next change, same delivery id", false, false, "order.updated", orderBody("5", "refunded"), 200, 3},
		{"event log down: acted on anyway", false, true, "order.updated", orderBody("7", "completed"), 200, 4},
		{"signed but unreadable: 200, ignored", false, false, "order.updated", []byte(`{"id":`), 200, 4},
	}
	for _, st := range steps {
		r.orders.fail, r.events.fail = st.failOrders, st.failEvents
		if c := sendHook(h, st.topic, st.body); c != st.status {
			t.Errorf("%s: status %d, want %d", st.name, c, st.status)
		}
		if n := len(r.orders.got); n != st.updates {
			t.Errorf("%s: %d updates, want %d", st.name, n, st.updates)
		}
	}

	// The fake delivers as WooCommerce does: two events within one second
	// share their delivery id, and both are acted on.
	fixed := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r.shop.SetClock(func() time.Time { return fixed })
	r.orders.fail, r.events.fail = false, false
	before := len(r.orders.got)
	for _, id := range []string{"ord_a", "ord_b"} {
		so, err := r.a.WriteOrder(context.Background(), paidOrder(id, 1))
		if err != nil {
			t.Fatal(err)
		}
		oid, _ := parseID(so.StoreID)
		r.shop.SetOrderStatus(oid, "completed")
		if c, err := r.shop.Deliver(nil, r.endpoint, hookSecret, "order.updated", oid); err != nil || c != 200 {
			t.Fatalf("deliver: %d %v", c, err)
		}
	}
	if n := len(r.orders.got) - before; n != 2 {
		t.Errorf("two events of one second: %d acted on, want 2", n)
	}
}

// The topic header is not signed: a product's signed body resent as
// product.deleted must not take the product out of the catalog. A deletion
// is checked by reading the product again.
func TestWebhookProductDeleted(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakewoo.Server)
		body    string
		records string // keys after the next read
		variant string // a variant of product 10 that must be gone, if any
	}{
		{"topic forged on a live product's body", nil, "product 70", "10,20,30,70,80", ""},
		{"forged with a bare id", nil, `{"id":70}`, "10,20,30,70,80", ""},
		{"product deleted", func(s *fakewoo.Server) { s.DeleteProduct(70) }, `{"id":70}`, "10,20,30,80", ""},
		{"variation deleted", func(s *fakewoo.Server) { s.DeleteProduct(12) }, `{"id":12}`, "10,20,30,70,80", "12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := fakewoo.New(t)
			clock := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
			now := func() time.Time { return clock }
			shop.SetClock(now)
			loadShop(t, shop, "testdata/shop.json")
			clock = clock.Add(time.Hour) // past the overlap: the next read asks for changes only
			a := newAdapter(t, shop, nil, func(o *Options) { o.Now = now; o.FullSyncInterval = 6 * time.Hour })
			first, _, _ := readAll(t, a)
			body := []byte(tt.body)
			if tt.body == "product 70" {
				p, _ := shop.Product(70)
				body, _ = json.Marshal(p)
			}
			if tt.setup != nil {
				tt.setup(shop)
			}
			h := &Webhooks{Secret: hookSecret, Adapter: a, Log: quiet}
			if c := sendHook(h, "product.deleted", body); c != 200 {
				t.Fatalf("status %d", c)
			}
			clock = clock.Add(time.Minute)
			recs, _, keys := readAll(t, a)
			slices.Sort(keys)
			if got := strings.Join(keys, ","); got != tt.records {
				t.Errorf("records %s, want %s (before: %d)", got, tt.records, len(first))
			}
			if tt.variant != "" {
				for _, v := range recs["10"].Variants {
					if v["id"] == tt.variant {
						t.Errorf("variant %s still sold", tt.variant)
					}
				}
			}
		})
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
