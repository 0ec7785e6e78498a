package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/config"
)

func TestPricingFromExampleConfig(t *testing.T) {
	path := filepath.Join(repoRoot(t), "config.example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(path, data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPricing(c)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	to := &bridge.Address{Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US", Region: "IL"}
	opts := p.Options([]bridge.SessionLine{{VariantID: "TEE-RED-S", UnitAmount: 1999, Quantity: 1}}, to, now)
	if len(opts) != 2 || opts[0].ID != "standard" || opts[0].Total != 500 || opts[1].ID != "express" || opts[1].Total != 1500 {
		t.Fatalf("options = %+v", opts)
	}
	free := p.Options([]bridge.SessionLine{{VariantID: "TEE-RED-S", UnitAmount: 2500, Quantity: 3}}, to, now)
	if free[0].Total != 0 || free[1].Total != 1500 {
		t.Errorf("free over 75.00: %+v", free)
	}
	if got := p.Options([]bridge.SessionLine{{UnitAmount: 2500, Quantity: 1, Digital: true}}, nil, now); len(got) != 1 || got[0].ID != "digital" || got[0].Title != "Instant download" {
		t.Errorf("digital = %+v", got)
	}
	if got := p.Options([]bridge.SessionLine{{UnitAmount: 2500, Quantity: 1}}, &bridge.Address{Country: "FR"}, now); len(got) != 0 {
		t.Errorf("the example ships only to the US: %+v", got)
	}
}

func TestPricingConfigTranslation(t *testing.T) {
	src := `
merchant:
  name: Euro Shop
  url: https://shop.example
  country: DE
  currency: EUR
  return_policy_url: https://shop.example/returns
store:
  csv:
    path: catalog.csv
fulfillment:
  zones:
    - name: Home
      countries: [DE, AT]
      options:
        - {id: dhl, title: DHL, carrier: DHL, rate: {flat: "4.90", per_kg: "0.50", free_over: "50"}, delivery_days: {min: 1, max: 3}}
    - name: Paris region
      countries: [FR]
      regions: [IDF]
      options:
        - {id: idf, title: Paris, rate: {flat: 12}, delivery_days: {min: 2, max: 4}}
  digital: {id: dl, title: Download}
tax:
  prices_include_tax: true
  shipping_taxable: false
  rates:
    - {country: DE, rate: "19"}
    - {country: FR, region: IDF, rate: "20.5"}
`
	c, err := config.Parse("x.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	fifty := int64(5000)
	want := checkout.PricingConfig{
		Currency: "EUR", Country: "DE",
		Zones: []checkout.Zone{
			{Name: "Home", Countries: []string{"DE", "AT"}, Options: []checkout.ShippingOption{
				{ID: "dhl", Title: "DHL", Carrier: "DHL", Flat: 490, PerKg: 50, FreeOver: &fifty, MinDays: 1, MaxDays: 3}}},
			{Name: "Paris region", Countries: []string{"FR"}, Regions: []string{"IDF"}, Options: []checkout.ShippingOption{
				{ID: "idf", Title: "Paris", Flat: 1200, MinDays: 2, MaxDays: 4}}},
		},
		Digital:          checkout.DigitalOption{ID: "dl", Title: "Download"},
		PricesIncludeTax: true,
		ShippingTaxable:  false,
		TaxRates:         []checkout.TaxRate{{Country: "DE", PPM: 190000}, {Country: "FR", Region: "IDF", PPM: 205000}},
	}
	if got := pricingConfig(c); !reflect.DeepEqual(got, want) {
		t.Errorf("pricingConfig =\n%+v\nwant\n%+v", got, want)
	}
	if _, err := newPricing(c); err != nil {
		t.Error(err)
	}
}
