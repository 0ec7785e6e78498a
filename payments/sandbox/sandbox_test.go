package sandbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/acp-bridge/bridge"
)

func req(key, token string) bridge.PaymentRequest {
	return bridge.PaymentRequest{IdempotencyKey: key, OrderID: "ord_1", SessionID: "cs_1", HandlerID: "card", Token: token, Amount: 4999, Currency: "USD"}
}

func TestCharge(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		status bridge.PaymentStatus
		code   string
		msg    string
	}{
		{"4242 succeeds", "spt_test_4242", bridge.PaymentSucceeded, "", ""},
		{"any other card succeeds", "spt_test_1111", bridge.PaymentSucceeded, "", ""},
		{"short token", "42", bridge.PaymentSucceeded, "", ""},
		{"9995 insufficient funds", "spt_test_9995", bridge.PaymentDeclined, "insufficient_funds", "Your card has insufficient funds."},
		{"0069 expired", "tok_0069", bridge.PaymentDeclined, "expired_card", "Your card has expired."},
		{"3155 asks for 3-D Secure", "spt_3155", bridge.PaymentRequiresAction, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New("Demo Outfitters")
			got, err := p.Charge(context.Background(), req("key_"+tt.token, tt.token))
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || got.DeclineCode != tt.code || got.DeclineMessage != tt.msg {
				t.Errorf("got %+v, want %s %q %q", got, tt.status, tt.code, tt.msg)
			}
			if got.Ref != Ref("key_"+tt.token) || !strings.HasPrefix(got.Ref, "pi_sandbox_") || len(got.Ref) != len("pi_sandbox_")+16 {
				t.Errorf("ref = %q", got.Ref)
			}
			if (got.Challenge != nil) != (tt.status == bridge.PaymentRequiresAction) {
				t.Errorf("challenge = %+v", got.Challenge)
			}
			if c := got.Challenge; c != nil {
				want := bridge.AuthChallenge{AcquirerBIN: "424242", AcquirerCountry: "US", AcquirerMerchantID: "sandbox_merchant",
					MerchantName: "Demo Outfitters", DirectoryServer: "visa", PaymentRef: got.Ref}
				if *c != want {
					t.Errorf("challenge = %+v, want %+v", *c, want)
				}
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	p := New("Shop")
	for name, mod := range map[string]func(*bridge.PaymentRequest){
		"zero amount":     func(r *bridge.PaymentRequest) { r.Amount = 0 },
		"negative amount": func(r *bridge.PaymentRequest) { r.Amount = -5 },
		"no currency":     func(r *bridge.PaymentRequest) { r.Currency = "" },
		"no key":          func(r *bridge.PaymentRequest) { r.IdempotencyKey = "" },
		"no token":        func(r *bridge.PaymentRequest) { r.Token = "" },
	} {
		t.Run(name, func(t *testing.T) {
			r := req("k", "tok_4242")
			mod(&r)
			if _, err := p.Charge(context.Background(), r); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Charge(ctx, req("k", "tok_4242")); !errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Errorf("canceled context: err = %v, want ErrPaymentUnavailable", err)
	}
}

func TestIdempotency(t *testing.T) {
	p := New("Shop")
	ctx := context.Background()
	first, err := p.Charge(ctx, req("ord_1_0", "tok_9995"))
	if err != nil {
		t.Fatal(err)
	}
	// The same key replays the answer even with another card.
	again, err := p.Charge(ctx, req("ord_1_0", "tok_4242"))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("replay = %+v, want %+v", again, first)
	}
	// A new key is a new attempt, with its own ref.
	next, err := p.Charge(ctx, req("ord_1_1", "tok_4242"))
	if err != nil {
		t.Fatal(err)
	}
	if next.Status != bridge.PaymentSucceeded || next.Ref == first.Ref {
		t.Errorf("next attempt = %+v (first ref %s)", next, first.Ref)
	}
	// Refs depend on the key only: another provider (a restart) agrees.
	other, _ := New("Shop").Charge(ctx, req("ord_1_1", "tok_4242"))
	if other.Ref != next.Ref {
		t.Errorf("ref not deterministic: %s vs %s", other.Ref, next.Ref)
	}

	// Concurrent retries of one key get one answer.
	var wg sync.WaitGroup
	refs := make([]bridge.PaymentResult, 16)
	for i := range refs {
		wg.Go(func() {
			refs[i], _ = p.Charge(ctx, req("ord_2_0", "tok_3155"))
		})
	}
	wg.Wait()
	for _, r := range refs[1:] {
		if r.Ref != refs[0].Ref || r.Status != bridge.PaymentRequiresAction {
			t.Fatalf("concurrent answers differ: %+v vs %+v", r, refs[0])
		}
	}
}

func TestThreeDSContinuation(t *testing.T) {
	tests := []struct {
		outcome string
		status  bridge.PaymentStatus
	}{
		{"authenticated", bridge.PaymentSucceeded},
		{"attempt_acknowledged", bridge.PaymentSucceeded},
		{"informational", bridge.PaymentSucceeded},
		{"denied", bridge.PaymentDeclined},
		{"", bridge.PaymentDeclined},
	}
	for _, tt := range tests {
		t.Run(tt.outcome, func(t *testing.T) {
			p := New("Shop")
			ctx := context.Background()
			first, err := p.Charge(ctx, req("ord_1_0", "tok_3155"))
			if err != nil || first.Status != bridge.PaymentRequiresAction {
				t.Fatalf("first = %+v, %v", first, err)
			}
			// Continued without a result: the same challenge, nothing
			// remembered under the key.
			cont := req("ord_1_0_3ds", "tok_3155")
			cont.PaymentRef = first.Challenge.PaymentRef
			still, err := p.Charge(ctx, cont)
			if err != nil || still.Status != bridge.PaymentRequiresAction || still.Ref != first.Ref {
				t.Fatalf("without auth = %+v, %v", still, err)
			}
			cont.Auth = &bridge.AuthResult{Outcome: tt.outcome, Cryptogram: "AAAB", ECI: "05", TransactionID: "tx", Version: "2.2.0"}
			got, err := p.Charge(ctx, cont)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || got.Ref != first.Ref || got.Challenge != nil {
				t.Errorf("continued = %+v, want %s with ref %s", got, tt.status, first.Ref)
			}
			if tt.status == bridge.PaymentDeclined && (got.DeclineMessage != "authentication failed" || got.DeclineCode != "authentication_failed") {
				t.Errorf("decline = %q %q", got.DeclineCode, got.DeclineMessage)
			}
			// Replaying the continuation gives the same answer; a second
			// continuation under a new key cannot finish the payment again.
			if replay, _ := p.Charge(ctx, cont); replay != got {
				t.Errorf("replay = %+v, want %+v", replay, got)
			}
			cont.IdempotencyKey = "ord_1_0_3ds_again"
			if again, _ := p.Charge(ctx, cont); again.Status != bridge.PaymentDeclined {
				t.Errorf("second continuation = %+v, want declined", again)
			}
		})
	}
	// A ref the sandbox never issued.
	p := New("Shop")
	r := req("k", "tok_3155")
	r.PaymentRef, r.Auth = "pi_unknown", &bridge.AuthResult{Outcome: "authenticated"}
	if got, _ := p.Charge(context.Background(), r); got.Status != bridge.PaymentDeclined {
		t.Errorf("unknown ref = %+v", got)
	}
}

func TestMerchantName(t *testing.T) {
	long := strings.Repeat("é", 50)
	got, _ := New(long).Charge(context.Background(), req("k", "tok_3155"))
	if n := len([]rune(got.Challenge.MerchantName)); n != 40 {
		t.Errorf("merchant name has %d characters, want 40", n)
	}
	got, _ = New("  ").Charge(context.Background(), req("k", "tok_3155"))
	if got.Challenge.MerchantName == "" {
		t.Error("empty merchant name")
	}
}
