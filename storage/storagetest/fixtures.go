package storagetest

import (
	"fmt"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// Entry returns a catalog entry of realistic size, one product with three
// variants, whose ids derive from i: product "p<i>", variants "p<i>-v0" to
// "p<i>-v2". Large-snapshot tests and driver benchmarks use it so that every
// driver is measured on the same data.
func Entry(i int) bridge.CatalogEntry {
	pid := fmt.Sprintf("p%d", i)
	desc := strings.Repeat("Soft organic cotton, pre-washed so it keeps its shape. ", 5)
	p := bridge.Product{
		ID:    pid,
		Title: fmt.Sprintf("Classic Crew Neck T-Shirt %d", i),
		Description: bridge.Description{
			Plain: desc,
			HTML:  "<p>" + desc + "</p><ul><li>100% cotton</li><li>Machine wash</li></ul>",
		},
		URL:      "https://shop.example.com/products/classic-tee-" + pid,
		Brand:    "Example Apparel",
		Category: "Apparel & Accessories > Clothing > Shirts & Tops",
		Media: []bridge.Media{
			{Type: "image", URL: "https://cdn.example.com/img/" + pid + "-front.jpg", AltText: "Front view"},
			{Type: "image", URL: "https://cdn.example.com/img/" + pid + "-back.jpg", AltText: "Back view"},
		},
	}
	for j, size := range []string{"S", "M", "L"} {
		vid := fmt.Sprintf("%s-v%d", pid, j)
		qty := int64(10 * j) // variant 0 tracks stock and has none
		v := bridge.Variant{
			ID:           vid,
			SKU:          "TEE-" + vid,
			Title:        "Classic Tee / Navy / " + size,
			URL:          p.URL + "?variant=" + vid,
			GTIN:         fmt.Sprintf("0%012d", i*3+j),
			Price:        bridge.Money{Amount: 1999, Currency: "USD"},
			Availability: bridge.InStock,
			Quantity:     &qty,
			Options: []bridge.Option{
				{Name: "Color", Value: "Navy"},
				{Name: "Size", Value: size},
			},
			Media:            []bridge.Media{{Type: "image", URL: "https://cdn.example.com/img/" + vid + ".jpg"}},
			Condition:        "new",
			Weight:           "0.2",
			WeightUnit:       "kg",
			EligibleSearch:   true,
			EligibleCheckout: true,
		}
		if j == 2 {
			v.ListPrice = &bridge.Money{Amount: 2499, Currency: "USD"}
		}
		p.Variants = append(p.Variants, v)
	}
	return bridge.CatalogEntry{Product: p, SourceKey: pid, SourceLine: 2 + 3*i}
}

// fullEntries returns entries that between them set every field of
// bridge.CatalogEntry, including the cases a careless encoding loses: a nil
// Quantity next to a zero one, a nil ListPrice next to a set one, HTML-only
// descriptions and non-ASCII text.
func fullEntries() []bridge.CatalogEntry {
	zero, five := int64(0), int64(5)
	return []bridge.CatalogEntry{
		{
			Product: bridge.Product{
				ID:          "prod-1",
				Title:       "Wool Scarf",
				Description: bridge.Description{Plain: "Warm.", HTML: "<p>Warm.</p>"},
				URL:         "https://shop.example.com/scarf",
				Brand:       "Nordwind",
				Category:    "Apparel > Accessories > Scarves",
				Media: []bridge.Media{
					{Type: "image", URL: "https://cdn.example.com/scarf.jpg", AltText: "A scarf"},
					{Type: "video", URL: "https://cdn.example.com/scarf.mp4"},
				},
				Variants: []bridge.Variant{
					{
						ID:               "var-1a",
						SKU:              "SCARF-RED",
						Title:            "Wool Scarf – Red",
						Description:      bridge.Description{Plain: "Red one."},
						URL:              "https://shop.example.com/scarf?v=1a",
						GTIN:             "4006381333931",
						MPN:              "NW-SC-R",
						Price:            bridge.Money{Amount: 3990, Currency: "EUR"},
						ListPrice:        &bridge.Money{Amount: 4990, Currency: "EUR"},
						Availability:     bridge.LimitedStock,
						Quantity:         &five,
						Options:          []bridge.Option{{Name: "Color", Value: "Red"}},
						Media:            []bridge.Media{{Type: "image", URL: "https://cdn.example.com/scarf-red.jpg", AltText: "Red"}},
						Condition:        "new",
						Weight:           "0.3",
						WeightUnit:       "kg",
						EligibleSearch:   true,
						EligibleCheckout: true,
					},
					{
						ID:               "var-1b",
						Title:            "Wool Scarf – Grey",
						Price:            bridge.Money{Amount: 3990, Currency: "EUR"},
						Availability:     bridge.OutOfStock,
						Quantity:         &zero,
						Options:          []bridge.Option{{Name: "Color", Value: "Grey"}},
						EligibleSearch:   true,
						EligibleCheckout: false,
					},
				},
			},
			Issues: []bridge.Issue{
				{Severity: bridge.SeverityWarning, Field: "gtin", Message: "GTIN missing"},
				{Severity: bridge.SeverityError, VariantID: "var-1b", Field: "price", Message: "bad price"},
			},
			SourceKey:  "scarf",
			SourceLine: 2,
		},
		{
			Product: bridge.Product{
				ID:          "prod-2",
				Title:       "抹茶 Matcha 100 g",
				Description: bridge.Description{HTML: "<b>Ceremonial</b> grade \"uji\" & more"},
				Variants: []bridge.Variant{{
					ID:               "var-2",
					Title:            "Matcha",
					Price:            bridge.Money{Amount: 2500, Currency: "JPY"},
					Availability:     bridge.Preorder,
					AvailabilityDate: "2026-09-01T00:00:00Z",
					// Quantity nil: the store does not track this variant.
				}},
			},
			SourceKey:  "matcha",
			SourceLine: 7,
		},
		{
			Product: bridge.Product{
				ID:    "prod-3",
				Title: "Gift Card",
				Variants: []bridge.Variant{{
					ID:           "var-3",
					Title:        "Gift Card 50",
					Price:        bridge.Money{Amount: 50000, Currency: "KWD"},
					Availability: bridge.InStock,
				}},
			},
		},
	}
}

// simple returns a small entry with the given product id and variant ids.
func simple(id string, variantIDs ...string) bridge.CatalogEntry {
	e := bridge.CatalogEntry{Product: bridge.Product{ID: id, Title: "Product " + id}, SourceKey: id}
	for _, v := range variantIDs {
		e.Product.Variants = append(e.Product.Variants, bridge.Variant{
			ID:           v,
			Title:        "Variant " + v,
			Price:        bridge.Money{Amount: 100, Currency: "USD"},
			Availability: bridge.InStock,
		})
	}
	return e
}

// infoFor describes a snapshot of entries the way the catalog pipeline would.
func infoFor(version string, entries []bridge.CatalogEntry) bridge.CatalogInfo {
	info := bridge.CatalogInfo{
		Version: version,
		// Not UTC on purpose: drivers must return the same instant in UTC.
		// Microseconds, not nanoseconds: the precision every SQL database keeps.
		SyncedAt: time.Date(2026, 5, 4, 14, 30, 15, 123456000, time.FixedZone("CEST", 2*60*60)),
		Products: len(entries),
		// The store export's date: stock holds count from it on.
		SourceTime: time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC),
	}
	for _, e := range entries {
		info.Variants += len(e.Product.Variants)
		if e.Excluded() {
			info.Excluded++
		}
	}
	return info
}

// TypicalSession returns a session of realistic size, owned by
// "agent-key": three lines (variants "p0-v1" to "p2-v1"), an address, two
// fulfillment options, a message and policy links (about 2 kB of JSON),
// at revision 1, times in UTC. The benchmarks write and read it.
func TypicalSession(id string) bridge.Session {
	now := time.Now().UTC()
	avail := int64(40)
	s := bridge.Session{
		ID: id, Owner: "agent-key", Rev: 1, Status: bridge.StatusReady, Currency: "USD",
		Buyer:  &bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo: &bridge.Address{Name: "Ada Lovelace", Line1: "1 Main St", City: "Springfield", Region: "IL", PostalCode: "62701", Country: "US"},
		Options: []bridge.FulfillmentOption{
			{ID: "std", Type: "shipping", Title: "Standard", Carrier: "USPS", Earliest: now.Add(72 * time.Hour), Latest: now.Add(120 * time.Hour), Subtotal: 500, Total: 500},
			{ID: "exp", Type: "shipping", Title: "Express", Carrier: "UPS", Earliest: now.Add(24 * time.Hour), Latest: now.Add(48 * time.Hour), Subtotal: 1500, Total: 1500},
		},
		Selected:  "std",
		Messages:  []bridge.Message{{Type: bridge.MessageWarning, Code: bridge.MsgLowStock, Param: "$.line_items[0]", Content: "Only 3 left"}},
		Links:     []bridge.Link{{Type: "terms_of_use", URL: "https://shop.example.com/terms"}, {Type: "return_policy", URL: "https://shop.example.com/returns"}},
		Totals:    bridge.Totals{ItemsBase: 5997, Subtotal: 5997, Fulfillment: 500, Tax: 520, Total: 7017},
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(6 * time.Hour),
	}
	for i := range 3 {
		s.Lines = append(s.Lines, bridge.SessionLine{
			ID: fmt.Sprintf("li_%d", i), VariantID: fmt.Sprintf("p%d-v1", i), ProductID: fmt.Sprintf("p%d", i),
			Title: "Classic Tee / Navy / M", ImageURL: "https://cdn.example.com/img/p1-v1.jpg",
			URL: "https://shop.example.com/products/classic-tee", Quantity: 1, Available: &avail,
			UnitAmount: 1999, Base: 1999, Subtotal: 1999, Tax: 173, Total: 2172,
		})
	}
	return s
}

// typicalOrder is an order of realistic size: three lines, an address,
// its history (about 1.3 kB of JSON).
func typicalOrder(id string) bridge.Order {
	now := time.Now().UTC()
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	o := bridge.Order{
		ID: id, SessionID: "cs_" + id, Owner: "agent-key", APIVersion: "2026-04-17", Status: bridge.OrderCreated,
		PermalinkURL: "https://shop.example.com/orders/" + id, CreatedAt: now, UpdatedAt: now, Currency: "USD",
		Subtotal: usd(5997), Shipping: usd(500), Tax: usd(520), Total: usd(7017),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo:         &bridge.Address{Name: "Ada Lovelace", Line1: "1 Main St", City: "Springfield", Region: "IL", PostalCode: "62701", Country: "US"},
		ShippingMethod: &bridge.ShippingMethod{ID: "std", Title: "Standard", Type: "shipping"},
		PaymentRef:     "pi_3PqRsTuVwXyZ" + id, Payment: bridge.PaymentStateCaptured, Token: "0123456789abcdef0123456789abcdef",
		History: []bridge.OrderEvent{{At: now, Status: "pending_payment"}, {At: now, Status: bridge.OrderCreated, Note: "paid"}},
	}
	for i := range 3 {
		o.Lines = append(o.Lines, bridge.OrderLine{ID: fmt.Sprintf("li_%d", i), VariantID: fmt.Sprintf("p%d-v1", i),
			ProductID: fmt.Sprintf("p%d", i), Title: "Classic Tee / Navy / M", Quantity: 1, UnitPrice: usd(1999), Total: usd(1999)})
	}
	return o
}
