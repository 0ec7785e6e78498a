package acpspec

import (
	"encoding/json"
	"testing"
)

func TestFeedExamplesValidate(t *testing.T) {
	raw, err := Example("2026-04-17", "examples.feed.json", "upsert_products_request_single_product")
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate("2026-04-17", "schema.feed.json", "UpsertProductsRequest", raw); err != nil {
		t.Fatalf("official example does not validate: %v", err)
	}
	var bad map[string]any
	_ = json.Unmarshal(raw, &bad)
	bad["unexpected"] = true
	b, _ := json.Marshal(bad)
	if err := Validate("2026-04-17", "schema.feed.json", "UpsertProductsRequest", b); err == nil {
		t.Fatal("an unknown key must fail additionalProperties:false")
	}
}
