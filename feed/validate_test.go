package feed

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	bridge "github.com/acp-bridge/bridge"
)

// validProduct passes every rule: the base the table cases break.
func validProduct() bridge.Product {
	return bridge.Product{
		ID: "p1", Title: "Trail Runner Shoe", Brand: "Acme", Category: "Shoes",
		Description: bridge.Description{Plain: "Light shoe for trails."},
		URL:         "https://acme.example/p/trail",
		Media:       []bridge.Media{img("https://cdn.acme.example/trail.jpg")},
		Variants: []bridge.Variant{
			{ID: "v1", Title: "Trail Runner Shoe - 42", Price: usd(8999), Availability: bridge.InStock, GTIN: "4006381333931", MPN: "TR-42",
				Condition: "new", Weight: "0.35", WeightUnit: "kg", EligibleSearch: true, EligibleCheckout: true},
			{ID: "v2", Title: "Trail Runner Shoe - 43", Price: usd(8999), ListPrice: &bridge.Money{Amount: 9999, Currency: "USD"},
				Availability: bridge.Preorder, AvailabilityDate: "2027-02-01", EligibleSearch: true},
		},
	}
}

type wantIssue struct {
	sev     bridge.Severity
	variant string
	field   string
}

func (w wantIssue) String() string { return fmt.Sprintf("%s/%s/%s", w.sev, w.variant, w.field) }

var (
	E = bridge.SeverityError
	W = bridge.SeverityWarning
)

func TestValidate(t *testing.T) {
	type mut func(p *bridge.Product, s *Settings)
	v0 := func(f func(v *bridge.Variant)) mut {
		return func(p *bridge.Product, _ *Settings) { f(&p.Variants[0]) }
	}
	merchant := func(f func(m *bridge.Merchant)) mut {
		return func(_ *bridge.Product, s *Settings) { f(&s.Merchant) }
	}
	cases := []struct {
		name string
		mut  mut
		want []wantIssue // exactly these; none for a clean product
	}{
		{"valid", func(*bridge.Product, *Settings) {}, nil},

		// ids
		{"product id missing", func(p *bridge.Product, _ *Settings) { p.ID = " " }, []wantIssue{{E, "", FieldID}}},
		{"product id placeholder", func(p *bridge.Product, _ *Settings) { p.ID = "NULL" }, []wantIssue{{E, "", FieldID}}},
		{"no variants", func(p *bridge.Product, _ *Settings) { p.Variants = nil }, []wantIssue{{E, "", FieldVariants}}},
		{"variant id missing excludes product", v0(func(v *bridge.Variant) { v.ID = "" }), []wantIssue{{E, "", FieldID}}},
		{"variant id 100 chars", v0(func(v *bridge.Variant) { v.ID = strings.Repeat("é", 100) }), nil},
		{"variant id 101 chars", v0(func(v *bridge.Variant) { v.ID = strings.Repeat("x", 101) }), []wantIssue{{E, strings.Repeat("x", 101), FieldID}}},
		{"duplicate variant id", func(p *bridge.Product, _ *Settings) { p.Variants[1].ID = "v1" }, []wantIssue{{E, "v1", FieldID}}},
		{"duplicate variant id in a large product", func(p *bridge.Product, _ *Settings) {
			base := p.Variants[0]
			base.EligibleCheckout = false
			p.Variants = nil
			for i := range 100 {
				v := base
				v.ID = fmt.Sprintf("v%d", i%99) // v0 twice
				p.Variants = append(p.Variants, v)
			}
		}, []wantIssue{{E, "v0", FieldID}}},

		// titles
		{"title missing", func(p *bridge.Product, _ *Settings) { p.Title = "" }, []wantIssue{{E, "", FieldTitle}}},
		{"title placeholder", func(p *bridge.Product, _ *Settings) { p.Title = "Unknown" }, []wantIssue{{E, "", FieldTitle}}},
		{"title 150 runes", func(p *bridge.Product, _ *Settings) { p.Title = strings.Repeat("é", 150) }, nil},
		{"title 151 runes", func(p *bridge.Product, _ *Settings) { p.Title = strings.Repeat("é", 151) }, []wantIssue{{E, "", FieldTitle}}},
		{"title all caps", func(p *bridge.Product, _ *Settings) { p.Title = "TRAIL RUNNER SHOE" }, []wantIssue{{W, "", FieldTitle}}},
		{"title short acronym", func(p *bridge.Product, _ *Settings) { p.Title = "USB 3" }, nil},
		{"variant title missing", v0(func(v *bridge.Variant) { v.Title = "n/a" }), []wantIssue{{E, "v1", FieldTitle}}},
		{"variant title all caps", v0(func(v *bridge.Variant) { v.Title = "TRAIL RUNNER 42" }), []wantIssue{{W, "v1", FieldTitle}}},
		{"variant title = product title checked once", func(p *bridge.Product, _ *Settings) {
			p.Title = "ÜBER TRAIL SHOE"
			p.Variants[0].Title = p.Title
		}, []wantIssue{{W, "", FieldTitle}}},

		// description
		{"html-only description", func(p *bridge.Product, _ *Settings) { p.Description = bridge.Description{HTML: "<p>Light</p>"} }, nil},
		{"description missing", func(p *bridge.Product, _ *Settings) { p.Description = bridge.Description{} }, []wantIssue{{E, "", FieldDescription}}},
		{"description placeholder", func(p *bridge.Product, _ *Settings) { p.Description = bridge.Description{Plain: "N/A"} }, []wantIssue{{E, "", FieldDescription}}},
		{"description only on one variant", func(p *bridge.Product, _ *Settings) {
			p.Description = bridge.Description{}
			p.Variants[0].Description = bridge.Description{Plain: "Own"}
		}, []wantIssue{{E, "v2", FieldDescription}}},
		{"html in plain description", func(p *bridge.Product, _ *Settings) { p.Description.Plain = "Light <b>shoe</b>" }, []wantIssue{{E, "", FieldDescription}}},
		{"angle bracket text is fine", func(p *bridge.Product, _ *Settings) { p.Description.Plain = "weight < 300g, fits 3 > 2 <3" }, nil},
		{"description 5000 runes", func(p *bridge.Product, _ *Settings) { p.Description.Plain = strings.Repeat("ß", 5000) }, nil},
		{"description 5001 runes", func(p *bridge.Product, _ *Settings) { p.Description.Plain = strings.Repeat("ß", 5001) }, []wantIssue{{E, "", FieldDescription}}},
		{"variant description html", v0(func(v *bridge.Variant) { v.Description.Plain = "<div>x</div>" }), []wantIssue{{E, "v1", FieldDescription}}},

		// urls
		{"url missing", func(p *bridge.Product, _ *Settings) { p.URL = "" }, []wantIssue{{E, "", FieldURL}}},
		{"url on variants only", func(p *bridge.Product, _ *Settings) {
			p.URL = ""
			p.Variants[0].URL = "https://acme.example/p/trail?v=1"
			p.Variants[1].URL = "https://acme.example/p/trail?v=2"
		}, nil},
		{"url on one variant only", func(p *bridge.Product, _ *Settings) {
			p.URL = ""
			p.Variants[0].URL = "https://acme.example/p/trail?v=1"
		}, []wantIssue{{E, "v2", FieldURL}}},
		{"url relative", func(p *bridge.Product, _ *Settings) { p.URL = "/p/trail" }, []wantIssue{{E, "", FieldURL}}},
		{"url ftp", func(p *bridge.Product, _ *Settings) { p.URL = "ftp://acme.example/p" }, []wantIssue{{E, "", FieldURL}}},
		{"url credentials", func(p *bridge.Product, _ *Settings) { p.URL = "https://user:pw@acme.example/p" }, []wantIssue{{E, "", FieldURL}}},
		{"url space", func(p *bridge.Product, _ *Settings) { p.URL = "https://acme.example/p/trail shoe" }, []wantIssue{{E, "", FieldURL}}},
		{"url non-ascii", func(p *bridge.Product, _ *Settings) { p.URL = "https://acme.example/p/schuhé" }, []wantIssue{{E, "", FieldURL}}},
		{"url bad percent", func(p *bridge.Product, _ *Settings) { p.URL = "https://acme.example/p/100%" }, []wantIssue{{E, "", FieldURL}}},
		{"url encoded", func(p *bridge.Product, _ *Settings) { p.URL = "https://acme.example:8443/p/schuh%C3%A9?a=1&b=%20#top" }, nil},
		{"url http", func(p *bridge.Product, _ *Settings) { p.URL = "http://acme.example/p" }, []wantIssue{{W, "", FieldURL}}},
		{"variant url bad", v0(func(v *bridge.Variant) { v.URL = "acme.example/p?v=1" }), []wantIssue{{E, "v1", FieldURL}}},

		// images
		{"no image", func(p *bridge.Product, _ *Settings) { p.Media = nil }, []wantIssue{{E, "", FieldImage}}},
		{"video is not an image", func(p *bridge.Product, _ *Settings) { p.Media[0].Type = "video" }, []wantIssue{{E, "", FieldImage}}},
		{"untyped media is an image", func(p *bridge.Product, _ *Settings) { p.Media[0].Type = "" }, nil},
		{"image on one variant only", func(p *bridge.Product, _ *Settings) {
			p.Media = nil
			p.Variants[0].Media = []bridge.Media{img("https://cdn.acme.example/v1.jpg")}
		}, []wantIssue{{E, "v2", FieldImage}}},
		{"product image url relative", func(p *bridge.Product, _ *Settings) { p.Media[0].URL = "trail.jpg" }, []wantIssue{{E, "", FieldImage}}},
		{"variant image url bad", v0(func(v *bridge.Variant) { v.Media = []bridge.Media{img("https://cdn.acme.example/a b.jpg")} }), []wantIssue{{E, "v1", FieldImage}}},

		// brand
		{"brand missing", func(p *bridge.Product, _ *Settings) { p.Brand = "" }, []wantIssue{{E, "", FieldBrand}}},
		{"brand placeholder", func(p *bridge.Product, _ *Settings) { p.Brand = "n/a" }, []wantIssue{{E, "", FieldBrand}}},
		{"brand 70 runes", func(p *bridge.Product, _ *Settings) { p.Brand = strings.Repeat("ü", 70) }, nil},
		{"brand 71 runes", func(p *bridge.Product, _ *Settings) { p.Brand = strings.Repeat("ü", 71) }, []wantIssue{{E, "", FieldBrand}}},

		// price
		{"price no currency", v0(func(v *bridge.Variant) { v.Price.Currency = "" }), []wantIssue{{E, "v1", FieldPrice}}},
		{"price lower-case currency", v0(func(v *bridge.Variant) { v.Price.Currency = "usd" }), []wantIssue{{E, "v1", FieldPrice}}},
		{"price unknown currency", v0(func(v *bridge.Variant) { v.Price.Currency = "ABC" }), []wantIssue{{E, "v1", FieldPrice}}},
		{"price zero", v0(func(v *bridge.Variant) { v.Price.Amount = 0 }), []wantIssue{{E, "v1", FieldPrice}}},
		{"price negative", v0(func(v *bridge.Variant) { v.Price.Amount = -5 }), []wantIssue{{E, "v1", FieldPrice}}},
		{"price other currency", v0(func(v *bridge.Variant) { v.Price.Currency = "EUR" }), []wantIssue{{E, "v1", FieldPrice}}},
		{"list price other currency", func(p *bridge.Product, _ *Settings) { p.Variants[1].ListPrice.Currency = "EUR" }, []wantIssue{{E, "v2", FieldListPrice}}},
		{"list price equal", func(p *bridge.Product, _ *Settings) { p.Variants[1].ListPrice.Amount = 8999 }, []wantIssue{{W, "v2", FieldListPrice}}},
		{"list price below", func(p *bridge.Product, _ *Settings) { p.Variants[1].ListPrice.Amount = 100 }, []wantIssue{{W, "v2", FieldListPrice}}},
		{"jpy shop", func(p *bridge.Product, s *Settings) {
			s.Merchant.Currency = "JPY"
			p.Variants[0].Price = bridge.Money{Amount: 1500, Currency: "JPY"}
			p.Variants[1].Price = bridge.Money{Amount: 1500, Currency: "JPY"}
			p.Variants[1].ListPrice = &bridge.Money{Amount: 1800, Currency: "JPY"}
		}, nil},

		// availability
		{"availability missing", v0(func(v *bridge.Variant) { v.Availability = "" }), []wantIssue{{E, "v1", FieldAvailability}}},
		{"availability unknown value", v0(func(v *bridge.Variant) { v.Availability = "sold_out" }), []wantIssue{{E, "v1", FieldAvailability}}},
		{"every canonical availability", func(p *bridge.Product, _ *Settings) {
			base := p.Variants[0]
			p.Variants = nil
			for _, a := range bridge.Availabilities {
				v := base
				v.ID, v.Availability, v.AvailabilityDate = "v-"+string(a), a, "2027-03-01"
				p.Variants = append(p.Variants, v)
			}
		}, nil},
		{"preorder without date", func(p *bridge.Product, _ *Settings) { p.Variants[1].AvailabilityDate = "" }, []wantIssue{{E, "v2", FieldAvailabilityDate}}},
		{"preorder date in the past", func(p *bridge.Product, _ *Settings) { p.Variants[1].AvailabilityDate = "2026-11-01" }, []wantIssue{{E, "v2", FieldAvailabilityDate}}},
		{"preorder date today is not future", func(p *bridge.Product, _ *Settings) { p.Variants[1].AvailabilityDate = "2026-11-27" }, []wantIssue{{E, "v2", FieldAvailabilityDate}}},
		{"preorder date-time", func(p *bridge.Product, _ *Settings) { p.Variants[1].AvailabilityDate = "2027-02-01T09:00:00+01:00" }, nil},
		{"preorder date malformed", func(p *bridge.Product, _ *Settings) { p.Variants[1].AvailabilityDate = "01/02/2027" }, []wantIssue{{E, "v2", FieldAvailabilityDate}}},
		{"backorder date malformed", func(p *bridge.Product, _ *Settings) {
			p.Variants[1].Availability = bridge.Backorder
			p.Variants[1].AvailabilityDate = "soon"
		}, []wantIssue{{E, "v2", FieldAvailabilityDate}}},
		{"in stock date malformed is ignored", v0(func(v *bridge.Variant) { v.AvailabilityDate = "soon" }), []wantIssue{{W, "v1", FieldAvailabilityDate}}},

		// identifiers and attributes
		{"gtin 8 digits", v0(func(v *bridge.Variant) { v.GTIN = "96385074" }), nil},
		{"gtin upc-a", v0(func(v *bridge.Variant) { v.GTIN = "036000291452" }), nil},
		{"gtin 14 digits", v0(func(v *bridge.Variant) { v.GTIN = "00012345600012" }), nil},
		{"gtin dashes", v0(func(v *bridge.Variant) { v.GTIN = "400-638133393-1" }), []wantIssue{{E, "v1", FieldGTIN}}},
		{"gtin too short", v0(func(v *bridge.Variant) { v.GTIN = "1234567" }), []wantIssue{{E, "v1", FieldGTIN}}},
		{"gtin too long", v0(func(v *bridge.Variant) { v.GTIN = "123456789012345" }), []wantIssue{{E, "v1", FieldGTIN}}},
		{"gtin check digit", v0(func(v *bridge.Variant) { v.GTIN = "4006381333932" }), []wantIssue{{E, "v1", FieldGTIN}}},
		{"mpn 70", v0(func(v *bridge.Variant) { v.MPN = strings.Repeat("m", 70) }), nil},
		{"mpn 71", v0(func(v *bridge.Variant) { v.MPN = strings.Repeat("m", 71) }), []wantIssue{{E, "v1", FieldMPN}}},
		{"weight without unit", v0(func(v *bridge.Variant) { v.WeightUnit = "" }), []wantIssue{{E, "v1", FieldWeight}}},
		{"weight not a number", v0(func(v *bridge.Variant) { v.Weight = "NaN" }), []wantIssue{{E, "v1", FieldWeight}}},
		{"unit without weight is harmless", v0(func(v *bridge.Variant) { v.Weight = "" }), nil},
		{"condition upper-case", v0(func(v *bridge.Variant) { v.Condition = "New" }), []wantIssue{{W, "v1", FieldCondition}}},

		// eligibility
		{"checkout without search", v0(func(v *bridge.Variant) { v.EligibleSearch = false }), []wantIssue{{E, "v1", FieldEligibleCheckout}}},
		{"checkout without privacy policy", merchant(func(m *bridge.Merchant) { m.PrivacyPolicyURL = "" }), []wantIssue{{E, "v1", FieldEligibleCheckout}}},
		{"checkout without terms", merchant(func(m *bridge.Merchant) { m.TermsURL = "" }), []wantIssue{{E, "v1", FieldEligibleCheckout}}},
		{"no policies, no checkout", func(p *bridge.Product, s *Settings) {
			s.Merchant.PrivacyPolicyURL, s.Merchant.TermsURL = "", ""
			p.Variants[0].EligibleCheckout = false
		}, nil},

		// merchant
		{"seller name missing", merchant(func(m *bridge.Merchant) { m.Name = "null" }), []wantIssue{{E, "", FieldSellerName}}},
		{"seller name 71", merchant(func(m *bridge.Merchant) { m.Name = strings.Repeat("n", 71) }), []wantIssue{{E, "", FieldSellerName}}},
		{"seller url missing", merchant(func(m *bridge.Merchant) { m.URL = "" }), []wantIssue{{E, "", FieldSellerURL}}},
		{"seller url relative", merchant(func(m *bridge.Merchant) { m.URL = "acme.example" }), []wantIssue{{E, "", FieldSellerURL}}},
		{"seller url http", merchant(func(m *bridge.Merchant) { m.URL = "http://acme.example" }), []wantIssue{{W, "", FieldSellerURL}}},
		{"return policy missing", merchant(func(m *bridge.Merchant) { m.ReturnPolicyURL = "" }), []wantIssue{{E, "", FieldReturnPolicy}}},
		{"privacy policy invalid", merchant(func(m *bridge.Merchant) { m.PrivacyPolicyURL = "https://a:b@acme.example/privacy" }), []wantIssue{{E, "", FieldPrivacyPolicy}}},
		{"terms invalid", merchant(func(m *bridge.Merchant) { m.TermsURL = "/terms" }), []wantIssue{{E, "", FieldTermsOfService}}},
		{"currency missing", merchant(func(m *bridge.Merchant) { m.Currency = "" }), []wantIssue{{E, "", FieldCurrency}}},
		{"currency invalid", merchant(func(m *bridge.Merchant) { m.Currency = "DOLLAR" }), []wantIssue{
			{E, "", FieldCurrency}, {E, "v1", FieldPrice}, {E, "v2", FieldPrice}}},
		{"country invalid", merchant(func(m *bridge.Merchant) { m.Country = "USA" }), []wantIssue{{W, "", FieldStoreCountry}}},
		{"return window negative", merchant(func(m *bridge.Merchant) { m.ReturnWindowDays = -1 }), []wantIssue{{W, "", FieldReturnWindow}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, s := validProduct(), usdSettings()
			c.mut(&p, &s)
			got := Validate(&p, s)
			var gotKeys, wantKeys []string
			for _, is := range got {
				gotKeys = append(gotKeys, wantIssue{is.Severity, is.VariantID, is.Field}.String())
				if is.Message == "" {
					t.Errorf("issue %+v has no message", is)
				}
			}
			for _, w := range c.want {
				wantKeys = append(wantKeys, w.String())
			}
			slices.Sort(gotKeys)
			slices.Sort(wantKeys)
			if !slices.Equal(gotKeys, wantKeys) {
				t.Errorf("issues = %v, want %v", gotKeys, wantKeys)
				for _, is := range got {
					t.Logf("  %s %s %s: %s", is.Severity, is.VariantID, is.Field, is.Message)
				}
			}
		})
	}
}

// TestValidateMessages checks that messages speak to an admin: they name
// the field and say what is wrong.
func TestValidateMessages(t *testing.T) {
	p := validProduct()
	p.Brand = "N/A"
	p.Variants[0].GTIN = "4006381333932"
	p.Variants[1].Price.Currency = "EUR"
	p.Variants[1].ListPrice.Currency = "EUR"
	got := Validate(&p, usdSettings())
	want := map[string]string{
		FieldBrand: `brand is missing ("N/A" is a placeholder, not a value)`,
		FieldGTIN:  `gtin "4006381333932" has a wrong check digit (expected 1)`,
		FieldPrice: "price is in EUR but the store sells in USD",
	}
	for _, is := range got {
		if w, ok := want[is.Field]; ok && !strings.Contains(is.Message, w) {
			t.Errorf("%s message = %q, want it to contain %q", is.Field, is.Message, w)
		}
	}
}

// TestValidateExcludes ties severities to what feeds publish.
func TestValidateExcludes(t *testing.T) {
	s := usdSettings()
	p := validProduct()
	p.Variants[1].Price.Amount = 0
	e := bridge.CatalogEntry{Product: p, Issues: Validate(&p, s)}
	if e.Excluded() || len(e.ValidVariants()) != 1 || e.ValidVariants()[0].ID != "v1" {
		t.Errorf("a variant error should drop only that variant: %+v", e.Issues)
	}
	p.Brand = ""
	e = bridge.CatalogEntry{Product: p, Issues: Validate(&p, s)}
	if !e.Excluded() {
		t.Error("a product error should exclude the product")
	}
	s.Merchant.Name = ""
	q := validProduct()
	e = bridge.CatalogEntry{Product: q, Issues: Validate(&q, s)}
	if !e.Excluded() {
		t.Error("a merchant error should exclude every product")
	}
}

// TestValidateMerchantCache makes sure the cached merchant issues follow the
// settings and are not shared between results.
func TestValidateMerchantCache(t *testing.T) {
	good, bad := usdSettings(), usdSettings()
	bad.Merchant.Name = ""
	p := validProduct()
	for range 2 {
		if n := len(Validate(&p, good)); n != 0 {
			t.Fatalf("good merchant: %d issues", n)
		}
		a := Validate(&p, bad)
		b := Validate(&p, bad)
		if len(a) != 1 || len(b) != 1 {
			t.Fatalf("bad merchant: %v %v", a, b)
		}
		a[0].Message = "changed"
		if b[0].Message == "changed" {
			t.Fatal("issue slices share memory")
		}
	}
}

func TestValidateAllocs(t *testing.T) {
	p, s := validProduct(), usdSettings()
	Validate(&p, s) // warm the caches
	if n := testing.AllocsPerRun(100, func() { Validate(&p, s) }); n != 0 {
		t.Errorf("Validate allocates %v times on a clean product", n)
	}
}

// TestCheckURLAgreesWithNetURL: whatever checkURL accepts, net/url parses
// as an absolute http(s) URL with a host and no user info.
func TestCheckURLAgreesWithNetURL(t *testing.T) {
	for _, u := range []string{
		"https://a.example", "https://a.example/", "HTTPS://A.EXAMPLE/x?y=1#z", "http://a.example:8080/p",
		"https://[::1]:443/x", "https://a.example/p%20q", "https://a.example/?q=a,b;c=d&e=(f)", "https://xn--bcher-kva.example/",
		"https://a.example/p q", "https://a.example/é", "https:///p", "https://:80/", "https://a.example:x/", "https://a@b.example/",
		"https://a.example/%zz", "mailto:x@a.example", "https://[zz]/", "https://-a.example/", "https://a.example\\x",
	} {
		p := checkURL(u)
		if p != urlOK && p != urlHTTP {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || !pu.IsAbs() || pu.Host == "" || pu.User != nil {
			t.Errorf("checkURL accepts %q but net/url says %v, %+v", u, err, pu)
		}
	}
}

func TestGTIN(t *testing.T) {
	for _, c := range []struct {
		code string
		ok   bool
	}{
		{"4006381333931", true}, {"036000291452", true}, {"96385074", true}, {"00012345600012", true},
		{"4006381333930", false}, {"036000291453", false}, {"abcdefgh", false}, {"4006381 333931", false},
	} {
		if got := gtinProblem(c.code) == ""; got != c.ok {
			t.Errorf("gtin %q valid = %v, want %v (%s)", c.code, got, c.ok, gtinProblem(c.code))
		}
	}
	for i := range int64(50) {
		if msg := gtinProblem(gtinFor(i * 7919)); msg != "" {
			t.Errorf("gtinFor(%d): %s", i, msg)
		}
	}
}

func TestDefaultFeedID(t *testing.T) {
	for in, want := range map[string]string{
		"Acme Outfitters": "feed_acme_outfitters", "  Café & Co. 24/7 ": "feed_caf_co_24_7", "": "feed_default", "!!!": "feed_default",
	} {
		if got := defaultFeedID(in); got != want {
			t.Errorf("defaultFeedID(%q) = %q, want %q", in, got, want)
		}
	}
}
