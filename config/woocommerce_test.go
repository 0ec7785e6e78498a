package config

import (
	"strings"
	"testing"
	"time"
)

const wooMinimal = `
mode: %s
server:
  public_url: https://bridge.shop.example
merchant:
  name: Demo Shop
  url: https://shop.example
  country: US
  return_policy_url: https://shop.example/returns
store:
  adapter: woocommerce
  woocommerce:
    url: https://shop.example
    consumer_key: ${WOO_KEY}
    consumer_secret: ${WOO_SECRET}
`

func TestWooCommerceConfig(t *testing.T) {
	dev := strings.Replace(wooMinimal, "%s", "development", 1)
	wooEnv := map[string]string{"WOO_KEY": "ck_1", "WOO_SECRET": "cs_1"}
	c, err := Parse("x.yaml", []byte(dev), env(wooEnv))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Store.WooCommerce
	if w.Auth != "basic" || w.FullSyncInterval != 6*time.Hour || w.ConsumerSecret.Value() != "cs_1" || w.ConsumerSecret.String() == "cs_1" {
		t.Errorf("defaults: %+v", w)
	}
	if c.ACP.StockTimeout != 2*time.Second {
		t.Errorf("stock timeout %s, want 2s for a shop's live stock over HTTP", c.ACP.StockTimeout)
	}
	prod := strings.Replace(wooMinimal, "%s", "production", 1) + prodCommerce
	wooProdEnv := prodEnv(wooEnv)
	if _, err := Parse("x.yaml", []byte(prod), env(wooProdEnv)); err != nil {
		t.Fatalf("production config should load: %v", err)
	}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"url required", strings.Replace(dev, "    url: https://shop.example\n", "", 1), "store.woocommerce.url: required"},
		{"http refused in production", strings.Replace(prod, "url: https://shop.example\n    consumer", "url: http://shop.example\n    consumer", 1), "x.yaml:13: store.woocommerce.url: plain http is refused in production"},
		{"keys in the url", strings.Replace(dev, "url: https://shop.example\n    consumer", "url: https://shop.example?consumer_key=ck\n    consumer", 1), "store.woocommerce.url: must not contain"},
		{"literal secret in production", strings.Replace(prod, "${WOO_SECRET}", "cs_literal", 1), "x.yaml:15: store.woocommerce.consumer_secret: secrets must come from the environment"},
		{"missing key", strings.Replace(dev, "    consumer_key: ${WOO_KEY}\n", "", 1), "store.woocommerce.consumer_key: required"},
		{"literal webhook secret in production", strings.Replace(prod, "    consumer_secret: ${WOO_SECRET}\n", "    consumer_secret: ${WOO_SECRET}\n    webhook_secret: literal123\n", 1),
			"x.yaml:16: store.woocommerce.webhook_secret: secrets must come from the environment"},
		{"bad auth", dev + "    auth: oauth\n", `store.woocommerce.auth: "oauth" is not one of basic, query_string`},
		{"short full sync", dev + "    full_sync_interval: 10s\n", "store.woocommerce.full_sync_interval: at least 1m"},
		{"unknown key", dev + "    consumer_token: x\n", "store.woocommerce.consumer_token: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml), env(wooProdEnv))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want %q, got %v", tt.want, err)
			}
			if strings.Contains(err.Error(), "cs_1") || strings.Contains(err.Error(), "cs_literal") {
				t.Errorf("a secret in the message: %v", err)
			}
		})
	}
}
