package bridge

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"
)

// Money is an amount in the minor units of its currency (cents for USD, yen for
// JPY, fils for KWD). It is never a float: store decimals are parsed exactly
// and every sum stays an integer.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ErrCurrency reports an unknown or malformed ISO 4217 code.
var ErrCurrency = errors.New("unknown currency")

// CurrencyExponent returns the number of minor-unit digits of an ISO 4217
// currency: 2 for USD, 0 for JPY, 3 for KWD.
func CurrencyExponent(code string) (int, error) {
	if v, ok := exponents.Load(code); ok {
		return v.(int), nil
	}
	if !isCurrencyCode(code) {
		return 0, fmt.Errorf("%w: %q (want three upper-case letters)", ErrCurrency, code)
	}
	unit, err := currency.ParseISO(code)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrCurrency, code)
	}
	scale, _ := currency.Standard.Rounding(unit)
	exponents.Store(code, scale)
	return scale, nil
}

// exponents caches CurrencyExponent for valid codes (a few hundred at most):
// x/text parses the code on every call, and feeds format a million prices.
var exponents sync.Map // code → int

// ParseMoney parses a store decimal such as "49.99", "49.9", "1500" or
// "49.99 USD" exactly into minor units of currency. A currency code inside s
// must match currency. More fractional digits than the currency has are an
// error unless they are zeros ("49.990" is fine, "49.995" is not): rounding a
// price silently is how a shop ends up charging what it never showed.
func ParseMoney(s, cur string) (Money, error) {
	exp, err := CurrencyExponent(cur)
	if err != nil {
		return Money{}, err
	}
	text := strings.TrimSpace(s)
	if num, code, ok := strings.Cut(text, " "); ok && isCurrencyCode(strings.TrimSpace(code)) {
		code = strings.TrimSpace(code)
		if code != cur {
			return Money{}, fmt.Errorf("price %q: currency %s does not match %s", s, code, cur)
		}
		text = strings.TrimSpace(num)
	}
	if text == "" {
		return Money{}, fmt.Errorf("price is empty")
	}
	if strings.Contains(text, ",") {
		return Money{}, fmt.Errorf("price %q: write a plain decimal with a dot and no thousands separator, like 1234.56", s)
	}
	if strings.Trim(text, "0123456789.-+") != "" {
		return Money{}, fmt.Errorf("price %q is not a decimal number", s)
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return Money{}, fmt.Errorf("price %q is not a decimal number", s)
	}
	minor := d.Shift(int32(exp))
	if !minor.IsInteger() {
		return Money{}, fmt.Errorf("price %q has more than %d decimal places for %s", s, exp, cur)
	}
	if minor.Abs().GreaterThan(decimal.New(1, 15)) {
		return Money{}, fmt.Errorf("price %q is out of range", s)
	}
	return Money{Amount: minor.IntPart(), Currency: cur}, nil
}

// Decimal formats m as a plain decimal with the currency's exponent: "49.99",
// "1500" for JPY, "1.250" for KWD.
func (m Money) Decimal() string {
	exp, err := CurrencyExponent(m.Currency)
	if err != nil {
		exp = 2
	}
	return decimal.New(m.Amount, int32(-exp)).StringFixed(int32(exp))
}

// String formats m the way product feeds want it: "49.99 USD".
func (m Money) String() string { return m.Decimal() + " " + m.Currency }

// IsZero reports whether m is the zero value (no amount, no currency).
func (m Money) IsZero() bool { return m.Amount == 0 && m.Currency == "" }

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
