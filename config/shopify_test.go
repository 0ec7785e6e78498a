package config

import (
	"strings"
	"testing"
	"time"
)

// shopifyBase is a config on the Shopify adapter without credentials;
// shopifyToken adds a token from the environment shopifyEnv sets. The
// problem cases are in TestParseProblems.
var (
	shopifyBase = strings.Replace(minimal, "  csv:\n    path: catalog.csv\n", "  adapter: shopify\n  shopify:\n    shop: demo.myshopify.com\n", 1)
	shopifyEnv  = map[string]string{"TOKEN": "shpat_from_env"}
)

const shopifyToken = "    access_token: ${TOKEN}\n"

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
	// A local fake's URL is fine in development.
	if _, err := Parse("x.yaml", []byte(strings.Replace(shopifyBase, "demo.myshopify.com", "http://127.0.0.1:9", 1)+shopifyToken), env(shopifyEnv)); err != nil {
		t.Errorf("a URL shop in development: %v", err)
	}
}

// TestShopifySecretsStayOut: problems name secrets, never show them.
func TestShopifySecretsStayOut(t *testing.T) {
	_, err := Parse("x.yaml", []byte("mode: production\n"+shopifyBase+"    access_token: shpat_literal_value\n    webhook_secret: whsec_literal\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "store.shopify.access_token") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "shpat_literal_value") || strings.Contains(err.Error(), "whsec_literal") {
		t.Errorf("a secret appears in the problems:\n%v", err)
	}
}
