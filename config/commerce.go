package config

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/shopspring/decimal"
)

// The checkout's settings: acp.* (sessions, idempotency, signing, rate
// limit), payments.handler, fulfillment and tax. Defaults and checks live
// here; the general ones in validate.go.

// Checkout defaults.
const (
	DefaultSessionTTL     = 30 * time.Minute
	DefaultIdempotencyTTL = 24 * time.Hour
	// MinIdempotencyTTL is the protocol's floor: keys are kept at least 24 h.
	MinIdempotencyTTL       = 24 * time.Hour
	DefaultStockTimeout     = 500 * time.Millisecond
	DefaultClaimLease       = time.Minute
	DefaultMaxSkew          = 5 * time.Minute
	DefaultRatePerSec       = 20.0
	DefaultRateBurst        = 40
	DefaultHandlerID        = "card"
	DefaultStripeBase       = "https://api.stripe.com"
	DefaultStripeVersion    = "2026-04-22.preview"
	DefaultSPTParam         = "payment_method_data[shared_payment_granted_token]"
	DefaultWebhookTolerance = 5 * time.Minute
	DefaultDigitalID        = "digital"
	DefaultDigitalTitle     = "Instant download"
)

// DefaultAcceptedBrands are the card brands offered when the config names
// none.
var DefaultAcceptedBrands = []string{"visa", "mastercard", "amex"}

// sptParams are the wire forms of a Shared Payment Token on a
// PaymentIntent that Stripe has documented.
var sptParams = []string{DefaultSPTParam, "shared_payment_granted_token"}

var stripeVersionRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$`)

// cardBrands are the brands ACP's PaymentMethodObject knows.
var cardBrands = []string{"visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay", "eftpos", "interac"}

func (c *Config) applyCommerceDefaults() {
	a := &c.ACP
	if a.SessionTTL == 0 {
		a.SessionTTL = DefaultSessionTTL
	}
	if a.IdempotencyTTL == 0 {
		a.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if a.StockTimeout == 0 {
		a.StockTimeout = DefaultStockTimeout
	}
	if a.ClaimLease == 0 {
		a.ClaimLease = DefaultClaimLease
	}
	if a.Signing.MaxSkew == 0 {
		a.Signing.MaxSkew = DefaultMaxSkew
	}
	if a.RateLimit.PerSecond == nil {
		v := DefaultRatePerSec
		a.RateLimit.PerSecond = &v
	}
	if a.RateLimit.Burst == 0 {
		a.RateLimit.Burst = DefaultRateBurst
	}
	if a.MCP.Enabled == nil {
		on := true
		a.MCP.Enabled = &on
	}

	st := &c.Payments.Stripe
	if st.APIBase == "" {
		st.APIBase = DefaultStripeBase
	}
	if st.StripeVersion == "" {
		st.StripeVersion = DefaultStripeVersion
	}
	if st.SPTParam == "" {
		st.SPTParam = DefaultSPTParam
	}
	if st.WebhookTolerance == 0 {
		st.WebhookTolerance = DefaultWebhookTolerance
	}

	h := &c.Payments.Handler
	if h.ID == "" {
		h.ID = DefaultHandlerID
	}
	if h.MerchantID == "" && c.Mode != ModeProduction {
		h.MerchantID = slug(c.Merchant.Name)
	}
	if len(h.AcceptedBrands) == 0 {
		h.AcceptedBrands = append([]string(nil), DefaultAcceptedBrands...)
	}

	f := &c.Fulfillment
	if c.Line("fulfillment.zones") == 0 && f.Zones == nil && c.Mode != ModeProduction && isAlpha2(c.Merchant.Country) {
		f.Zones = defaultZones(c.Merchant.Country)
	}
	if f.Digital.ID == "" {
		f.Digital.ID = DefaultDigitalID
	}
	if f.Digital.Title == "" {
		f.Digital.Title = DefaultDigitalTitle
	}

	if c.Tax.Provider == "" {
		c.Tax.Provider = "rates"
	}
	if c.Tax.ShippingTaxable == nil {
		yes := true
		c.Tax.ShippingTaxable = &yes
	}
}

// defaultZones is the development default when the config has no
// fulfillment.zones: the merchant's country with standard shipping (5.00,
// free from 75.00, 3–5 days) and express (15.00, 1–2 days), amounts in
// merchant.currency.
func defaultZones(country string) []Zone {
	return []Zone{{
		Name:      "Domestic",
		Countries: []string{country},
		Options: []ShippingOption{
			{ID: "standard", Title: "Standard shipping", Rate: Rate{Flat: Amount{Text: "5.00"}, FreeOver: Amount{Text: "75.00"}},
				DeliveryDays: &DeliveryDays{Min: 3, Max: 5}},
			{ID: "express", Title: "Express shipping", Rate: Rate{Flat: Amount{Text: "15.00"}},
				DeliveryDays: &DeliveryDays{Min: 1, Max: 2}},
		},
	}}
}

// slug turns a merchant name into an id: "Demo Outfitters" → "demo-outfitters".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	return b.String()
}

var (
	idRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	regionRe = regexp.MustCompile(`^[A-Z0-9]{1,3}$`)
)

func isAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// validateCommerce checks acp.*, payments.handler, fulfillment and tax, and
// parses their amounts and percentages.
func (c *Config) validateCommerce() []bridge.Problem {
	var ps []bridge.Problem
	addAt := func(line int, path, format string, args ...any) {
		ps = append(ps, bridge.Problem{File: c.File, Line: line, Key: path, Message: fmt.Sprintf(format, args...)})
	}
	add := func(path, format string, args ...any) { addAt(c.Line(path), path, format, args...) }
	// lineOf is the line of the first of paths the file has: an entry
	// without the key at fault is reported at the entry's first key.
	lineOf := func(paths ...string) int {
		for _, p := range paths {
			if l := c.Line(p); l > 0 {
				return l
			}
		}
		return 0
	}
	// at names where a path is: "acp.api_keys.0.key (line 12)".
	at := func(path string) string {
		if l := c.Line(path); l > 0 {
			return fmt.Sprintf("%s (line %d)", path, l)
		}
		return path
	}
	prod := c.Mode == ModeProduction

	// acp
	a := c.ACP
	if a.SessionTTL < time.Minute || a.SessionTTL > 7*24*time.Hour {
		add("acp.session_ttl", "want 1m to 168h, have %s", a.SessionTTL)
	}
	if a.IdempotencyTTL < MinIdempotencyTTL {
		add("acp.idempotency_ttl", "at least 24h (the protocol keeps idempotency keys 24 hours), have %s", a.IdempotencyTTL)
	}
	if a.StockTimeout <= 0 || a.StockTimeout > 10*time.Second {
		add("acp.stock_timeout", "want more than 0 and at most 10s, have %s", a.StockTimeout)
	}
	if a.ClaimLease < 10*time.Second || a.ClaimLease > 10*time.Minute {
		add("acp.claim_lease", "want 10s to 10m (the payment call gets half), have %s", a.ClaimLease)
	}
	if a.Signing.MaxSkew < time.Second || a.Signing.MaxSkew > time.Hour {
		add("acp.signing.max_skew", "want 1s to 1h, have %s", a.Signing.MaxSkew)
	}
	if ps := *a.RateLimit.PerSecond; !(ps >= 0) || math.IsInf(ps, 0) {
		add("acp.rate_limit.per_second", "want a number of requests per second, 0 to turn the limit off, have %v", ps)
	}
	if a.RateLimit.Burst < 1 {
		add("acp.rate_limit.burst", "must be at least 1, have %d", a.RateLimit.Burst)
	}
	keys := map[string]int{} // key value → index
	for i, k := range a.APIKeys {
		p := fmt.Sprintf("acp.api_keys.%d", i)
		entry := lineOf(p+".name", p+".key", p+".signing_secret")
		if k.Name == "" {
			addAt(entry, p+".name", "required: sessions are bound to this identity")
		}
		c.requireSecret(&ps, p+".key", k.Key)
		if len(k.Key) > 0 && len(k.Key) < 24 {
			add(p+".key", "too short: use at least 24 random characters")
		}
		if k.Key != "" {
			if j, dup := keys[k.Key.Value()]; dup {
				add(p+".key", "the same key as %s: every key must be distinct (two entries may share a name, for a rotation)", at(fmt.Sprintf("acp.api_keys.%d.key", j)))
			} else {
				keys[k.Key.Value()] = i
			}
		}
		switch {
		case k.SigningSecret != "":
			c.requireSecret(&ps, p+".signing_secret", k.SigningSecret)
			if len(k.SigningSecret) < 24 {
				add(p+".signing_secret", "too short: use at least 24 random characters")
			}
			if k.SigningSecret == k.Key {
				add(p+".signing_secret", "must differ from the key: a signature proves the sender knows a second secret")
			}
		case a.Signing.Required:
			addAt(entry, p+".signing_secret", "required: acp.signing.required is true (reference an environment variable: ${NAME})")
		}
	}

	// payments.stripe
	st := c.Payments.Stripe
	if u, err := url.Parse(st.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("payments.stripe.api_base", "%q is not an http(s) URL", st.APIBase)
	} else if prod && u.Scheme != "https" {
		add("payments.stripe.api_base", "must be https in production")
	}
	if !stripeVersionRe.MatchString(st.StripeVersion) {
		add("payments.stripe.stripe_version", "%q is not a Stripe API version (YYYY-MM-DD, optionally .name)", st.StripeVersion)
	}
	if st.WebhookTolerance < time.Second || st.WebhookTolerance > time.Hour {
		add("payments.stripe.webhook_tolerance", "want 1s to 1h, have %v", st.WebhookTolerance)
	}
	if !contains(sptParams, st.SPTParam) {
		add("payments.stripe.spt_param", "%q is not one of %s", st.SPTParam, strings.Join(sptParams, ", "))
	}

	// payments.handler
	h := c.Payments.Handler
	if !idRe.MatchString(h.ID) {
		add("payments.handler.id", "%q is not an id: letters, digits, _ . : - (at most 64)", h.ID)
	}
	switch {
	case h.MerchantID == "" && prod:
		add("payments.handler.merchant_id", "required in production: your payment provider's account id, which agents copy into the payment token's allowance")
	case len(h.MerchantID) > 256:
		add("payments.handler.merchant_id", "at most 256 characters, have %d", len(h.MerchantID))
	}
	seenBrand := map[string]bool{}
	for i, b := range h.AcceptedBrands {
		p := fmt.Sprintf("payments.handler.accepted_brands.%d", i)
		switch {
		case !contains(cardBrands, b):
			add(p, "%q is not one of %s", b, strings.Join(cardBrands, ", "))
		case seenBrand[b]:
			add(p, "%q is listed twice", b)
		}
		seenBrand[b] = true
	}

	// fulfillment
	cur := c.Merchant.Currency
	_, curErr := bridge.CurrencyExponent(cur)
	f := &c.Fulfillment
	if prod && c.Line("fulfillment.zones") == 0 {
		add("fulfillment.zones", "required in production: where you ship and what it costs (write zones: [] to sell digital items only)")
	}
	if !idRe.MatchString(f.Digital.ID) {
		add("fulfillment.digital.id", "%q is not an id: letters, digits, _ . : - (at most 64)", f.Digital.ID)
	}
	optionIDs := map[string]string{f.Digital.ID: "fulfillment.digital.id"}
	// amount parses a money amount; entry is the line to report a
	// missing one at.
	amount := func(path string, a *Amount, required bool, entry int) {
		switch {
		case a.bad:
			add(path, "want an amount such as 5.00, in merchant.currency")
		case !a.IsSet():
			if required {
				line := lineOf(strings.TrimSuffix(path, ".flat")) // the rate: section
				if line == 0 {
					line = entry
				}
				addAt(line, path, "required: an amount such as 5.00 (0 for free), in merchant.currency")
			}
		case curErr != nil:
			// merchant.currency is reported already.
		default:
			m, err := bridge.ParseMoney(a.Text, cur)
			switch {
			case err != nil:
				add(path, "want an amount in %s such as 5.00: %s", cur, strings.TrimPrefix(err.Error(), "price "))
			case m.Amount < 0:
				add(path, "must not be negative, have %s", a.Text)
			default:
				a.Minor = m.Amount
			}
		}
	}
	for i := range f.Zones {
		z := &f.Zones[i]
		zp := fmt.Sprintf("fulfillment.zones.%d", i)
		zline := lineOf(zp+".name", zp+".countries", zp+".regions", zp+".options")
		if len(z.Countries) == 0 {
			addAt(zline, zp+".countries", "required: ISO 3166-1 alpha-2 codes such as [US, CA], or [\"*\"] for every country")
		}
		for j, cc := range z.Countries {
			p := fmt.Sprintf("%s.countries.%d", zp, j)
			switch {
			case cc == "*":
				if len(z.Countries) > 1 {
					add(p, `"*" (every country) stands alone: write countries: ["*"]`)
				}
			case !isAlpha2(cc):
				add(p, "%q is not an ISO 3166-1 alpha-2 code such as US (or \"*\" for every country)", cc)
			case contains(z.Countries[:j], cc):
				add(p, "%q is listed twice", cc)
			}
		}
		if len(z.Regions) > 0 && (len(z.Countries) != 1 || z.Countries[0] == "*") {
			add(zp+".regions", "regions belong to one country: give the zone exactly one country")
		}
		for j, r := range z.Regions {
			p := fmt.Sprintf("%s.regions.%d", zp, j)
			switch {
			case strings.Contains(r, "-"):
				add(p, "%q: write the subdivision code without the country prefix (CA, not US-CA)", r)
			case !regionRe.MatchString(r):
				add(p, "%q is not an ISO 3166-2 subdivision code such as CA or NY", r)
			case contains(z.Regions[:j], r):
				add(p, "%q is listed twice", r)
			}
		}
		if len(z.Options) == 0 {
			addAt(zline, zp+".options", "required: at least one shipping option")
		}
		for j := range z.Options {
			o := &z.Options[j]
			op := fmt.Sprintf("%s.options.%d", zp, j)
			oline := lineOf(op+".id", op+".title", op+".rate", op+".delivery_days")
			switch {
			case o.ID == "":
				addAt(oline, op+".id", "required: the id agents select the option by")
			case !idRe.MatchString(o.ID):
				add(op+".id", "%q is not an id: letters, digits, _ . : - (at most 64)", o.ID)
			case optionIDs[o.ID] != "":
				add(op+".id", "%q is used by %s already: option ids are unique across zones", o.ID, at(optionIDs[o.ID]))
			default:
				optionIDs[o.ID] = op + ".id"
			}
			if strings.TrimSpace(o.Title) == "" {
				addAt(lineOf(op+".title", op+".id"), op+".title", "required: the name buyers see, such as Standard shipping")
			}
			amount(op+".rate.flat", &o.Rate.Flat, true, oline)
			amount(op+".rate.per_kg", &o.Rate.PerKg, false, oline)
			amount(op+".rate.free_over", &o.Rate.FreeOver, false, oline)
			switch d := o.DeliveryDays; {
			case d == nil:
				addAt(oline, op+".delivery_days", "required: {min: 3, max: 5}, the delivery window in days")
			case d.Min < 0 || d.Max < d.Min || d.Max > 365:
				add(op+".delivery_days", "want 0 ≤ min ≤ max ≤ 365, have min %d, max %d", d.Min, d.Max)
			}
		}
	}
	c.checkShadowedZones(&ps)

	// tax
	switch c.Tax.Provider {
	case "rates":
	case "stripe":
		if c.Payments.Provider != "stripe" {
			add("tax.provider", "stripe needs payments.provider: stripe (its secret key)")
		}
	default:
		add("tax.provider", "%q is not one of rates, stripe", c.Tax.Provider)
	}
	type dest struct{ country, region string }
	rates := map[dest]string{}
	for i := range c.Tax.Rates {
		r := &c.Tax.Rates[i]
		p := fmt.Sprintf("tax.rates.%d", i)
		line := lineOf(p+".country", p+".region", p+".rate")
		if !isAlpha2(r.Country) {
			addAt(lineOf(p+".country", p+".rate"), p+".country", "%q is not an ISO 3166-1 alpha-2 code such as US", r.Country)
		}
		if r.Region != "" {
			if strings.Contains(r.Region, "-") {
				add(p+".region", "%q: write the subdivision code without the country prefix (CA, not US-CA)", r.Region)
			} else if !regionRe.MatchString(r.Region) {
				add(p+".region", "%q is not an ISO 3166-2 subdivision code such as CA or NY", r.Region)
			}
		}
		d := dest{r.Country, r.Region}
		if first, dup := rates[d]; dup {
			addAt(line, p, "a second rate for the same place as %s", at(first+".country"))
		} else {
			rates[d] = p
		}
		switch {
		case r.Rate.bad:
			add(p+".rate", "want a percentage such as 7.25")
		case r.Rate.Text == "":
			addAt(line, p+".rate", "required: a percentage such as 7.25")
		default:
			ppm, err := parsePercent(r.Rate.Text)
			if err != nil {
				add(p+".rate", "%v", err)
			}
			r.Rate.PPM = ppm
		}
	}
	return ps
}

// parsePercent reads "7.25" (or "7.25%") as parts per million: 72500.
func parsePercent(s string) (int64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	d, err := decimal.NewFromString(t)
	if err != nil || strings.ContainsAny(t, "eE") {
		return 0, fmt.Errorf("%q is not a percentage such as 7.25", s)
	}
	if d.IsNegative() || d.GreaterThan(decimal.NewFromInt(100)) {
		return 0, fmt.Errorf("want 0 to 100 (percent), have %s", s)
	}
	ppm := d.Shift(4)
	if !ppm.IsInteger() {
		return 0, fmt.Errorf("%q has more than 4 decimals", s)
	}
	return ppm.IntPart(), nil
}

// checkShadowedZones reports zones an earlier zone hides entirely: the
// first matching zone wins, so a region zone after its country's
// country-wide zone, or anything after a "*" zone, never applies.
func (c *Config) checkShadowedZones(ps *[]bridge.Problem) {
	zones := c.Fulfillment.Zones
	name := func(i int) string {
		if zones[i].Name != "" {
			return fmt.Sprintf("zone %q", zones[i].Name)
		}
		return fmt.Sprintf("fulfillment.zones.%d", i)
	}
	line := func(i int) int {
		p := fmt.Sprintf("fulfillment.zones.%d", i)
		for _, k := range []string{".name", ".countries", ".regions", ".options"} {
			if l := c.Line(p + k); l > 0 {
				return l
			}
		}
		return 0
	}
	// coveredBy returns the earlier zone hiding country/region of zone j, or -1.
	coveredBy := func(j int, country, region string) int {
		for i := 0; i < j; i++ {
			z := zones[i]
			if !contains(z.Countries, country) && !contains(z.Countries, "*") {
				continue
			}
			if len(z.Regions) == 0 || region != "" && contains(z.Regions, region) {
				return i
			}
		}
		return -1
	}
	for j, z := range zones {
		if len(z.Countries) == 0 {
			continue
		}
		by := -1
		hidden := true
		for _, cc := range z.Countries {
			if len(z.Regions) == 0 {
				i := coveredBy(j, cc, "")
				if i < 0 {
					hidden = false
					break
				}
				by = i
				continue
			}
			for _, r := range z.Regions {
				i := coveredBy(j, cc, r)
				if i < 0 {
					hidden = false
					break
				}
				by = i
			}
		}
		if hidden && by >= 0 {
			*ps = append(*ps, bridge.Problem{File: c.File, Line: line(j), Key: fmt.Sprintf("fulfillment.zones.%d", j),
				Message: fmt.Sprintf("%s never applies: %s (line %d) matches all its addresses first (the first matching zone wins: put region zones before country-wide ones, and \"*\" last)", name(j), name(by), line(by))})
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
