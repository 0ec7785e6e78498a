package acp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// BodyHash identifies a request body semantically, for idempotency: the
// SHA-256 (hex) of a canonical form in the style of JCS (RFC 8785). Two
// bodies hash the same exactly when they mean the same JSON:
//
//   - object member order and insignificant whitespace do not matter;
//   - numbers are compared as exact decimals (1 == 1.0 == 1e0 == 10e-1,
//     -0 == 0); unlike JCS they are not rounded to IEEE doubles, so two
//     different 20-digit ids stay different;
//   - null is a value: {"a":null} differs from {};
//   - array order matters;
//   - string escapes do not matter ("\u0041" == "A").
//
// A body of nothing but whitespace hashes as {} (a cancel without a
// body is the same request as one with an empty object). When a member
// repeats, the last one counts, as in decoding. Members are sorted by
// their UTF-8 bytes (JCS sorts UTF-16 units; the orders differ only
// between characters above U+FFFF and U+E000–U+FFFF, which cannot matter
// to an identity computed and compared here). Invalid JSON is an error.
func BodyHash(body []byte) (string, error) {
	c, err := Canonical(body)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical returns the canonical form BodyHash hashes: no insignificant
// whitespace, object members sorted, strings escaped as JCS (RFC 8785)
// escapes them, numbers spelled exactly (integers of up to 21 digits as
// plain digits, so for bodies of strings and integers this is JCS). It is
// also what a signature covers when a transport re-encodes the body on
// its way (MCP clients serialize tool arguments themselves), so an agent
// can sign a body without knowing the bytes its client will send.
func Canonical(body []byte) ([]byte, error) {
	v, err := parseJSON(body)
	if err != nil {
		return nil, fmt.Errorf("request body is not valid JSON: %w", err)
	}
	return appendCanonical(nil, v), nil
}

// appendCanonical writes the canonical form of a parsed JSON value.
func appendCanonical(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case string:
		return appendCanonicalString(dst, x)
	case json.Number:
		return appendCanonicalNumber(dst, string(x))
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonical(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonicalString(dst, k)
			dst = append(dst, ':')
			dst = appendCanonical(dst, x[k])
		}
		return append(dst, '}')
	}
	panic(fmt.Sprintf("acp: unexpected JSON value %T", v))
}

// appendCanonicalString escapes like JCS: only the quote, the backslash
// and control characters.
func appendCanonicalString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\b':
			dst = append(dst, `\b`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendCanonicalNumber writes an exact canonical spelling: integers of up
// to 21 digits plainly ("100"), everything else as significant digits and
// an exponent ("15e-1"). Numbers whose exponent is beyond ±2^40 keep their
// spelling (lower-cased).
func appendCanonicalNumber(dst []byte, s string) []byte {
	neg, digits, exp, exact := splitNumber(s)
	switch {
	case !exact:
		return append(dst, strings.ToLower(s)...)
	case digits == "":
		return append(dst, '0')
	}
	if neg {
		dst = append(dst, '-')
	}
	dst = append(dst, digits...)
	if exp >= 0 && int64(len(digits))+exp <= 21 {
		for range exp {
			dst = append(dst, '0')
		}
		return dst
	}
	dst = append(dst, 'e')
	return strconv.AppendInt(dst, exp, 10)
}
