package stripe

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
)

// errPlain stands for an error that is neither final nor unavailable.
var errPlain = errors.New("plain error")

// checkErrKind fails unless err is of the kind want (nil, errPlain,
// bridge.ErrPaymentFinal or bridge.ErrPaymentUnavailable), and never
// shows a secret.
func checkErrKind(t *testing.T, err, want error) {
	t.Helper()
	final, unavail := errors.Is(err, bridge.ErrPaymentFinal), errors.Is(err, bridge.ErrPaymentUnavailable)
	switch want {
	case nil:
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
	case errPlain:
		if err == nil || final || unavail {
			t.Fatalf("err = %v, want a plain error", err)
		}
	default:
		if !errors.Is(err, want) || (final && unavail) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
	assertNoSecrets(t, err, "spt_act")
}

// paidIntent charges spt_act for 5000 and returns the PaymentIntent id;
// authorize asks for an authorization only.
func paidIntent(t *testing.T, f *stripefake.Server, p *Provider, authorize bool) string {
	t.Helper()
	f.AddToken(stripefake.Token{ID: "spt_act", Currency: "usd"})
	r := req("ord_1_0", "spt_act", 5000)
	r.AuthorizeOnly = authorize
	res, err := p.Charge(context.Background(), r)
	if err != nil || res.Status != bridge.PaymentSucceeded || res.Authorized != authorize {
		t.Fatalf("Charge = %+v, %v; want succeeded, authorized %v", res, err, authorize)
	}
	return res.Ref
}

func action(key, ref string, amount int64, reason string) bridge.PaymentAction {
	return bridge.PaymentAction{IdempotencyKey: key, OrderID: "ord_1", Ref: ref, Amount: amount, Currency: "usd", Reason: reason}
}

func intent(t *testing.T, f *stripefake.Server, id string) stripefake.Intent {
	t.Helper()
	pi, ok := f.Intent(id)
	if !ok {
		t.Fatalf("no PaymentIntent %s", id)
	}
	return pi
}

func TestAuthorizeOnly(t *testing.T) {
	tests := []struct {
		name       string
		authorize  bool
		script     *stripefake.Script
		wantMethod string // capture_method sent
		wantStatus string
		wantAuth   bool
	}{
		{"authorize only", true, nil, "manual", "requires_capture", true},
		{"immediate capture", false, nil, "", "succeeded", false},
		// An account that captures by hand: the money is held whatever
		// the bridge asked, and the result says so.
		{"account-level manual capture", false, &stripefake.Script{Outcome: stripefake.RequiresCapture}, "", "requires_capture", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.AddToken(stripefake.Token{ID: "spt_a", Currency: "usd"})
			if tt.script != nil {
				f.Script("spt_a", *tt.script)
			}
			p := newProvider(t, f, nil)
			r := req("k1", "spt_a", 4999)
			r.AuthorizeOnly = tt.authorize
			res, err := p.Charge(context.Background(), r)
			if err != nil || res.Status != bridge.PaymentSucceeded || res.Authorized != tt.wantAuth || res.Ref == "" {
				t.Fatalf("Charge = %+v, %v", res, err)
			}
			c := f.CallsTo(http.MethodPost, "/v1/payment_intents")[0]
			if got := c.Form.Get("capture_method"); got != tt.wantMethod {
				t.Errorf("capture_method = %q, want %q", got, tt.wantMethod)
			}
			if pi := intent(t, f, res.Ref); pi.Status != tt.wantStatus {
				t.Errorf("PaymentIntent status = %s, want %s", pi.Status, tt.wantStatus)
			}
		})
	}
	t.Run("3-D Secure continuation of an authorization", func(t *testing.T) {
		f := newFake(t)
		f.AddToken(stripefake.Token{ID: "spt_a", Currency: "usd"})
		f.Script("spt_a", stripefake.Script{Outcome: stripefake.RequiresAction})
		p := newProvider(t, f, nil)
		r := req("k1", "spt_a", 4999)
		r.AuthorizeOnly = true
		first, err := p.Charge(context.Background(), r)
		if err != nil || first.Status != bridge.PaymentRequiresAction {
			t.Fatalf("first = %+v, %v", first, err)
		}
		f.SetIntentStatus(first.Ref, "requires_capture")
		r.IdempotencyKey, r.PaymentRef = "k2", first.Ref
		res, err := p.Charge(context.Background(), r)
		if err != nil || res.Status != bridge.PaymentSucceeded || !res.Authorized {
			t.Fatalf("continuation = %+v, %v", res, err)
		}
	})
}

// actionCase is one behaviour of Capture, Release or Refund against the
// fake. The payment is charged first (authorized when authorize is set);
// prepare changes it or scripts faults; a.Ref "" means that payment.
type actionCase struct {
	name      string
	authorize bool
	budget    time.Duration // retry budget; 0: 2s
	prepare   func(t *testing.T, f *stripefake.Server, p *Provider, ref string)
	a         bridge.PaymentAction
	want      error
	wantMsg   string // in the error
	check     func(t *testing.T, f *stripefake.Server, ref string, refundID string)
}

func runActionCases(t *testing.T, tests []actionCase, run func(p *Provider, a bridge.PaymentAction) (string, error)) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			budget := tt.budget
			if budget == 0 {
				budget = 2 * time.Second
			}
			p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = budget; c.RequestTimeout = 500 * time.Millisecond })
			ref := paidIntent(t, f, p, tt.authorize)
			if tt.prepare != nil {
				tt.prepare(t, f, p, ref)
			}
			a := tt.a
			if a.Ref == "" {
				a.Ref = ref
			}
			id, err := run(p, a)
			checkErrKind(t, err, tt.want)
			if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Errorf("err = %v, want it to say %q", err, tt.wantMsg)
			}
			if tt.check != nil {
				tt.check(t, f, ref, id)
			}
		})
	}
}

func capture(p *Provider, a bridge.PaymentAction) (string, error) {
	return "", p.Capture(context.Background(), a)
}

func TestCapture(t *testing.T) {
	wantCaptured := func(amount int64) func(*testing.T, *stripefake.Server, string, string) {
		return func(t *testing.T, f *stripefake.Server, ref, _ string) {
			t.Helper()
			pi := intent(t, f, ref)
			if pi.Status != "succeeded" || pi.AmountReceived != amount {
				t.Errorf("PaymentIntent = %s received %d, want succeeded %d", pi.Status, pi.AmountReceived, amount)
			}
			for _, c := range f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ref+"/capture") {
				if c.IdempotencyKey == "" || c.StripeVersion != DefaultStripeVersion {
					t.Errorf("capture call %+v: want a key and the pinned version", c)
				}
			}
		}
	}
	captureFaults := func(faults ...stripefake.Fault) func(*testing.T, *stripefake.Server, *Provider, string) {
		return func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
			f.ScriptActions(ref, stripefake.ActionScript{CaptureFaults: faults})
		}
	}
	tests := []actionCase{
		{name: "whole authorization", authorize: true, a: action("cap_1", "", 0, ""),
			check: func(t *testing.T, f *stripefake.Server, ref, id string) {
				wantCaptured(5000)(t, f, ref, id)
				c := f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ref+"/capture")[0]
				if c.Form.Has("amount_to_capture") || c.IdempotencyKey != "cap_1" {
					t.Errorf("capture call = %+v", c)
				}
			}},
		{name: "part of the authorization", authorize: true, a: action("cap_1", "", 3000, ""),
			check: func(t *testing.T, f *stripefake.Server, ref, id string) {
				wantCaptured(3000)(t, f, ref, id)
				if c := f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ref+"/capture")[0]; c.Form.Get("amount_to_capture") != "3000" {
					t.Errorf("amount_to_capture = %q", c.Form.Get("amount_to_capture"))
				}
			}},
		{name: "replay of the same key", authorize: true, a: action("cap_1", "", 0, ""),
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Capture(context.Background(), action("cap_1", ref, 0, "")); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, f *stripefake.Server, ref, id string) {
				wantCaptured(5000)(t, f, ref, id)
				if c := f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ref+"/capture"); len(c) != 2 || !c[1].Replayed {
					t.Errorf("calls = %+v, want the second replayed", c)
				}
			}},
		{name: "already captured under another key", authorize: true, a: action("cap_2", "", 0, ""),
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Capture(context.Background(), action("cap_1", ref, 0, "")); err != nil {
					t.Fatal(err)
				}
			},
			check: wantCaptured(5000)},
		{name: "already captured, another amount", authorize: true, a: action("cap_2", "", 4000, ""), want: bridge.ErrPaymentFinal, wantMsg: "already captured 3000",
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Capture(context.Background(), action("cap_1", ref, 3000, "")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "automatic capture needs none", authorize: false, a: action("cap_1", "", 0, ""), check: wantCaptured(5000)},
		{name: "expired authorization", authorize: true, a: action("cap_1", "", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "status of canceled",
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) { f.ExpireAuthorization(ref) }},
		{name: "released authorization", authorize: true, a: action("cap_1", "", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "payment_intent_unexpected_state",
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Release(context.Background(), action("rel_1", ref, 0, "")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "amount above the authorization", authorize: true, a: action("cap_1", "", 5001, ""), want: bridge.ErrPaymentFinal, wantMsg: "amount_to_capture",
			check: func(t *testing.T, f *stripefake.Server, ref, _ string) {
				if pi := intent(t, f, ref); pi.Status != "requires_capture" {
					t.Errorf("status = %s, want still requires_capture", pi.Status)
				}
			}},
		{name: "unknown PaymentIntent", authorize: true, a: action("cap_1", "pi_unknown", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "resource_missing"},
		{name: "same key, other amount", authorize: true, a: action("cap_1", "", 2000, ""), want: bridge.ErrPaymentFinal, wantMsg: "idempotency_error",
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Capture(context.Background(), action("cap_1", ref, 1000, "")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "503 then success", authorize: true, a: action("cap_1", "", 0, ""),
			prepare: captureFaults(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 503}), check: wantCaptured(5000)},
		{name: "429 then success", authorize: true, a: action("cap_1", "", 0, ""),
			prepare: captureFaults(stripefake.Fault{Kind: stripefake.FaultRateLimit}), check: wantCaptured(5000)},
		{name: "slow then success", authorize: true, a: action("cap_1", "", 0, ""),
			prepare: captureFaults(stripefake.Fault{Kind: stripefake.FaultSlow, Delay: 2 * time.Second}), check: wantCaptured(5000)},
		{name: "dropped after the capture, replayed", authorize: true, a: action("cap_1", "", 0, ""),
			prepare: captureFaults(stripefake.Fault{Kind: stripefake.FaultDropAfterCommit}), check: wantCaptured(5000)},
		{name: "always 500", authorize: true, budget: 200 * time.Millisecond, a: action("cap_1", "", 0, ""), want: bridge.ErrPaymentUnavailable,
			prepare: captureFaults(repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 500}, 1000)...),
			check: func(t *testing.T, f *stripefake.Server, ref, _ string) {
				if pi := intent(t, f, ref); pi.Status != "requires_capture" {
					t.Errorf("status = %s", pi.Status)
				}
			}},
		{name: "dropped before, budget spent", authorize: true, budget: time.Millisecond, a: action("cap_1", "", 0, ""), want: bridge.ErrPaymentUnavailable,
			// Several drops: net/http itself resends a request carrying an
			// Idempotency-Key once when a reused connection drops.
			prepare: captureFaults(repeat(stripefake.Fault{Kind: stripefake.FaultDropBefore}, 10)...)},
	}
	runActionCases(t, tests, capture)
}

func TestRelease(t *testing.T) {
	wantReleased := func(reason string) func(*testing.T, *stripefake.Server, string, string) {
		return func(t *testing.T, f *stripefake.Server, ref, _ string) {
			t.Helper()
			if pi := intent(t, f, ref); pi.Status != "canceled" {
				t.Errorf("status = %s, want canceled", pi.Status)
			}
			for _, c := range f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ref+"/cancel") {
				if got := c.Form.Get("cancellation_reason"); got != reason || c.IdempotencyKey == "" {
					t.Errorf("cancel call %+v: want cancellation_reason %q and a key", c, reason)
				}
			}
		}
	}
	tests := []actionCase{
		{name: "authorization, Stripe's reason", authorize: true, a: action("rel_1", "", 0, "requested_by_customer"), check: wantReleased("requested_by_customer")},
		{name: "authorization, the bridge's reason is not sent", authorize: true, a: action("rel_1", "", 0, "out_of_stock"), check: wantReleased("")},
		{name: "replay of the same key", authorize: true, a: action("rel_1", "", 0, ""),
			check: func(t *testing.T, f *stripefake.Server, ref, id string) {
				wantReleased("")(t, f, ref, id)
				if c := f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ref+"/cancel"); len(c) != 2 || !c[1].Replayed {
					t.Errorf("calls = %+v, want the second replayed", c)
				}
			},
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Release(context.Background(), action("rel_1", ref, 0, "")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "already released under another key", authorize: true, a: action("rel_2", "", 0, ""), check: wantReleased(""),
			prepare: func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
				if err := p.Release(context.Background(), action("rel_1", ref, 0, "")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "expired authorization counts as released", authorize: true, a: action("rel_1", "", 0, ""), check: wantReleased(""),
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) { f.ExpireAuthorization(ref) }},
		{name: "captured payment", authorize: false, a: action("rel_1", "", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "status of succeeded"},
		{name: "unknown PaymentIntent", authorize: true, a: action("rel_1", "pi_unknown", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "No such payment_intent"},
		{name: "500 then success", authorize: true, a: action("rel_1", "", 0, ""), check: wantReleased(""),
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
				f.ScriptActions(ref, stripefake.ActionScript{CancelFaults: []stripefake.Fault{{Kind: stripefake.FaultStatus}}})
			}},
		{name: "dropped after the cancel, replayed", authorize: true, a: action("rel_1", "", 0, ""), check: wantReleased(""),
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
				f.ScriptActions(ref, stripefake.ActionScript{CancelFaults: []stripefake.Fault{{Kind: stripefake.FaultDropAfterCommit}}})
			}},
		{name: "always 503", authorize: true, budget: 200 * time.Millisecond, a: action("rel_1", "", 0, ""), want: bridge.ErrPaymentUnavailable,
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
				f.ScriptActions(ref, stripefake.ActionScript{CancelFaults: repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 503}, 1000)})
			}},
	}
	runActionCases(t, tests, func(p *Provider, a bridge.PaymentAction) (string, error) {
		return "", p.Release(context.Background(), a)
	})
}

func TestRefund(t *testing.T) {
	refund := func(p *Provider, a bridge.PaymentAction) (string, error) {
		return p.Refund(context.Background(), a)
	}
	refundOnce := func(key string, amount int64) func(*testing.T, *stripefake.Server, *Provider, string) {
		return func(t *testing.T, _ *stripefake.Server, p *Provider, ref string) {
			if _, err := p.Refund(context.Background(), action(key, ref, amount, "")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// wantRefunds checks the refunds made (amounts, oldest first) and that
	// id is the last one's.
	wantRefunds := func(amounts ...int64) func(*testing.T, *stripefake.Server, string, string) {
		return func(t *testing.T, f *stripefake.Server, ref, id string) {
			t.Helper()
			rs := f.Refunds()
			if len(rs) != len(amounts) {
				t.Fatalf("refunds = %+v, want amounts %v", rs, amounts)
			}
			for i, r := range rs {
				if r.Amount != amounts[i] || r.PaymentIntent != ref || r.Metadata["order_id"] != "ord_1" || r.IdempotencyKey == "" {
					t.Errorf("refund %d = %+v, want %d of %s", i, r, amounts[i], ref)
				}
			}
			if len(rs) > 0 && id != "" && id != rs[len(rs)-1].ID {
				t.Errorf("id = %q, want %q", id, rs[len(rs)-1].ID)
			}
		}
	}
	refundFaults := func(faults ...stripefake.Fault) func(*testing.T, *stripefake.Server, *Provider, string) {
		return func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
			f.ScriptActions(ref, stripefake.ActionScript{RefundFaults: faults})
		}
	}
	tests := []actionCase{
		{name: "whole payment", a: action("ref_1", "", 0, ""), check: func(t *testing.T, f *stripefake.Server, ref, id string) {
			wantRefunds(5000)(t, f, ref, id)
			c := f.CallsTo(http.MethodPost, "/v1/refunds")[0]
			if c.Form.Has("amount") || c.Form.Get("payment_intent") != ref || c.Form.Has("reason") || c.Form.Has("metadata[reason]") || c.IdempotencyKey != "ref_1" {
				t.Errorf("refund call = %+v", c)
			}
		}},
		{name: "part, Stripe's reason", a: action("ref_1", "", 1200, "requested_by_customer"), check: func(t *testing.T, f *stripefake.Server, ref, id string) {
			wantRefunds(1200)(t, f, ref, id)
			c := f.CallsTo(http.MethodPost, "/v1/refunds")[0]
			if c.Form.Get("amount") != "1200" || c.Form.Get("reason") != "requested_by_customer" || c.Form.Get("metadata[reason]") != "requested_by_customer" {
				t.Errorf("refund call form = %v", c.Form)
			}
		}},
		{name: "the bridge's reason goes in metadata only", a: action("ref_1", "", 1200, "damaged in transit"), check: func(t *testing.T, f *stripefake.Server, ref, id string) {
			wantRefunds(1200)(t, f, ref, id)
			c := f.CallsTo(http.MethodPost, "/v1/refunds")[0]
			if c.Form.Has("reason") || c.Form.Get("metadata[reason]") != "damaged in transit" {
				t.Errorf("refund call form = %v", c.Form)
			}
		}},
		{name: "replay of the same key", a: action("ref_1", "", 1000, ""), prepare: refundOnce("ref_1", 1000), check: wantRefunds(1000)},
		{name: "the rest after a part", a: action("ref_2", "", 0, ""), prepare: refundOnce("ref_1", 1000), check: wantRefunds(1000, 4000)},
		{name: "already refunded", a: action("ref_2", "", 0, ""), prepare: refundOnce("ref_1", 0), want: bridge.ErrPaymentFinal, wantMsg: "charge_already_refunded",
			check: wantRefunds(5000)},
		{name: "amount above what is left", a: action("ref_2", "", 4500, ""), prepare: refundOnce("ref_1", 1000), want: bridge.ErrPaymentFinal, wantMsg: "greater than unrefunded",
			check: wantRefunds(1000)},
		{name: "uncaptured authorization", authorize: true, a: action("ref_1", "", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "cancel it", check: wantRefunds()},
		{name: "unknown PaymentIntent", a: action("ref_1", "pi_unknown", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "resource_missing", check: wantRefunds()},
		{name: "pending refund", a: action("ref_1", "", 0, ""), check: wantRefunds(5000),
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
				f.ScriptActions(ref, stripefake.ActionScript{RefundStatus: "pending"})
			}},
		{name: "refund failed at once", a: action("ref_1", "", 0, ""), want: bridge.ErrPaymentFinal, wantMsg: "failed (expired_or_canceled_card)",
			prepare: func(_ *testing.T, f *stripefake.Server, _ *Provider, ref string) {
				f.ScriptActions(ref, stripefake.ActionScript{RefundStatus: "failed"})
			},
			check: func(t *testing.T, f *stripefake.Server, ref, id string) {
				if id == "" {
					t.Error("no refund id with the failure")
				}
				wantRefunds(5000)(t, f, ref, id)
			}},
		{name: "500 then success", a: action("ref_1", "", 0, ""), prepare: refundFaults(stripefake.Fault{Kind: stripefake.FaultStatus}), check: wantRefunds(5000)},
		{name: "dropped after the refund, replayed", a: action("ref_1", "", 0, ""),
			prepare: refundFaults(stripefake.Fault{Kind: stripefake.FaultDropAfterCommit}),
			check: func(t *testing.T, f *stripefake.Server, ref, id string) {
				wantRefunds(5000)(t, f, ref, id)
				if c := f.CallsTo(http.MethodPost, "/v1/refunds"); len(c) != 2 || c[0].IdempotencyKey != c[1].IdempotencyKey || !c[1].Replayed {
					t.Errorf("calls = %+v, want the retry replayed under the same key", c)
				}
			}},
		{name: "slow beyond the budget", budget: 300 * time.Millisecond, a: action("ref_1", "", 0, ""), want: bridge.ErrPaymentUnavailable,
			prepare: refundFaults(repeat(stripefake.Fault{Kind: stripefake.FaultSlow, Delay: 2 * time.Second}, 10)...), check: wantRefunds()},
		{name: "429 beyond the budget", budget: 500 * time.Millisecond, a: action("ref_1", "", 0, ""), want: bridge.ErrPaymentUnavailable,
			prepare: refundFaults(stripefake.Fault{Kind: stripefake.FaultRateLimit, RetryAfter: 5}), check: wantRefunds()},
	}
	runActionCases(t, tests, refund)
}

func TestActionRefusals(t *testing.T) {
	ops := map[string]func(p *Provider, ctx context.Context, a bridge.PaymentAction) error{
		"capture": func(p *Provider, ctx context.Context, a bridge.PaymentAction) error { return p.Capture(ctx, a) },
		"release": func(p *Provider, ctx context.Context, a bridge.PaymentAction) error { return p.Release(ctx, a) },
		"refund": func(p *Provider, ctx context.Context, a bridge.PaymentAction) error {
			_, err := p.Refund(ctx, a)
			return err
		},
	}
	for name, op := range ops {
		t.Run(name+": invalid actions never reach Stripe", func(t *testing.T) {
			f := newFake(t)
			p := newProvider(t, f, nil)
			for _, a := range []bridge.PaymentAction{
				{Ref: "pi_1"},
				{IdempotencyKey: strings.Repeat("k", 256), Ref: "pi_1"},
				{IdempotencyKey: "k"},
				{IdempotencyKey: "k", Ref: "../../v1/refunds"},
				{IdempotencyKey: "k", Ref: "pi_1", Amount: -1},
			} {
				err := op(p, context.Background(), a)
				if !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, bridge.ErrPaymentFinal) {
					t.Errorf("%+v: err = %v, want ErrInvalidRequest and ErrPaymentFinal", a, err)
				}
			}
			if n := len(f.Calls()); n != 0 {
				t.Errorf("%d calls to Stripe", n)
			}
		})
		t.Run(name+": a key Stripe refuses is a plain error", func(t *testing.T) {
			f := newFake(t)
			p := newProvider(t, f, func(c *Config) { c.SecretKey = "sk_test_wrongwrongwrong" })
			err := op(p, context.Background(), action("k", "pi_1", 0, ""))
			checkErrKind(t, err, errPlain)
			var se *Error
			if !errors.As(err, &se) || se.Err.HTTPStatusCode != http.StatusUnauthorized || strings.Contains(err.Error(), "wrongwrong") {
				t.Errorf("err = %v, want a redacted *Error with 401", err)
			}
		})
		t.Run(name+": canceled context", func(t *testing.T) {
			f := newFake(t)
			p := newProvider(t, f, nil)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := op(p, ctx, action("k", "pi_1", 0, ""))
			if !errors.Is(err, bridge.ErrPaymentUnavailable) || !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v", err)
			}
			if n := len(f.Calls()); n != 0 {
				t.Errorf("%d calls to Stripe", n)
			}
		})
	}
}
