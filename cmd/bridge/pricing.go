package main

import (
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/config"
)

// pricingConfig translates the config's fulfillment and tax sections (money
// already parsed in merchant.currency at load) into the checkout's plain
// PricingConfig: config does not import checkout, nor checkout config.
func pricingConfig(c *config.Config) checkout.PricingConfig {
	pc := checkout.PricingConfig{
		Currency:         c.Merchant.Currency,
		Country:          c.Merchant.Country,
		Digital:          checkout.DigitalOption{ID: c.Fulfillment.Digital.ID, Title: c.Fulfillment.Digital.Title},
		PricesIncludeTax: c.Tax.PricesIncludeTax,
		ShippingTaxable:  c.Tax.ShippingTaxable == nil || *c.Tax.ShippingTaxable,
	}
	for _, z := range c.Fulfillment.Zones {
		zone := checkout.Zone{Name: z.Name, Countries: z.Countries, Regions: z.Regions}
		for _, o := range z.Options {
			opt := checkout.ShippingOption{ID: o.ID, Title: o.Title, Carrier: o.Carrier, Flat: o.Rate.Flat.Minor, PerKg: o.Rate.PerKg.Minor}
			if o.Rate.FreeOver.IsSet() {
				v := o.Rate.FreeOver.Minor
				opt.FreeOver = &v
			}
			if d := o.DeliveryDays; d != nil {
				opt.MinDays, opt.MaxDays = d.Min, d.Max
			}
			zone.Options = append(zone.Options, opt)
		}
		pc.Zones = append(pc.Zones, zone)
	}
	for _, r := range c.Tax.Rates {
		pc.TaxRates = append(pc.TaxRates, checkout.TaxRate{Country: r.Country, Region: r.Region, PPM: r.Rate.PPM})
	}
	return pc
}

// newPricing builds the checkout's pricing from a loaded config.
func newPricing(c *config.Config) (*checkout.Pricing, error) {
	return checkout.NewPricing(pricingConfig(c))
}
