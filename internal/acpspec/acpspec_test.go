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

// TestCheckoutSchemasCompile: every released version's checkout schema
// compiles (2025-09-29 through its patch), and the official examples the
// conformance digest lists as valid do validate, so checkout tests can rely
// on them.
func TestCheckoutSchemasCompile(t *testing.T) {
	for _, v := range Versions {
		for _, def := range []string{"CheckoutSession", "CheckoutSessionWithOrder", "Error", "CheckoutSessionCreateRequest"} {
			if _, err := Schema(v, "schema.agentic_checkout.json", def); err != nil {
				t.Errorf("%s %s: %v", v, def, err)
			}
		}
	}
	vectors := []struct{ version, example, def string }{
		{"2025-09-29", "create_checkout_session_response", "CheckoutSession"},
		{"2026-04-17", "error_400_idempotency_key_required", "Error"},
		{"2026-04-17", "checkout_session_with_payment_declined", "CheckoutSession"},
		{"2026-04-17", "discovery_response_full", "DiscoveryResponse"},
	}
	for _, tt := range vectors {
		raw, err := Example(tt.version, "examples.agentic_checkout.json", tt.example)
		if err != nil {
			t.Errorf("%s %s: %v", tt.version, tt.example, err)
			continue
		}
		if err := Validate(tt.version, "schema.agentic_checkout.json", tt.def, raw); err != nil {
			t.Errorf("%s %s does not validate as %s: %v", tt.version, tt.example, tt.def, err)
		}
	}
	// The official 2025-09-29 complete example has no order (a defect of
	// the example); a session with one validates once patched.
	raw, err := Example("2025-09-29", "examples.agentic_checkout.json", "create_checkout_session_response")
	if err != nil {
		t.Fatal(err)
	}
	var session map[string]any
	if err := json.Unmarshal(raw, &session); err != nil {
		t.Fatal(err)
	}
	session["status"] = "completed"
	session["order"] = map[string]any{"id": "ord_1", "checkout_session_id": session["id"], "permalink_url": "https://shop.example/orders/1"}
	withOrder, _ := json.Marshal(session)
	if err := Validate("2025-09-29", "schema.agentic_checkout.json", "CheckoutSessionWithOrder", withOrder); err != nil {
		t.Errorf("a completed 2025-09-29 session with an order must validate: %v", err)
	}
	// The patch must not loosen what the spec forbids.
	bad := []byte(`{"id":"item_1","quantity":0}`)
	if err := Validate("2025-09-29", "schema.agentic_checkout.json", "Item", bad); err == nil {
		t.Error("quantity 0 must stay invalid in 2025-09-29")
	}
}
