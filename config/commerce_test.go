package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCommerceDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := c.ACP
	if a.SessionTTL != 30*time.Minute || a.IdempotencyTTL != 24*time.Hour || a.StockTimeout != 500*time.Millisecond {
		t.Errorf("acp durations: %s %s %s", a.SessionTTL, a.IdempotencyTTL, a.StockTimeout)
	}
	if a.Signing.Required || a.Signing.MaxSkew != 5*time.Minute {
		t.Errorf("signing: %+v", a.Signing)
	}
	if *a.RateLimit.PerSecond != 20 || a.RateLimit.Burst != 40 {
		t.Errorf("rate limit: %v %d", *a.RateLimit.PerSecond, a.RateLimit.Burst)
	}
	if !*a.MCP.Enabled {
		t.Errorf("acp.mcp.enabled defaults to false")
	}
	h := c.Payments.Handler
	if h.ID != "card" || h.MerchantID != "demo-shop" || !slices.Equal(h.AcceptedBrands, []string{"visa", "mastercard", "amex"}) {
		t.Errorf("handler: %+v", h)
	}
	f := c.Fulfillment
	if f.Digital.ID != "digital" || f.Digital.Title != "Instant download" {
		t.Errorf("digital: %+v", f.Digital)
	}
	if len(f.Zones) != 1 || !slices.Equal(f.Zones[0].Countries, []string{"US"}) || len(f.Zones[0].Options) != 2 {
		t.Fatalf("default zones: %+v", f.Zones)
	}
	std, exp := f.Zones[0].Options[0], f.Zones[0].Options[1]
	if std.ID != "standard" || std.Rate.Flat.Minor != 500 || std.Rate.FreeOver.Minor != 7500 || !std.Rate.FreeOver.IsSet() || std.Rate.PerKg.IsSet() || *std.DeliveryDays != (DeliveryDays{3, 5}) {
		t.Errorf("standard: %+v", std)
	}
	if exp.ID != "express" || exp.Rate.Flat.Minor != 1500 || exp.Rate.FreeOver.IsSet() || *exp.DeliveryDays != (DeliveryDays{1, 2}) {
		t.Errorf("express: %+v", exp)
	}
	if c.Tax.PricesIncludeTax || !*c.Tax.ShippingTaxable || len(c.Tax.Rates) != 0 {
		t.Errorf("tax: %+v", c.Tax)
	}

	// zones: [] is "ship nowhere", not "use the default".
	c, err = Parse("x.yaml", []byte(minimal+"fulfillment:\n  zones: []\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Fulfillment.Zones) != 0 {
		t.Errorf("zones: [] gave %+v", c.Fulfillment.Zones)
	}
	// per_second: 0 turns the limit off and stays 0.
	c, err = Parse("x.yaml", []byte(minimal+"acp:\n  rate_limit:\n    per_second: 0\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *c.ACP.RateLimit.PerSecond != 0 {
		t.Errorf("per_second 0 became %v", *c.ACP.RateLimit.PerSecond)
	}
	// enabled: false turns the MCP door off and stays false.
	c, err = Parse("x.yaml", []byte(minimal+"acp:\n  mcp:\n    enabled: false\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *c.ACP.MCP.Enabled {
		t.Errorf("acp.mcp.enabled: false became true")
	}
}

const commerceYAML = `
merchant:
  name: Demo Shop
  url: https://shop.example
  country: US
  currency: %CUR%
  return_policy_url: https://shop.example/returns
store:
  csv:
    path: catalog.csv
fulfillment:
  zones:
    - name: California
      countries: [US]
      regions: [CA]
      options:
        - id: ca_standard
          title: Standard
          carrier: USPS
          rate: {flat: "4.50", per_kg: 1.25, free_over: 60}
          delivery_days: {min: 2, max: 4}
    - name: Domestic
      countries: [US]
      options:
        - id: standard
          title: Standard
          rate: {flat: 5.00}
          delivery_days: {min: 3, max: 5}
    - name: World
      countries: ["*"]
      options:
        - id: intl
          title: International
          rate: {flat: 0}
          delivery_days: {min: 7, max: 21}
  digital: {id: download, title: Download now}
tax:
  prices_include_tax: true
  shipping_taxable: false
  rates:
    - {country: US, rate: "0"}
    - {country: US, region: CA, rate: 7.25}
    - {country: DE, rate: 19%}
    - {country: US, region: NY, rate: "8.875"}
`

func TestCommerceParsed(t *testing.T) {
	c, err := Parse("x.yaml", []byte(strings.Replace(commerceYAML, "%CUR%", "USD", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	z := c.Fulfillment.Zones
	if len(z) != 3 || z[0].Regions[0] != "CA" || z[2].Countries[0] != "*" {
		t.Fatalf("zones: %+v", z)
	}
	r := z[0].Options[0].Rate
	if r.Flat.Minor != 450 || r.PerKg.Minor != 125 || r.FreeOver.Minor != 6000 || z[0].Options[0].Carrier != "USPS" {
		t.Errorf("rate: %+v", r)
	}
	if z[2].Options[0].Rate.Flat.Minor != 0 || !z[2].Options[0].Rate.Flat.IsSet() {
		t.Errorf("flat 0 must be set and free: %+v", z[2].Options[0].Rate)
	}
	if c.Fulfillment.Digital != (Digital{ID: "download", Title: "Download now"}) {
		t.Errorf("digital: %+v", c.Fulfillment.Digital)
	}
	var ppm []int64
	for _, r := range c.Tax.Rates {
		ppm = append(ppm, r.Rate.PPM)
	}
	if !slices.Equal(ppm, []int64{0, 72500, 190000, 88750}) {
		t.Errorf("tax ppm = %v", ppm)
	}
	if !c.Tax.PricesIncludeTax || *c.Tax.ShippingTaxable {
		t.Errorf("tax flags: %+v", c.Tax)
	}

	// The same amounts in yen: "4.50" has too many decimals.
	_, err = Parse("x.yaml", []byte(strings.Replace(commerceYAML, "%CUR%", "JPY", 1)), env(nil))
	if err == nil || !strings.Contains(err.Error(), `x.yaml:20: fulfillment.zones.0.options.0.rate.flat: want an amount in JPY such as 5.00: "4.50" has more than 0 decimal places for JPY`) {
		t.Errorf("JPY: %v", err)
	}
	// KWD has three decimals: fine.
	c, err = Parse("x.yaml", []byte(strings.Replace(commerceYAML, "%CUR%", "KWD", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fulfillment.Zones[0].Options[0].Rate.Flat.Minor != 4500 {
		t.Errorf("KWD flat = %d", c.Fulfillment.Zones[0].Options[0].Rate.Flat.Minor)
	}
}

func TestCommerceProblems(t *testing.T) {
	zone := func(body string) string { return minimal + "fulfillment:\n  zones:\n" + body }
	opt := "      options:\n        - {id: std, title: Standard, rate: {flat: 5}, delivery_days: {min: 1, max: 2}}\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"session ttl too short", minimal + "acp:\n  session_ttl: 10s\n", nil,
			[]string{"x.yaml:11: acp.session_ttl: want 1m to 168h, have 10s"}},
		{"idempotency ttl under 24h", minimal + "acp:\n  idempotency_ttl: 1h\n", nil,
			[]string{"x.yaml:11: acp.idempotency_ttl: at least 24h"}},
		{"stock timeout", minimal + "acp:\n  stock_timeout: -1s\n", nil,
			[]string{"x.yaml:11: acp.stock_timeout: want more than 0"}},
		{"bad duration type", minimal + "acp:\n  session_ttl: forever\n", nil,
			[]string{`x.yaml:11: acp.session_ttl: want a duration such as 30s, 15m or 2h, have "forever"`}},
		{"max skew", minimal + "acp:\n  signing:\n    max_skew: 2h\n", nil,
			[]string{"x.yaml:12: acp.signing.max_skew: want 1s to 1h"}},
		{"unknown signing key", minimal + "acp:\n  signing:\n    requird: true\n", nil,
			[]string{`x.yaml:12: acp.signing.requird: unknown key (did you mean "required"?)`}},
		{"negative rate", minimal + "acp:\n  rate_limit:\n    per_second: -1\n    burst: -2\n", nil,
			[]string{"x.yaml:12: acp.rate_limit.per_second: want a number of requests per second", "x.yaml:13: acp.rate_limit.burst: must be at least 1"}},
		{"rate not a number", minimal + "acp:\n  rate_limit:\n    per_second: lots\n", nil,
			[]string{`x.yaml:12: acp.rate_limit.per_second: want a number, have "lots"`}},
		{"infinite rate", minimal + "acp:\n  rate_limit:\n    per_second: .inf\n", nil,
			[]string{"x.yaml:12: acp.rate_limit.per_second:"}},
		{"duplicate key values, same name allowed", minimal + "acp:\n  api_keys:\n    - name: openai\n      key: ${K1}\n    - name: openai\n      key: ${K2}\n    - name: other\n      key: ${K1}\n",
			map[string]string{"K1": strings.Repeat("a", 30), "K2": strings.Repeat("b", 30)},
			[]string{"x.yaml:17: acp.api_keys.2.key: the same key as acp.api_keys.0.key (line 13)"}},
		{"signing required needs secrets", minimal + "acp:\n  signing:\n    required: true\n  api_keys:\n    - name: openai\n      key: ${K1}\n    - name: two\n      key: ${K2}\n      signing_secret: ${S2}\n",
			map[string]string{"K1": strings.Repeat("a", 30), "K2": strings.Repeat("b", 30), "S2": strings.Repeat("s", 30)},
			[]string{"x.yaml:14: acp.api_keys.0.signing_secret: required: acp.signing.required is true"}},
		{"signing secret short and equal to key", minimal + "acp:\n  api_keys:\n    - name: a\n      key: ${K1}\n      signing_secret: ${K1}\n    - name: b\n      key: ${K2}\n      signing_secret: short\n",
			map[string]string{"K1": strings.Repeat("a", 30), "K2": strings.Repeat("b", 30)},
			[]string{"x.yaml:14: acp.api_keys.0.signing_secret: must differ from the key", "x.yaml:17: acp.api_keys.1.signing_secret: too short"}},
		{"api key without name", minimal + "acp:\n  api_keys:\n    - key: ${K1}\n", map[string]string{"K1": strings.Repeat("a", 30)},
			[]string{"x.yaml:12: acp.api_keys.0.name: required"}},
		{"handler", minimal + "payments:\n  handler:\n    id: 'my card'\n    accepted_brands: [visa, maestro, visa]\n", nil,
			[]string{`x.yaml:12: payments.handler.id: "my card" is not an id`, `x.yaml:13: payments.handler.accepted_brands.1: "maestro" is not one of visa, mastercard`, `x.yaml:13: payments.handler.accepted_brands.2: "visa" is listed twice`}},
		{"zone without countries or options", zone("    - name: Nowhere\n"), nil,
			[]string{"x.yaml:12: fulfillment.zones.0.countries: required", "x.yaml:12: fulfillment.zones.0.options: required"}},
		{"bad countries and regions", zone("    - name: Mixed\n      countries: [us, \"*\"]\n      regions: [US-CA, california]\n" + opt), nil,
			[]string{`x.yaml:13: fulfillment.zones.0.countries.0: "us" is not an ISO 3166-1 alpha-2 code`, `fulfillment.zones.0.countries.1: "*" (every country) stands alone`,
				"x.yaml:14: fulfillment.zones.0.regions: regions belong to one country", `fulfillment.zones.0.regions.0: "US-CA": write the subdivision code without the country prefix`, `fulfillment.zones.0.regions.1: "california" is not an ISO 3166-2`}},
		{"option problems", zone("    - countries: [US]\n      options:\n        - {title: ' ', rate: {flat: '-1', per_kg: abc, free_over: [1]}, delivery_days: {min: 5, max: 2}}\n        - id: x\n          title: X\n"), nil,
			[]string{"x.yaml:14: fulfillment.zones.0.options.0.id: required", "x.yaml:14: fulfillment.zones.0.options.0.title: required",
				"x.yaml:14: fulfillment.zones.0.options.0.rate.flat: must not be negative", `x.yaml:14: fulfillment.zones.0.options.0.rate.per_kg: want an amount in USD such as 5.00: "abc" is not a decimal number`,
				"x.yaml:14: fulfillment.zones.0.options.0.rate.free_over: want an amount such as 5.00", "x.yaml:14: fulfillment.zones.0.options.0.delivery_days: want 0 ≤ min ≤ max ≤ 365",
				"x.yaml:15: fulfillment.zones.0.options.1.rate.flat: required", "x.yaml:15: fulfillment.zones.0.options.1.delivery_days: required"}},
		{"duplicate option ids across zones and with digital", zone("    - countries: [US]\n" + opt + "    - countries: [CA]\n" + opt + "    - countries: [MX]\n      options:\n        - {id: digital, title: D, rate: {flat: 1}, delivery_days: {min: 1, max: 2}}\n"), nil,
			[]string{`x.yaml:17: fulfillment.zones.1.options.0.id: "std" is used by fulfillment.zones.0.options.0.id (line 14) already`, `x.yaml:20: fulfillment.zones.2.options.0.id: "digital" is used by fulfillment.digital.id already`}},
		{"region zone after its country", zone("    - name: US\n      countries: [US]\n" + opt + "    - name: California\n      countries: [US]\n      regions: [CA]\n      options:\n        - {id: ca, title: CA, rate: {flat: 5}, delivery_days: {min: 1, max: 2}}\n"), nil,
			[]string{`x.yaml:16: fulfillment.zones.1: zone "California" never applies: zone "US" (line 12) matches all its addresses first`}},
		{"zone after star", zone("    - name: World\n      countries: [\"*\"]\n" + opt + "    - name: Canada\n      countries: [CA, MX]\n      options:\n        - {id: ca, title: CA, rate: {flat: 5}, delivery_days: {min: 1, max: 2}}\n"), nil,
			[]string{`zone "Canada" never applies: zone "World" (line 12)`}},
		{"bad money type", zone("    - countries: [US]\n      options:\n        - {id: a, title: A, rate: {flat: 5.001}, delivery_days: {min: 1, max: 2}}\n"), nil,
			[]string{`x.yaml:14: fulfillment.zones.0.options.0.rate.flat: want an amount in USD such as 5.00: "5.001" has more than 2 decimal places for USD`}},
		{"unknown rate key", zone("    - countries: [US]\n      options:\n        - {id: a, title: A, rate: {flat: 5, per_lb: 1}, delivery_days: {min: 1, max: 2}}\n"), nil,
			[]string{`x.yaml:14: fulfillment.zones.0.options.0.rate.per_lb: unknown key (did you mean "per_kg"?)`}},
		{"mcp switch", minimal + "acp:\n  mcp:\n    enabled: maybe\n    path: /agents\n", nil,
			[]string{`x.yaml:12: acp.mcp.enabled: want true or false, have "maybe"`, "x.yaml:13: acp.mcp.path: unknown key"}},
		{"tax rates", minimal + "tax:\n  shipping_taxable: sometimes\n", nil,
			[]string{`x.yaml:11: tax.shipping_taxable: want true or false, have "sometimes"`}},
		{"tax rate values", minimal + "tax:\n  rates:\n    - {country: usa, rate: 7}\n    - {country: US, region: US-NY, rate: 101}\n    - {country: US, rate: 7.123456}\n    - {country: US, rate: 1}\n    - {country: DE}\n    - {country: FR, rate: lots}\n", nil,
			[]string{`x.yaml:12: tax.rates.0.country: "usa" is not an ISO 3166-1 alpha-2 code`, `x.yaml:13: tax.rates.1.region: "US-NY": write the subdivision code without the country prefix`,
				"x.yaml:13: tax.rates.1.rate: want 0 to 100 (percent), have 101", `x.yaml:14: tax.rates.2.rate: "7.123456" has more than 4 decimals`,
				"x.yaml:15: tax.rates.3: a second rate for the same place as tax.rates.2.country (line 14)", "x.yaml:16: tax.rates.4.rate: required", `x.yaml:17: tax.rates.5.rate: "lots" is not a percentage`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml), env(tt.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing problem %q in:\n%s", w, err)
				}
			}
		})
	}
}

func TestCommerceAccepted(t *testing.T) {
	for name, src := range map[string]string{
		"same name on two keys (rotation)":        minimal + "acp:\n  api_keys:\n    - name: openai\n      key: ${K1}\n    - name: openai\n      key: ${K2}\n",
		"signing required, all keys have secrets": minimal + "acp:\n  signing: {required: true}\n  api_keys:\n    - name: a\n      key: ${K1}\n      signing_secret: ${S1}\n",
		"region zone before country zone":         strings.Replace(commerceYAML, "%CUR%", "USD", 1),
		"two region zones of one country": minimal + "fulfillment:\n  zones:\n    - {countries: [US], regions: [CA], options: [{id: a, title: A, rate: {flat: 1}, delivery_days: {min: 1, max: 2}}]}\n" +
			"    - {countries: [US], regions: [CA, NY], options: [{id: b, title: B, rate: {flat: 1}, delivery_days: {min: 1, max: 2}}]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{"K1": strings.Repeat("a", 30), "K2": strings.Repeat("b", 30), "S1": strings.Repeat("s", 30)}
			if _, err := Parse("x.yaml", []byte(src), env(e)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestProductionCommerce(t *testing.T) {
	base := `
mode: production
server:
  public_url: https://bridge.shop.example
merchant:
  name: Demo Shop
  url: https://shop.example
  country: US
  return_policy_url: https://shop.example/returns
store:
  csv:
    path: catalog.csv
payments:
  provider: stripe
  stripe:
    secret_key: ${STRIPE_KEY}
    webhook_secret: ${STRIPE_WHSEC}
acp:
  api_keys:
    - name: openai
      key: ${ACP_KEY}
      signing_secret: literal-signing-secret-0123456789
`
	e := env(map[string]string{"STRIPE_KEY": "sk", "STRIPE_WHSEC": "wh", "ACP_KEY": strings.Repeat("k", 32)})
	_, err := Parse("x.yaml", []byte(base), e)
	for _, w := range []string{
		"x.yaml: payments.handler.merchant_id: required in production",
		"x.yaml: fulfillment.zones: required in production",
		"x.yaml:22: acp.api_keys.0.signing_secret: secrets must come from the environment in production",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

// TestExampleDocumentsEveryKey keeps config.example.yaml in step with the
// types: every key the config accepts appears in it, set or commented out,
// and the example loads as it is.
func TestExampleDocumentsEveryKey(t *testing.T) {
	path := filepath.Join("..", "config.example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(path, data, env(nil)); err != nil {
		t.Fatalf("the example must load: %v", err)
	}
	text := string(data)
	var walk func(reflect.Type, string)
	walk = func(t0 reflect.Type, prefix string) {
		for t0.Kind() == reflect.Pointer || t0.Kind() == reflect.Slice {
			t0 = t0.Elem()
		}
		if t0.Kind() != reflect.Struct || t0 == nodeType || reflect.PointerTo(t0).Implements(unmarshalerType) {
			return
		}
		for i := 0; i < t0.NumField(); i++ {
			f := t0.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := join(prefix, name)
			// As a key of a block ("  name:"), of a flow mapping
			// ("{name: …") or of a commented-out line ("# name:").
			re := regexp.MustCompile(`(?m)(^[ #-]*|[{,] *)` + regexp.QuoteMeta(name) + `:`)
			if !re.MatchString(text) {
				t.Errorf("config.example.yaml does not document %s", key)
			}
			walk(f.Type, key)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestStripeSettings(t *testing.T) {
	load := func(t *testing.T, yaml string) (*Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "x.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return Load(path)
	}
	for _, tc := range []struct {
		yaml, want string
	}{
		{"payments:\n  stripe:\n    api_base: ftp://x\n", "payments.stripe.api_base"},
		{"payments:\n  stripe:\n    stripe_version: latest\n", "payments.stripe.stripe_version"},
		{"payments:\n  stripe:\n    spt_param: token\n", "payments.stripe.spt_param"},
	} {
		if _, err := load(t, minimal+tc.yaml); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a problem at %s", tc.yaml, err, tc.want)
		}
	}
	c, err := load(t, minimal+"payments:\n  stripe:\n    spt_param: shared_payment_granted_token\n")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Payments.Stripe; s.APIBase != DefaultStripeBase || s.StripeVersion != DefaultStripeVersion || s.SPTParam != "shared_payment_granted_token" {
		t.Fatalf("stripe settings %+v", s)
	}
}
