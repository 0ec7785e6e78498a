package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/acp-bridge/bridge/internal/reqsign"
)

// APIKey is one agent credential. Name is the identity its sessions belong
// to; two keys may share a name while one is rotated out.
type APIKey struct {
	Name string
	Key  string
	// SigningSecret is the HMAC key of the agent's request signatures ("" =
	// the agent does not sign).
	SigningSecret string
}

// Keys is the set of accepted API keys. It can be replaced while serving
// (SIGHUP), so a key is rotated by adding the new one, moving the agent
// over, and dropping the old one — no restart.
type Keys struct {
	set atomic.Pointer[[]hashedKey]
}

type hashedKey struct {
	sum    [sha256.Size]byte
	name   string
	secret []byte
}

// NewKeys returns a key set holding keys.
func NewKeys(keys []APIKey) *Keys {
	k := &Keys{}
	k.Set(keys)
	return k
}

// Set replaces the accepted keys.
func (k *Keys) Set(keys []APIKey) {
	hs := make([]hashedKey, 0, len(keys))
	for _, key := range keys {
		if key.Key == "" {
			continue
		}
		hs = append(hs, hashedKey{sum: sha256.Sum256([]byte(key.Key)), name: key.Name, secret: []byte(key.SigningSecret)})
	}
	k.set.Store(&hs)
}

// Len is how many keys are accepted.
func (k *Keys) Len() int { return len(*k.set.Load()) }

// lookup finds the key presented. Every key is compared, in constant time
// over equal-length hashes, so timing tells nothing about which key or how
// much of one matched.
func (k *Keys) lookup(presented string) (hashedKey, bool) {
	sum := sha256.Sum256([]byte(presented))
	var found hashedKey
	ok := 0
	for _, h := range *k.set.Load() {
		if subtle.ConstantTimeCompare(sum[:], h.sum[:]) == 1 {
			found, ok = h, 1
		}
	}
	return found, ok == 1
}

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(header http.Header) string {
	h := header.Get("Authorization")
	const p = "bearer "
	if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
		return strings.TrimSpace(h[len(p):])
	}
	return ""
}

// SignatureVerifier checks a request's signature. ACP leaves the algorithm
// to the merchant, so verifiers are pluggable; HMACVerifier is the default
// profile.
type SignatureVerifier interface {
	// Verify returns nil when the request is signed correctly, ErrUnsigned
	// when it carries no signature, and another error when the signature
	// is wrong. secret is the signing secret of the caller's key.
	Verify(r *http.Request, body []byte, secret []byte) error
}

// Errors of signature verification.
var (
	ErrUnsigned         = errors.New("request is not signed")
	ErrBadSignature     = errors.New("signature does not match the request")
	ErrTimestampSkew    = errors.New("timestamp outside the accepted window")
	ErrBadTimestamp     = errors.New("timestamp is not RFC 3339 or Unix seconds")
	ErrNoSigningSecret  = errors.New("no signing secret configured for this API key")
	errMissingTimestamp = errors.New("signed request without a Timestamp header")
)

// HMACVerifier is the default signature profile: the Signature header holds
// base64url(HMAC-SHA256(secret, Timestamp + "." + raw body)), and the
// Timestamp header (RFC 3339, or Unix seconds) must be within MaxSkew of now.
type HMACVerifier struct {
	MaxSkew time.Duration
	Now     func() time.Time
}

// Verify implements SignatureVerifier.
func (v HMACVerifier) Verify(r *http.Request, body []byte, secret []byte) error {
	sig := r.Header.Get("Signature")
	if sig == "" {
		return ErrUnsigned
	}
	if len(secret) == 0 {
		return ErrNoSigningSecret
	}
	ts := r.Header.Get("Timestamp")
	if ts == "" {
		return errMissingTimestamp
	}
	at, err := parseTimestamp(ts)
	if err != nil {
		return ErrBadTimestamp
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	if d := now.Sub(at); d > v.MaxSkew || d < -v.MaxSkew {
		return ErrTimestampSkew
	}
	got, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(sig, "="))
	if err != nil {
		return ErrBadSignature
	}
	if !hmac.Equal(got, reqsign.MAC(secret, ts, body)) {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the Signature header value for body at timestamp ts in the
// default profile (for agents, tests and the load script).
func Sign(secret []byte, ts string, body []byte) string { return reqsign.Sign(secret, ts, body) }

func parseTimestamp(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0), nil
}

// limiter is a token bucket per identity.
type limiter struct {
	perSecond rate.Limit
	burst     int
	mu        sync.Mutex
	byName    map[string]*rate.Limiter
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond <= 0 {
		return nil
	}
	return &limiter{perSecond: rate.Limit(perSecond), burst: max(burst, 1), byName: map[string]*rate.Limiter{}}
}

// allow takes a token for name; when none is left it says how long until
// the next one.
func (l *limiter) allow(name string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.byName[name]
	if !ok {
		lim = rate.NewLimiter(l.perSecond, l.burst)
		l.byName[name] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}
