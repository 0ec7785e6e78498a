package main

import (
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/payments/stripe"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
)

// Stripe Tax as the engine's tax source: lines answered in the query's
// order, shipping taxed.
func TestStripeTaxSource(t *testing.T) {
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	fake.SetTaxRate("US-CA", 725)
	p, err := stripe.New(stripe.Config{SecretKey: stripefake.DefaultSecretKey, APIBase: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	var src checkout.TaxSource = stripeTax{p}
	ans, err := src.Tax(t.Context(), checkout.TaxQuery{Currency: "USD",
		ShipTo:   bridge.Address{Name: "Ada", Line1: "1 Infinite Loop", City: "Cupertino", Region: "CA", PostalCode: "95014", Country: "US"},
		Lines:    []checkout.TaxLine{{Ref: "li_a", Amount: 5000}, {Ref: "li_b", Amount: 999}},
		Shipping: 500})
	if err != nil {
		t.Fatal(err)
	}
	// 7.25%, half up: 362.5 → 363, 72.43 → 72, 36.25 → 36.
	if len(ans.Lines) != 2 || ans.Lines[0] != 363 || ans.Lines[1] != 72 || ans.Shipping != 36 {
		t.Fatalf("answer %+v", ans)
	}
}
