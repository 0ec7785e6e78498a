package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const shopifyBase = `
merchant:
  name: Demo Shop
  url: https://shop.example
  country: US
  return_policy_url: https://shop.example/returns
store:
  adapter: shopify
  shopify:
    shop: demo.myshopify.com
`

func TestShopifyDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(shopifyBase+"    client_id: cid\n    client_secret: ${SECRET}\n"), env(map[string]string{"SECRET": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Store.Shopify
	if s.APIVersion != "2026-10" || s.Bulk != "auto" || s.BulkThreshold != 2000 || s.FullSyncInterval != 6*time.Hour {
		t.Errorf("defaults %+v", s)
	}
	if s.WebhookSecret.Value() != "s3cret" {
		t.Error("webhook_secret does not default to client_secret")
	}
}

func TestShopifyProblems(t *testing.T) {
	tok := "    access_token: ${TOKEN}\n"
	goodEnv := map[string]string{"TOKEN": "shpat_x"}
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"no credentials", shopifyBase, nil, []string{"store.shopify.access_token: required"}},
		{"both credentials", shopifyBase + tok + "    client_id: a\n    client_secret: ${TOKEN}\n", goodEnv, []string{"not both"}},
		{"secret without id", shopifyBase + "    client_secret: ${TOKEN}\n", goodEnv, []string{"store.shopify.client_id: required"}},
		{"bad shop", strings.Replace(shopifyBase, "demo.myshopify.com", "demo.com", 1) + tok, goodEnv, []string{`store.shopify.shop: "demo.com" is not a shop domain`}},
		{"no shop", strings.Replace(shopifyBase, "    shop: demo.myshopify.com\n", "    bulk: auto\n", 1) + tok, goodEnv, []string{"store.shopify.shop: required"}},
		{"bad version", shopifyBase + tok + "    api_version: \"2026-11\"\n", goodEnv, []string{"store.shopify.api_version"}},
		{"bad bulk", shopifyBase + tok + "    bulk: sometimes\n", goodEnv, []string{"store.shopify.bulk:"}},
		{"bad location", shopifyBase + tok + "    locations: [abc]\n", goodEnv, []string{"store.shopify.locations.0"}},
		{"short full sync", shopifyBase + tok + "    full_sync_interval: 10s\n", goodEnv, []string{"store.shopify.full_sync_interval"}},
		{"bad storefront", shopifyBase + tok + "    storefront_url: shop\n", goodEnv, []string{"store.shopify.storefront_url"}},
		{"literal token in production", "mode: production\n" + shopifyBase + "    access_token: shpat_literal\n", nil,
			[]string{"store.shopify.access_token: secrets must come from the environment in production"}},
		{"url shop in production", "mode: production\n" + strings.Replace(shopifyBase, "demo.myshopify.com", "http://127.0.0.1:9", 1) + tok, goodEnv,
			[]string{"store.shopify.shop: write the shop's my-shop.myshopify.com domain in production"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml), env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing problem %q in:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), "shpat_") {
				t.Error("a token appears in the problems")
			}
		})
	}
	if _, err := Parse("x.yaml", []byte(strings.Replace(shopifyBase, "demo.myshopify.com", "http://127.0.0.1:9", 1)+tok), env(goodEnv)); err != nil {
		t.Errorf("a URL shop in development: %v", err)
	}
}
