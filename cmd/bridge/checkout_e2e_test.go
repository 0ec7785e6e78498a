package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/acpspec"
)

const devKey = "dev-local-key-not-for-production"

// call sends one checkout request to a running bridge at 2026-04-17 and
// checks the answer against the official schema.
func call(t *testing.T, base, key, method, path, body string, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("API-Version", "2026-04-17")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "e2e-"+time.Now().Format(time.RFC3339Nano))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	def := "CheckoutSession"
	switch {
	case resp.StatusCode >= 400:
		def = "Error"
	case m["order"] != nil:
		def = "CheckoutSessionWithOrder"
	}
	if err := acpspec.Validate("2026-04-17", "schema.agentic_checkout.json", def, raw); err != nil {
		t.Fatalf("%s %s: not a valid %s: %v\n%s", method, path, def, err, raw)
	}
	return m
}

// The example config as shipped sells the demo catalog through the checkout
// API: create → address → complete with the sandbox → an order, and the CSV
// stock counts the sold unit.
func TestServeCheckout(t *testing.T) {
	cfg := writeConfig(t)
	base, cmd, logs := startServe(t, cfg)
	// TEE-RED-M has 8 in the export.
	id, _ := buy(t, base, "TEE-RED-M", 8)
	// All 8 are held for the order: the next buyer is told.
	s := call(t, base, devKey, "POST", "/checkout_sessions", `{"line_items":[{"id":"TEE-RED-M","quantity":1}],"currency":"usd","capabilities":{}}`, 201)
	if !bytes.Contains(mustJSON(t, s["messages"]), []byte("out_of_stock")) {
		t.Fatalf("sold-out variant offered again: %v", s["messages"])
	}
	// Discovery is public.
	resp, body := get(t, base+"/.well-known/acp.json", nil)
	if resp.StatusCode != 200 || acpspec.Validate("2026-04-17", "schema.agentic_checkout.json", "DiscoveryResponse", body) != nil {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}

	// Key rotation without restart: the new key works after SIGHUP, the old
	// one stops.
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rotated := strings.Replace(string(data), "${BRIDGE_DEV_API_KEY:-"+devKey+"}", "rotated-key-0123456789abcdefghij", 1)
	if rotated == string(data) {
		t.Fatal("test edit did not apply")
	}
	if err := os.WriteFile(cfg, []byte(rotated), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "API keys reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("keys not reloaded; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	call(t, base, devKey, "GET", "/checkout_sessions/"+id, "", 401)
	// The session belongs to the identity (local-agent), not to the key.
	if s := call(t, base, "rotated-key-0123456789abcdefghij", "GET", "/checkout_sessions/"+id, "", 200); s["status"] != "completed" {
		t.Fatalf("after rotation: %v", s["status"])
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buy runs a checkout of qty of item to the end (an address in Albany,
// the sandbox's good card) and returns the session and order ids.
func buy(t *testing.T, base, item string, qty int) (sessionID, orderID string) {
	t.Helper()
	s := call(t, base, devKey, "POST", "/checkout_sessions", fmt.Sprintf(`{"line_items":[{"id":%q,"quantity":%d}],"currency":"usd","capabilities":{}}`, item, qty), 201)
	id := s["id"].(string)
	s = call(t, base, devKey, "POST", "/checkout_sessions/"+id,
		`{"fulfillment_details":{"name":"Ada Lovelace","email":"ada@example.com","address":{"name":"Ada Lovelace","line_one":"1 Main St","city":"Albany","state":"NY","country":"US","postal_code":"12207"}}}`, 200)
	if s["status"] != "ready_for_payment" {
		t.Fatalf("with address: %v %v", s["status"], s["messages"])
	}
	s = call(t, base, devKey, "POST", "/api/checkout_sessions/"+id+"/complete",
		`{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"spt_test_4242"}}}}`, 200)
	if s["status"] != "completed" || s["order"] == nil {
		t.Fatalf("complete: %v", s)
	}
	return id, s["order"].(map[string]any)["id"].(string)
}
