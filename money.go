package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
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

// CurrencyExponent returns the number of minor-unit digits of an active
// ISO 4217 currency: 2 for USD, 0 for JPY, 3 for KWD, 4 for CLF.
func CurrencyExponent(code string) (int, error) {
	if exp, ok := minorUnits[code]; ok {
		return exp, nil
	}
	if !isCurrencyCode(code) {
		return 0, fmt.Errorf("%w: %q (want three upper-case letters)", ErrCurrency, code)
	}
	return 0, fmt.Errorf("%w: %q is not an active ISO 4217 currency", ErrCurrency, code)
}

// minorUnits is ISO 4217's list of active currencies and their minor units
// (the "E" column of list one, as amended to 2025). It is written out rather
// than taken from golang.org/x/text/currency: that package follows CLDR,
// whose display rounding says 0 for IDR, COP, RSD and IQD (ISO: 2, 2, 2, 3)
// and which lacks recent codes such as MRU — an IDR price would be off by a
// factor of 100. Codes without minor units (gold, test codes) are left out.
var minorUnits = map[string]int{
	"AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2,
	"AWG": 2, "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0,
	"BMD": 2, "BND": 2, "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2,
	"BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4,
	"CLP": 0, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUC": 2, "CUP": 2, "CVE": 2,
	"CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2,
	"EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2,
	"GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2,
	"ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0,
	"KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2,
	"KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2,
	"MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
	"MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2,
	"NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2,
	"PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2,
	"RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2,
	"SLE": 2, "SLL": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2,
	"SZL": 2, "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2,
	"TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2,
	"UYW": 4, "UZS": 2, "VED": 2, "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0,
	"XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
	"ZWL": 2,
}

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
// "1500" for JPY, "1.250" for KWD. An unknown currency gets two decimals
// (validation keeps such prices out of feeds and checkout).
func (m Money) Decimal() string { return string(m.AppendDecimal(nil)) }

// AppendDecimal appends Decimal's text to dst without allocating: feeds
// format a million prices.
func (m Money) AppendDecimal(dst []byte) []byte {
	exp, err := CurrencyExponent(m.Currency)
	if err != nil {
		exp = 2
	}
	u := uint64(m.Amount)
	if m.Amount < 0 {
		dst = append(dst, '-')
		u = -u
	}
	var tmp [24]byte
	digits := strconv.AppendUint(tmp[:0], u, 10)
	if exp == 0 {
		return append(dst, digits...)
	}
	if len(digits) <= exp {
		dst = append(dst, '0', '.')
		for i := len(digits); i < exp; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	cut := len(digits) - exp
	dst = append(dst, digits[:cut]...)
	dst = append(dst, '.')
	return append(dst, digits[cut:]...)
}

// String formats m the way product feeds want it: "49.99 USD".
func (m Money) String() string { return string(m.AppendString(nil)) }

// AppendString appends String's text to dst.
func (m Money) AppendString(dst []byte) []byte {
	dst = m.AppendDecimal(dst)
	dst = append(dst, ' ')
	return append(dst, m.Currency...)
}

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
