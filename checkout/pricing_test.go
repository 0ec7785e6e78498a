package checkout

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

func ptI64(v int64) *int64 { return &v }

// pricingFixture is a US shop: California first, then the rest of the US,
// Canada, then the rest of the world.
func pricingFixture(mod func(*PricingConfig)) PricingConfig {
	cfg := PricingConfig{
		Currency: "USD",
		Country:  "US",
		Zones: []Zone{
			{Name: "California", Countries: []string{"US"}, Regions: []string{"CA"}, Options: []ShippingOption{
				{ID: "ca_local", Title: "Local courier", Carrier: "Courier", Flat: 300, MinDays: 0, MaxDays: 1},
			}},
			{Name: "Domestic", Countries: []string{"US"}, Options: []ShippingOption{
				{ID: "standard", Title: "Standard", Flat: 500, FreeOver: ptI64(7500), MinDays: 3, MaxDays: 5},
				{ID: "express", Title: "Express", Carrier: "UPS", Flat: 1500, MinDays: 1, MaxDays: 2},
			}},
			{Name: "Canada", Countries: []string{"CA"}, Options: []ShippingOption{
				{ID: "ca_post", Title: "Canada Post", Flat: 800, PerKg: 200, MinDays: 5, MaxDays: 8},
			}},
			{Name: "World", Countries: []string{"*"}, Options: []ShippingOption{
				{ID: "intl", Title: "International", Flat: 2000, PerKg: 500, FreeOver: ptI64(50000), MinDays: 7, MaxDays: 21},
			}},
		},
		ShippingTaxable: true,
		TaxRates: []TaxRate{
			{Country: "US", PPM: 0},
			{Country: "US", Region: "CA", PPM: 72500},
			{Country: "US", Region: "NY", PPM: 88750},
			{Country: "CA", PPM: 50000},
			{Country: "DE", PPM: 190000},
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func ptPricing(t testing.TB, cfg PricingConfig) *Pricing {
	t.Helper()
	p, err := NewPricing(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptLine(unit, qty int64, mods ...func(*bridge.SessionLine)) bridge.SessionLine {
	l := bridge.SessionLine{ID: "li", VariantID: "v", UnitAmount: unit, Quantity: qty}
	for _, m := range mods {
		m(&l)
	}
	return l
}

func ptDigital(l *bridge.SessionLine) { l.Digital = true }

func ptGrams(g int64) func(*bridge.SessionLine) {
	return func(l *bridge.SessionLine) { l.WeightGrams = g }
}

func ptAddr(country, region string) *bridge.Address {
	return &bridge.Address{Line1: "1 Main St", City: "Town", PostalCode: "12345", Country: country, Region: region}
}

func TestNewPricingRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*PricingConfig)
		want string
	}{
		{"currency", func(c *PricingConfig) { c.Currency = "XXX" }, "currency"},
		{"duplicate option id", func(c *PricingConfig) { c.Zones[3].Options[0].ID = "standard" }, `option id "standard" used twice`},
		{"option id of the digital option", func(c *PricingConfig) { c.Zones[0].Options[0].ID = "digital" }, `option id "digital" used twice`},
		{"empty option id", func(c *PricingConfig) { c.Zones[0].Options[0].ID = "" }, "without id"},
		{"negative amount", func(c *PricingConfig) { c.Zones[1].Options[0].FreeOver = ptI64(-1) }, "negative amount"},
		{"days", func(c *PricingConfig) { c.Zones[1].Options[0].MinDays = 9 }, "delivery days 9–5"},
		{"no countries", func(c *PricingConfig) { c.Zones[1].Countries = nil }, "no countries"},
		{"rate over 100%", func(c *PricingConfig) { c.TaxRates[0].PPM = 1_000_001 }, "not 0–100%"},
		{"duplicate rate", func(c *PricingConfig) {
			c.TaxRates = append(c.TaxRates, TaxRate{Country: "us", Region: "US-CA", PPM: 1})
		}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPricing(pricingFixture(tt.mod))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := NewPricing(pricingFixture(nil)); err != nil {
		t.Errorf("fixture: %v", err)
	}
}

func TestOptions(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	day := func(d int) time.Time { return time.Date(2026, 11, 27+d, 0, 0, 0, 0, time.UTC) }
	endOf := func(d int) time.Time { return day(d + 1).Add(-time.Second) }
	type opt struct {
		id                   string
		subtotal, tax, total int64
	}
	tests := []struct {
		name  string
		mod   func(*PricingConfig)
		lines []bridge.SessionLine
		to    *bridge.Address
		want  []opt
	}{
		{"no lines", nil, nil, ptAddr("US", "NY"), nil},
		{"only zero quantities", nil, []bridge.SessionLine{ptLine(100, 0)}, ptAddr("US", "NY"), nil},
		{"digital only, no address needed", nil, []bridge.SessionLine{ptLine(2500, 2, ptDigital)}, nil, []opt{{"digital", 0, 0, 0}}},
		{"digital only, address ignored", nil, []bridge.SessionLine{ptLine(2500, 1, ptDigital)}, ptAddr("ZZ", ""), []opt{{"digital", 0, 0, 0}}},
		{"physical without address", nil, []bridge.SessionLine{ptLine(1000, 1)}, nil, nil},
		{"physical, no zone", func(c *PricingConfig) { c.Zones = c.Zones[:3] }, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("FR", ""), nil},
		{"address without country", nil, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("", "CA"), nil},
		{"region zone first", nil, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "CA"), []opt{{"ca_local", 300, 22, 322}}},
		{"region spelled us-ca", nil, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("us", "us-ca"), []opt{{"ca_local", 300, 22, 322}}},
		{"region name matches no code", nil, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "California"), []opt{{"standard", 500, 0, 500}, {"express", 1500, 0, 1500}}},
		{"country zone, order kept, NY tax on shipping", nil, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "NY"),
			// 500 × 8.875% = 44.375 → 44; 1500 × 8.875% = 133.125 → 133
			[]opt{{"standard", 500, 44, 544}, {"express", 1500, 133, 1633}}},
		{"free over: at the threshold", nil, []bridge.SessionLine{ptLine(2500, 3)}, ptAddr("US", "NY"), []opt{{"standard", 0, 0, 0}, {"express", 1500, 133, 1633}}},
		{"free over: one cent under", nil, []bridge.SessionLine{ptLine(2500, 2), ptLine(2499, 1)}, ptAddr("US", "TX"), []opt{{"standard", 500, 0, 500}, {"express", 1500, 0, 1500}}},
		{"free over counts digital lines too", nil, []bridge.SessionLine{ptLine(5000, 1, ptDigital), ptLine(2500, 1)}, ptAddr("US", "TX"), []opt{{"standard", 0, 0, 0}, {"express", 1500, 0, 1500}}},
		{"per started kg: 2 × 620 g = 1.24 kg → 2 kg", nil, []bridge.SessionLine{ptLine(1000, 2, ptGrams(620))}, ptAddr("CA", "ON"),
			// 800 + 2×200 = 1200; 5% = 60
			[]opt{{"ca_post", 1200, 60, 1260}}},
		{"exactly 1 kg is 1 kg", nil, []bridge.SessionLine{ptLine(1000, 4, ptGrams(250))}, ptAddr("CA", ""), []opt{{"ca_post", 1000, 50, 1050}}},
		{"digital and unknown weights weigh nothing", nil, []bridge.SessionLine{ptLine(1000, 1, ptGrams(0)), ptLine(1000, 5, ptDigital, ptGrams(5000))}, ptAddr("CA", ""), []opt{{"ca_post", 800, 40, 840}}},
		{"rest of world", nil, []bridge.SessionLine{ptLine(1000, 1, ptGrams(3001))}, ptAddr("DE", "BY"), []opt{{"intl", 4000, 760, 4760}}},
		{"shipping not taxable", func(c *PricingConfig) { c.ShippingTaxable = false }, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "NY"), []opt{{"standard", 500, 0, 500}, {"express", 1500, 0, 1500}}},
		{"prices include tax: no tax on top", func(c *PricingConfig) { c.PricesIncludeTax = true }, []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("DE", ""), []opt{{"intl", 2000, 0, 2000}}},
		{"overflowing weight leaves the option out", nil, []bridge.SessionLine{ptLine(1, 1<<40, ptGrams(1<<40))}, ptAddr("CA", ""), nil},
		{"overflowing per-kg cost leaves the option out", func(c *PricingConfig) { c.Zones[2].Options[0].PerKg = math.MaxInt64 / 2 }, []bridge.SessionLine{ptLine(1, 3, ptGrams(1000))}, ptAddr("CA", ""), []opt{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ptPricing(t, pricingFixture(tt.mod))
			got := p.Options(tt.lines, tt.to, now)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d options %+v, want %+v", len(got), got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.ID != w.id || g.Subtotal != w.subtotal || g.Tax != w.tax || g.Total != w.total {
					t.Errorf("option %d = %s %d+%d=%d, want %s %d+%d=%d", i, g.ID, g.Subtotal, g.Tax, g.Total, w.id, w.subtotal, w.tax, w.total)
				}
			}
		})
	}

	// Types, titles, carriers and delivery windows.
	p := ptPricing(t, pricingFixture(nil))
	got := p.Options([]bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "NY"), now)
	std, exp := got[0], got[1]
	if std.Type != OptionShipping || std.Title != "Standard" || std.Carrier != "" || exp.Carrier != "UPS" {
		t.Errorf("options = %+v", got)
	}
	if !std.Earliest.Equal(day(3)) || !std.Latest.Equal(endOf(5)) || !exp.Earliest.Equal(day(1)) || !exp.Latest.Equal(endOf(2)) {
		t.Errorf("windows: standard %s–%s, express %s–%s", std.Earliest, std.Latest, exp.Earliest, exp.Latest)
	}
	if std.Earliest.Location() != time.UTC || std.Subtitle != "Delivered in 3–5 days" {
		t.Errorf("standard: %+v", std)
	}
	same := p.Options([]bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "CA"), now)[0]
	if !same.Earliest.Equal(now.Truncate(time.Second)) || !same.Latest.Equal(endOf(1)) || same.Subtitle != "Delivered in 0–1 days" {
		t.Errorf("same-day window: %s–%s %q", same.Earliest, same.Latest, same.Subtitle)
	}
	d := p.Options([]bridge.SessionLine{ptLine(1000, 1, ptDigital)}, nil, now)[0]
	if d.Type != OptionDigital || d.Title != "Instant download" || !d.Earliest.IsZero() || !d.Latest.IsZero() {
		t.Errorf("digital = %+v", d)
	}
}

func TestApply(t *testing.T) {
	type want struct {
		lineTax     []int64
		totals      bridge.Totals
		fulfillment string // selected option
	}
	usd := func(mod func(*PricingConfig)) PricingConfig { return pricingFixture(mod) }
	incl := func(c *PricingConfig) { c.PricesIncludeTax = true }
	tests := []struct {
		name     string
		cfg      PricingConfig
		currency string
		lines    []bridge.SessionLine
		to       *bridge.Address
		selected string
		want     want
	}{
		{"no address: merchant country rate (0), no shipping", usd(nil), "USD", []bridge.SessionLine{ptLine(1999, 2)}, nil, "",
			want{[]int64{0}, bridge.Totals{ItemsBase: 3998, Subtotal: 3998, Total: 3998}, ""}},
		{"California: region rate, half up per line", usd(nil), "USD",
			// 1999 × 7.25% = 144.9275 → 145; 3 × 1050 = 3150 × 7.25% = 228.375 → 228; shipping 300 × 7.25% = 21.75 → 22
			[]bridge.SessionLine{ptLine(1999, 1), ptLine(1050, 3)}, ptAddr("US", "CA"), "ca_local",
			want{[]int64{145, 228}, bridge.Totals{ItemsBase: 5149, Subtotal: 5149, Fulfillment: 300, Tax: 395, Total: 5844}, "ca_local"}},
		{"New York: exact half rounds up", usd(nil), "USD",
			// 2 × 1000 × 8.875% = 177.5 → 178; express 1500 → 133.125 → 133
			[]bridge.SessionLine{ptLine(1000, 2)}, ptAddr("US", "NY"), "express",
			want{[]int64{178}, bridge.Totals{ItemsBase: 2000, Subtotal: 2000, Fulfillment: 1500, Tax: 311, Total: 3811}, "express"}},
		{"country without region rate", usd(nil), "USD", []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "TX"), "standard",
			want{[]int64{0}, bridge.Totals{ItemsBase: 1000, Subtotal: 1000, Fulfillment: 500, Total: 1500}, "standard"}},
		{"no rate at all: no tax", usd(nil), "USD", []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("JP", ""), "intl",
			want{[]int64{0}, bridge.Totals{ItemsBase: 1000, Subtotal: 1000, Fulfillment: 2000, Total: 3000}, "intl"}},
		{"selected option not offered: no fulfillment", usd(nil), "USD", []bridge.SessionLine{ptLine(1000, 1)}, ptAddr("US", "TX"), "ca_local",
			want{[]int64{0}, bridge.Totals{ItemsBase: 1000, Subtotal: 1000, Total: 1000}, ""}},
		{"digital cart", usd(nil), "USD", []bridge.SessionLine{ptLine(2500, 1, ptDigital)}, ptAddr("DE", ""), "digital",
			want{[]int64{4750 / 10}, bridge.Totals{ItemsBase: 2500, Subtotal: 2500, Tax: 475, Total: 2975}, "digital"}},
		{"prices include tax (VAT)", usd(incl), "USD",
			// 11900 at 19% contains 1900; 1000 contains 159.66 → 160; shipping 2000 contains 319.33 → 319
			[]bridge.SessionLine{ptLine(11900, 1), ptLine(1000, 1)}, ptAddr("DE", ""), "intl",
			want{[]int64{0, 0}, bridge.Totals{ItemsBase: 12900, Subtotal: 12900, Fulfillment: 2000, TaxIncluded: 2379, Total: 14900}, "intl"}},
		{"prices include tax, shipping not taxable", usd(func(c *PricingConfig) { incl(c); c.ShippingTaxable = false }), "USD",
			[]bridge.SessionLine{ptLine(11900, 1)}, ptAddr("DE", ""), "intl",
			want{[]int64{0}, bridge.Totals{ItemsBase: 11900, Subtotal: 11900, Fulfillment: 2000, TaxIncluded: 1900, Total: 13900}, "intl"}},
		{"JPY: 0 decimals", PricingConfig{Currency: "JPY", Country: "JP", ShippingTaxable: true,
			Zones:    []Zone{{Countries: []string{"JP"}, Options: []ShippingOption{{ID: "yamato", Title: "Yamato", Flat: 770, MinDays: 1, MaxDays: 3}}}},
			TaxRates: []TaxRate{{Country: "JP", PPM: 100000}}}, "JPY",
			// 1234 × 3 = 3702 × 10% = 370.2 → 370; 1995 → 199.5 → 200; shipping 77
			[]bridge.SessionLine{ptLine(1234, 3), ptLine(1995, 1)}, ptAddr("JP", "13"), "yamato",
			want{[]int64{370, 200}, bridge.Totals{ItemsBase: 5697, Subtotal: 5697, Fulfillment: 770, Tax: 647, Total: 7114}, "yamato"}},
		{"KWD: 3 decimals", PricingConfig{Currency: "KWD", Country: "KW", ShippingTaxable: true,
			Zones:    []Zone{{Countries: []string{"KW"}, Options: []ShippingOption{{ID: "std", Title: "Standard", Flat: 1500, MinDays: 1, MaxDays: 2}}}},
			TaxRates: []TaxRate{{Country: "KW", PPM: 50000}}}, "KWD",
			// 12.345 KWD × 5% = 617.25 fils → 617; 0.010 × 5% = 0.5 → 1; shipping 75
			[]bridge.SessionLine{ptLine(12345, 1), ptLine(10, 1)}, ptAddr("KW", ""), "std",
			want{[]int64{617, 1}, bridge.Totals{ItemsBase: 12355, Subtotal: 12355, Fulfillment: 1500, Tax: 693, Total: 14548}, "std"}},
		{"the largest supported line: 10^12 × 10^6 at 100%", PricingConfig{Currency: "USD", Country: "US", TaxRates: []TaxRate{{Country: "US", PPM: 1_000_000}}}, "USD",
			[]bridge.SessionLine{ptLine(1e12, 1e6, ptDigital)}, nil, "digital",
			want{[]int64{1e18}, bridge.Totals{ItemsBase: 1e18, Subtotal: 1e18, Tax: 1e18, Total: 2e18}, "digital"}},
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ptPricing(t, tt.cfg)
			s := &bridge.Session{Currency: tt.currency, Lines: tt.lines, ShipTo: tt.to, Selected: tt.selected}
			s.Options = p.Options(s.Lines, s.ShipTo, now)
			if err := p.Apply(s); err != nil {
				t.Fatal(err)
			}
			for i, l := range s.Lines {
				if l.Tax != tt.want.lineTax[i] {
					t.Errorf("line %d tax = %d, want %d", i, l.Tax, tt.want.lineTax[i])
				}
			}
			if s.Totals != tt.want.totals {
				t.Errorf("totals = %+v\nwant     %+v", s.Totals, tt.want.totals)
			}
			checkPricingInvariants(t, p, s)
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	p := ptPricing(t, pricingFixture(nil))
	big := func() []bridge.SessionLine {
		var ls []bridge.SessionLine
		for range 10 {
			ls = append(ls, ptLine(1e12, 1e6))
		}
		return ls
	}
	tests := []struct {
		name  string
		s     bridge.Session
		param string
	}{
		{"sum beyond int64", bridge.Session{Currency: "USD", Lines: big()}, "$.line_items"},
		{"line beyond int64", bridge.Session{Currency: "USD", Lines: []bridge.SessionLine{ptLine(math.MaxInt64/2, 3)}}, "$.line_items"},
		{"negative quantity", bridge.Session{Currency: "USD", Lines: []bridge.SessionLine{ptLine(100, -1)}}, "$.line_items[0]"},
		{"negative price", bridge.Session{Currency: "USD", Lines: []bridge.SessionLine{ptLine(100, 1), ptLine(-5, 1)}}, "$.line_items[1]"},
		{"other currency", bridge.Session{Currency: "EUR", Lines: []bridge.SessionLine{ptLine(100, 1)}}, "$.currency"},
		{"negative option", bridge.Session{Currency: "USD", Lines: []bridge.SessionLine{ptLine(100, 1)}, Selected: "x",
			Options: []bridge.FulfillmentOption{{ID: "x", Subtotal: -1, Total: -1}}}, "$.fulfillment_options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			s.Totals = bridge.Totals{Total: 99}
			err := p.Apply(&s)
			var pe *Error
			if !errors.As(err, &pe) || pe.Kind != KindInvalid || pe.Param != tt.param {
				t.Fatalf("err = %v, want a KindInvalid *Error at %s", err, tt.param)
			}
			if s.Totals != (bridge.Totals{}) {
				t.Errorf("totals not cleared: %+v", s.Totals)
			}
			for _, l := range s.Lines {
				if l.Base != 0 || l.Total != 0 {
					t.Errorf("line not cleared: %+v", l)
				}
			}
			if len(s.Messages) != 1 || s.Messages[0].Type != bridge.MessageError {
				t.Errorf("messages = %+v, want one error", s.Messages)
			}
		})
	}
	s := bridge.Session{Currency: "USD", Lines: big()}
	if err := p.Apply(&s); !errors.Is(err, ErrTooLarge) {
		t.Errorf("overflow err = %v, want ErrTooLarge", err)
	}
}

// refRound is a·num/den rounded half up, in big integers.
func ptRound(a, num, den int64) int64 {
	x := new(big.Int).Mul(big.NewInt(a), big.NewInt(num))
	x.Mul(x, big.NewInt(2)).Add(x, big.NewInt(den))
	x.Quo(x, new(big.Int).Mul(big.NewInt(den), big.NewInt(2)))
	return x.Int64()
}

// checkInvariants: the lines add up to the totals, to the minor unit, and
// every tax is the exactly rounded value.
func checkPricingInvariants(t testing.TB, p *Pricing, s *bridge.Session) {
	t.Helper()
	rate := p.Rate(s.ShipTo)
	var base, disc, sub, tax, total, included int64
	for i, l := range s.Lines {
		if l.Base != l.UnitAmount*l.Quantity || l.Subtotal != l.Base-l.Discount || l.Total != l.Subtotal+l.Tax {
			t.Errorf("line %d does not add up: %+v", i, l)
		}
		if p.cfg.PricesIncludeTax {
			if l.Tax != 0 {
				t.Errorf("line %d has tax on top of tax-inclusive prices: %+v", i, l)
			}
			included += ptRound(l.Subtotal, rate, ppmOne+rate)
		} else if want := ptRound(l.Subtotal, rate, ppmOne); l.Tax != want {
			t.Errorf("line %d tax = %d, want %d", i, l.Tax, want)
		}
		base += l.Base
		disc += l.Discount
		sub += l.Subtotal
		tax += l.Tax
		total += l.Total
	}
	var opt bridge.FulfillmentOption
	for _, o := range s.Options {
		if o.ID == s.Selected {
			opt = o
		}
		if o.Total != o.Subtotal+o.Tax {
			t.Errorf("option %s does not add up: %+v", o.ID, o)
		}
	}
	if p.cfg.PricesIncludeTax && p.cfg.ShippingTaxable {
		included += ptRound(opt.Subtotal, rate, ppmOne+rate)
	}
	tt := s.Totals
	switch {
	case tt.ItemsBase != base, tt.ItemsDiscount != disc, tt.Subtotal != sub, tt.Subtotal != tt.ItemsBase-tt.ItemsDiscount-tt.Discount:
		t.Errorf("items: totals %+v, lines base %d discount %d subtotal %d", tt, base, disc, sub)
	case tt.Fulfillment != opt.Subtotal, tt.Tax != tax+opt.Tax:
		t.Errorf("fulfillment/tax: totals %+v, option %+v, line tax %d", tt, opt, tax)
	case tt.Total != tt.Subtotal+tt.Fulfillment+tt.Tax, tt.Total != total+opt.Total:
		t.Errorf("total: %+v, lines %d + option %d", tt, total, opt.Total)
	case tt.TaxIncluded != included:
		t.Errorf("tax included = %d, want %d", tt.TaxIncluded, included)
	case tt.TaxIncluded > tt.Total:
		t.Errorf("more tax included than the total: %+v", tt)
	}
}

// randomSession builds a random cart for the property tests.
func ptRandomSession(r *rand.Rand) (PricingConfig, *bridge.Session) {
	cur := []string{"USD", "JPY", "KWD", "EUR", "CLF"}[r.IntN(5)]
	rate := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Int64N(ppmOne + 1)
		}
		return r.Int64N(300_000)
	}
	cfg := PricingConfig{
		Currency: cur, Country: "US",
		PricesIncludeTax: r.IntN(2) == 0, ShippingTaxable: r.IntN(3) > 0,
		Zones: []Zone{
			{Countries: []string{"US"}, Regions: []string{"CA"}, Options: []ShippingOption{{ID: "a", Flat: r.Int64N(10_000), PerKg: r.Int64N(2000), FreeOver: ptI64(r.Int64N(100_000)), MinDays: 1, MaxDays: 3}}},
			{Countries: []string{"US", "CA"}, Options: []ShippingOption{{ID: "b", Flat: r.Int64N(10_000), MinDays: 2, MaxDays: 4}, {ID: "c", Flat: r.Int64N(100_000), PerKg: r.Int64N(5000), MinDays: 0, MaxDays: 1}}},
			{Countries: []string{"*"}, Options: []ShippingOption{{ID: "d", Flat: r.Int64N(1e9), PerKg: r.Int64N(1e6), MinDays: 5, MaxDays: 30}}},
		},
		TaxRates: []TaxRate{{Country: "US", PPM: rate()}, {Country: "US", Region: "CA", PPM: rate()}, {Country: "CA", PPM: rate()}, {Country: "DE", PPM: rate()}},
	}
	s := &bridge.Session{Currency: cur}
	huge := r.IntN(20) == 0 // near the int64 limit: some fit, some must be refused
	for range r.IntN(12) {
		unit := r.Int64N(100_000)
		if r.IntN(10) == 0 {
			unit = r.Int64N(1e12 + 1)
		}
		qty := 1 + r.Int64N(20)
		if r.IntN(20) == 0 {
			qty = r.Int64N(1e6 + 1)
		}
		if huge {
			unit, qty = 5e11+r.Int64N(5e11+1), 5e5+r.Int64N(5e5+1)
		}
		l := ptLine(unit, qty, ptGrams(r.Int64N(20_000)))
		l.Digital = r.IntN(4) == 0
		s.Lines = append(s.Lines, l)
	}
	switch r.IntN(6) {
	case 0:
	case 1:
		s.ShipTo = ptAddr("US", "CA")
	case 2:
		s.ShipTo = ptAddr("US", "NY")
	case 3:
		s.ShipTo = ptAddr("CA", "QC")
	case 4:
		s.ShipTo = ptAddr("DE", "")
	default:
		s.ShipTo = ptAddr("JP", "")
	}
	return cfg, s
}

// checkRandom prices one random cart and checks the invariants; carts whose
// sums do not fit must be refused, never wrapped.
func ptCheckRandom(t testing.TB, r *rand.Rand) {
	cfg, s := ptRandomSession(r)
	p := ptPricing(t, cfg)
	s.Options = p.Options(s.Lines, s.ShipTo, time.Unix(1_800_000_000, 0))
	if len(s.Options) > 0 {
		s.Selected = s.Options[r.IntN(len(s.Options))].ID
	}
	// The exact total in big integers: a cart is refused exactly when it
	// does not fit in an int64 (every other sum is at most the total).
	rate := p.Rate(s.ShipTo)
	exact := new(big.Int)
	for _, l := range s.Lines {
		b := new(big.Int).Mul(big.NewInt(l.UnitAmount), big.NewInt(l.Quantity))
		exact.Add(exact, b)
		if !cfg.PricesIncludeTax && b.IsInt64() {
			exact.Add(exact, big.NewInt(ptRound(b.Int64(), rate, ppmOne)))
		} else if !cfg.PricesIncludeTax {
			exact.Add(exact, b) // tax alone overflows; any amount will do
		}
	}
	for _, o := range s.Options {
		if o.ID == s.Selected {
			exact.Add(exact, big.NewInt(o.Total))
		}
	}
	err := p.Apply(s)
	if fits := exact.IsInt64(); err != nil {
		if !errors.Is(err, ErrTooLarge) || fits {
			t.Fatalf("Apply refused a cart of %s: %v", exact, err)
		}
		return
	} else if !fits {
		t.Fatalf("Apply priced a cart of %s: %+v", exact, s.Totals)
	}
	if big.NewInt(s.Totals.Total).Cmp(exact) != 0 {
		t.Fatalf("total %d, want %s", s.Totals.Total, exact)
	}
	checkPricingInvariants(t, p, s)
}

func TestPricingProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		ptCheckRandom(t, r)
		if t.Failed() {
			return
		}
	}
}

func FuzzPricing(f *testing.F) {
	for _, seed := range []uint64{0, 1, 42, 1 << 40} {
		f.Add(seed, seed*7+3)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		ptCheckRandom(t, rand.New(rand.NewPCG(a, b)))
	})
}

func TestMulDivRound(t *testing.T) {
	tests := []struct{ a, num, den, want int64 }{
		{0, 72500, ppmOne, 0},
		{1999, 72500, ppmOne, 145},
		{2000, 88750, ppmOne, 178}, // 177.5 → 178
		{1, 500_000, ppmOne, 1},    // 0.5 → 1
		{1, 499_999, ppmOne, 0},
		{math.MaxInt64, ppmOne, ppmOne, math.MaxInt64},
		{math.MaxInt64, 190_000, ppmOne + 190_000, ptRound(math.MaxInt64, 190_000, ppmOne+190_000)},
		{1e18, 999_999, ppmOne, ptRound(1e18, 999_999, ppmOne)},
	}
	for _, tt := range tests {
		if got := mulDivRound(tt.a, tt.num, tt.den); got != tt.want {
			t.Errorf("mulDivRound(%d, %d, %d) = %d, want %d", tt.a, tt.num, tt.den, got, tt.want)
		}
	}
}

func TestVariantWeightGrams(t *testing.T) {
	tests := []struct {
		weight, unit string
		want         int64
	}{
		{"0.62", "kg", 620},
		{"1", "KG", 1000},
		{" 250 ", "g", 250},
		{"12.5", "grams", 13},
		{"1", "lb", 454}, // 453.59237 g, rounded up
		{"2.5", "lbs", 1134},
		{"1", "oz", 29}, // 28.349523125 g
		{"16", "oz", 454},
		{"0", "kg", 0},
		{"", "kg", 0},
		{"1", "", 0},
		{"1", "stone", 0},
		{"-1", "kg", 0},
		{"1,5", "kg", 0},
		{"1e3", "g", 0},
		{"abc", "g", 0},
		{"1000000001", "kg", 0}, // over 10^12 g: absurd → unknown
		{"999999999", "kg", 999_999_999_000},
	}
	for _, tt := range tests {
		if got := VariantWeightGrams(bridge.Variant{Weight: tt.weight, WeightUnit: tt.unit}); got != tt.want {
			t.Errorf("VariantWeightGrams(%q %q) = %d, want %d", tt.weight, tt.unit, got, tt.want)
		}
	}
}
