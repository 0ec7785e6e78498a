package bridge

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
		wantErr bool
	}{
		{"49.99", "USD", 4999, false},
		{"49.9", "USD", 4990, false},
		{"49", "USD", 4900, false},
		{"49.990", "USD", 4999, false},
		{" 49.99 USD ", "USD", 4999, false},
		{"1500", "JPY", 1500, false},
		{"1500.5", "JPY", 0, true},
		{"1.250", "KWD", 1250, false},
		{"150000", "IDR", 15000000, false},
		{"12500.50", "COP", 1250050, false},
		{"1.5", "IQD", 1500, false},
		{"0.1", "USD", 10, false},
		{"-5.00", "USD", -500, false},
		{"49.995", "USD", 0, true},
		{"49,99", "USD", 0, true},
		{"1,234.56", "USD", 0, true},
		{"1e3", "USD", 0, true},
		{"", "USD", 0, true},
		{"abc", "USD", 0, true},
		{"49.99 EUR", "USD", 0, true},
		{"49.99", "usd", 0, true},
		{"49.99", "XXY", 0, true},
		{"99999999999999999999", "USD", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseMoney(tt.in, tt.cur)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseMoney(%q, %q) error = %v, wantErr %v", tt.in, tt.cur, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && (got.Amount != tt.want || got.Currency != tt.cur) {
			t.Errorf("ParseMoney(%q, %q) = %+v, want %d %s", tt.in, tt.cur, got, tt.want, tt.cur)
		}
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{Money{4999, "USD"}, "49.99 USD"},
		{Money{5, "USD"}, "0.05 USD"},
		{Money{1500, "JPY"}, "1500 JPY"},
		{Money{1250, "KWD"}, "1.250 KWD"},
		{Money{-500, "EUR"}, "-5.00 EUR"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestCurrencyExponent(t *testing.T) {
	// IDR, COP, RSD and IQD are where CLDR's display rounding differs from
	// ISO 4217; MRU is a recent code.
	for code, want := range map[string]int{"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3, "BHD": 3, "KRW": 0,
		"IDR": 2, "COP": 2, "RSD": 2, "IQD": 3, "MRU": 2, "CLF": 4, "HUF": 2, "TWD": 2} {
		got, err := CurrencyExponent(code)
		if err != nil || got != want {
			t.Errorf("CurrencyExponent(%s) = %d, %v; want %d", code, got, err, want)
		}
	}
	for _, bad := range []string{"", "usd", "US", "USDX", "XAU", "ABC"} {
		if _, err := CurrencyExponent(bad); err == nil {
			t.Errorf("CurrencyExponent(%q) must fail", bad)
		}
	}
}

// FuzzParseMoney: any text either parses to an amount that formats back to
// the same value, or is refused; never a panic or a silent rounding.
func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"49.99", "0.1", "-5", "1e3", "49.995", "1,5", " 7 USD", "9999999999999999.99"} {
		f.Add(s, "USD")
	}
	f.Add("1500", "JPY")
	f.Add("1.250", "KWD")
	f.Fuzz(func(t *testing.T, s, cur string) {
		m, err := ParseMoney(s, cur)
		if err != nil {
			return
		}
		back, err := ParseMoney(m.Decimal(), cur)
		if err != nil || back != m {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, m, m.Decimal(), back, err)
		}
	})
}

func TestMoneyAppendMatchesDecimalArithmetic(t *testing.T) {
	// The hand-written formatter must agree with exact decimal arithmetic
	// for every exponent and sign.
	for _, cur := range []string{"USD", "JPY", "KWD", "CLF"} {
		for _, amt := range []int64{0, 1, 9, 10, 99, 100, 101, 12345, -1, -100, -12345, 1 << 62, -(1 << 62)} {
			exp, _ := CurrencyExponent(cur)
			want := decimal.New(amt, int32(-exp)).StringFixed(int32(exp))
			if got := (Money{amt, cur}).Decimal(); got != want {
				t.Errorf("Money{%d %s}.Decimal() = %q, want %q", amt, cur, got, want)
			}
		}
	}
}

func TestTotalDiscrepancy(t *testing.T) {
	paid := Money{Amount: 1700, Currency: "USD"}
	for _, tt := range []struct {
		name, currency, amount, want string
	}{
		{"agrees", "USD", "17.00", ""},
		{"agrees without decimals", "USD", "17", ""},
		{"other amount", "USD", "18.00", "Shopify's order total is 18.00 USD, the buyer was charged 17.00 USD"},
		{"other currency", "EUR", "17.00", "Shopify recorded the order in EUR, the buyer paid in USD"},
		{"unreadable", "USD", "seventeen", `Shopify's order total "seventeen" could not be read`},
		{"long junk is cut", "USD" + strings.Repeat("X", 40), "17.00", "Shopify recorded the order in USDXXXXX…, the buyer paid in USD"},
	} {
		got := TotalDiscrepancy("Shopify", paid, tt.currency, tt.amount)
		if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPricesIncludeTax(t *testing.T) {
	usd := func(n int64) Money { return Money{Amount: n, Currency: "USD"} }
	for _, tt := range []struct {
		name string
		o    Order
		want bool
	}{
		{"flagged", Order{TaxIncluded: true, Subtotal: usd(1000), Tax: usd(167), Total: usd(1000)}, true},
		{"tax added", Order{Subtotal: usd(1000), Shipping: usd(500), Tax: usd(80), Total: usd(1580)}, false},
		{"unflagged but inside the total", Order{Subtotal: usd(1200), Shipping: usd(500), Tax: usd(283), Total: usd(1700)}, true},
		{"no tax", Order{Subtotal: usd(1000), Total: usd(1000)}, false},
	} {
		if got := tt.o.PricesIncludeTax(); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
