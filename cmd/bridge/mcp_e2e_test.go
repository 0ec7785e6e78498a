package main

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge/internal/acpspec"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
)

// acp.mcp.enabled wires the MCP door: on by default (discovery lists
// "mcp", an MCP client buys through /mcp and REST sees the session), off
// when set false (no /mcp, REST only).
func TestServeMCP(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(string) string
		transports []any
	}{
		{"default", func(s string) string { return s }, []any{"rest", "mcp"}},
		{"disabled", func(s string) string {
			out := strings.Replace(s, "  mcp:\n    enabled: true", "  mcp:\n    enabled: false", 1)
			if out == s {
				t.Fatal("test edit did not apply")
			}
			return out
		}, []any{"rest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _ := startServe(t, writeConfig(t, tc.edit))
			resp, body := get(t, base+"/.well-known/acp.json", nil)
			var doc map[string]any
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || !reflect.DeepEqual(doc["transports"], tc.transports) {
				t.Fatalf("discovery: %d %s, want transports %v", resp.StatusCode, body, tc.transports)
			}
			if len(tc.transports) == 1 {
				if resp, _ := get(t, base+"/mcp", map[string]string{"Authorization": "Bearer " + devKey}); resp.StatusCode != http.StatusNotFound {
					t.Fatalf("/mcp while disabled: HTTP %d", resp.StatusCode)
				}
				return
			}
			cs, err := ct.ConnectMCP(context.Background(), base+"/mcp", devKey)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			a := ct.Call(t, cs, ct.Tool{Name: "create_checkout_session",
				Meta:    map[string]any{"api_version": "2026-04-17", "idempotency_key": "e2e-mcp-1"},
				Payload: `{"line_items":[{"id":"TEE-RED-M","quantity":1}],"currency":"usd","capabilities":{}}`})
			if a.Err != nil {
				t.Fatalf("create over MCP: %d %s", a.Err.Code, a.Err.Data)
			}
			if err := acpspec.Validate("2026-04-17", "schema.agentic_checkout.json", "CheckoutSession", a.Session); err != nil {
				t.Fatalf("create over MCP: %v\n%s", err, a.Session)
			}
			var s map[string]any
			_ = json.Unmarshal(a.Session, &s)
			if got := call(t, base, devKey, "GET", "/checkout_sessions/"+s["id"].(string), "", 200); got["id"] != s["id"] {
				t.Fatalf("REST read of the MCP session: %v", got["id"])
			}
		})
	}
}
