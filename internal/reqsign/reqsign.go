// Package reqsign is the bridge's request-signature profile for ACP REST
// calls, in both directions: the Signature header holds
// base64url(HMAC-SHA256(secret, Timestamp + "." + raw body)), next to the
// Timestamp header it covers. ACP asks for a signature over the request
// with a timestamp and leaves the algorithm to be agreed out of band
// (docs/acp-conformance.md §1.2); one profile serves the checkout door
// (verifying agents) and the Feed API push (signing for agents).
package reqsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// MAC is the raw HMAC-SHA256 of ts + "." + body under secret.
func MAC(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the Signature header value for body sent at ts (the
// Timestamp header's value).
func Sign(secret []byte, ts string, body []byte) string {
	return base64.RawURLEncoding.EncodeToString(MAC(secret, ts, body))
}
