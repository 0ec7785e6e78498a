package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/fakewoo"
)

const wooHookSecret = "e2ewebhooksecret42"

// wooShop starts a fake WooCommerce shop with a simple product (5 in stock)
// and a variable one whose variations sell from the parent's stock (3).
func wooShop(t *testing.T) (shop *fakewoo.Server, mugID, shirtID int64, blueID int64) {
	t.Helper()
	shop = fakewoo.NewPlain(t)
	mugID = shop.AddProduct(fakewoo.Product{Name: "Stoneware Mug", SKU: "MUG", RegularPrice: "12.50", Description: "<p>A mug.</p>",
		ManageStock: true, StockQuantity: i64p(5), Images: []fakewoo.Image{{ID: 1, Src: "https://cdn.example/mug.jpg"}}})
	shirtID = shop.AddProduct(fakewoo.Product{Type: "variable", Name: "Linen Shirt", Description: "<p>Linen.</p>",
		ManageStock: true, StockQuantity: i64p(3), Images: []fakewoo.Image{{ID: 2, Src: "https://cdn.example/shirt.jpg"}},
		Children: []fakewoo.Product{
			{SKU: "LIN-BLU", RegularPrice: "49.90", SalePrice: "39.90", ManageStock: "parent", Attributes: []fakewoo.Attribute{{Name: "Color", Option: "Blue"}}},
			{SKU: "LIN-WHT", RegularPrice: "49.90", ManageStock: "parent", Attributes: []fakewoo.Attribute{{Name: "Color", Option: "White"}}},
		}})
	p, _ := shop.Product(shirtID)
	return shop, mugID, shirtID, p.Variations[0]
}

func i64p(n int64) *int64 { return &n }

// wooConfig is the example config switched to the WooCommerce adapter of
// shop, in development mode (plain http to the fake).
func wooConfig(t *testing.T, shop *fakewoo.Server) string {
	t.Helper()
	return writeConfig(t, func(s string) string {
		s = mustReplace(t, s, "  poll_interval: 1m ", "  poll_interval: 1s ")
		return mustReplace(t, s, "  adapter: csv ", "  woocommerce:\n    url: "+shop.URL+"\n    consumer_key: "+fakewoo.DefaultKey+
			"\n    consumer_secret: "+fakewoo.DefaultSecret+"\n    webhook_secret: "+wooHookSecret+"\n  adapter: woocommerce ")
	})
}

// The bridge on the WooCommerce adapter serves the shop's catalog as feeds
// and sells through the checkout: one paid checkout makes exactly one
// WooCommerce order, paid, with the stock taken from the parent; the
// shop's webhooks reach the bridge and tell the agent's order.
func TestServeWooCommerce(t *testing.T) {
	shop, mugID, shirtID, blueID := wooShop(t)
	cfg := wooConfig(t, shop)
	base, _, logs := startServe(t, cfg)

	resp, body := get(t, base+"/api/commerce/feed.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("feed: %d %s", resp.StatusCode, body)
	}
	p, _ := shop.Product(shirtID)
	for _, want := range []string{`"Stoneware Mug"`, `"Linen Shirt - Blue"`, `"id":"` + strconv.FormatInt(p.Variations[1], 10) + `"`,
		`"sale_price":"39.90 USD"`, `"inventory_quantity":3`, "https://cdn.example/shirt.jpg"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("feed lacks %s:\n%.3000s", want, body)
		}
	}
	resp, body = get(t, base+"/feeds/openai.jsonl.gz", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(gunzip(t, body)), strconv.FormatInt(blueID, 10)) {
		t.Errorf("openai feed: %d", resp.StatusCode)
	}

	blue := strconv.FormatInt(blueID, 10)
	_, orderID := buy(t, base, blue, 2)

	waitFor(t, 15*time.Second, "the order in WooCommerce", func() bool { return len(shop.Orders()) > 0 })
	time.Sleep(200 * time.Millisecond) // a second write would show by now
	orders := shop.Orders()
	if len(orders) != 1 {
		t.Fatalf("%d WooCommerce orders, want exactly 1", len(orders))
	}
	wo := orders[0]
	if wo.Status != "processing" || wo.PaymentMethod != "stripe" || wo.TransactionID == "" || wo.LineItems[0].VariationID != blueID ||
		wo.LineItems[0].ProductID != shirtID || wo.LineItems[0].Quantity != 2 || wo.MetaData[0].Value != orderID {
		t.Errorf("WooCommerce order: %+v", wo)
	}
	if p, _ := shop.Product(shirtID); *p.StockQuantity != 1 {
		t.Errorf("parent stock after the sale: %d, want 1", *p.StockQuantity)
	}
	// WooCommerce counts the two units sold now, and the order's hold
	// still does for the hold grace (a checkout may have read the stock
	// just before the write): the last unit is not offered meanwhile.
	s := call(t, base, devKey, "POST", "/checkout_sessions", `{"line_items":[{"id":"`+blue+`","quantity":1}],"currency":"usd","capabilities":{}}`, 201)
	if msg, _ := json.Marshal(s["messages"]); !strings.Contains(string(msg), "out_of_stock") {
		t.Errorf("the last unit offered during the hold grace (it would be sold twice if the order's hold were gone): %s", msg)
	}

	hook := base + "/webhooks/woocommerce"
	if code, err := fakewoo.Ping(nil, hook, 9); err != nil || code != 200 {
		t.Errorf("creation ping: %d %v", code, err)
	}
	if code, err := shop.Deliver(nil, hook, "wrong-secret", "product.updated", mugID); err != nil || code != 401 {
		t.Errorf("badly signed webhook: %d %v", code, err)
	}
	// The mug's price changes; its webhook brings it into the feed.
	shop.UpdateProduct(mugID, func(p *fakewoo.Product) { p.RegularPrice = "14.00" })
	if code, err := shop.Deliver(nil, hook, wooHookSecret, "product.updated", mugID); err != nil || code != 200 {
		t.Fatalf("product webhook: %d %v", code, err)
	}
	waitFor(t, 15*time.Second, "the new price in the feed", func() bool {
		_, body := get(t, base+"/api/commerce/feed.json", nil)
		return strings.Contains(string(body), "14.00")
	})
	// The shop completes the order; its webhook tells the bridge.
	shop.SetOrderStatus(wo.ID, "completed")
	if code, err := shop.Deliver(nil, hook, wooHookSecret, "order.updated", wo.ID); err != nil || code != 200 {
		t.Fatalf("order webhook: %d %v\n%s", code, err, logs.String())
	}
	if o := showOrderJSON(t, cfg, orderID); o.Order.Status != "completed" || o.Order.StoreID != strconv.FormatInt(wo.ID, 10) {
		t.Errorf("bridge order after the webhook: %s store %s", o.Order.Status, o.Order.StoreID)
	}
	if len(shop.Orders()) != 1 {
		t.Errorf("%d WooCommerce orders at the end", len(shop.Orders()))
	}

	// Without a webhook, the poll finds what the shop did: a second order,
	// canceled in WooCommerce, is canceled for the agent.
	mug := strconv.FormatInt(mugID, 10)
	_, second := buy(t, base, mug, 1)
	waitFor(t, 15*time.Second, "the second order in WooCommerce", func() bool { return len(shop.Orders()) == 2 })
	shop.SetOrderStatus(shop.Orders()[1].ID, "cancelled")
	waitFor(t, 20*time.Second, "the cancellation polled", func() bool {
		return showOrderJSON(t, cfg, second).Order.Status == "canceled"
	})
}

// The commands that only read the store work on WooCommerce too: check
// maps the first product, feed build writes the feeds; a wrong key is
// WooCommerce's 401 in words, without the secret.
func TestWooCommerceCommands(t *testing.T) {
	shop, _, _, _ := wooShop(t)
	cfg := wooConfig(t, shop)
	bad := writeConfig(t, func(s string) string {
		return mustReplace(t, s, "  adapter: csv ", "  woocommerce:\n    url: "+shop.URL+"\n    consumer_key: "+fakewoo.DefaultKey+
			"\n    consumer_secret: cs_wrong_but_secret\n  adapter: woocommerce ")
	})
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"check", []string{"check", "--config", cfg}, 0, `first product "101" mapped: 1 variant(s)`},
		{"feed build", []string{"feed", "build", "--config", cfg, "--out", t.TempDir(), "--format", "openai.jsonl.gz"}, 0, "2 products, 3 variants"},
		{"wrong secret", []string{"check", "--config", bad}, 1, "Consumer secret is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runBridge(t, tt.args...)
			all := out + errOut
			if code != tt.wantCode || !strings.Contains(all, tt.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tt.wantCode, tt.want, all)
			}
			if strings.Contains(all, "cs_wrong_but_secret") || strings.Contains(all, fakewoo.DefaultSecret) {
				t.Errorf("a secret in the output:\n%s", all)
			}
		})
	}
}
