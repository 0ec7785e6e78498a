package agenthook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/agenthook"
)

// TestSignVectors pins the signatures against values computed outside Go
// (Python's hmac), so Sign and Verify cannot agree on a wrong formula.
func TestSignVectors(t *testing.T) {
	body := []byte(`{"type":"order_create"}`)
	at := time.Unix(1709123456, 0)
	tests := []struct {
		version acp.Version
		want    string
	}{
		{acp.V20260417, "t=1709123456,v1=1b220b0d169ec43decb35df253199955cf6a2d6527ccf0d0c15c2d0667904b3d"},
		{"2027-01-01", "t=1709123456,v1=1b220b0d169ec43decb35df253199955cf6a2d6527ccf0d0c15c2d0667904b3d"}, // unknown: current scheme
		{acp.V20260130, "9f1a624ae764bbd9cc50b70bba6ff9e04d995f7998c209db6bde13c1b71ecb99"},
		{acp.V20250929, "9f1a624ae764bbd9cc50b70bba6ff9e04d995f7998c209db6bde13c1b71ecb99"},
	}
	for _, tt := range tests {
		if got := agenthook.Sign(tt.version, "whsec_test", at, body); got != tt.want {
			t.Errorf("%s: Sign = %s, want %s", tt.version, got, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	body := []byte(`{"type":"order_update","data":{}}`)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sign := func(v acp.Version, at time.Time) string { return agenthook.Sign(v, secret, at, body) }
	tampered := []byte(`{"type":"order_update","data":{"x":1}}`)
	tests := []struct {
		name      string
		version   acp.Version
		secret    string
		header    string
		body      []byte
		tolerance time.Duration
		want      string // "" = valid; else a piece of the error
	}{
		{"latest valid", acp.V20260417, secret, sign(acp.V20260417, now), body, 0, ""},
		{"latest 299 s old", acp.V20260417, secret, sign(acp.V20260417, now.Add(-299*time.Second)), body, 0, ""},
		{"latest 301 s old", acp.V20260417, secret, sign(acp.V20260417, now.Add(-301*time.Second)), body, 0, "window"},
		{"latest 301 s ahead", acp.V20260417, secret, sign(acp.V20260417, now.Add(301*time.Second)), body, 0, "window"},
		{"latest custom tolerance", acp.V20260417, secret, sign(acp.V20260417, now.Add(-time.Minute)), body, 30 * time.Second, "window"},
		{"latest tampered body", acp.V20260417, secret, sign(acp.V20260417, now), tampered, 0, "verification failed"},
		{"latest wrong secret", acp.V20260417, "whsec_other", sign(acp.V20260417, now), body, 0, "verification failed"},
		{"latest timestamp swapped", acp.V20260417, secret,
			strings.Replace(sign(acp.V20260417, now), "t=", "t=1", 1), body, 0, "window"},
		{"latest upper-case hex", acp.V20260417, secret, upperHex(sign(acp.V20260417, now)), body, 0, ""}, // the pattern allows A-F
		{"latest legacy form", acp.V20260417, secret, sign(acp.V20260130, now), body, 0, "must be"},
		{"latest missing", acp.V20260417, secret, "", body, 0, "missing"},
		{"latest no v1", acp.V20260417, secret, "t=1", body, 0, "must be"},
		{"latest short hex", acp.V20260417, secret, sign(acp.V20260417, now)[:len(sign(acp.V20260417, now))-1], body, 0, "must be"},
		{"latest huge timestamp", acp.V20260417, secret, "t=99999999999999999999,v1=" + strings.Repeat("a", 64), body, 0, "out of range"},
		{"legacy valid", acp.V20251212, secret, sign(acp.V20251212, now), body, 0, ""},
		{"legacy has no timestamp to expire", acp.V20251212, secret, sign(acp.V20251212, now.Add(-24*time.Hour)), body, 0, ""},
		{"legacy tampered body", acp.V20250929, secret, sign(acp.V20250929, now), tampered, 0, "verification failed"},
		{"legacy wrong secret", acp.V20260116, "whsec_other", sign(acp.V20260116, now), body, 0, "verification failed"},
		{"legacy t=,v1= form", acp.V20260130, secret, sign(acp.V20260417, now), body, 0, "hex digits"},
		{"legacy not hex", acp.V20260130, secret, strings.Repeat("z", 64), body, 0, "hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := agenthook.Verify(tt.version, tt.secret, tt.header, tt.body, now, tt.tolerance)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, agenthook.ErrInvalidSignature) {
				t.Errorf("%v does not wrap ErrInvalidSignature", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v does not mention %q", err, tt.want)
			}
		})
	}
}

// upperHex upper-cases the v1 part of a signature header.
func upperHex(h string) string {
	ts, sig, _ := strings.Cut(h, ",v1=")
	return ts + ",v1=" + strings.ToUpper(sig)
}
