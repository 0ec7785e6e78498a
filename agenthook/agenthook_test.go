package agenthook_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/agenthook"
	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/upstream"
)

const secret = "whsec_s3cr3t_do_not_log"

// rig is a sender wired to a fake agent, with every log line captured.
type rig struct {
	sender *agenthook.Sender
	agent  *fakeagent.Agent
	logs   *syncbuf.Buffer
}

// newRig starts a fake agent and a sender with fast retries: RetryMax
// retries, a 5 s budget unless cfg says otherwise.
func newRig(t *testing.T, cfg upstream.Config) *rig {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Name == "" {
		cfg.Name = "agent"
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 3
	}
	cfg.RetryWaitMin, cfg.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	if cfg.Budget == 0 {
		cfg.Budget = 5 * time.Second
	}
	cfg.Logger = log
	agent := fakeagent.New(t, secret)
	return &rig{
		sender: &agenthook.Sender{URL: agent.URL(), Secret: secret, Client: upstream.New(cfg), Log: log},
		agent:  agent,
		logs:   logs,
	}
}

// noFailures fails the test if the fake agent refused any request.
func (r *rig) noFailures(t *testing.T) {
	t.Helper()
	if f := r.agent.Failures(); len(f) > 0 {
		t.Errorf("the agent refused requests: %+v", f)
	}
}

// order is a paid order of one line, its events in version v.
func order(id string, v acp.Version) bridge.Order {
	return bridge.Order{
		ID: id, SessionID: "cs_" + id, APIVersion: string(v), Status: bridge.OrderConfirmed,
		PermalinkURL: "https://shop.example/orders/" + id + "?t=tok_" + id,
		CreatedAt:    time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Currency: "EUR",
		Lines: []bridge.OrderLine{{ID: "li_1", VariantID: "var_1", ProductID: "prod_1", Title: "Secret Santa mug",
			Quantity: 1, UnitPrice: bridge.Money{Amount: 1500, Currency: "EUR"}, Total: bridge.Money{Amount: 1500, Currency: "EUR"}}},
		Subtotal: bridge.Money{Amount: 1500, Currency: "EUR"}, Total: bridge.Money{Amount: 1500, Currency: "EUR"},
		Buyer: bridge.Buyer{Name: "Grace Hopper", Email: "grace@example.com"},
	}
}

func notice(id, typ string, o bridge.Order) bridge.OrderNotice {
	return bridge.OrderNotice{ID: id, Type: typ, At: time.Now(), Order: o}
}

// TestDeliveryAtEveryVersion: an order's events go out in its session's
// version (the latest when it has none or an unknown one), signed the way
// that version signs, and the strict fake agent accepts them.
func TestDeliveryAtEveryVersion(t *testing.T) {
	tests := []struct {
		orderVersion string
		want         acp.Version
	}{
		{"2025-09-29", acp.V20250929},
		{"2025-12-12", acp.V20251212},
		{"2026-01-16", acp.V20260116},
		{"2026-01-30", acp.V20260130},
		{"2026-04-17", acp.V20260417},
		{"", acp.Latest},
		{"2099-01-01", acp.Latest},
	}
	for _, tt := range tests {
		t.Run("version "+tt.orderVersion, func(t *testing.T) {
			r := newRig(t, upstream.Config{})
			o := order("ord_1", acp.Version(tt.orderVersion))
			for i, typ := range []string{bridge.NoticeOrderCreate, bridge.NoticeOrderUpdate} {
				if typ == bridge.NoticeOrderUpdate {
					o.SetStatus(time.Now(), bridge.OrderShipped, "shipped")
				}
				if err := r.sender.Send(context.Background(), notice(fmt.Sprintf("evt_%d", i), typ, o)); err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
			}
			events, err := r.agent.WaitEvents(2, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			r.noFailures(t)
			for i, want := range []struct{ typ, status string }{{"order_create", "confirmed"}, {"order_update", "shipped"}} {
				ev := events[i]
				if ev.Version != tt.want || ev.Type != want.typ || ev.Status != want.status || ev.RequestID != fmt.Sprintf("evt_%d", i) {
					t.Errorf("event %d = %s %s %s %s, want %s %s %s", i, ev.Version, ev.Type, ev.Status, ev.RequestID, tt.want, want.typ, want.status)
				}
				wantOrderID := "ord_1"
				if tt.want.Before(acp.V20260417) {
					wantOrderID = "" // the legacy event has no order id
				}
				if ev.OrderID != wantOrderID || ev.SessionID != "cs_ord_1" {
					t.Errorf("event %d names order %q session %q", i, ev.OrderID, ev.SessionID)
				}
				h := ev.Header
				if h.Get("Content-Type") != "application/json" || h.Get("API-Version") != string(tt.want) {
					t.Errorf("headers %v", h)
				}
				if _, err := time.Parse(time.RFC3339, h.Get("Timestamp")); err != nil {
					t.Errorf("Timestamp: %v", err)
				}
				sig := h.Get("Merchant-Signature")
				if isLatest := !tt.want.Before(acp.V20260417); isLatest != strings.HasPrefix(sig, "t=") {
					t.Errorf("signature %q at %s", sig, tt.want)
				}
			}
		})
	}
}

// TestSignatureRefusedByAgent: the agent's 401 is an error the caller
// keeps retrying (a fixed secret fixes it), not a rejection.
func TestSignatureRefusedByAgent(t *testing.T) {
	tests := []struct {
		name    string
		version acp.Version
		setup   func(r *rig)
		wantErr bool
	}{
		{"wrong secret", acp.V20260417, func(r *rig) { r.sender.Secret = "whsec_wrong" }, true},
		{"wrong secret, legacy", acp.V20250929, func(r *rig) { r.sender.Secret = "whsec_wrong" }, true},
		{"clock 10 min behind", acp.V20260417, func(r *rig) {
			r.sender.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
		}, true},
		{"clock 10 min ahead", acp.V20260417, func(r *rig) {
			r.sender.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
		}, true},
		{"clock 1 min behind", acp.V20260417, func(r *rig) {
			r.sender.Now = func() time.Time { return time.Now().Add(-time.Minute) }
		}, false},
		// A legacy signature has no time: nothing to be late.
		{"clock 10 min behind, legacy", acp.V20260130, func(r *rig) {
			r.sender.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, upstream.Config{})
			tt.setup(r)
			err := r.sender.Send(context.Background(), notice("evt_1", bridge.NoticeOrderCreate, order("ord_1", tt.version)))
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				r.noFailures(t)
				return
			}
			var re *agenthook.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want a 401 ResponseError, got %v", err)
			}
			if errors.Is(err, agenthook.ErrRejected) {
				t.Error("401 must not count as rejected: fixing the secret makes the same event go through")
			}
			if !strings.Contains(re.Body, "invalid_signature") {
				t.Errorf("answer %q", re.Body)
			}
			if f := r.agent.Failures(); len(f) != 1 || f[0].Kind != "signature" {
				t.Errorf("failures = %+v", f)
			}
			if len(r.agent.Events()) != 0 {
				t.Error("an event with a bad signature was accepted")
			}
		})
	}
}

// TestTamperedBodyRefused: a body changed after signing is refused by the
// receiver (what Verify is for).
func TestTamperedBodyRefused(t *testing.T) {
	agent := fakeagent.New(t, secret)
	for _, v := range []acp.Version{acp.V20250929, acp.V20260417} {
		body, err := acp.EncodeOrderEvent(v, notice("evt_t", bridge.NoticeOrderUpdate, order("ord_t", v)))
		if err != nil {
			t.Fatal(err)
		}
		sig := agenthook.Sign(v, secret, time.Now(), body)
		tampered := bytes.Replace(body, []byte(`"confirmed"`), []byte(`"canceled"`), 1)
		req, _ := http.NewRequest(http.MethodPost, agent.URL(), bytes.NewReader(tampered))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("API-Version", string(v))
		req.Header.Set("Merchant-Signature", sig)
		req.Header.Set("Request-Id", "evt_t_"+string(v))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: tampered body answered %d, want 401", v, resp.StatusCode)
		}
	}
	if n := len(agent.Events()); n != 0 {
		t.Errorf("%d tampered events accepted", n)
	}
}

// TestRetriedThenDelivered: failures the client retries end in exactly
// one event at the agent.
func TestRetriedThenDelivered(t *testing.T) {
	tests := []struct {
		name     string
		fault    func(a *fakeagent.Agent)
		requests int
	}{
		{"two 500s", func(a *fakeagent.Agent) { a.FailNext(2) }, 3},
		{"503 then 502", func(a *fakeagent.Agent) {
			a.RespondNext(1, http.StatusServiceUnavailable, "down")
			a.RespondNext(1, http.StatusBadGateway, "proxy")
		}, 3},
		{"429 with Retry-After", func(a *fakeagent.Agent) { a.ThrottleNext(1, 0) }, 2},
		{"connection dropped after the body", func(a *fakeagent.Agent) { a.DropNext(1) }, 2},
		{"slow answer", func(a *fakeagent.Agent) { a.HangNext(1, 150*time.Millisecond) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, upstream.Config{})
			tt.fault(r.agent)
			if err := r.sender.Send(context.Background(), notice("evt_r", bridge.NoticeOrderCreate, order("ord_r", acp.Latest))); err != nil {
				t.Fatal(err)
			}
			if n := r.agent.Requests(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if ev := r.agent.Events(); len(ev) != 1 || ev[0].RequestID != "evt_r" {
				t.Errorf("events = %+v", ev)
			}
			r.noFailures(t)
		})
	}
}

// TestLostAnswerDeduplicated: the agent processed the event but the
// bridge gave up waiting; sending the event again (the outbox's retry)
// carries the same Request-Id, and the agent drops the duplicate.
func TestLostAnswerDeduplicated(t *testing.T) {
	r := newRig(t, upstream.Config{Budget: 200 * time.Millisecond})
	r.agent.HangNext(1, 2*time.Second)
	n := notice("evt_lost", bridge.NoticeOrderUpdate, order("ord_l", acp.Latest))
	err := r.sender.Send(context.Background(), n)
	if !errors.Is(err, upstream.ErrBudget) {
		t.Fatalf("want the budget to run out, got %v", err)
	}
	if errors.Is(err, agenthook.ErrRejected) {
		t.Error("a timeout is not a rejection")
	}
	if err := r.sender.Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	// The first request is still finishing on the agent's side.
	deadline := time.Now().Add(2 * time.Second)
	for r.agent.Duplicates() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ev := r.agent.Events(); len(ev) != 1 || r.agent.Duplicates() != 1 {
		t.Errorf("%d events and %d duplicates, want 1 and 1", len(ev), r.agent.Duplicates())
	}
	r.noFailures(t)
}

// TestRejectedClassification: which answers wrap ErrRejected.
func TestRejectedClassification(t *testing.T) {
	tests := []struct {
		status   int
		rejected bool
		retried  bool // answered by the client's retries, not by Send
	}{
		{http.StatusBadRequest, true, false},
		{http.StatusNotFound, true, false},
		{http.StatusGone, true, false},
		{http.StatusUnprocessableEntity, true, false},
		{http.StatusUnauthorized, false, false},
		{http.StatusForbidden, false, false},
		{http.StatusRequestTimeout, false, false},
		{http.StatusConflict, false, false},
		{http.StatusMovedPermanently, false, false},
		{http.StatusNotImplemented, false, false},
		{http.StatusTooManyRequests, false, true},
		{http.StatusInternalServerError, false, true},
		{http.StatusServiceUnavailable, false, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			r := newRig(t, upstream.Config{RetryMax: 1})
			r.agent.RespondNext(10, tt.status, `{"type":"invalid_request","code":"nope","message":"no"}`)
			err := r.sender.Send(context.Background(), notice("evt_c", bridge.NoticeOrderCreate, order("ord_c", acp.Latest)))
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, agenthook.ErrRejected); got != tt.rejected {
				t.Errorf("rejected = %v, want %v: %v", got, tt.rejected, err)
			}
			if got := agenthook.Rejects(tt.status); got != tt.rejected {
				t.Errorf("Rejects(%d) = %v", tt.status, got)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("error does not name the status: %v", err)
			}
			wantRequests := 1
			if tt.retried {
				wantRequests = 2
				if !errors.Is(err, upstream.ErrRetriesExhausted) {
					t.Errorf("want retries exhausted: %v", err)
				}
			} else {
				var re *agenthook.ResponseError
				if !errors.As(err, &re) || re.StatusCode != tt.status || !strings.Contains(re.Body, `"code":"nope"`) {
					t.Errorf("want a ResponseError with the answer: %v", err)
				}
			}
			if n := r.agent.Requests(); n != wantRequests {
				t.Errorf("%d requests, want %d", n, wantRequests)
			}
		})
	}
}

// TestErrorAnswerBounded: at most 200 bytes of an agent's answer, made
// printable, go into the error.
func TestErrorAnswerBounded(t *testing.T) {
	r := newRig(t, upstream.Config{})
	long := "line one\nline two\x00\x1b[31m" + strings.Repeat("é", 300)
	r.agent.RespondNext(1, http.StatusUnprocessableEntity, long)
	err := r.sender.Send(context.Background(), notice("evt_b", bridge.NoticeOrderCreate, order("ord_b", acp.Latest)))
	var re *agenthook.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want a ResponseError: %v", err)
	}
	if len(re.Body) > 200 {
		t.Errorf("%d bytes of the answer kept", len(re.Body))
	}
	if strings.ContainsAny(re.Body, "\n\x00\x1b") || !strings.HasPrefix(re.Body, "line one line two") || !strings.HasSuffix(re.Body, "é") {
		t.Errorf("body %q", re.Body)
	}
}

// TestUnsendable: an event that cannot be encoded is rejected before any
// request; a sender without its settings fails without calling anyone.
func TestUnsendable(t *testing.T) {
	r := newRig(t, upstream.Config{})
	unpaid := order("ord_u", acp.Latest)
	unpaid.Status = "pending_payment"
	err := r.sender.Send(context.Background(), notice("evt_u", bridge.NoticeOrderCreate, unpaid))
	if !errors.Is(err, agenthook.ErrRejected) || !errors.Is(err, acp.ErrOrderNotPlaced) {
		t.Errorf("unpaid order: %v", err)
	}
	if err := r.sender.Send(context.Background(), notice("", bridge.NoticeOrderCreate, order("ord_u", acp.Latest))); !errors.Is(err, agenthook.ErrRejected) {
		t.Errorf("notice without id: %v", err)
	}
	for _, tt := range []struct {
		name   string
		change func(s *agenthook.Sender)
	}{
		{"no client", func(s *agenthook.Sender) { s.Client = nil }},
		{"no URL", func(s *agenthook.Sender) { s.URL = "" }},
		{"no secret", func(s *agenthook.Sender) { s.Secret = "" }},
	} {
		s := *r.sender
		tt.change(&s)
		err := s.Send(context.Background(), notice("evt_u", bridge.NoticeOrderCreate, order("ord_u", acp.Latest)))
		if err == nil || errors.Is(err, agenthook.ErrRejected) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if n := r.agent.Requests(); n != 0 {
		t.Errorf("%d requests made", n)
	}
}

// TestNothingSecretLogged: whatever happens, the logs (the sender's and
// the client's) hold neither the secret, the signature nor the body.
func TestNothingSecretLogged(t *testing.T) {
	r := newRig(t, upstream.Config{RetryMax: 1})
	o := order("ord_s", acp.Latest)
	send := func(id string) { _ = r.sender.Send(context.Background(), notice(id, bridge.NoticeOrderCreate, o)) }
	send("evt_ok")
	r.agent.FailNext(2)
	send("evt_500")
	r.agent.RespondNext(1, http.StatusUnprocessableEntity, "bad")
	send("evt_422")
	r.agent.SetSecret("whsec_other")
	send("evt_401")
	unpaid := o
	unpaid.Status = "payment_declined"
	_ = r.sender.Send(context.Background(), notice("evt_unpaid", bridge.NoticeOrderCreate, unpaid))

	logs := r.logs.String()
	body, _ := acp.EncodeOrderEvent(acp.Latest, notice("evt_ok", bridge.NoticeOrderCreate, o))
	sig := agenthook.Sign(acp.Latest, secret, time.Now(), body)
	_, v1, _ := strings.Cut(sig, ",v1=")
	for _, leak := range []string{secret, v1[:16], "Secret Santa mug", "tok_ord_s", "permalink", "grace", string(body)} {
		if strings.Contains(logs, leak) {
			t.Errorf("logs contain %q:\n%s", leak, logs)
		}
	}
	for _, want := range []string{"evt_ok", "evt_500", "evt_422", "evt_401", "evt_unpaid", "order_id=ord_s", "status=200", "status=422", "status=401"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestConcurrentSends: one Sender, many goroutines (run with -race).
func TestConcurrentSends(t *testing.T) {
	r := newRig(t, upstream.Config{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			v := acp.Versions[i%len(acp.Versions)]
			if err := r.sender.Send(context.Background(), notice(fmt.Sprintf("evt_%02d", i), bridge.NoticeOrderUpdate, order(fmt.Sprintf("ord_%02d", i), v))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := r.agent.WaitEvents(n, time.Second); err != nil {
		t.Error(err)
	}
	r.noFailures(t)
}
