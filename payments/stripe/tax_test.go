package stripe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
	stripego "github.com/stripe/stripe-go/v82"
)

func taxQuery(inclusive bool) TaxQuery {
	return TaxQuery{
		Currency: "USD", Country: "US", Region: "CA", PostalCode: "94103", City: "San Francisco", Line1: "1 Market St",
		Lines:            []TaxLine{{Ref: "li_1", Amount: 1000}, {Ref: "li_2", Amount: 2550}, {Ref: "li_3", Amount: 0}},
		Shipping:         500,
		PricesIncludeTax: inclusive,
	}
}

func TestCalculateTax(t *testing.T) {
	for _, tt := range []struct {
		name      string
		inclusive bool
		want      TaxAnswer
	}{
		// 7.25% in CA: 1000 → 72.5 → 73; 2550 → 184.875 → 185; 500 → 36.25 → 36.
		{"exclusive", false, TaxAnswer{Lines: []int64{73, 185, 0}, Shipping: 36}},
		// inclusive: 1000×725/10725 = 67.6; 2550 → 172.4; 500 → 33.8.
		{"inclusive", true, TaxAnswer{Lines: []int64{68, 172, 0}, Shipping: 34}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.SetTaxRate("US", 500)
			f.SetTaxRate("US-CA", 725)
			p := newProvider(t, f, nil)
			got, err := p.CalculateTax(context.Background(), taxQuery(tt.inclusive))
			if err != nil {
				t.Fatal(err)
			}
			if !equalAnswer(got, tt.want) {
				t.Errorf("answer = %+v, want %+v", got, tt.want)
			}
			calls := f.CallsTo("POST", "/v1/tax/calculations")
			if len(calls) != 1 {
				t.Fatalf("%d calculation calls", len(calls))
			}
			c := calls[0]
			behavior := map[bool]string{false: "exclusive", true: "inclusive"}[tt.inclusive]
			want := map[string]string{
				"currency":                               "usd",
				"customer_details[address][country]":     "US",
				"customer_details[address][state]":       "CA",
				"customer_details[address][postal_code]": "94103",
				"customer_details[address][city]":        "San Francisco",
				"customer_details[address][line1]":       "1 Market St",
				"customer_details[address_source]":       "shipping",
				"shipping_cost[amount]":                  "500",
				"shipping_cost[tax_behavior]":            behavior,
				"line_items[0][amount]":                  "1000",
				"line_items[0][reference]":               "li_1",
				"line_items[0][tax_behavior]":            behavior,
				"line_items[1][reference]":               "li_2",
				"line_items[2][amount]":                  "0",
				"expand[0]":                              "line_items",
			}
			for k, v := range want {
				if got := c.Form.Get(k); got != v {
					t.Errorf("form %s = %q, want %q", k, got, v)
				}
			}
			if c.StripeVersion != DefaultStripeVersion {
				t.Errorf("Stripe-Version = %q", c.StripeVersion)
			}
		})
	}
}

func equalAnswer(a, b TaxAnswer) bool {
	if a.Shipping != b.Shipping || len(a.Lines) != len(b.Lines) {
		return false
	}
	for i := range a.Lines {
		if a.Lines[i] != b.Lines[i] {
			return false
		}
	}
	return true
}

func TestCalculateTaxCountryRateAndDefault(t *testing.T) {
	f := newFake(t)
	f.SetTaxRate("US", 500)
	p := newProvider(t, f, nil)
	q := taxQuery(false)
	q.Region = "NY"
	got, err := p.CalculateTax(context.Background(), q)
	if err != nil || !equalAnswer(got, TaxAnswer{Lines: []int64{50, 128, 0}, Shipping: 25}) {
		t.Errorf("US rate: %+v, %v", got, err)
	}
	q.Country = "FR"
	got, err = p.CalculateTax(context.Background(), q)
	if err != nil || !equalAnswer(got, TaxAnswer{Lines: []int64{0, 0, 0}, Shipping: 0}) {
		t.Errorf("no rate: %+v, %v", got, err)
	}
}

func TestCalculateTaxMatchesByReferenceAcrossPages(t *testing.T) {
	f := newFake(t)
	f.SetTaxRate("US", 1000)
	f.ScriptTax(stripefake.TaxScript{PageSize: 2})
	p := newProvider(t, f, nil)
	q := TaxQuery{Currency: "usd", Country: "US"}
	var want []int64
	for i := range 7 {
		amt := int64(100 * (i + 1))
		q.Lines = append(q.Lines, TaxLine{Ref: "line_" + string(rune('a'+i)), Amount: amt})
		want = append(want, amt/10)
	}
	got, err := p.CalculateTax(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !equalAnswer(got, TaxAnswer{Lines: want}) {
		t.Errorf("answer = %+v, want %v", got, want)
	}
	if n := len(f.CallsTo("GET", "/v1/tax/calculations/")); n != 3 {
		t.Errorf("%d line item pages read, want 3", n)
	}
}

func TestCalculateTaxMissingLine(t *testing.T) {
	f := newFake(t)
	f.SetTaxRate("US", 500)
	f.ScriptTax(stripefake.TaxScript{OmitRefs: []string{"li_2"}})
	p := newProvider(t, f, nil)
	_, err := p.CalculateTax(context.Background(), taxQuery(false))
	if !errors.Is(err, ErrTaxAnswer) || !strings.Contains(err.Error(), `"li_2"`) {
		t.Errorf("err = %v, want ErrTaxAnswer naming li_2", err)
	}
}

func TestCalculateTaxRetries(t *testing.T) {
	f := newFake(t)
	f.SetTaxRate("US-CA", 725)
	f.ScriptTax(stripefake.TaxScript{Faults: []stripefake.Fault{
		{Kind: stripefake.FaultStatus, Status: 503},
		{Kind: stripefake.FaultRateLimit},
		{Kind: stripefake.FaultDropBefore},
	}})
	p := newProvider(t, f, nil)
	got, err := p.CalculateTax(context.Background(), taxQuery(false))
	if err != nil {
		t.Fatal(err)
	}
	if got.Lines[0] != 73 || got.Shipping != 36 {
		t.Errorf("answer = %+v", got)
	}
	if n := len(f.CallsTo("POST", "/v1/tax/calculations")); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}

	// Failing past the budget: ErrTaxUnavailable, not a payment error.
	f.ScriptTax(stripefake.TaxScript{Faults: repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 500}, 1000)})
	p = newProvider(t, f, func(c *Config) { c.MaxRetryTime = 100 * time.Millisecond })
	_, err = p.CalculateTax(context.Background(), taxQuery(false))
	if !errors.Is(err, ErrTaxUnavailable) || errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Errorf("err = %v, want ErrTaxUnavailable only", err)
	}
	assertNoSecrets(t, err, "")
}

func TestCalculateTaxRefusals(t *testing.T) {
	f := newFake(t)
	// A key the fake refuses: Stripe echoes it (masked); never shown whole.
	p := newProvider(t, f, func(c *Config) { c.SecretKey = "sk_test_wrong_key_123456789" })
	_, err := p.CalculateTax(context.Background(), taxQuery(false))
	var se *Error
	if !errors.As(err, &se) || se.Err.HTTPStatusCode != 401 {
		t.Fatalf("err = %v, want a 401 *Error", err)
	}
	if errors.Is(err, ErrTaxUnavailable) || errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Errorf("a refusal is not 'unavailable': %v", err)
	}
	for _, s := range []string{"sk_test_wrong_key_123456789", "sk_test", testKey} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows %q: %v", s, err)
		}
	}
}

func TestCalculateTaxInvalidQuery(t *testing.T) {
	f := newFake(t)
	p := newProvider(t, f, nil)
	for name, mod := range map[string]func(*TaxQuery){
		"currency":      func(q *TaxQuery) { q.Currency = "dollars" },
		"country":       func(q *TaxQuery) { q.Country = "" },
		"no lines":      func(q *TaxQuery) { q.Lines = nil },
		"empty ref":     func(q *TaxQuery) { q.Lines[0].Ref = "" },
		"duplicate ref": func(q *TaxQuery) { q.Lines[1].Ref = q.Lines[0].Ref },
		"negative":      func(q *TaxQuery) { q.Lines[0].Amount = -1 },
		"shipping":      func(q *TaxQuery) { q.Shipping = -1 },
	} {
		q := taxQuery(false)
		mod(&q)
		if _, err := p.CalculateTax(context.Background(), q); !errors.Is(err, ErrInvalidTaxQuery) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if n := len(f.Calls()); n != 0 {
		t.Errorf("%d calls to Stripe", n)
	}
}

func TestTaxAnswerDuplicateReference(t *testing.T) {
	calc := &stripego.TaxCalculation{ID: "taxcalc_1"}
	items := []*stripego.TaxCalculationLineItem{{Reference: "a", AmountTax: 1}, {Reference: "a", AmountTax: 2}}
	if _, err := taxAnswer(TaxQuery{Lines: []TaxLine{{Ref: "a"}}}, calc, items); !errors.Is(err, ErrTaxAnswer) {
		t.Errorf("err = %v", err)
	}
}
