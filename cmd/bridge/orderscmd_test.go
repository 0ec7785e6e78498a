package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// `bridge orders` works on the database `bridge serve` uses. These tests run
// the built binary on orders made by real checkouts (serve, fake Stripe, a
// fake agent), stop the server while the CLI changes them, and restart it
// to see the jobs the CLI queued run. The one state a checkout cannot reach
// quickly, a store write dead after its 24h horizon, is committed straight
// into the database.

// cliOrder is an order as `orders show --json` prints it.
type cliOrder struct {
	Order struct {
		ID           string `json:"id"`
		SessionID    string `json:"session_id"`
		Status       string `json:"status"`
		Payment      string `json:"payment"`
		PaymentRef   string `json:"payment_ref"`
		StoreID      string `json:"store_id"`
		Token        string `json:"token"`
		PermalinkURL string `json:"permalink_url"`
		Total        struct {
			Amount int64 `json:"amount"`
		} `json:"total"`
		Lines []struct {
			VariantID string `json:"variant_id"`
			Quantity  int64  `json:"quantity"`
			Current   *int64 `json:"current"`
		} `json:"lines"`
		Adjustments []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Amount int64  `json:"amount"`
		} `json:"adjustments"`
		History []struct {
			Status string `json:"status"`
			Note   string `json:"note"`
		} `json:"history"`
	} `json:"order"`
	Jobs []struct {
		ID        string          `json:"id"`
		Kind      string          `json:"kind"`
		Status    string          `json:"status"`
		Attempts  int             `json:"attempts"`
		LastError string          `json:"last_error"`
		Payload   json.RawMessage `json:"payload"`
	} `json:"jobs"`
}

// job returns the order's job with id, failing the test if there is none.
func (o cliOrder) job(t *testing.T, id string) (status string, attempts int) {
	t.Helper()
	for _, j := range o.Jobs {
		if j.ID == id {
			return j.Status, j.Attempts
		}
	}
	ids := []string{}
	for _, j := range o.Jobs {
		ids = append(ids, j.ID+"="+j.Status)
	}
	t.Fatalf("order %s has no job %s; jobs: %v", o.Order.ID, id, ids)
	return "", 0
}

// jobsByStatus counts the order's jobs by status.
func (o cliOrder) jobsByStatus() map[string]int {
	m := map[string]int{}
	for _, j := range o.Jobs {
		m[j.Status]++
	}
	return m
}

// listedOrder is an order as `orders list --json` prints it.
type listedOrder struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Payment   string    `json:"payment"`
	Total     string    `json:"total"`
	CreatedAt time.Time `json:"created_at"`
	StoreID   string    `json:"store_id"`
}

// ordersCLI runs `bridge orders <args> --config cfg`.
func ordersCLI(t *testing.T, cfg string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runBridge(t, append(append([]string{"orders"}, args...), "--config", cfg)...)
}

// showOrderJSON runs `orders show --json` and decodes it.
func showOrderJSON(t *testing.T, cfg, id string) cliOrder {
	t.Helper()
	out, errOut, code := ordersCLI(t, cfg, "show", "--json", "--id", id)
	if code != 0 {
		t.Fatalf("orders show --json --id %s: exit %d\nstdout: %s\nstderr: %s", id, code, out, errOut)
	}
	var o cliOrder
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("orders show --json --id %s: %v\n%s", id, err, out)
	}
	return o
}

// listOrdersJSON runs `orders list --json` with args and decodes it.
func listOrdersJSON(t *testing.T, cfg string, args ...string) []listedOrder {
	t.Helper()
	out, errOut, code := ordersCLI(t, cfg, append([]string{"list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("orders list --json %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	var list []listedOrder
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("orders list --json %v: %v\n%s", args, err, out)
	}
	return list
}

func ids(list []listedOrder) []string {
	out := make([]string, 0, len(list))
	for _, o := range list {
		out = append(out, o.ID)
	}
	return out
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOrdersCommands: three checkouts through a running bridge (Stripe
// fake, agent webhooks): one paid and fully delivered, one paid whose
// agent refused its webhooks (dead notice jobs), one declined (an order
// that was never placed). The server is stopped, then the CLI lists,
// shows, retries and cancels; a restarted server runs the jobs the CLI
// queued: the refund and the agent's notices.
func TestOrdersCommands(t *testing.T) {
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	for _, tok := range []string{"spt_cli_paid", "spt_cli_rejected", "spt_cli_declined"} {
		fake.AddToken(stripefake.Token{ID: tok, Currency: "usd", MaxAmount: 1_000_000, ExpiresAt: time.Now().Add(time.Hour)})
	}
	fake.Script("spt_cli_declined", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "insufficient_funds"})
	const hookSecret = "whsec_cli_agent_0123456789abcdef"
	agent := fakeagent.New(t, hookSecret)
	t.Setenv("STRIPE_TEST_KEY", stripefake.DefaultSecretKey)
	t.Setenv("STRIPE_TEST_WEBHOOK", "whsec_e2e_cli_test_secret")
	t.Setenv("CLI_AGENT_WEBHOOK_SECRET", hookSecret)
	cfg := writeConfig(t, func(s string) string {
		s = mustReplace(t, s, "  provider: sandbox\n", "  provider: stripe\n  stripe:\n    secret_key: ${STRIPE_TEST_KEY}\n"+
			"    webhook_secret: ${STRIPE_TEST_WEBHOOK}\n    api_base: "+fake.URL+"\n")
		return mustReplace(t, s, "\nacp:\n", "\nacp:\n  webhooks:\n    url: "+agent.URL()+"\n    secret: ${CLI_AGENT_WEBHOOK_SECRET}\n")
	})

	srv := startBridgeProc(t, cfg)
	base := "http://" + srv.addr
	checkout := func(token string) map[string]any {
		t.Helper()
		s := call(t, base, devKey, "POST", "/checkout_sessions", `{"line_items":[{"id":"TOTE-NAT","quantity":2}],"currency":"usd","capabilities":{}}`, 201)
		id := s["id"].(string)
		call(t, base, devKey, "POST", "/checkout_sessions/"+id, chaosAddress, 200)
		return call(t, base, devKey, "POST", "/checkout_sessions/"+id+"/complete",
			`{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"`+token+`"}}}}`, 200)
	}
	orderID := func(s map[string]any) string {
		t.Helper()
		o, _ := s["order"].(map[string]any)
		id, _ := o["id"].(string)
		if s["status"] != "completed" || id == "" {
			t.Fatalf("complete: %v", s)
		}
		return id
	}

	// paid: confirmed by the store, both events delivered.
	paid := orderID(checkout("spt_cli_paid"))
	if _, err := agent.WaitEvents(2, 10*time.Second); err != nil {
		t.Fatalf("events of %s: %v\n%s", paid, err, srv.logs())
	}
	// rejected: the agent answers 422 to both its events, so both notice
	// jobs are dead at once (a 422 is final).
	before := agent.Requests()
	agent.RespondNext(2, http.StatusUnprocessableEntity, `{"type":"invalid_request","code":"invalid","message":"unknown order"}`)
	rejected := orderID(checkout("spt_cli_rejected"))
	waitFor(t, 10*time.Second, "the agent to refuse both events of "+rejected, func() bool { return agent.Requests() >= before+2 })
	waitFor(t, 10*time.Second, "both notice jobs of "+rejected+" to be dead", func() bool {
		return showOrderJSON(t, cfg, rejected).jobsByStatus()["dead"] == 2
	})
	// declined: never placed.
	if s := checkout("spt_cli_declined"); s["status"] == "completed" {
		t.Fatalf("declined token completed the checkout: %v", s)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("stop serve: %v\n%s", err, srv.logs())
	}
	declinedList := listOrdersJSON(t, cfg, "--status", "payment_declined")
	if len(declinedList) != 1 {
		t.Fatalf("orders list --status payment_declined: %+v, want the declined checkout's order", declinedList)
	}
	declined := declinedList[0].ID

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			want []string
		}{
			{"all, newest first", nil, []string{declined, rejected, paid}},
			{"status confirmed", []string{"--status", "confirmed"}, []string{rejected, paid}},
			{"status canceled: none", []string{"--status", "canceled"}, []string{}},
			{"limit", []string{"--limit", "1"}, []string{declined}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				list := listOrdersJSON(t, cfg, tt.args...)
				if got := ids(list); !slices.Equal(got, tt.want) {
					t.Errorf("orders list --json %v = %v, want %v", tt.args, got, tt.want)
				}
				// The table lists the same orders under its header.
				out, errOut, code := ordersCLI(t, cfg, append([]string{"list"}, tt.args...)...)
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				if code != 0 || errOut != "" || len(lines) != len(tt.want)+1 {
					t.Fatalf("orders list %v: exit %d, %d lines, stderr %q:\n%s", tt.args, code, len(lines), errOut, out)
				}
				if f := strings.Fields(lines[0]); !slices.Equal(f, []string{"ORDER", "STATUS", "PAYMENT", "TOTAL", "CREATED", "STORE", "ID"}) {
					t.Errorf("table header %q", lines[0])
				}
				for i, id := range tt.want {
					if f := strings.Fields(lines[i+1]); len(f) != 7 || f[0] != id {
						t.Errorf("table row %d = %q, want order %s in 7 columns", i+1, lines[i+1], id)
					}
				}
			})
		}
		// What the rows say.
		list := listOrdersJSON(t, cfg)
		byID := map[string]listedOrder{}
		for _, o := range list {
			byID[o.ID] = o
		}
		if o := byID[paid]; o.Status != "confirmed" || o.Payment != "captured" || o.StoreID != paid || o.Total != "41.00 USD" || time.Since(o.CreatedAt) > time.Minute {
			t.Errorf("paid order listed as %+v; want confirmed, captured, in the store, 41.00 USD (2 × 18.00 + 5.00 shipping), created just now", o)
		}
		if o := byID[declined]; o.Status != "payment_declined" || o.StoreID != "" {
			t.Errorf("declined order listed as %+v", o)
		}
		out, _, _ := ordersCLI(t, cfg, "list")
		for _, want := range []string{paid + "  confirmed  captured  41.00 USD", declined + "  payment_declined  -"} {
			if !strings.Contains(collapseSpaces(out), collapseSpaces(want)) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		// No buyer data in the list.
		raw, _, _ := ordersCLI(t, cfg, "list", "--json")
		for _, leak := range []string{"Ada", "1 Main St", "ship_to", "buyer", "token"} {
			if strings.Contains(raw, leak) {
				t.Errorf("orders list --json shows %q: it must carry no buyer data\n%s", leak, raw)
			}
		}
	})

	t.Run("show", func(t *testing.T) {
		out, errOut, code := ordersCLI(t, cfg, "show", "--id", paid)
		if code != 0 || errOut != "" {
			t.Fatalf("orders show: exit %d, stderr %q", code, errOut)
		}
		o := showOrderJSON(t, cfg, paid)
		for _, want := range []string{
			"order     " + paid + " (session " + o.Order.SessionID + ", API 2026-04-17)",
			"status    confirmed",
			"payment   captured " + o.Order.PaymentRef,
			"store     " + paid,
			"total     41.00 USD (subtotal 36.00 USD, shipping 5.00 USD, tax 0.00 USD)",
			"lines:\n  2 × ",
			"(TOTE-NAT) 36.00 USD, fulfilled 0",
			"history:",
			"created        paid",
			"confirmed      accepted by the store as " + paid,
			"jobs:",
			"store_write:" + paid,
			"agent_notice:evt_" + paid + "_1",
			"agent_notice:evt_" + paid + "_2",
		} {
			if !strings.Contains(collapseSpaces(out), collapseSpaces(want)) {
				t.Errorf("orders show lacks %q:\n%s", want, out)
			}
		}
		// JSON: the order (without its status-page token) and its jobs.
		if o.Order.ID != paid || o.Order.Status != "confirmed" || o.Order.Token != "" || !strings.HasPrefix(o.Order.PaymentRef, "pi_") {
			t.Errorf("orders show --json: %+v", o.Order)
		}
		if len(o.Jobs) != 3 || o.jobsByStatus()["done"] != 3 {
			t.Errorf("orders show --json jobs: %+v, want store_write and two notices, all done", o.Jobs)
		}
		if st, _ := showOrderJSON(t, cfg, rejected).job(t, "agent_notice:evt_"+rejected+"_1"); st != "dead" {
			t.Errorf("rejected order's order_create notice is %s, want dead", st)
		}

		for _, tt := range []struct {
			name       string
			args       []string
			code       int
			stderrPart string
		}{
			{"unknown id", []string{"show", "--id", "ord_nope"}, 1, `bridge: no order "ord_nope"`},
			{"unknown id, json", []string{"show", "--json", "--id", "ord_nope"}, 1, `bridge: no order "ord_nope"`},
			{"no id", []string{"show"}, 2, "--id is required"},
			{"stray argument", []string{"show", "--id", paid, "extra"}, 2, `unexpected argument "extra"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				out, errOut, code := ordersCLI(t, cfg, tt.args...)
				if code != tt.code || !strings.Contains(errOut, tt.stderrPart) {
					t.Errorf("orders %v: exit %d, stderr %q; want exit %d, stderr ~%q", tt.args, code, errOut, tt.code, tt.stderrPart)
				}
				if out != "" {
					t.Errorf("orders %v printed on stdout (scripts read it): %q", tt.args, out)
				}
			})
		}
	})

	retried := t.Run("retry", func(t *testing.T) {
		for _, tt := range []struct {
			name, id   string
			code       int
			stdoutPart string
			stderrPart string
		}{
			{"nothing to retry", paid, 0, "order " + paid + " has no failed or dead jobs: nothing to retry", ""},
			{"not placed, no jobs", declined, 0, "nothing to retry", ""},
			{"unknown order", "ord_nope", 1, "", `bridge: no order "ord_nope"`},
			{"dead notices", rejected, 0, "order " + rejected + ": 2 job(s) queued again", ""},
			{"queued already", rejected, 0, "nothing to retry", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				out, errOut, code := ordersCLI(t, cfg, "retry", "--id", tt.id)
				if code != tt.code || !strings.Contains(out, tt.stdoutPart) || !strings.Contains(errOut, tt.stderrPart) {
					t.Errorf("orders retry --id %s: exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
						tt.id, code, out, errOut, tt.code, tt.stdoutPart, tt.stderrPart)
				}
			})
		}
		o := showOrderJSON(t, cfg, rejected)
		for _, id := range []string{"agent_notice:evt_" + rejected + "_1", "agent_notice:evt_" + rejected + "_2"} {
			if st, attempts := o.job(t, id); st != "pending" || attempts != 0 {
				t.Errorf("retried job %s: %s with %d attempts, want pending with 0", id, st, attempts)
			}
		}
		if o.Order.Status != "confirmed" {
			t.Errorf("retry changed the order's status to %s", o.Order.Status)
		}
	})

	canceled := t.Run("cancel", func(t *testing.T) {
		// Refused: an order never placed, an unknown one, no --id. Nothing
		// goes to stdout.
		for _, tt := range []struct {
			name       string
			args       []string
			code       int
			stderrPart string
		}{
			{"not placed", []string{"--id", declined}, 1, "order " + declined + " is not placed (status payment_declined): nothing to cancel"},
			{"unknown order", []string{"--id", "ord_nope"}, 1, `bridge: no order "ord_nope"`},
			{"no id", nil, 2, "--id is required"},
		} {
			out, errOut, code := ordersCLI(t, cfg, append([]string{"cancel"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.stderrPart) || out != "" {
				t.Errorf("cancel, %s: exit %d, stdout %q, stderr %q; want exit %d, stderr ~%q", tt.name, code, out, errOut, tt.code, tt.stderrPart)
			}
		}
		// The declined order is left as it was.
		if o := showOrderJSON(t, cfg, declined); o.Order.Status != "payment_declined" || len(o.Jobs) != 0 {
			t.Errorf("declined order after a refused cancel: %s with jobs %+v", o.Order.Status, o.Jobs)
		}

		// A paid order in the store: canceled, its refund and the agent's
		// notice queued for the server.
		out, errOut, code := ordersCLI(t, cfg, "cancel", "--id", paid, "--reason", "the buyer called to cancel")
		if code != 0 || errOut != "" {
			t.Fatalf("cancel: exit %d, stderr %q", code, errOut)
		}
		for _, want := range []string{
			"order " + paid + " canceled; payment: a refund of the whole amount is queued",
			"the order is already in the store as " + paid + ": cancel it there too",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("cancel output lacks %q:\n%s", want, out)
			}
		}
		o := showOrderJSON(t, cfg, paid)
		if o.Order.Status != "canceled" {
			t.Errorf("status after cancel: %s", o.Order.Status)
		}
		for _, l := range o.Order.Lines {
			if l.Current == nil || *l.Current != 0 {
				t.Errorf("line %s still ordered after cancel: current %v", l.VariantID, l.Current)
			}
		}
		last := o.Order.History[len(o.Order.History)-1]
		if last.Status != "canceled" || !strings.Contains(last.Note, "the buyer called to cancel") || !strings.Contains(last.Note, "cancel it there too") {
			t.Errorf("last history entry: %+v", last)
		}
		refundJob := "payment_refund:" + paid + ":" + strconv.Itoa(len(o.Order.History)-1)
		if st, _ := o.job(t, refundJob); st != "pending" {
			t.Errorf("refund job %s is %s, want pending", refundJob, st)
		}
		notice := "agent_notice:evt_" + paid + "_" + strconv.Itoa(len(o.Order.History))
		if st, _ := o.job(t, notice); st != "pending" {
			t.Errorf("notice job %s is %s, want pending", notice, st)
		}
		for _, j := range o.Jobs {
			if j.ID == notice {
				var n struct {
					Type  string `json:"type"`
					Order struct {
						Status string `json:"status"`
					} `json:"order"`
				}
				if err := json.Unmarshal(j.Payload, &n); err != nil || n.Type != "order_update" || n.Order.Status != "canceled" {
					t.Errorf("notice payload %s (%v): want an order_update of the canceled order", j.Payload, err)
				}
			}
		}
		jobsBefore := len(o.Jobs)

		// Canceling again changes nothing and queues nothing.
		out, errOut, code = ordersCLI(t, cfg, "cancel", "--id", paid)
		if code != 0 || errOut != "" {
			t.Errorf("second cancel: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if o := showOrderJSON(t, cfg, paid); len(o.Jobs) != jobsBefore || o.Order.Status != "canceled" {
			t.Errorf("second cancel: %d jobs (was %d), status %s", len(o.Jobs), jobsBefore, o.Order.Status)
		}
	})
	if !retried || !canceled {
		return // the jobs the rest waits for were not queued
	}

	// The server runs what the CLI queued: the refund at Stripe, the
	// canceled order's notices and the rejected order's retried ones.
	restartCtx, cancelRestart := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelRestart()
	if err := srv.start(restartCtx); err != nil {
		t.Fatalf("restart serve: %v\n%s", err, srv.logs())
	}
	waitFor(t, 20*time.Second, "every job to be done", func() bool {
		a, b := showOrderJSON(t, cfg, paid), showOrderJSON(t, cfg, rejected)
		return a.jobsByStatus()["done"] == len(a.Jobs) && b.jobsByStatus()["done"] == len(b.Jobs)
	})
	o := showOrderJSON(t, cfg, paid)
	if o.Order.Payment != "refunded" || len(o.Order.Adjustments) != 1 || o.Order.Adjustments[0].Amount != o.Order.Total.Amount {
		t.Errorf("after the refund ran: payment %s, adjustments %+v; want refunded in full", o.Order.Payment, o.Order.Adjustments)
	}
	refunds := fake.Refunds()
	if len(refunds) != 1 || refunds[0].PaymentIntent != o.Order.PaymentRef || refunds[0].Amount != o.Order.Total.Amount {
		t.Errorf("Stripe refunds: %+v; want one of %d on %s", refunds, o.Order.Total.Amount, o.Order.PaymentRef)
	}
	seen := map[string][]string{}
	for _, e := range agent.Events() {
		seen[e.OrderID] = append(seen[e.OrderID], e.Type+"/"+e.Status)
	}
	if got := seen[rejected]; !slices.Equal(got, []string{"order_create/created", "order_update/confirmed"}) {
		t.Errorf("rejected order's events after the retry: %v", got)
	}
	if got := seen[paid]; len(got) < 3 || got[2] != "order_update/canceled" {
		t.Errorf("paid order's events: %v, want order_create, order_update confirmed, then canceled", got)
	}
	if f := agent.Failures(); len(f) > 0 {
		t.Errorf("the agent refused webhooks: %+v", f)
	}
	if err := srv.stop(); err != nil {
		t.Errorf("stop serve: %v\n%s", err, srv.logs())
	}
}

// TestOrdersCancelWhileStoreDown: with capture after the store accepts the
// order, a checkout completes while the store cannot take orders: the
// money is only authorized and the store write waits in the outbox. The
// shop cancels the order with the CLI: the authorization's release is
// queued (and, without agent webhooks, no notice). Once the store is back
// and the server runs, the authorization is released at Stripe and the
// canceled order never reaches the store.
func TestOrdersCancelWhileStoreDown(t *testing.T) {
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	fake.AddToken(stripefake.Token{ID: "spt_cli_hold", Currency: "usd", MaxAmount: 1_000_000, ExpiresAt: time.Now().Add(time.Hour)})
	t.Setenv("STRIPE_TEST_KEY", stripefake.DefaultSecretKey)
	t.Setenv("STRIPE_TEST_WEBHOOK", "whsec_e2e_cli_test_secret")
	cfg := writeConfig(t, func(s string) string {
		s = mustReplace(t, s, "  provider: sandbox\n", "  provider: stripe\n  stripe:\n    secret_key: ${STRIPE_TEST_KEY}\n"+
			"    webhook_secret: ${STRIPE_TEST_WEBHOOK}\n    api_base: "+fake.URL+"\n    capture: after_store\n")
		return mustReplace(t, s, "    orders_path: data/orders.jsonl\n", "    orders_path: data/store/orders.jsonl\n")
	})
	// The store is down: its folder is a file, so no order can be written.
	blocker := filepath.Join(filepath.Dir(cfg), "data", "store")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	srv := startBridgeProc(t, cfg)
	base := "http://" + srv.addr
	s := call(t, base, devKey, "POST", "/checkout_sessions", `{"line_items":[{"id":"TOTE-NAT","quantity":1}],"currency":"usd","capabilities":{}}`, 201)
	sid := s["id"].(string)
	call(t, base, devKey, "POST", "/checkout_sessions/"+sid, chaosAddress, 200)
	s = call(t, base, devKey, "POST", "/checkout_sessions/"+sid+"/complete",
		`{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"spt_cli_hold"}}}}`, 200)
	order, _ := s["order"].(map[string]any)
	id, _ := order["id"].(string)
	if s["status"] != "completed" || id == "" {
		t.Fatalf("complete: %v", s)
	}
	waitFor(t, 10*time.Second, "the store write to fail once", func() bool {
		o := showOrderJSON(t, cfg, id)
		for _, j := range o.Jobs {
			if j.Kind == "store_write" && j.Status == "pending" && j.Attempts >= 1 && j.LastError != "" {
				return true
			}
		}
		return false
	})
	if err := srv.stop(); err != nil {
		t.Fatalf("stop serve: %v\n%s", err, srv.logs())
	}
	o := showOrderJSON(t, cfg, id)
	pi, ok := fake.Intent(o.Order.PaymentRef)
	if o.Order.Status != "created" || o.Order.Payment != "authorized" || !ok || pi.Status != "requires_capture" {
		t.Fatalf("before the cancel: order %s, payment %s, PaymentIntent %+v; want created, authorized, requires_capture",
			o.Order.Status, o.Order.Payment, pi)
	}

	out, errOut, code := ordersCLI(t, cfg, "cancel", "--id", id, "--reason", "the store cannot ship it")
	if code != 0 || errOut != "" || out != "order "+id+" canceled; payment: the authorization is being released\n" {
		t.Fatalf("cancel: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	o = showOrderJSON(t, cfg, id)
	if o.Order.Status != "canceled" {
		t.Errorf("status %s, want canceled", o.Order.Status)
	}
	if st, _ := o.job(t, "payment_release:"+id); st != "pending" {
		t.Errorf("release job %s, want pending", st)
	}
	for _, j := range o.Jobs {
		if j.Kind == "agent_notice" {
			t.Errorf("notice job %s queued without a webhook configured", j.ID)
		}
	}

	// The store is back; the server runs the queued jobs.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	restartCtx, cancelRestart := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelRestart()
	if err := srv.start(restartCtx); err != nil {
		t.Fatalf("restart serve: %v\n%s", err, srv.logs())
	}
	waitFor(t, 20*time.Second, "no job of the order to be left pending", func() bool {
		return showOrderJSON(t, cfg, id).jobsByStatus()["pending"] == 0
	})
	o = showOrderJSON(t, cfg, id)
	if pi, _ := fake.Intent(o.Order.PaymentRef); pi.Status != "canceled" || pi.AmountReceived != 0 {
		t.Errorf("PaymentIntent after the release: %s, %d received; want canceled, nothing taken", pi.Status, pi.AmountReceived)
	}
	if o.Order.Status != "canceled" || o.Order.Payment != "released" || o.Order.StoreID != "" {
		t.Errorf("order after the jobs ran: status %s, payment %s, store id %q; want canceled, released, not in the store",
			o.Order.Status, o.Order.Payment, o.Order.StoreID)
	}
	for _, ln := range readLines(t, filepath.Join(blocker, "orders.jsonl")) {
		if strings.Contains(ln, id) {
			t.Errorf("the canceled order reached the store: %s", ln)
		}
	}
	if d := o.jobsByStatus()["dead"]; d > 0 {
		t.Errorf("%d dead jobs: %+v\n%s", d, o.Jobs, srv.logs())
	}
	if err := srv.stop(); err != nil {
		t.Errorf("stop serve: %v\n%s", err, srv.logs())
	}
}

// TestOrdersRetryDeadStoreWrite: a store write dead after its retry
// horizon put its order in manual review; retry queues it again (attempts
// from zero, the last error kept to say why it died) and leaves done jobs
// alone.
func TestOrdersRetryDeadStoreWrite(t *testing.T) {
	cfg := writeConfig(t)
	now := time.Now().UTC().Add(-25 * time.Hour)
	o := bridge.Order{ID: "ord_cli_review", Rev: 1, SessionID: "cs_cli_review", Owner: "local-agent", APIVersion: "2026-04-17",
		CreatedAt: now, Currency: "USD", PaymentRef: "pi_cli_review", Payment: bridge.PaymentStateCaptured,
		Lines: []bridge.OrderLine{{ID: "li_1", VariantID: "TOTE-NAT", ProductID: "tote", Title: "Tote", Quantity: 1,
			UnitPrice: bridge.Money{Amount: 1800, Currency: "USD"}, Total: bridge.Money{Amount: 1800, Currency: "USD"}}},
		Subtotal: bridge.Money{Amount: 1800, Currency: "USD"}, Total: bridge.Money{Amount: 1800, Currency: "USD"}}
	o.SetStatus(now, bridge.OrderCreated, "paid")
	o.SetStatus(now.Add(24*time.Hour), bridge.OrderManualReview, "store_write failed for good: the store is down")
	commitOrders(t, cfg, bridge.Change{Order: &o, Jobs: []bridge.Job{
		{ID: "store_write:" + o.ID, Kind: "store_write", OrderID: o.ID, Status: bridge.JobDead, Attempts: 17,
			LastError: "write order to the store: connection refused", NextRunAt: now, CreatedAt: now},
		{ID: "agent_notice:evt_" + o.ID + "_1", Kind: "agent_notice", OrderID: o.ID, Status: bridge.JobDone, Attempts: 1, NextRunAt: now, CreatedAt: now},
	}})

	out, _, _ := ordersCLI(t, cfg, "list", "--status", "manual_review")
	if !strings.Contains(out, o.ID) {
		t.Errorf("orders list --status manual_review lacks the order:\n%s", out)
	}
	out, errOut, code := ordersCLI(t, cfg, "retry", "--id", o.ID)
	if code != 0 || errOut != "" || !strings.Contains(out, "order "+o.ID+": 1 job(s) queued again") {
		t.Fatalf("retry: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	got := showOrderJSON(t, cfg, o.ID)
	for _, j := range got.Jobs {
		switch j.ID {
		case "store_write:" + o.ID:
			if j.Status != "pending" || j.Attempts != 0 || !strings.Contains(j.LastError, "connection refused") {
				t.Errorf("retried store write: %+v; want pending, 0 attempts, the last error kept", j)
			}
		default:
			if j.Status != "done" {
				t.Errorf("retry touched job %s: %s", j.ID, j.Status)
			}
		}
	}
	// The text view shows the job and the history that explains it.
	out, _, _ = ordersCLI(t, cfg, "show", "--id", o.ID)
	for _, want := range []string{"status manual_review", "manual_review store_write failed for good: the store is down",
		"store_write:" + o.ID + " pending 0 attempt(s)"} {
		if !strings.Contains(collapseSpaces(out), want) {
			t.Errorf("orders show lacks %q:\n%s", want, out)
		}
	}

	// The running server writes the order to the (working again) store,
	// and the order leaves manual review.
	srv := startBridgeProc(t, cfg)
	waitFor(t, 20*time.Second, "the retried store write to run", func() bool {
		st, _ := showOrderJSON(t, cfg, o.ID).job(t, "store_write:"+o.ID)
		return st != "pending"
	})
	got = showOrderJSON(t, cfg, o.ID)
	if st, _ := got.job(t, "store_write:"+o.ID); st != "done" || got.Order.StoreID != o.ID || got.Order.Status != "confirmed" {
		t.Errorf("after the retried write: job %s, store id %q, status %s; want done, in the store, confirmed (out of manual review)\n%s",
			st, got.Order.StoreID, got.Order.Status, srv.logs())
	}
	lines := readLines(t, filepath.Join(filepath.Dir(cfg), "data", "orders.jsonl"))
	if len(lines) != 1 || !strings.Contains(lines[0], `"id":"`+o.ID+`"`) {
		t.Errorf("orders.jsonl after the retry: %q, want the one order", lines)
	}
	if err := srv.stop(); err != nil {
		t.Errorf("stop serve: %v\n%s", err, srv.logs())
	}
}

// TestOrdersListEmpty: a database without orders lists none.
func TestOrdersListEmpty(t *testing.T) {
	cfg := writeConfig(t)
	out, errOut, code := ordersCLI(t, cfg, "list", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("orders list --json: exit %d, stdout %q, stderr %q; want []", code, out, errOut)
	}
	out, _, code = ordersCLI(t, cfg, "list")
	if code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 1 || !strings.HasPrefix(out, "ORDER") {
		t.Errorf("orders list: exit %d, want only the header:\n%s", code, out)
	}
}

// TestOrdersUsage: `bridge orders` needs a known subcommand.
func TestOrdersUsage(t *testing.T) {
	cfg := writeConfig(t)
	for _, tt := range []struct {
		args       []string
		stderrPart string
		usage      bool // the command list follows
	}{
		{[]string{"orders"}, `unknown command "orders"`, true},
		{[]string{"orders", "nope"}, `unknown command "orders nope"`, true},
		{[]string{"orders", "--config", cfg}, `unknown command "orders --config"`, true},
		{[]string{"orders", "list", "--bogus", "--config", cfg}, "flag provided but not defined: -bogus", false},
		{[]string{"orders", "list", "--config", cfg, "extra"}, `unexpected argument "extra"`, false},
		{[]string{"orders", "list"}, "--config FILE is required", false},
	} {
		out, errOut, code := runBridge(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.stderrPart) || out != "" {
			t.Errorf("bridge %v: exit %d, stdout %q, stderr %q; want exit 2, stderr ~%q", tt.args, code, out, errOut, tt.stderrPart)
		}
		if tt.usage {
			if !strings.Contains(errOut, "orders list") || !strings.Contains(errOut, "orders cancel") {
				t.Errorf("bridge %v: the usage (with the orders commands) should follow:\n%s", tt.args, errOut)
			}
		}
	}
}

// commitOrders commits changes straight into the config's SQLite database,
// as the server would.
func commitOrders(t *testing.T, cfg string, changes ...bridge.Change) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(filepath.Dir(cfg), "data", "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range changes {
		if err := db.Commit(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

func collapseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// startBridgeProc starts `bridge serve` on cfg at a free port, stopped at
// cleanup; the test fails if it is not ready within a minute.
func startBridgeProc(t *testing.T, cfg string) *bridgeProc {
	t.Helper()
	srv := &bridgeProc{cfg: cfg, addr: freePort(t)}
	t.Cleanup(srv.cleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.start(ctx); err != nil {
		t.Fatalf("serve: %v\n%s", err, srv.logs())
	}
	return srv
}
