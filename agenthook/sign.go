package agenthook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge/acp"
)

// DefaultTolerance is how far a 2026-04-17 signature's timestamp may be
// from the receiver's clock: the spec's recommended 300 seconds.
const DefaultTolerance = 300 * time.Second

// ErrInvalidSignature is the cause of every Verify failure: the receiver
// answers 401 invalid_signature.
var ErrInvalidSignature = errors.New("invalid signature")

// Sign returns the Merchant-Signature header value for body at version v.
//
//   - 2026-04-17 (and anything newer): "t=<unix seconds>,v1=<hex>" with
//     HMAC-SHA256(secret, "<unix seconds>." + body), as the spec says; the
//     timestamp in the signed payload bounds replays.
//   - up to 2026-01-30: the hex HMAC-SHA256(secret, body). The spec asks for
//     "an HMAC signature over the raw request body" and names neither the
//     hash nor the encoding; SHA-256 in lower-case hex is what 2026-04-17
//     then specified, so a receiver written for either reads it.
func Sign(v acp.Version, secret string, t time.Time, body []byte) string {
	if legacy(v) {
		return hex.EncodeToString(mac(secret, nil, body))
	}
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, []byte(ts+"."), body))
}

// Verify checks a Merchant-Signature header as the agent would. At
// 2026-04-17 the timestamp must be within tolerance of now, either way
// (≤ 0: DefaultTolerance); older signatures carry no timestamp, so nothing
// bounds their replay but the receiver's deduplication of Request-Id.
// Every failure wraps ErrInvalidSignature.
func Verify(v acp.Version, secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	header = strings.TrimSpace(header)
	if header == "" {
		return fmt.Errorf("%w: missing Merchant-Signature header", ErrInvalidSignature)
	}
	if legacy(v) {
		got, err := hex.DecodeString(header)
		if err != nil || len(got) != sha256.Size {
			return fmt.Errorf("%w: Merchant-Signature must be %d hex digits", ErrInvalidSignature, 2*sha256.Size)
		}
		if !hmac.Equal(got, mac(secret, nil, body)) {
			return fmt.Errorf("%w: verification failed", ErrInvalidSignature)
		}
		return nil
	}
	ts, sig, ok := parseV1(header)
	if !ok {
		return fmt.Errorf("%w: Merchant-Signature must be t=<timestamp>,v1=<64 hex>", ErrInvalidSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q out of range", ErrInvalidSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the allowed window (%s off, tolerance %s)",
			ErrInvalidSignature, d.Round(time.Second), tolerance)
	}
	if !hmac.Equal(sig, mac(secret, []byte(ts+"."), body)) {
		return fmt.Errorf("%w: verification failed", ErrInvalidSignature)
	}
	return nil
}

// parseV1 reads "t=<digits>,v1=<64 hex>", exactly the spec's pattern
// ^t=\d+,v1=[a-fA-F0-9]{64}$.
func parseV1(h string) (ts string, sig []byte, ok bool) {
	t, v1, found := strings.Cut(h, ",")
	if !found {
		return "", nil, false
	}
	ts, okT := strings.CutPrefix(t, "t=")
	hexSig, okV := strings.CutPrefix(v1, "v1=")
	if !okT || !okV || ts == "" || strings.Trim(ts, "0123456789") != "" || len(hexSig) != 2*sha256.Size {
		return "", nil, false
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return "", nil, false
	}
	return ts, sig, true
}

func mac(secret string, prefix, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(prefix)
	m.Write(body)
	return m.Sum(nil)
}

// legacy reports whether v signs the body alone: a released version before
// 2026-04-17. Anything else, unknown versions included, gets the current
// scheme, as the Sender encodes unknown versions at the latest.
func legacy(v acp.Version) bool {
	return slices.Contains(acp.Versions, v) && v.Before(acp.V20260417)
}
