package feed

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

var testTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func usdSettings() Settings {
	return Settings{
		Merchant: bridge.Merchant{
			Name:             "Acme Outfitters",
			URL:              "https://acme.example",
			Currency:         "USD",
			Country:          "US",
			PrivacyPolicyURL: "https://acme.example/policies/privacy",
			TermsURL:         "https://acme.example/policies/terms",
			ReturnPolicyURL:  "https://acme.example/policies/refunds",
			ReturnWindowDays: 30,
		},
		TargetCountries: []string{"US", "CA"},
		GeneratedAt:     testTime,
	}
}

func jpySettings() Settings {
	return Settings{
		Merchant: bridge.Merchant{
			Name:            "Kyoto Tea House",
			URL:             "https://tea.example.jp",
			Currency:        "JPY",
			Country:         "JP",
			ReturnPolicyURL: "https://tea.example.jp/returns",
		},
		GeneratedAt: testTime,
	}
}

func usd(amount int64) bridge.Money { return bridge.Money{Amount: amount, Currency: "USD"} }

func qty(n int64) *int64 { return &n }

func img(url string) bridge.Media { return bridge.Media{Type: "image", URL: url} }

// usdProducts is the golden fixture: every case the writers must handle.
func usdProducts() []bridge.Product {
	return []bridge.Product{
		{ // variants with options, a sale, stock, gtin, weight, both description forms
			ID: "tee", Title: "Classic Tee", Brand: "Acme", Category: "Apparel > Shirts",
			Description: bridge.Description{Plain: "Soft cotton tee, pre-shrunk.", HTML: "<p>Soft <b>cotton</b> tee, pre-shrunk.</p>"},
			URL:         "https://acme.example/products/tee",
			Media:       []bridge.Media{img("https://cdn.acme.example/tee/main.jpg"), img("https://cdn.acme.example/tee/back.jpg"), {Type: "video", URL: "https://cdn.acme.example/tee/spin.mp4"}},
			Variants: []bridge.Variant{
				{
					ID: "tee-red-s", SKU: "TEE-R-S", Title: "Classic Tee - Red / S", GTIN: "00012345600012", MPN: "CT-100",
					URL:   "https://acme.example/products/tee?variant=1",
					Price: usd(1999), ListPrice: &bridge.Money{Amount: 2499, Currency: "USD"},
					Availability: bridge.InStock, Quantity: qty(12),
					Options:   []bridge.Option{{Name: "Color", Value: "Red"}, {Name: "Size", Value: "S"}},
					Media:     []bridge.Media{{Type: "image", URL: "https://cdn.acme.example/tee/red.jpg", AltText: "Red tee"}},
					Condition: "new", Weight: "0.2", WeightUnit: "kg", EligibleSearch: true, EligibleCheckout: true,
				},
				{
					ID: "tee-red-m", Title: "Classic Tee - Red / M",
					URL:   "https://acme.example/products/tee?variant=2",
					Price: usd(1999), Availability: bridge.OutOfStock, Quantity: qty(0),
					Options:   []bridge.Option{{Name: "Color", Value: "Red"}, {Name: "Size", Value: "M"}},
					Condition: "new", EligibleSearch: true,
				},
				{
					ID: "tee-blue-m", Title: "Classic Tee - Blue / M",
					URL:   "https://acme.example/products/tee?variant=3",
					Price: usd(2199), Availability: bridge.LimitedStock, Quantity: qty(-2),
					Options:   []bridge.Option{{Name: "colour", Value: "Blue"}, {Name: "size", Value: "M"}},
					Condition: "New", EligibleSearch: true,
				},
			},
		},
		{ // untracked stock, HTML-only description with text that needs escaping
			ID: "mug", Title: "Enamel Mug", Brand: "Acme",
			Description: bridge.Description{HTML: "<h2>Camp mug</h2><p>Holds 12&nbsp;oz, \"tough\", tab\there,\nline &amp; more\u2028sep 😀 a < b</p><script>x()</script>"},
			URL:         "https://acme.example/products/mug",
			Media:       []bridge.Media{{URL: "https://cdn.acme.example/mug.jpg"}},
			Variants: []bridge.Variant{{
				ID: "mug-1", Title: "Enamel Mug", Price: usd(1250), Availability: bridge.InStock, EligibleSearch: true,
			}},
		},
		{ // preorder with a date, backorder without
			ID: "lamp", Title: "Desk Lamp", Brand: "Lumo",
			Description: bridge.Description{Plain: "LED desk lamp, 3 color temperatures."},
			URL:         "https://acme.example/products/lamp",
			Media:       []bridge.Media{img("https://cdn.acme.example/lamp.jpg")},
			Variants: []bridge.Variant{
				{ID: "lamp-black", Title: "Desk Lamp - Black", Price: usd(4900), Availability: bridge.Preorder, AvailabilityDate: "2027-01-15", Options: []bridge.Option{{Name: "Color", Value: "Black"}}, EligibleSearch: true},
				{ID: "lamp-white", Title: "Desk Lamp - White", Price: usd(4900), Availability: bridge.Backorder, Options: []bridge.Option{{Name: "Color", Value: "White"}}, EligibleSearch: true},
			},
		},
		{ // excluded: placeholder title, no brand
			ID: "broken", Title: "N/A",
			Description: bridge.Description{Plain: "Never shown."},
			URL:         "https://acme.example/products/broken",
			Media:       []bridge.Media{img("https://cdn.acme.example/broken.jpg")},
			Variants:    []bridge.Variant{{ID: "broken-1", Title: "Broken", Price: usd(100), Availability: bridge.InStock}},
		},
		{ // one invalid variant: only socks-m is published
			ID: "socks", Title: "Wool Socks", Brand: "Acme",
			Description: bridge.Description{Plain: "Merino socks."},
			URL:         "https://acme.example/products/socks",
			Media:       []bridge.Media{img("https://cdn.acme.example/socks.jpg")},
			Variants: []bridge.Variant{
				{ID: "socks-m", Title: "Wool Socks - M", Price: usd(900), Availability: bridge.Discontinued, Options: []bridge.Option{{Name: "Size", Value: "M"}}, EligibleSearch: true},
				{ID: "socks-l", Title: "Wool Socks - L", Price: usd(0), Availability: bridge.InStock, Options: []bridge.Option{{Name: "Size", Value: "L"}}, EligibleSearch: true},
			},
		},
		{ // warnings only: ALL CAPS title, list price not above price, unknown stock
			ID: "poster", Title: "VINTAGE TRAVEL POSTER", Brand: "Acme",
			Description: bridge.Description{Plain: "Print on matte paper."},
			URL:         "https://acme.example/products/poster",
			Media:       []bridge.Media{img("https://cdn.acme.example/poster.jpg")},
			Variants: []bridge.Variant{{
				ID: "poster-1", Title: "VINTAGE TRAVEL POSTER", Price: usd(3000), ListPrice: &bridge.Money{Amount: 3000, Currency: "USD"},
				Availability: bridge.Unknown, EligibleSearch: false,
			}},
		},
	}
}

func jpyProducts() []bridge.Product {
	return []bridge.Product{{
		ID: "matcha", Title: "Uji Matcha 30g", Brand: "Kyoto Tea House",
		Description: bridge.Description{Plain: "Ceremonial grade matcha from Uji."},
		URL:         "https://tea.example.jp/products/matcha",
		Media:       []bridge.Media{img("https://tea.example.jp/img/matcha.png")},
		Variants: []bridge.Variant{{
			ID: "matcha-30", Title: "Uji Matcha 30g", GTIN: "4901234567894",
			Price: bridge.Money{Amount: 1500, Currency: "JPY"}, ListPrice: &bridge.Money{Amount: 1800, Currency: "JPY"},
			Availability: bridge.InStock, Quantity: qty(40), Weight: "30", WeightUnit: "g", EligibleSearch: true,
		}},
	}}
}

// entries validates products into catalog entries, as a sync would.
func entries(ps []bridge.Product, s Settings) []bridge.CatalogEntry {
	out := make([]bridge.CatalogEntry, len(ps))
	for i := range ps {
		out[i] = bridge.CatalogEntry{Product: ps[i], Issues: Validate(&ps[i], s), SourceKey: ps[i].ID, SourceLine: 2 + i*3}
	}
	return out
}

// syntheticProduct makes product i of a generated catalog: 3 variants with
// realistic text sizes (the shape of the benchmarks).
func syntheticProduct(i int) bridge.Product {
	id := fmt.Sprintf("prod-%07d", i)
	desc := prose(uint64(i), 700)
	p := bridge.Product{
		ID: id, Title: fmt.Sprintf("Everyday Canvas Backpack %d - Water Resistant, 20L", i), Brand: "Northwind Goods",
		Category:    "Luggage & Bags > Backpacks",
		Description: bridge.Description{Plain: desc},
		URL:         "https://shop.example.com/products/" + id,
		Media: []bridge.Media{
			img("https://cdn.shop.example.com/files/" + id + "/main.jpg"),
			img("https://cdn.shop.example.com/files/" + id + "/side.jpg"),
			img("https://cdn.shop.example.com/files/" + id + "/detail.jpg"),
		},
	}
	colors := []string{"Black", "Olive", "Navy"}
	for j, c := range colors {
		vid := fmt.Sprintf("%s-%d", id, j)
		v := bridge.Variant{
			ID: vid, SKU: "SKU-" + vid, Title: p.Title + " - " + c,
			URL:   p.URL + "?variant=" + vid,
			Price: usd(int64(4999 + 100*j)), Availability: bridge.InStock, Quantity: qty(int64(i % 17)),
			Options:   []bridge.Option{{Name: "Color", Value: c}, {Name: "Size", Value: "20L"}},
			Media:     []bridge.Media{img("https://cdn.shop.example.com/files/" + vid + ".jpg")},
			Condition: "new", Weight: "0.9", WeightUnit: "kg", EligibleSearch: true,
		}
		if j == 0 {
			v.ListPrice = &bridge.Money{Amount: 6999, Currency: "USD"}
			v.GTIN = gtinFor(int64(i))
		}
		p.Variants = append(p.Variants, v)
	}
	return p
}

var proseWords = strings.Fields(`the a of and to in for with on is this our your from made durable
	light water resistant canvas leather cotton wool steel handle strap pocket zip padded laptop sleeve
	bottle side compartment travel daily commute weekend trip comfortable shoulder back panel breathable
	mesh reinforced base stitching recycled fabric lining colour fits most airline carry-on rules weighs
	only holds up to liters designed tested city trail rain snow sun everyday classic modern slim roomy
	organizer key clip front quick access hidden security lifetime warranty care wipe clean mild soap
	dry flat avoid bleach imported ships within two business days free returns thirty smooth YKK zippers
	adjustable sternum chest strap ventilated foam quiet subtle logo matte finish gift ready`)

// prose makes n bytes of varied, deterministic product text: repetitive
// text would flatter the compressor and the escaper.
func prose(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	var b strings.Builder
	for b.Len() < n {
		w := proseWords[r.IntN(len(proseWords))]
		if b.Len() == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
		switch r.IntN(12) {
		case 0:
			b.WriteString(". ")
		case 1:
			b.WriteString(", ")
		default:
			b.WriteByte(' ')
		}
	}
	return strings.TrimSpace(b.String()) + "."
}

// gtinFor makes a valid GTIN-13 from n.
func gtinFor(n int64) string {
	body := fmt.Sprintf("400%09d", n%1_000_000_000)
	sum := 0
	for i, w := len(body)-1, 3; i >= 0; i, w = i-1, 4-w {
		sum += int(body[i]-'0') * w
	}
	return body + fmt.Sprint((10-sum%10)%10)
}

func syntheticEntries(n int, s Settings) []bridge.CatalogEntry {
	out := make([]bridge.CatalogEntry, n)
	for i := range out {
		p := syntheticProduct(i)
		out[i] = bridge.CatalogEntry{Product: p, Issues: Validate(&p, s)}
	}
	return out
}
