package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/httpapi"
	"github.com/acp-bridge/bridge/internal/acpspec"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
)

func TestOpREST(t *testing.T) {
	for _, tc := range []struct {
		op           httpapi.Op
		method, path string
	}{
		{httpapi.OpCreate, "POST", "/checkout_sessions"},
		{httpapi.OpGet, "GET", "/checkout_sessions/cs_1"},
		{httpapi.OpUpdate, "POST", "/checkout_sessions/cs_1"},
		{httpapi.OpComplete, "POST", "/checkout_sessions/cs_1/complete"},
		{httpapi.OpCancel, "POST", "/checkout_sessions/cs_1/cancel"},
	} {
		if m, p := tc.op.REST("cs_1"); m != tc.method || p != tc.path {
			t.Errorf("%s: %s %s, want %s %s", tc.op, m, p, tc.method, tc.path)
		}
	}
}

// Serve is the REST door's rules without HTTP: what another door (MCP)
// gets for a call.
func TestServe(t *testing.T) {
	st := ct.New(t, ct.Options{})
	co := &httpapi.Checkout{Engine: st.Engine, Codec: ct.Codec(), Keys: st.Keys, PublicURL: "https://bridge.example",
		Verifier: httpapi.HMACVerifier{MaxSkew: time.Minute, Now: st.Now}}
	v := acp.Latest
	body := ct.Bodies{V: v}.Create(ct.Item{ID: "ebook", Qty: 1})
	header := func(key, version, idem string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + key}, "Api-Version": {version}}
		if idem != "" {
			h.Set("Idempotency-Key", idem)
		}
		return h
	}
	idem := ct.NewIdem()
	create := httpapi.Call{Op: httpapi.OpCreate, Header: header(ct.AgentKey, string(v), idem), Body: []byte(body)}
	first := co.Serve(context.Background(), create)
	if first.Err != nil || first.Status != http.StatusCreated || first.Replayed || first.Version != v {
		t.Fatalf("create: %+v", first)
	}
	if err := acpspec.Validate(string(v), "schema.agentic_checkout.json", "CheckoutSession", first.Session); err != nil {
		t.Fatalf("create: %v", err)
	}
	if again := co.Serve(context.Background(), create); !again.Replayed || string(again.Session) != string(first.Session) {
		t.Fatalf("replay: %+v", again)
	}
	ts := st.Now().Format(time.RFC3339)
	canonical, _ := acp.Canonical([]byte(body))
	signedCanonical := header(ct.SignedKey, string(v), ct.NewIdem())
	signedCanonical.Set("Timestamp", ts)
	signedCanonical.Set("Signature", httpapi.Sign([]byte(ct.SigningToken), ts, canonical))

	for _, tc := range []struct {
		name    string
		call    httpapi.Call
		status  int
		code    string
		header  string
		version acp.Version
	}{
		{"no version", httpapi.Call{Op: httpapi.OpGet, ID: "cs_1", Header: header(ct.AgentKey, "", "")}, 400, "missing_api_version", "API-Version", acp.Latest},
		{"unknown key", httpapi.Call{Op: httpapi.OpGet, ID: "cs_1", Header: header("nope", "2026-01-30", "")}, 401, "unauthorized", "Authorization", acp.V20260130},
		{"no idempotency key", httpapi.Call{Op: httpapi.OpCreate, Header: header(ct.AgentKey, string(v), ""), Body: []byte(body)}, 400, "idempotency_key_required", "Idempotency-Key", v},
		{"id that is a path", httpapi.Call{Op: httpapi.OpGet, ID: "cs_1/complete", Header: header(ct.AgentKey, string(v), "")}, 404, "session_not_found", "", v},
		{"canonical signature, body as sent", httpapi.Call{Op: httpapi.OpCreate, Header: signedCanonical, Body: []byte(" " + body)}, 401, "invalid_signature", "Signature", v},
		{"canonical signature, re-encoded body", httpapi.Call{Op: httpapi.OpCreate, Header: signedCanonical, Body: []byte(" " + body), ReEncoded: true}, 201, "", "", v},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := co.Serve(context.Background(), tc.call)
			if a.Status != tc.status || a.Version != tc.version || a.Header != tc.header {
				t.Fatalf("status %d version %s header %q, want %d %s %q: %+v", a.Status, a.Version, a.Header, tc.status, tc.version, tc.header, a.Err)
			}
			if tc.code == "" {
				if a.Err != nil {
					t.Fatalf("error %+v", a.Err)
				}
				return
			}
			if a.Err == nil || a.Err.Code != tc.code {
				t.Fatalf("error %+v, want %s", a.Err, tc.code)
			}
		})
	}
}
