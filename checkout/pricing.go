package checkout

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/shopspring/decimal"
)

// PricingConfig is what pricing needs, in plain values: every amount is in
// minor units of Currency, rates in parts per million. cmd/bridge builds it
// from the config file (pricing.go there), so this package does not depend
// on package config.
type PricingConfig struct {
	// Currency is the shop's ISO 4217 currency.
	Currency string
	// Country is the merchant's ISO 3166-1 alpha-2 country: taxes are
	// estimated with its rate while a session has no address.
	Country string
	// Zones are tried in order; the first matching the address wins.
	Zones []Zone
	// Digital is the option of carts without physical items.
	Digital DigitalOption
	// PricesIncludeTax: unit prices and shipping rates contain the tax;
	// sessions then show Tax 0 and TaxIncluded.
	PricesIncludeTax bool
	// ShippingTaxable taxes shipping at the destination's rate.
	ShippingTaxable bool
	// TaxRates by destination; a region's rate beats its country's, and a
	// destination without one pays no tax.
	TaxRates []TaxRate
}

// Zone is a set of destinations sharing shipping options.
type Zone struct {
	Name string
	// Countries are ISO 3166-1 alpha-2 codes; "*" matches every country.
	Countries []string
	// Regions narrow the zone to ISO 3166-2 subdivision codes without the
	// country prefix ("CA"); empty = whole countries.
	Regions []string
	Options []ShippingOption
}

// ShippingOption is one way to ship and its price.
type ShippingOption struct {
	ID      string
	Title   string
	Carrier string
	// Flat is charged once; PerKg for every started kilogram of the
	// physical items.
	Flat  int64
	PerKg int64
	// FreeOver makes the option free when the items subtotal is at least
	// this much; nil = never free.
	FreeOver *int64
	// MinDays and MaxDays bound the delivery, in calendar days.
	MinDays, MaxDays int
}

// DigitalOption is the fulfillment option of all-digital carts.
type DigitalOption struct {
	ID    string // default "digital"
	Title string // default "Instant download"
}

// TaxRate is the tax rate of a country, or of one region of it.
type TaxRate struct {
	Country string
	Region  string // "" = the whole country
	// PPM is the rate in parts per million: 7.25% is 72500.
	PPM int64
}

// Option types of bridge.FulfillmentOption.
const (
	OptionShipping = "shipping"
	OptionDigital  = "digital"
)

const ppmOne = 1_000_000 // 100% in parts per million

// Pricing prices sessions: fulfillment options from the shipping zones,
// line and session totals, tax. It is immutable and safe for concurrent
// use.
//
// Rounding: every amount is an integer in minor units. Tax is computed per
// line (and for shipping) and rounded half up to the minor unit; the
// session's tax is the sum of those, so the lines always add up to the
// totals. With prices_include_tax the tax contained in an amount a at rate
// r is a·r/(1+r), rounded half up, per line.
//
// Overflow: products and sums are checked; intermediate products of tax are
// computed in 128 bits. Any amount up to 10^12 minor units times any
// quantity up to 10^6 is fine; a session whose sums would not fit in an
// int64 gets an error from Apply (see there).
type Pricing struct {
	cfg   PricingConfig
	rates map[taxKey]int64
}

type taxKey struct{ country, region string }

// NewPricing checks cfg and builds a Pricing. Codes are compared in upper
// case; an empty Digital gets the defaults.
func NewPricing(cfg PricingConfig) (*Pricing, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, err := bridge.CurrencyExponent(cfg.Currency); err != nil {
		bad("currency: %v", err)
	}
	cfg.Country = strings.ToUpper(strings.TrimSpace(cfg.Country))
	if cfg.Digital.ID == "" {
		cfg.Digital.ID = "digital"
	}
	if cfg.Digital.Title == "" {
		cfg.Digital.Title = "Instant download"
	}
	ids := map[string]bool{cfg.Digital.ID: true}
	zones := make([]Zone, len(cfg.Zones))
	for i, z := range cfg.Zones {
		z.Countries = upperAll(z.Countries)
		z.Regions = upperAll(z.Regions)
		z.Options = append([]ShippingOption(nil), z.Options...)
		if len(z.Countries) == 0 {
			bad("zone %d (%s): no countries", i, z.Name)
		}
		for _, o := range z.Options {
			switch {
			case o.ID == "":
				bad("zone %d (%s): an option without id", i, z.Name)
			case ids[o.ID]:
				bad("zone %d (%s): option id %q used twice", i, z.Name, o.ID)
			}
			ids[o.ID] = true
			if o.Flat < 0 || o.PerKg < 0 || o.FreeOver != nil && *o.FreeOver < 0 {
				bad("option %q: negative amount", o.ID)
			}
			if o.MinDays < 0 || o.MaxDays < o.MinDays {
				bad("option %q: delivery days %d–%d", o.ID, o.MinDays, o.MaxDays)
			}
		}
		zones[i] = z
	}
	cfg.Zones = zones
	rates := map[taxKey]int64{}
	for _, r := range cfg.TaxRates {
		k := taxKey{strings.ToUpper(strings.TrimSpace(r.Country)), normRegion(r.Region, r.Country)}
		if r.PPM < 0 || r.PPM > ppmOne {
			bad("tax rate %s %s: %d ppm is not 0–100%%", k.country, k.region, r.PPM)
		}
		if _, dup := rates[k]; dup {
			bad("tax rate %s %s given twice", k.country, k.region)
		}
		rates[k] = r.PPM
	}
	cfg.TaxRates = append([]TaxRate(nil), cfg.TaxRates...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pricing: %w", err)
	}
	return &Pricing{cfg: cfg, rates: rates}, nil
}

// Currency is the currency of every amount Pricing computes.
func (p *Pricing) Currency() string { return p.cfg.Currency }

// Options lists the fulfillment options for lines going to shipTo, priced
// and dated from now:
//
//   - no lines (or only lines of quantity 0): none;
//   - no physical line: the digital option only, free;
//   - physical lines without an address, or to an address no zone matches:
//     none (the engine asks for an address or says the region is not
//     served);
//   - otherwise the options of the first zone matching the address's
//     country and region, in the config's order.
//
// An option's Subtotal is its cost: Flat + PerKg × started kilograms of the
// physical lines (Σ WeightGrams × Quantity, rounded up to whole kg; lines of
// unknown weight count 0), or 0 when the items subtotal (Σ UnitAmount ×
// Quantity − Discount, as the buyer sees it: before exclusive tax, with tax
// when prices include it) is at least FreeOver. Tax is the cost's tax at
// the destination's rate when shipping is taxable and prices exclude tax,
// else 0; Total = Subtotal + Tax. An option whose cost would overflow is
// left out.
//
// Delivery windows are calendar days, not business days, counted in UTC:
// Earliest is the start (00:00 UTC) of the day MinDays after now's UTC date
// (or now, for same-day delivery), Latest the end (23:59:59 UTC) of the day
// MaxDays after it. The digital option has no window.
func (p *Pricing) Options(lines []bridge.SessionLine, shipTo *bridge.Address, now time.Time) []bridge.FulfillmentOption {
	physical, some := false, false
	var grams int64
	var items int64
	ok := true
	for _, l := range lines {
		if l.Quantity <= 0 {
			continue
		}
		some = true
		base, o1 := mulCheck(l.UnitAmount, l.Quantity)
		sub, o2 := subCheck(base, l.Discount)
		items, ok = addCheckAll(ok && o1 && o2, items, sub)
		if !l.Digital {
			physical = true
			if l.WeightGrams > 0 {
				w, o := mulCheck(l.WeightGrams, l.Quantity)
				grams, ok = addCheckAll(ok && o, grams, w)
			}
		}
	}
	if !some {
		return nil
	}
	if !physical {
		return []bridge.FulfillmentOption{{ID: p.cfg.Digital.ID, Type: OptionDigital, Title: p.cfg.Digital.Title}}
	}
	if shipTo == nil || !ok {
		return nil
	}
	z := p.zone(shipTo)
	if z == nil {
		return nil
	}
	rate := p.rate(shipTo)
	day := now.UTC().Truncate(24 * time.Hour)
	kg := (grams + 999) / 1000 // grams ≥ 0 and < MaxInt64, so no overflow
	out := make([]bridge.FulfillmentOption, 0, len(z.Options))
	for _, o := range z.Options {
		cost := o.Flat
		okCost := true
		if o.PerKg > 0 && kg > 0 {
			w, o1 := mulCheck(kg, o.PerKg)
			cost, okCost = addCheckAll(o1, cost, w)
		}
		if o.FreeOver != nil && items >= *o.FreeOver {
			cost, okCost = 0, true
		}
		if !okCost {
			continue
		}
		var tax int64
		if p.cfg.ShippingTaxable && !p.cfg.PricesIncludeTax {
			tax = mulDivRound(cost, rate, ppmOne)
		}
		total, okTotal := addCheck(cost, tax)
		if !okTotal {
			continue
		}
		earliest := day.AddDate(0, 0, o.MinDays)
		if earliest.Before(now) {
			earliest = now.UTC().Truncate(time.Second)
		}
		out = append(out, bridge.FulfillmentOption{
			ID: o.ID, Type: OptionShipping, Title: o.Title, Subtitle: daysText(o.MinDays, o.MaxDays), Carrier: o.Carrier,
			Earliest: earliest, Latest: day.AddDate(0, 0, o.MaxDays+1).Add(-time.Second),
			Subtotal: cost, Tax: tax, Total: total,
		})
	}
	return out
}

func daysText(lo, hi int) string {
	switch {
	case hi == 0:
		return "Delivered today"
	case lo == hi && hi == 1:
		return "Delivered in 1 day"
	case lo == hi:
		return fmt.Sprintf("Delivered in %d days", hi)
	}
	return fmt.Sprintf("Delivered in %d–%d days", lo, hi)
}

// ErrTooLarge is returned by Apply when a session's amounts do not fit.
var ErrTooLarge = &Error{Kind: KindInvalid, Code: bridge.MsgInvalid, Param: "$.line_items",
	Message: "The order is too large to be priced; lower the quantities."}

// Apply prices s: each line's Base = UnitAmount × Quantity, Discount = 0,
// Subtotal = Base − Discount, Tax and Total = Subtotal + Tax; and s.Totals:
// ItemsBase, ItemsDiscount (Σ lines), Discount (0), Subtotal = ItemsBase −
// ItemsDiscount − Discount, Fulfillment (the selected option's Subtotal
// from s.Options, 0 when none is selected — call Options first), Tax (Σ
// line tax + the option's Tax) and Total = Subtotal + Fulfillment + Tax.
//
// The rate is the destination's (s.ShipTo's country and region), or the
// merchant country's while there is no address. Prices excluding tax: each
// line's Tax is its Subtotal × rate, rounded half up. Prices including tax:
// Tax is 0 on lines and in the totals, Total = Subtotal + Fulfillment, and
// Totals.TaxIncluded is the tax contained in each line (and in shipping
// when taxable), each rounded half up, summed.
//
// A session that cannot be priced — a negative quantity or price, another
// currency, or sums beyond int64 — gets every amount set to 0, an error
// message (so it cannot become ready for payment) and a non-nil *Error
// (ErrTooLarge for overflow).
func (p *Pricing) Apply(s *bridge.Session) error {
	if err := p.apply(s); err != nil {
		for i := range s.Lines {
			l := &s.Lines[i]
			l.Base, l.Discount, l.Subtotal, l.Tax, l.Total = 0, 0, 0, 0, 0
		}
		s.Totals = bridge.Totals{}
		s.Messages = append(s.Messages, bridge.Message{Type: bridge.MessageError, Code: err.Code, Param: err.Param, Content: err.Message})
		return err
	}
	return nil
}

func (p *Pricing) apply(s *bridge.Session) *Error {
	if s.Currency != "" && s.Currency != p.cfg.Currency {
		return &Error{Kind: KindInvalid, Code: bridge.MsgInvalid, Param: "$.currency",
			Message: fmt.Sprintf("This shop sells in %s, not %s.", p.cfg.Currency, s.Currency)}
	}
	rate := p.rate(s.ShipTo)
	incl := p.cfg.PricesIncludeTax
	type amounts struct{ base, sub, tax, total int64 }
	lines := make([]amounts, len(s.Lines))
	var t bridge.Totals
	ok := true
	for i, l := range s.Lines {
		if l.Quantity < 0 || l.UnitAmount < 0 {
			return &Error{Kind: KindInvalid, Code: bridge.MsgInvalid, Param: fmt.Sprintf("$.line_items[%d]", i),
				Message: "A line has a negative quantity or price."}
		}
		var a amounts
		var o bool
		a.base, o = mulCheck(l.UnitAmount, l.Quantity)
		ok = ok && o
		a.sub = a.base // no discounts yet
		if incl {
			t.TaxIncluded, ok = addCheckAll(ok, t.TaxIncluded, mulDivRound(a.sub, rate, ppmOne+rate))
		} else {
			a.tax = mulDivRound(a.sub, rate, ppmOne)
		}
		a.total, o = addCheck(a.sub, a.tax)
		ok = ok && o
		t.ItemsBase, ok = addCheckAll(ok, t.ItemsBase, a.base)
		t.Tax, ok = addCheckAll(ok, t.Tax, a.tax)
		lines[i] = a
	}
	if s.Selected != "" {
		for _, o := range s.Options {
			if o.ID != s.Selected {
				continue
			}
			if o.Subtotal < 0 || o.Tax < 0 {
				return &Error{Kind: KindInvalid, Code: bridge.MsgInvalid, Param: "$.fulfillment_options",
					Message: "The selected fulfillment option has a negative price."}
			}
			t.Fulfillment = o.Subtotal
			t.Tax, ok = addCheckAll(ok, t.Tax, o.Tax)
			if incl && p.cfg.ShippingTaxable {
				t.TaxIncluded, ok = addCheckAll(ok, t.TaxIncluded, mulDivRound(o.Subtotal, rate, ppmOne+rate))
			}
			break
		}
	}
	t.Subtotal = t.ItemsBase - t.ItemsDiscount - t.Discount
	t.Total, ok = addCheckAll(ok, t.Subtotal, t.Fulfillment)
	t.Total, ok = addCheckAll(ok, t.Total, t.Tax)
	if !ok {
		return ErrTooLarge
	}
	for i := range s.Lines {
		l, a := &s.Lines[i], lines[i]
		l.Base, l.Discount, l.Subtotal, l.Tax, l.Total = a.base, 0, a.sub, a.tax, a.total
	}
	s.Totals = t
	return nil
}

// Rate returns the tax rate, in parts per million, for a destination (nil:
// the merchant's country).
func (p *Pricing) Rate(to *bridge.Address) int64 { return p.rate(to) }

func (p *Pricing) rate(to *bridge.Address) int64 {
	country, region := p.cfg.Country, ""
	if to != nil {
		country = strings.ToUpper(strings.TrimSpace(to.Country))
		region = normRegion(to.Region, country)
	}
	if region != "" {
		if r, ok := p.rates[taxKey{country, region}]; ok {
			return r
		}
	}
	return p.rates[taxKey{country, ""}]
}

// zone returns the first zone matching to, or nil.
func (p *Pricing) zone(to *bridge.Address) *Zone {
	country := strings.ToUpper(strings.TrimSpace(to.Country))
	region := normRegion(to.Region, country)
	if country == "" {
		return nil
	}
	for i := range p.cfg.Zones {
		z := &p.cfg.Zones[i]
		if !slices.Contains(z.Countries, country) && !slices.Contains(z.Countries, "*") {
			continue
		}
		if len(z.Regions) == 0 || region != "" && slices.Contains(z.Regions, region) {
			return z
		}
	}
	return nil
}

// normRegion upper-cases a subdivision code and drops its country prefix:
// "us-ca" → "CA". Names ("California") are kept and match no code.
func normRegion(region, country string) string {
	r := strings.ToUpper(strings.TrimSpace(region))
	c := strings.ToUpper(strings.TrimSpace(country))
	if c != "" {
		r = strings.TrimPrefix(r, c+"-")
	}
	return r
}

func upperAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToUpper(strings.TrimSpace(s))
	}
	return out
}

// mulCheck multiplies non-negative a and b; false when the product does not
// fit in an int64 (or an operand is negative).
func mulCheck(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// addCheck adds non-negative a and b; false on overflow.
func addCheck(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

// subCheck returns a − b for 0 ≤ b ≤ a.
func subCheck(a, b int64) (int64, bool) {
	if b < 0 || b > a {
		return 0, false
	}
	return a - b, true
}

// addCheckAll is addCheck that keeps an earlier failure.
func addCheckAll(ok bool, a, b int64) (int64, bool) {
	s, o := addCheck(a, b)
	return s, ok && o
}

// mulDivRound returns a × num / den rounded half up, for a ≥ 0 and
// 0 ≤ num ≤ den (so the result is at most a); the product is computed in
// 128 bits.
func mulDivRound(a, num, den int64) int64 {
	if a <= 0 || num <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(num))
	q, r := bits.Div64(hi, lo, uint64(den)) // hi < den since num ≤ den
	if 2*r >= uint64(den) {
		q++
	}
	return int64(q)
}

// VariantWeightGrams converts a variant's Weight and WeightUnit to whole
// grams, rounded up (a started gram counts). Units: g, kg, lb, oz (as the
// feed rules name them), case-insensitive, also spelled out (grams,
// kilograms, pounds, ounces, lbs). An empty, negative or unparsable weight,
// an unknown unit, or a weight above 10^12 g gives 0: unknown.
func VariantWeightGrams(v bridge.Variant) int64 {
	w := strings.TrimSpace(v.Weight)
	if w == "" {
		return 0
	}
	d, err := decimal.NewFromString(w)
	if err != nil || d.IsNegative() || strings.ContainsAny(w, "eE") {
		return 0
	}
	var factor decimal.Decimal
	switch strings.ToLower(strings.TrimSpace(v.WeightUnit)) {
	case "g", "gr", "gram", "grams":
		factor = decimal.NewFromInt(1)
	case "kg", "kgs", "kilo", "kilos", "kilogram", "kilograms":
		factor = decimal.NewFromInt(1000)
	case "lb", "lbs", "pound", "pounds":
		factor = decimal.RequireFromString("453.59237") // exact, by definition
	case "oz", "ounce", "ounces":
		factor = decimal.RequireFromString("28.349523125") // 1/16 lb
	default:
		return 0
	}
	g := d.Mul(factor).Ceil()
	if g.GreaterThan(decimal.New(1, 12)) {
		return 0
	}
	return g.IntPart()
}
