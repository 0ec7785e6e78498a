package sandbox

import (
	"context"
	"errors"
	"testing"

	"github.com/acp-bridge/bridge"
)

func TestAuthorizeOnly(t *testing.T) {
	ctx := context.Background()
	for _, authorize := range []bool{false, true} {
		p := New("Shop")
		r := req("ord_1_0", "tok_4242")
		r.AuthorizeOnly = authorize
		got, err := p.Charge(ctx, r)
		if err != nil || got.Status != bridge.PaymentSucceeded || got.Authorized != authorize {
			t.Errorf("authorize %v: %+v, %v", authorize, got, err)
		}
		// Only an authorization can be released.
		err = p.Release(ctx, bridge.PaymentAction{IdempotencyKey: "rel", Ref: got.Ref})
		if (err == nil) != authorize {
			t.Errorf("authorize %v: Release err = %v", authorize, err)
		}
	}
	// 3-D Secure keeps the first attempt's terms: authorized.
	p := New("Shop")
	r := req("ord_2_0", "tok_3155")
	r.AuthorizeOnly = true
	first, _ := p.Charge(ctx, r)
	cont := req("ord_2_0_3ds", "tok_3155")
	cont.PaymentRef, cont.Auth = first.Ref, &bridge.AuthResult{Outcome: "authenticated"}
	if got, err := p.Charge(ctx, cont); err != nil || !got.Authorized || got.Status != bridge.PaymentSucceeded {
		t.Errorf("continued authorization = %+v, %v", got, err)
	}
	if err := p.Capture(ctx, bridge.PaymentAction{IdempotencyKey: "cap", Ref: first.Ref}); err != nil {
		t.Errorf("capture after 3-D Secure: %v", err)
	}
}

// step is one action on the payment of a test; its ref is the payment's
// unless set.
type step struct {
	op     string // capture, release, refund
	key    string
	ref    string
	amount int64
	want   error // nil, bridge.ErrPaymentFinal
	wantID string
}

func TestActions(t *testing.T) {
	tests := []struct {
		name      string
		authorize bool
		steps     []step
	}{
		{"capture the whole authorization", true, []step{{op: "capture", key: "c1"}, {op: "refund", key: "r1", amount: 4999, wantID: RefundID("r1")}}},
		{"capture part, refund is bounded by it", true, []step{
			{op: "capture", key: "c1", amount: 3000},
			{op: "refund", key: "r1", amount: 3001, want: bridge.ErrPaymentFinal},
			{op: "refund", key: "r2", wantID: RefundID("r2")},
			{op: "refund", key: "r3", amount: 1, want: bridge.ErrPaymentFinal},
		}},
		{"capture replayed and repeated", true, []step{
			{op: "capture", key: "c1"}, {op: "capture", key: "c1"}, {op: "capture", key: "c2"},
			{op: "capture", key: "c3", amount: 10, want: bridge.ErrPaymentFinal},
		}},
		{"capture more than held", true, []step{{op: "capture", key: "c1", amount: 5000, want: bridge.ErrPaymentFinal}, {op: "capture", key: "c2"}}},
		{"capture after release", true, []step{{op: "release", key: "r1"}, {op: "capture", key: "c1", want: bridge.ErrPaymentFinal}}},
		{"release twice", true, []step{{op: "release", key: "r1"}, {op: "release", key: "r1"}, {op: "release", key: "r2"}}},
		{"release a captured payment", false, []step{{op: "release", key: "r1", want: bridge.ErrPaymentFinal}}},
		{"refund an authorization", true, []step{{op: "refund", key: "r1", want: bridge.ErrPaymentFinal}}},
		{"refund in parts, then nothing left", false, []step{
			{op: "refund", key: "r1", amount: 1000, wantID: RefundID("r1")},
			{op: "refund", key: "r1", amount: 1000, wantID: RefundID("r1")}, // replay
			{op: "refund", key: "r2", wantID: RefundID("r2")},
			{op: "refund", key: "r3", want: bridge.ErrPaymentFinal},
		}},
		{"a refused answer is replayed too", false, []step{
			{op: "refund", key: "r1", amount: 9999, want: bridge.ErrPaymentFinal},
			{op: "refund", key: "r1", amount: 9999, want: bridge.ErrPaymentFinal},
		}},
		{"same key, other parameters", false, []step{
			{op: "refund", key: "r1", amount: 1000, wantID: RefundID("r1")},
			{op: "refund", key: "r1", amount: 2000, want: bridge.ErrPaymentFinal},
			{op: "capture", key: "r1", want: bridge.ErrPaymentFinal},
		}},
		{"unknown ref", true, []step{
			{op: "capture", key: "c1", ref: "pi_unknown", want: bridge.ErrPaymentFinal},
			{op: "release", key: "r1", ref: "pi_unknown", want: bridge.ErrPaymentFinal},
			{op: "refund", key: "f1", ref: "pi_unknown", want: bridge.ErrPaymentFinal},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New("Shop")
			ctx := context.Background()
			r := req("ord_1_0", "tok_4242")
			r.AuthorizeOnly = tt.authorize
			paid, err := p.Charge(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				a := bridge.PaymentAction{IdempotencyKey: s.key, OrderID: "ord_1", Ref: s.ref, Amount: s.amount, Currency: "USD"}
				if a.Ref == "" {
					a.Ref = paid.Ref
				}
				var id string
				switch s.op {
				case "capture":
					err = p.Capture(ctx, a)
				case "release":
					err = p.Release(ctx, a)
				case "refund":
					id, err = p.Refund(ctx, a)
				}
				if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
					t.Errorf("step %d %s %s: err = %v, want %v", i, s.op, s.key, err, s.want)
				}
				if id != s.wantID {
					t.Errorf("step %d %s %s: refund id = %q, want %q", i, s.op, s.key, id, s.wantID)
				}
			}
		})
	}
}

func TestActionRefusals(t *testing.T) {
	p := New("Shop")
	for _, a := range []bridge.PaymentAction{{Ref: "pi_1"}, {IdempotencyKey: "k"}, {IdempotencyKey: "k", Ref: "pi_1", Amount: -1}} {
		if err := p.Capture(context.Background(), a); !errors.Is(err, ErrInvalidRequest) || !errors.Is(err, bridge.ErrPaymentFinal) {
			t.Errorf("Capture(%+v) err = %v, want ErrInvalidRequest and ErrPaymentFinal", a, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Refund(ctx, bridge.PaymentAction{IdempotencyKey: "k", Ref: "pi_1"}); !errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Errorf("canceled context: err = %v, want ErrPaymentUnavailable", err)
	}
}
