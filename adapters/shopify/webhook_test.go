package shopify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeshopify"
	"github.com/acp-bridge/bridge/internal/syncbuf"
)

const hookSecret = "app-client-secret-0123456789"

// hookServer serves Webhooks for a fake shop signing with hookSecret.
func hookServer(t *testing.T) (*fakeshopify.Server, *Adapter, *Webhooks, string, fakeshopify.Product) {
	t.Helper()
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{ClientID: "cid", ClientSecret: hookSecret})
	a, _ := newAdapter(t, s, nil)
	h := &Webhooks{Secret: hookSecret, Adapter: a, Events: &memEvents{}, Catalog: &triggers{}, Orders: &newsLog{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return s, a, h, srv.URL, big
}

func TestWebhookCatalog(t *testing.T) {
	s, a, h, url, big := hookServer(t)
	readAll(t, a)
	ctx := context.Background()
	status, err := s.SendWebhook(ctx, url, "products/update", "evt_p1", s.ProductPayload(big.ID))
	if err != nil || status != 200 {
		t.Fatalf("products/update: %d %v", status, err)
	}
	status, _ = s.SendWebhook(ctx, url, "inventory_levels/update", "evt_i1", s.InventoryLevelPayload(big.Variants[0].ID, 1))
	if status != 200 {
		t.Fatalf("inventory_levels/update: %d", status)
	}
	if n := h.Catalog.(*triggers).count(); n != 2 {
		t.Errorf("%d syncs asked for, want 2", n)
	}
	a.mu.Lock()
	marked := a.dirty[fmt.Sprintf("gid://shopify/Product/%d", big.ID)] && a.dirtyItems[fmt.Sprintf("gid://shopify/InventoryItem/%d", big.Variants[0].InventoryItem)]
	a.mu.Unlock()
	if !marked {
		t.Error("the product and the inventory item were not marked for the next read")
	}
	// A repeat of the same event is acknowledged and not acted on.
	status, _ = s.SendWebhook(ctx, url, "products/update", "evt_p1", s.ProductPayload(big.ID))
	if n := h.Catalog.(*triggers).count(); status != 200 || n != 2 {
		t.Errorf("duplicate: status %d, %d syncs asked for", status, n)
	}
}

func TestWebhookOrders(t *testing.T) {
	s, a, h, url, big := hookServer(t)
	ctx := context.Background()
	if _, err := a.WriteOrder(ctx, paidOrder("ord_w", big.Variants[0].ID)); err != nil {
		t.Fatal(err)
	}
	id := s.Orders()[0].ID
	s.Fulfill(id, "UPS", "1Z1", "https://ups.example/1Z1")
	news := h.Orders.(*newsLog)
	for _, ev := range []string{"evt_f", "evt_f"} { // Shopify repeats deliveries
		if status, err := s.SendWebhook(ctx, url, "orders/fulfilled", ev, s.OrderPayload(id)); err != nil || status != 200 {
			t.Fatalf("orders/fulfilled: %d %v", status, err)
		}
	}
	if len(news.updates) != 1 || news.updates[0].OrderID != "ord_w" || news.updates[0].Status != bridge.OrderShipped ||
		news.updates[0].Fulfillment.TrackingNumber != "1Z1" {
		t.Fatalf("updates %+v", news.updates)
	}
	s.Cancel(id, "INVENTORY")
	if status, _ := s.SendWebhook(ctx, url, "orders/cancelled", "evt_c", s.OrderPayload(id)); status != 200 {
		t.Fatalf("orders/cancelled: %d", status)
	}
	if last := news.updates[len(news.updates)-1]; last.Status != bridge.OrderCanceled {
		t.Errorf("last update %+v, want canceled", last)
	}
	r := s.RefundOrder(id, "10.00", "damaged")
	if status, _ := s.SendWebhook(ctx, url, "refunds/create", "evt_r", s.RefundPayload(id, r)); status != 200 {
		t.Fatalf("refunds/create: %d", status)
	}
	adj := news.adjusts["pi_1"]
	if len(adj) != 1 || adj[0].Amount != 1000 || adj[0].Type != "refund" || adj[0].ID != fmt.Sprintf("shopify_refund_%d", r.ID) {
		t.Errorf("adjustments %+v", news.adjusts)
	}
	// A failing orders service answers 500 and does not record the
	// event, so Shopify's redelivery is acted on.
	news.fail = errors.New("database down")
	if status, _ := s.SendWebhook(ctx, url, "orders/updated", "evt_u", s.OrderPayload(id)); status != 500 {
		t.Errorf("status %d with the orders service down, want 500", status)
	}
	news.fail = nil
	if status, _ := s.SendWebhook(ctx, url, "orders/updated", "evt_u", s.OrderPayload(id)); status != 200 {
		t.Errorf("redelivery: %d", status)
	}
}

func TestWebhookRefusals(t *testing.T) {
	_, _, h, url, _ := hookServer(t)
	body := `{"id":1}`
	for _, tc := range []struct {
		name, sig, event string
		want             int
	}{
		{"no signature", "", "e1", 401},
		{"wrong secret", fakeshopify.Sign("other", []byte(body)), "e2", 401},
		{"not base64", "%%%", "e3", 401},
		{"no event id", fakeshopify.Sign(hookSecret, []byte(body)), "", 400},
		{"good", fakeshopify.Sign(hookSecret, []byte(body)), "e4", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("X-Shopify-Topic", "products/update")
			req.Header.Set("X-Shopify-Hmac-SHA256", tc.sig)
			if tc.event != "" {
				req.Header.Set("X-Shopify-Event-Id", tc.event)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if n := h.Catalog.(*triggers).count(); n != 1 {
		t.Errorf("%d syncs asked for, want 1 (the signed one)", n)
	}
}

func TestDecodeWebhook(t *testing.T) {
	for _, tc := range []struct {
		topic, body string
		bad         bool
		products    int
		updates     int
	}{
		{"products/delete", `{"id":12}`, false, 1, 0},
		{"products/update", `{"id":"x"}`, true, 0, 0},
		{"products/update", `not json`, true, 0, 0},
		{"inventory_levels/update", `{"inventory_item_id":-4}`, true, 0, 0},
		{"orders/updated", `{"id":1,"tags":"vip, other"}`, false, 0, 0}, // not the bridge's
		{"orders/updated", `{"id":1,"tags":"vip, bridge:ord_9","fulfillment_status":"fulfilled","fulfillments":[{"id":5,"status":"success","shipment_status":"delivered"}]}`, false, 0, 1},
		{"orders/updated", `{"id":1,"tags":"bridge:ord_9","fulfillment_status":"partial","fulfillments":[{"id":5,"status":"success"}]}`, false, 0, 0}, // partial: not yet
		{"orders/cancelled", `{"id":1,"tags":"bridge:ord_9","cancelled_at":"2026-11-01T10:00:00Z","cancel_reason":"customer"}`, false, 0, 1},
		{"refunds/create", `{"id":1,"order_id":2,"transactions":[{"kind":"refund","status":"success","amount":"1.005","currency":"USD"}]}`, true, 0, 0},
		{"app/uninstalled", `{}`, false, 0, 0},
	} {
		n, err := decodeWebhook(tc.topic, []byte(tc.body))
		if errors.Is(err, errBadBody) != tc.bad {
			t.Errorf("%s %s: error %v, want bad=%v", tc.topic, tc.body, err, tc.bad)
		}
		if len(n.products) != tc.products || len(n.order.updates()) != tc.updates {
			t.Errorf("%s %s: %+v", tc.topic, tc.body, n)
		}
	}
	n, _ := decodeWebhook("orders/updated", []byte(`{"id":1,"tags":"bridge:ord_9","fulfillment_status":"fulfilled","fulfillments":[{"id":5,"status":"success","shipment_status":"delivered"}]}`))
	if u := n.order.updates()[0]; u.Status != bridge.OrderCompleted || u.Fulfillment.Status != "delivered" {
		t.Errorf("delivered fulfillment: %+v", u)
	}
}

func FuzzDecodeWebhook(f *testing.F) {
	for _, topic := range []string{"products/update", "inventory_levels/update", "orders/updated", "refunds/create"} {
		f.Add(topic, []byte(`{"id":1,"inventory_item_id":2,"order_id":3,"tags":"bridge:o","fulfillments":[{"id":4,"status":"success"}],"transactions":[{"kind":"refund","status":"success","amount":"1.00","currency":"USD"}]}`))
	}
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		n, err := decodeWebhook(topic, body)
		if err != nil && !errors.Is(err, errBadBody) {
			t.Fatalf("error not marked as a bad body: %v", err)
		}
		for _, u := range n.order.updates() {
			if u.OrderID == "" {
				t.Fatal("an update without an order id")
			}
		}
	})
}

func FuzzDecodeBulk(f *testing.F) {
	f.Add([]byte(`{"id":"gid://shopify/Product/1","title":"T","status":"ACTIVE"}
{"id":"gid://shopify/ProductVariant/2","price":"1.00","__parentId":"gid://shopify/Product/1"}
{"id":"gid://shopify/MediaImage/3","image":{"url":"https://x/y.jpg"},"__parentId":"gid://shopify/Product/1"}
`))
	f.Add([]byte(`{"id":"gid://shopify/ProductVariant/2","__parentId":"gid://shopify/Product/9"}` + "\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var probs []bridge.Problem
		ps, _, err := decodeBulk(strings.NewReader(string(data)), maxBulkLine, func(p bridge.Problem) { probs = append(probs, p) })
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if seen[p.ID] {
				t.Fatalf("product %s returned twice", p.ID)
			}
			seen[p.ID] = true
		}
	})
}

func TestDecodeBulk(t *testing.T) {
	// Children before their parent, an orphan, a bad line, a duplicate.
	in := `{"id":"gid://shopify/ProductVariant/2","price":"1.00","__parentId":"gid://shopify/Product/1"}
{"id":"gid://shopify/Product/1","title":"T","status":"ACTIVE"}
not json
{"id":"gid://shopify/ProductVariant/3","price":"1.00","__parentId":"gid://shopify/Product/7"}
{"id":"gid://shopify/Product/1","title":"again","status":"ACTIVE"}
{"id":"gid://shopify/MediaImage/4","image":{"url":"https://x/y.jpg"},"__parentId":"gid://shopify/Product/1"}
`
	var probs []bridge.Problem
	ps, _, err := decodeBulk(strings.NewReader(in), maxBulkLine, func(p bridge.Problem) { probs = append(probs, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || len(ps[0].variants) != 1 || len(ps[0].images) != 1 || ps[0].Title != "T" {
		t.Fatalf("products %+v", ps)
	}
	if len(probs) != 3 {
		t.Errorf("problems %v, want 3 (bad line, orphan, duplicate)", probs)
	}
	for _, p := range probs {
		if p.Line == 0 {
			t.Errorf("problem without a line: %v", p)
		}
	}
}

// TestWebhookRefundAlert: a refund made in Shopify moves no money at
// Stripe: it is recorded as a pending adjustment saying so, and an error
// naming the order and the amount is logged for a person to refund in
// Stripe.
func TestWebhookRefundAlert(t *testing.T) {
	for _, tc := range []struct {
		name, amount, note string
		want               string
	}{
		{"partial, with a note", "10.00", "damaged", "amount=\"10.00 USD\""},
		{"whole order", "47.00", "", "amount=\"47.00 USD\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, a, h, url, big := hookServer(t)
			logs := &syncbuf.Buffer{}
			h.Log = slog.New(slog.NewTextHandler(logs, nil))
			ctx := context.Background()
			if _, err := a.WriteOrder(ctx, paidOrder("ord_rf", big.Variants[0].ID)); err != nil {
				t.Fatal(err)
			}
			id := s.Orders()[0].ID
			r := s.RefundOrder(id, tc.amount, tc.note)
			if status, _ := s.SendWebhook(ctx, url, "refunds/create", "evt_rf", s.RefundPayload(id, r)); status != 200 {
				t.Fatalf("refunds/create: %d", status)
			}
			adj := h.Orders.(*newsLog).adjusts["pi_1"]
			if len(adj) != 1 || adj[0].Status != "pending" || !strings.Contains(adj[0].Reason, "refund the payment in Stripe") {
				t.Errorf("adjustments %+v, want one pending, saying to refund in Stripe", adj)
			}
			alerts := h.Orders.(*newsLog).alerts
			if len(alerts) != 1 {
				t.Fatalf("alerts %q, want one", alerts)
			}
			for _, want := range []string{"ord_rf", "shopify_refund_not_at_stripe", "pi_1", strings.Trim(strings.TrimPrefix(tc.want, "amount="), `"`)} {
				if !strings.Contains(alerts[0], want) {
					t.Errorf("alert %q lacks %q", alerts[0], want)
				}
			}
		})
	}
}

// TestWebhookShopAndTopic: with the shop configured as a domain, a
// webhook signed for another shop of the app is acknowledged and ignored;
// an event id is deduplicated per topic, so one event delivered under two
// topics is acted on under each.
func TestWebhookShopAndTopic(t *testing.T) {
	body := `{"id":1}`
	for _, tc := range []struct {
		name  string
		shop  string      // configured
		sends [][2]string // domain, topic; all with event id e1
		acted int
	}{
		{"our shop", "fake-shop.myshopify.com", [][2]string{{"fake-shop.myshopify.com", "products/update"}}, 1},
		{"our shop, any case", "Fake-Shop.myshopify.com", [][2]string{{"FAKE-shop.myshopify.com", "products/update"}}, 1},
		{"another shop", "fake-shop.myshopify.com", [][2]string{{"other.myshopify.com", "products/update"}, {"", "products/update"}}, 0},
		{"shop given as a URL: not checked", "", [][2]string{{"other.myshopify.com", "products/update"}}, 1},
		{"one event, two topics", "", [][2]string{{"", "products/update"}, {"", "products/delete"}, {"", "products/update"}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeshopify.New(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, func(o *Options) {
				if tc.shop != "" {
					o.Shop = tc.shop
				}
			})
			h := &Webhooks{Secret: hookSecret, Adapter: a, Events: &memEvents{}, Catalog: &triggers{}}
			for _, send := range tc.sends {
				req := httptest.NewRequest(http.MethodPost, "/webhooks/shopify", strings.NewReader(body))
				req.Header.Set("X-Shopify-Topic", send[1])
				req.Header.Set("X-Shopify-Hmac-SHA256", fakeshopify.Sign(hookSecret, []byte(body)))
				req.Header.Set("X-Shopify-Event-Id", "e1")
				req.Header.Set("X-Shopify-Shop-Domain", send[0])
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					t.Errorf("%v: status %d", send, rec.Code)
				}
			}
			if n := h.Catalog.(*triggers).count(); n != tc.acted {
				t.Errorf("acted on %d webhooks, want %d", n, tc.acted)
			}
		})
	}
}
