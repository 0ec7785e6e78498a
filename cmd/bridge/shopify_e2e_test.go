package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/internal/fakeshopify"
)

// TestServeShopify runs the bridge on the Shopify adapter against the fake
// Admin API: the first sync reads the catalog (a bulk operation) and the
// feed serves it with sale prices; a checkout completes and creates
// exactly one Shopify order, which takes the stock; a products/update
// webhook brings a price change into the feed within seconds; an order
// webhook delivered twice is acted on once (the order shipped, one notice
// to the agent).
func TestServeShopify(t *testing.T) {
	const secret = "shopify-app-secret-for-e2e-0123"
	shop := fakeshopify.New(t, fakeshopify.Config{ClientID: "cid", ClientSecret: secret})
	const agentSecret = "whsec_shopify_e2e_agent_0123456789"
	agent := fakeagent.New(t, agentSecret)
	t.Setenv("SHOPIFY_E2E_AGENT_SECRET", agentSecret)
	tee := shop.AddProduct(fakeshopify.Product{Title: "Shopify Tee", Handle: "shopify-tee", Description: "<p>Organic cotton.</p>", Vendor: "Acme",
		Images: []fakeshopify.Image{{URL: "https://cdn.example/tee.jpg"}},
		Variants: []*fakeshopify.Variant{
			{Title: "S", SKU: "ST-S", Price: "19.99", CompareAtPrice: "24.99", Tracked: true, Options: []fakeshopify.Option{{Name: "Size", Value: "S"}}, Available: map[int64]int64{1: 3}},
			{Title: "M", SKU: "ST-M", Price: "19.99", Tracked: true, Options: []fakeshopify.Option{{Name: "Size", Value: "M"}}, Available: map[int64]int64{1: 3}},
		}})
	cfg := writeConfig(t, func(s string) string {
		return strings.Replace(s, "  adapter: csv ", fmt.Sprintf(`  adapter: shopify
  shopify:
    shop: %s
    access_token: %s
    webhook_secret: %s
  unused: `, shop.URL, fakeshopify.DefaultToken, secret), 1)
	}, func(s string) string { return strings.Replace(s, "  unused: ", "  #", 1) },
		func(s string) string {
			return mustReplace(t, s, "\nacp:\n", "\nacp:\n  webhooks:\n    url: "+agent.URL()+"\n    secret: ${SHOPIFY_E2E_AGENT_SECRET}\n")
		})
	base, _, logs := startServe(t, cfg)

	vs := fmt.Sprint(tee.Variants[0].ID)
	resp, body := get(t, base+"/api/commerce/feed.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("feed: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"id":"` + vs + `"`, `"price":"24.99 USD","sale_price":"19.99 USD"`,
		`"link":"https://fake-shop.myshopify.com/products/shopify-tee?variant=` + vs + `"`, `"inventory_quantity":3`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("feed lacks %s:\n%s", want, body)
		}
	}
	if c := shop.Calls(); c["bulkOperationRunQuery"] != 1 {
		t.Errorf("first sync calls %v, want one bulk operation", c)
	}

	// A checkout of two S tees: one order in Shopify, stock taken there.
	_, orderID := buy(t, base, vs, 2)
	waitFor(t, 10*time.Second, "the Shopify order", func() bool { return len(shop.Orders()) > 0 })
	time.Sleep(300 * time.Millisecond) // a second write would show by now
	orders := shop.Orders()
	if len(orders) != 1 {
		t.Fatalf("%d Shopify orders, want exactly 1", len(orders))
	}
	o := orders[0]
	if !slices.Contains(o.Tags, "bridge:"+orderID) || o.Lines[0].Quantity != 2 || o.Transactions[0].Gateway != "stripe" {
		t.Errorf("Shopify order %+v", o)
	}
	if n := shop.Available(tee.Variants[0].ID); n != 1 {
		t.Errorf("Shopify stock %d after selling 2 of 3", n)
	}
	// Shopify says 1 left, and the order's hold still counts for the hold
	// grace (a checkout may have read the stock just before the write):
	// the last unit is not offered meanwhile.
	s := call(t, base, devKey, "POST", "/checkout_sessions", `{"line_items":[{"id":"`+vs+`","quantity":1}],"currency":"usd","capabilities":{}}`, 201)
	if !strings.Contains(string(mustJSON(t, s["messages"])), "out_of_stock") {
		t.Errorf("the last unit offered during the hold grace: %v", s["messages"])
	}

	// A price change, told by webhook, reaches the feed within seconds.
	ctx := context.Background()
	shop.UpdateProduct(tee.ID, func(p *fakeshopify.Product) { p.Variants[1].Price = "17.50" })
	if st, err := shop.SendWebhook(ctx, base+"/webhooks/shopify", "products/update", "evt_prod_1", shop.ProductPayload(tee.ID)); err != nil || st != 200 {
		t.Fatalf("products/update webhook: %d %v", st, err)
	}
	waitFor(t, 10*time.Second, "the new price in the feed", func() bool {
		_, body := get(t, base+"/api/commerce/feed.json", nil)
		return strings.Contains(string(body), `"price":"17.50 USD"`)
	})

	// Shipped in Shopify: the webhook, delivered twice, is handled once.
	shop.Fulfill(o.ID, "UPS", "1Z999", "https://ups.example/1Z999")
	for i := range 2 {
		if st, err := shop.SendWebhook(ctx, base+"/webhooks/shopify", "orders/fulfilled", "evt_ful_1", shop.OrderPayload(o.ID)); err != nil || st != 200 {
			t.Fatalf("orders/fulfilled #%d: %d %v", i, st, err)
		}
	}
	// Acted on once: the bridge's order is shipped, with one shipped
	// entry in its history and one order_update (shipped) to the agent.
	waitFor(t, 10*time.Second, "the bridge order shipped", func() bool { return showOrderJSON(t, cfg, orderID).Order.Status == "shipped" })
	shippedEvents := func() int {
		n := 0
		for _, e := range agent.Events() {
			if e.Type == "order_update" && e.OrderID == orderID && e.Status == "shipped" {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "the agent told of the shipment", func() bool { return shippedEvents() > 0 })
	time.Sleep(300 * time.Millisecond) // a second notice would show by now
	if n := shippedEvents(); n != 1 {
		t.Errorf("%d shipped notices to the agent, want 1", n)
	}
	shipped := 0
	for _, h := range showOrderJSON(t, cfg, orderID).Order.History {
		if h.Status == "shipped" {
			shipped++
		}
	}
	if shipped != 1 {
		t.Errorf("%d shipped entries in the order's history, want 1", shipped)
	}
	if st, err := shop.SendWebhook(ctx, base+"/webhooks/shopify", "orders/fulfilled", "evt_forged", map[string]any{"id": 1}); err != nil || st != 200 {
		t.Fatalf("a well-signed webhook: %d %v", st, err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/shopify", strings.NewReader(`{"id":1}`))
	req.Header.Set("X-Shopify-Hmac-SHA256", "AAAA")
	req.Header.Set("X-Shopify-Event-Id", "evt_bad")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("unsigned webhook: %v %v", resp, err)
	}
	if strings.Contains(logs.String(), fakeshopify.DefaultToken) || strings.Contains(logs.String(), secret) {
		t.Error("a Shopify secret appears in the logs")
	}
	if len(shop.Orders()) != 1 {
		t.Errorf("%d Shopify orders at the end, want 1", len(shop.Orders()))
	}
	if _, body := get(t, base+"/metrics", nil); !strings.Contains(string(body), `bridge_upstream_breaker_state{upstream="shopify"} 0`) {
		t.Error("the Shopify client's breaker is not exported")
	}
	// bridge check reads the shop beside the running server.
	if out, errOut, code := runBridge(t, "check", "--config", cfg); code != 0 || !strings.Contains(out, "store shopify") || !strings.Contains(out, "2 variant(s)") || strings.Contains(out, "no such field") {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}
}
