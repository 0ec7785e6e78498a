package feed

import (
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	bridge "github.com/acp-bridge/bridge"
)

// The writers encode by appending to reused byte slices instead of going
// through encoding/json: for one flat row, encoding/json takes about four
// times as long and allocates 13 times (BenchmarkEncodeVariant: ~6.5 µs vs
// ~1.6 µs), and the writers' budget on a million-variant catalog is a few
// microseconds per variant, most of it taken by gzip.

// jsonSafe marks the ASCII bytes a JSON string may carry unescaped.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. It escapes what JSON requires,
// U+2028 and U+2029 (which break JavaScript consumers that eval or embed
// feeds), and replaces each byte of invalid UTF-8 by U+FFFD the way
// encoding/json does, so the output is always valid UTF-8 JSON. It does not
// escape <, > and &: feeds are never embedded in HTML.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Most text needs no escaping: skip it eight bytes at a time.
		if i+8 <= len(s) && !jsonSpecial8(load64(s, i)) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// SWAR ("SIMD within a register") tests on eight bytes at once; each is
// exact about whether some byte matches, which is all the callers need.
const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// load64 reads s[i:i+8] little-endian; the compiler turns it into one load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasByte8 reports whether some byte of x is c.
func hasByte8(x uint64, c byte) bool {
	y := x ^ (lsb8 * uint64(c))
	return (y-lsb8)&^y&msb8 != 0
}

// jsonSpecial8 reports whether some byte of x needs a look in
// appendJSONString: a control byte, '"', '\\' or a non-ASCII byte.
func jsonSpecial8(x uint64) bool {
	return x&msb8 != 0 || (x-lsb8*0x20)&^x&msb8 != 0 || hasByte8(x, '"') || hasByte8(x, '\\')
}

// appendJSONBytes is appendJSONString for a value the writer built itself
// (a price, a list of URLs).
func appendJSONBytes(dst []byte, b []byte) []byte { return appendJSONString(dst, bstr(b)) }

// appendCSVField appends one CSV field, quoted the way encoding/csv quotes
// (and reads back): only when it holds a comma, a quote, a line break or
// leading space. Invalid UTF-8 becomes U+FFFD because the consumers require
// UTF-8 files.
func appendCSVField(dst []byte, s string) []byte {
	s = validUTF8(s)
	if !csvNeedsQuotes(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

func csvNeedsQuotes(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == ' ' || s[0] == '\t' || indexCSVSpecial(s) >= 0 {
		return true
	}
	if s[0] < utf8.RuneSelf {
		return false
	}
	// encoding/csv also quotes a field that starts with Unicode space.
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// appendTSVField appends one TSV field. TSV has no quoting, so tabs and line
// breaks inside a value become spaces; nothing else changes (quotes stay
// literal, which is what tab-separated feed readers expect).
func appendTSVField(dst []byte, s string) []byte {
	s = validUTF8(s)
	for {
		i := indexTSVSpecial(s)
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, ' ')
		s = s[i+1:]
	}
}

// indexCSVSpecial returns the index of the first ',', '"', '\r' or '\n' in
// s, or -1; strings.ContainsAny goes byte by byte.
func indexCSVSpecial(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		if hasByte8(x, ',') || hasByte8(x, '"') || hasByte8(x, '\r') || hasByte8(x, '\n') {
			break
		}
	}
	for ; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			return i
		}
	}
	return -1
}

// indexTSVSpecial returns the index of the first tab or line break in s, or -1.
func indexTSVSpecial(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		if hasByte8(x, '\t') || hasByte8(x, '\r') || hasByte8(x, '\n') {
			break
		}
	}
	for ; i < len(s); i++ {
		switch s[i] {
		case '\t', '\r', '\n':
			return i
		}
	}
	return -1
}

// bstr views b as a string without copying, for the append helpers above,
// which neither keep nor change it.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// validUTF8 returns s, or s with invalid bytes replaced, allocating only in
// the rare invalid case.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// truncateRunes cuts s to at most n runes, on a rune boundary.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// maxDescription is the flat feeds' limit on description length, in runes.
const maxDescription = 5000

// validCurrency reports whether code is an ISO 4217 currency.
func validCurrency(code string) bool {
	_, err := bridge.CurrencyExponent(code)
	return err == nil
}
