package main

import (
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
)

// The bridge is killed (SIGKILL) after Stripe took the money but before the
// order was written. After a restart, the agent's retry of the same complete
// finishes the order under the same payment key: Stripe replays the charge
// instead of making a second one.
func TestKilledBetweenChargeAndOrder(t *testing.T) {
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	fake.AddToken(stripefake.Token{ID: "spt_crash", Currency: "usd", MaxAmount: 1000000, ExpiresAt: time.Now().Add(time.Hour)})
	// First attempt: charged, connection dropped (the ambiguous case). The
	// bridge retries under the same key; that retry hangs until the kill.
	fake.Script("spt_crash", stripefake.Script{Outcome: stripefake.Succeed, Faults: []stripefake.Fault{
		{Kind: stripefake.FaultDropAfterCommit}, {Kind: stripefake.FaultSlow, Delay: time.Minute}}})
	t.Setenv("STRIPE_TEST_KEY", stripefake.DefaultSecretKey)
	t.Setenv("STRIPE_TEST_WEBHOOK", "whsec_e2e_crash_test_secret")
	cfg := writeConfig(t, func(s string) string {
		return strings.Replace(s, "  provider: sandbox\n", "  provider: stripe\n  stripe:\n    secret_key: ${STRIPE_TEST_KEY}\n    webhook_secret: ${STRIPE_TEST_WEBHOOK}\n    api_base: "+fake.URL+"\n", 1)
	})

	// The first bridge, killed mid-payment.
	addr := freePort(t)
	first := exec.Command(bridgeBin, "serve", "--config", cfg)
	first.Env = append(os.Environ(), "BRIDGE_LISTEN="+addr)
	logs := &syncbuf.Buffer{}
	first.Stdout, first.Stderr = logs, logs
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	base := "http://" + addr
	waitReady(t, base, logs)
	s := call(t, base, devKey, "POST", "/checkout_sessions", `{"line_items":[{"id":"TEE-RED-S","quantity":1}],"currency":"usd","capabilities":{}}`, 201)
	id := s["id"].(string)
	call(t, base, devKey, "POST", "/checkout_sessions/"+id,
		`{"fulfillment_details":{"name":"Ada","address":{"name":"Ada","line_one":"1 Main St","city":"Albany","state":"NY","country":"US","postal_code":"12207"}}}`, 200)
	complete := `{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"spt_crash"}}}}`
	go func() { _, _ = completeWithKey(base, id, complete) }() // answered by no one: the bridge dies
	deadline := time.Now().Add(20 * time.Second)
	for len(fake.CallsTo("POST", "/v1/payment_intents")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the bridge never retried the charge; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if n := len(fake.Intents()); n != 1 {
		t.Fatalf("%d PaymentIntents before the restart, want the 1 charged", n)
	}

	// The restarted bridge finishes the order on the agent's retry.
	base2, _, logs2 := startServe(t, cfg)
	status, body := completeWithKey(base2, id, complete)
	if status != http.StatusOK || !strings.Contains(body, `"status":"completed"`) {
		t.Fatalf("retry after restart: HTTP %d %s\nlogs:\n%s", status, body, logs2.String())
	}
	intents := fake.Intents()
	if len(intents) != 1 || intents[0].Status != "succeeded" {
		t.Fatalf("PaymentIntents after the restart: %+v (want exactly one, charged once)", intents)
	}
}

// completeWithKey sends the complete with one fixed Idempotency-Key, as an
// agent retrying the same request does.
func completeWithKey(base, id, body string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, base+"/checkout_sessions/"+id+"/complete", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+devKey)
	req.Header.Set("API-Version", "2026-04-17")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "complete-"+id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
