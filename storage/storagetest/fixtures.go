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
