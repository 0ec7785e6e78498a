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

const testKey = stripefake.DefaultSecretKey

func newFake(t *testing.T) *stripefake.Server {
	t.Helper()
	f := stripefake.New()
	t.Cleanup(f.Close)
	return f
}

func newProvider(t *testing.T, f *stripefake.Server, mod func(*Config)) *Provider {
	t.Helper()
	cfg := Config{SecretKey: testKey, APIBase: f.URL, MaxRetryTime: 2 * time.Second, RequestTimeout: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.baseDelay, p.maxDelay = 5*time.Millisecond, 20*time.Millisecond
	return p
}

func req(key, token string, amount int64) bridge.PaymentRequest {
	return bridge.PaymentRequest{IdempotencyKey: key, OrderID: "ord_1", SessionID: "cs_1", HandlerID: "stripe",
		Token: token, Amount: amount, Currency: "USD"}
}

// assertNoSecrets fails when err shows the token or the key.
func assertNoSecrets(t *testing.T, err error, token string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{testKey, token, "sk_test", "sk_live"} {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error shows a secret %q: %v", s, err)
		}
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", Config{SecretKey: "sk_test_1"}, false},
		{"restricted key", Config{SecretKey: "rk_test_1"}, false},
		{"no key", Config{}, true},
		{"publishable key", Config{SecretKey: "pk_test_1"}, true},
		{"top-level spt param", Config{SecretKey: "sk_test_1", SPTParam: SPTParamTopLevel}, false},
		{"unknown spt param", Config{SecretKey: "sk_test_1", SPTParam: "shared_payment_token"}, true},
		{"bad api base", Config{SecretKey: "sk_test_1", APIBase: "ftp://x"}, true},
		{"negative budget", Config{SecretKey: "sk_test_1", MaxRetryTime: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), tt.cfg.SecretKey) && tt.cfg.SecretKey != "" {
					t.Errorf("error shows the key: %v", err)
				}
				return
			}
			if p.version != DefaultStripeVersion || p.maxRetryTime != DefaultMaxRetryTime {
				t.Errorf("defaults not applied: %q %v", p.version, p.maxRetryTime)
			}
		})
	}
}

func TestChargeOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		script     stripefake.Script
		wantStatus bridge.PaymentStatus
		wantCode   string
		wantMsg    string
		wantRef    bool
	}{
		{"succeeded", stripefake.Script{Outcome: stripefake.Succeed}, bridge.PaymentSucceeded, "", "", true},
		{"requires_capture", stripefake.Script{Outcome: stripefake.RequiresCapture}, bridge.PaymentSucceeded, "", "", true},
		{"requires_action", stripefake.Script{Outcome: stripefake.RequiresAction}, bridge.PaymentRequiresAction, "", "", true},
		{"insufficient_funds", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "insufficient_funds"}, bridge.PaymentDeclined, "insufficient_funds", "The card has insufficient funds.", true},
		{"expired_card", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "expired_card"}, bridge.PaymentDeclined, "expired_card", "The card has expired.", true},
		{"card_declined", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "card_declined"}, bridge.PaymentDeclined, "card_declined", "The card was declined.", true},
		{"incorrect_cvc", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "incorrect_cvc"}, bridge.PaymentDeclined, "incorrect_cvc", "The card's security code is incorrect.", true},
		{"processing_error", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "processing_error"}, bridge.PaymentDeclined, "processing_error", "An error occurred while processing the card; try again later.", true},
		{"lost_card", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "lost_card"}, bridge.PaymentDeclined, "lost_card", "The card was declined.", true},
		{"stolen_card", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "stolen_card"}, bridge.PaymentDeclined, "stolen_card", "The card was declined.", true},
		{"do_not_honor", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "do_not_honor"}, bridge.PaymentDeclined, "do_not_honor", "The card issuer declined the payment.", true},
		{"generic_decline", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "generic_decline"}, bridge.PaymentDeclined, "generic_decline", "The card was declined.", true},
		{"unmapped code falls back to Stripe's message", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "currency_not_supported", DeclineMessage: "The card does not support this currency"}, bridge.PaymentDeclined, "currency_not_supported", "The card does not support this currency.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.AddToken(stripefake.Token{ID: "spt_ok", Currency: "usd", MaxAmount: 10000, ExpiresAt: time.Now().Add(time.Hour)})
			f.Script("spt_ok", tt.script)
			p := newProvider(t, f, nil)
			res, err := p.Charge(context.Background(), req("order:ord_1:1", "spt_ok", 4999))
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			if res.Status != tt.wantStatus || res.DeclineCode != tt.wantCode || res.DeclineMessage != tt.wantMsg {
				t.Errorf("got %+v, want %s %q %q", res, tt.wantStatus, tt.wantCode, tt.wantMsg)
			}
			if res.Challenge != nil {
				t.Errorf("Challenge = %+v, want nil (no ThreeDS configured)", res.Challenge)
			}
			intents := f.Intents()
			if len(intents) != 1 {
				t.Fatalf("%d PaymentIntents, want 1", len(intents))
			}
			if tt.wantRef && res.Ref != intents[0].ID {
				t.Errorf("Ref = %q, want %q", res.Ref, intents[0].ID)
			}
			pi := intents[0]
			if pi.Amount != 4999 || pi.Currency != "usd" || pi.Metadata["order_id"] != "ord_1" || pi.Metadata["session_id"] != "cs_1" || pi.IdempotencyKey != "order:ord_1:1" {
				t.Errorf("PaymentIntent = %+v", pi)
			}
			creates := f.CallsTo(http.MethodPost, "/v1/payment_intents")
			if len(creates) != 1 {
				t.Fatalf("%d creates, want 1", len(creates))
			}
			c := creates[0]
			if c.Form.Get("payment_method_data[shared_payment_granted_token]") != "spt_ok" || c.Form.Get("confirm") != "true" || c.StripeVersion != DefaultStripeVersion {
				t.Errorf("create call = %+v", c)
			}
			reads := f.CallsTo(http.MethodGet, "/v1/shared_payment/granted_tokens/spt_ok")
			if len(reads) != 1 || reads[0].StripeVersion != DefaultStripeVersion {
				t.Errorf("token reads = %+v, want one with the pinned version", reads)
			}
		})
	}
}

func TestSPTParamTopLevel(t *testing.T) {
	f := newFake(t)
	f.SPTParam = SPTParamTopLevel
	f.AddToken(stripefake.Token{ID: "spt_ok", Currency: "usd"})
	p := newProvider(t, f, func(c *Config) { c.SPTParam = SPTParamTopLevel; c.StripeVersion = "2025-01-01.preview" })
	res, err := p.Charge(context.Background(), req("k1", "spt_ok", 500))
	if err != nil || res.Status != bridge.PaymentSucceeded {
		t.Fatalf("Charge = %+v, %v", res, err)
	}
	c := f.CallsTo(http.MethodPost, "/v1/payment_intents")[0]
	if c.Form.Get("shared_payment_granted_token") != "spt_ok" || c.Form.Has("payment_method_data[shared_payment_granted_token]") || c.StripeVersion != "2025-01-01.preview" {
		t.Errorf("create call = %+v", c)
	}
}

func TestTokenChecks(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		token    stripefake.Token
		tokenID  string
		wantCode string
	}{
		{"expired", stripefake.Token{ID: "spt_t", Currency: "usd", ExpiresAt: now.Add(-time.Minute)}, "spt_t", "token_expired"},
		{"deactivated", stripefake.Token{ID: "spt_t", Currency: "usd", Deactivated: true}, "spt_t", "token_deactivated"},
		{"other currency", stripefake.Token{ID: "spt_t", Currency: "eur"}, "spt_t", "token_currency_mismatch"},
		{"max amount below total", stripefake.Token{ID: "spt_t", Currency: "usd", MaxAmount: 4998}, "spt_t", "token_amount_exceeded"},
		{"unknown token", stripefake.Token{ID: "spt_other"}, "spt_t", "token_invalid"},
		{"malformed token", stripefake.Token{ID: "spt_other"}, "../../v1/charges", "token_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.AddToken(tt.token)
			p := newProvider(t, f, nil)
			res, err := p.Charge(context.Background(), req("k1", tt.tokenID, 4999))
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			if res.Status != bridge.PaymentDeclined || res.DeclineCode != tt.wantCode || res.DeclineMessage == "" {
				t.Errorf("got %+v, want declined %s with a message", res, tt.wantCode)
			}
			if strings.Contains(res.DeclineMessage, tt.tokenID) {
				t.Errorf("message shows the token: %q", res.DeclineMessage)
			}
			if n := len(f.Intents()); n != 0 {
				t.Errorf("%d PaymentIntents created, want 0", n)
			}
		})
	}
}

// TestTokenUsedUpByLostAttempt: the first attempt charged but its answer
// was lost; the token is now deactivated (used up). The retry under the
// same key must report the charge, not a decline.
func TestTokenUsedUpByLostAttempt(t *testing.T) {
	f := newFake(t)
	f.AddToken(stripefake.Token{ID: "spt_once", Currency: "usd"})
	f.Script("spt_once", stripefake.Script{Faults: []stripefake.Fault{{Kind: stripefake.FaultDropAfterCommit}, {Kind: stripefake.FaultDropAfterCommit}}})
	p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = time.Millisecond })
	_, err := p.Charge(context.Background(), req("k1", "spt_once", 4999))
	if !errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Fatalf("first Charge err = %v, want unavailable", err)
	}
	f.AddToken(stripefake.Token{ID: "spt_once", Currency: "usd", Deactivated: true})
	res, err := p.Charge(context.Background(), req("k1", "spt_once", 4999))
	if err != nil || res.Status != bridge.PaymentSucceeded {
		t.Fatalf("retry = %+v, %v; want succeeded", res, err)
	}
	if in := f.Intents(); len(in) != 1 || res.Ref != in[0].ID {
		t.Errorf("intents = %+v, ref %q", in, res.Ref)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		faults     []stripefake.Fault
		readFaults []stripefake.Fault
		budget     time.Duration
		wantErr    bool // unavailable
	}{
		{"500 then success", []stripefake.Fault{{Kind: stripefake.FaultStatus, Status: 500}}, nil, 2 * time.Second, false},
		{"503 twice then success", []stripefake.Fault{{Kind: stripefake.FaultStatus, Status: 503}, {Kind: stripefake.FaultStatus, Status: 503}}, nil, 2 * time.Second, false},
		{"429 with Retry-After", []stripefake.Fault{{Kind: stripefake.FaultRateLimit, RetryAfter: 1}}, nil, 3 * time.Second, false},
		{"429 Retry-After beyond budget", []stripefake.Fault{{Kind: stripefake.FaultRateLimit, RetryAfter: 5}}, nil, time.Second, true},
		{"slow then success", []stripefake.Fault{{Kind: stripefake.FaultSlow, Delay: 3 * time.Second}}, nil, 2 * time.Second, false},
		{"drop before commit", []stripefake.Fault{{Kind: stripefake.FaultDropBefore}}, nil, 2 * time.Second, false},
		{"drop after commit", []stripefake.Fault{{Kind: stripefake.FaultDropAfterCommit}}, nil, 2 * time.Second, false},
		{"token read 503 then success", nil, []stripefake.Fault{{Kind: stripefake.FaultStatus, Status: 503}}, 2 * time.Second, false},
		{"always 500", repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 500}, 1000), nil, 300 * time.Millisecond, true},
		{"token read always 503", nil, repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 503}, 1000), 300 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.AddToken(stripefake.Token{ID: "spt_r", Currency: "usd"})
			f.Script("spt_r", stripefake.Script{Faults: tt.faults, ReadFaults: tt.readFaults})
			p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = tt.budget; c.RequestTimeout = 500 * time.Millisecond })
			start := time.Now()
			res, err := p.Charge(context.Background(), req("order:ord_1:1", "spt_r", 4999))
			if tt.wantErr {
				if !errors.Is(err, bridge.ErrPaymentUnavailable) {
					t.Fatalf("err = %v, want ErrPaymentUnavailable", err)
				}
				if el := time.Since(start); el > tt.budget+2*time.Second {
					t.Errorf("took %v, budget %v", el, tt.budget)
				}
				assertNoSecrets(t, err, "spt_r")
			} else if err != nil || res.Status != bridge.PaymentSucceeded {
				t.Fatalf("Charge = %+v, %v; want succeeded", res, err)
			}
			intents := f.Intents()
			if len(intents) > 1 {
				t.Fatalf("%d PaymentIntents created, want at most 1", len(intents))
			}
			if !tt.wantErr && (len(intents) != 1 || res.Ref != intents[0].ID) {
				t.Errorf("Ref %q, intents %+v", res.Ref, intents)
			}
			for _, c := range f.CallsTo(http.MethodPost, "/v1/payment_intents") {
				if c.IdempotencyKey != "order:ord_1:1" {
					t.Errorf("create with key %q, want the request's key", c.IdempotencyKey)
				}
			}
		})
	}
}

func repeat(f stripefake.Fault, n int) []stripefake.Fault {
	out := make([]stripefake.Fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// TestDropAfterCommitThenRetry: the connection drops after Stripe charged,
// the budget runs out, and the engine's later Charge with the same key gets
// the same PaymentIntent back — no second charge.
func TestDropAfterCommitThenRetry(t *testing.T) {
	f := newFake(t)
	f.AddToken(stripefake.Token{ID: "spt_d", Currency: "usd"})
	f.Script("spt_d", stripefake.Script{Faults: repeat(stripefake.Fault{Kind: stripefake.FaultDropAfterCommit}, 3)})
	p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = time.Millisecond })
	_, err := p.Charge(context.Background(), req("order:ord_9:1", "spt_d", 1234))
	if !errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Fatalf("first Charge err = %v, want unavailable", err)
	}
	assertNoSecrets(t, err, "spt_d")
	if n := len(f.Intents()); n != 1 {
		t.Fatalf("%d PaymentIntents after the dropped answer, want 1 (charged)", n)
	}
	first := f.Intents()[0]
	p2 := newProvider(t, f, nil) // as after a restart
	var res bridge.PaymentResult
	for range 3 { // the remaining drops, then the replay
		res, err = p2.Charge(context.Background(), req("order:ord_9:1", "spt_d", 1234))
		if err == nil {
			break
		}
	}
	if err != nil || res.Status != bridge.PaymentSucceeded || res.Ref != first.ID {
		t.Fatalf("retry = %+v, %v; want succeeded with %s", res, err, first.ID)
	}
	if n := len(f.Intents()); n != 1 {
		t.Errorf("%d PaymentIntents, want 1", n)
	}
	replayed := false
	for _, c := range f.CallsTo(http.MethodPost, "/v1/payment_intents") {
		replayed = replayed || c.Replayed
		if c.IdempotencyKey != "order:ord_9:1" {
			t.Errorf("create with key %q", c.IdempotencyKey)
		}
	}
	if !replayed {
		t.Error("no create was answered by replay")
	}
}

func TestRefusals(t *testing.T) {
	t.Run("bad key → 401, plain error", func(t *testing.T) {
		f := newFake(t)
		f.AddToken(stripefake.Token{ID: "spt_ok"})
		p := newProvider(t, f, func(c *Config) { c.SecretKey = "sk_test_wrongwrongwrong" })
		_, err := p.Charge(context.Background(), req("k1", "spt_ok", 100))
		if err == nil || errors.Is(err, bridge.ErrPaymentUnavailable) {
			t.Fatalf("err = %v, want a plain error", err)
		}
		if strings.Contains(err.Error(), "wrongwrong") || strings.Contains(err.Error(), "spt_ok") {
			t.Errorf("error shows a secret: %v", err)
		}
		var se *Error
		if !errors.As(err, &se) || se.Err.HTTPStatusCode != 401 {
			t.Errorf("err = %#v, want *Error with 401", err)
		}
	})
	t.Run("400 invalid_request → plain error", func(t *testing.T) {
		f := newFake(t)
		f.SPTParam = SPTParamTopLevel // the fake refuses the default wire form
		f.AddToken(stripefake.Token{ID: "spt_ok"})
		p := newProvider(t, f, nil)
		_, err := p.Charge(context.Background(), req("k1", "spt_ok", 100))
		if err == nil || errors.Is(err, bridge.ErrPaymentUnavailable) {
			t.Fatalf("err = %v, want a plain error", err)
		}
		assertNoSecrets(t, err, "spt_ok")
		if len(f.Intents()) != 0 {
			t.Error("a PaymentIntent was created")
		}
	})
	t.Run("same key other amount → idempotency_error, plain error", func(t *testing.T) {
		f := newFake(t)
		f.AddToken(stripefake.Token{ID: "spt_ok"})
		p := newProvider(t, f, nil)
		if _, err := p.Charge(context.Background(), req("k1", "spt_ok", 100)); err != nil {
			t.Fatal(err)
		}
		_, err := p.Charge(context.Background(), req("k1", "spt_ok", 200))
		var se *Error
		if !errors.As(err, &se) || se.Err.Type != "idempotency_error" || errors.Is(err, bridge.ErrPaymentUnavailable) {
			t.Fatalf("err = %v, want idempotency_error", err)
		}
		if len(f.Intents()) != 1 {
			t.Error("a second PaymentIntent was created")
		}
	})
	t.Run("invalid requests never reach Stripe", func(t *testing.T) {
		f := newFake(t)
		p := newProvider(t, f, nil)
		for _, r := range []bridge.PaymentRequest{
			{Token: "spt_1", Amount: 1, Currency: "usd"},
			{IdempotencyKey: "k", Token: "spt_1", Amount: 0, Currency: "usd"},
			{IdempotencyKey: "k", Token: "spt_1", Amount: 1},
			{IdempotencyKey: "k", Amount: 1, Currency: "usd"},
		} {
			if _, err := p.Charge(context.Background(), r); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("Charge(%+v) err = %v, want ErrInvalidRequest", r, err)
			}
		}
		if n := len(f.Calls()); n != 0 {
			t.Errorf("%d calls to Stripe", n)
		}
	})
}

func TestIdempotentReplay(t *testing.T) {
	f := newFake(t)
	f.AddToken(stripefake.Token{ID: "spt_ok", Currency: "usd"})
	f.Script("spt_ok", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "insufficient_funds"})
	p := newProvider(t, f, nil)
	a, err := p.Charge(context.Background(), req("k1", "spt_ok", 100))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Charge(context.Background(), req("k1", "spt_ok", 100))
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.Status != bridge.PaymentDeclined {
		t.Errorf("results differ: %+v vs %+v", a, b)
	}
	if len(f.Intents()) != 1 {
		t.Errorf("%d PaymentIntents, want 1", len(f.Intents()))
	}
}

func TestContinuation(t *testing.T) {
	tests := []struct {
		name       string
		setStatus  string
		wantStatus bridge.PaymentStatus
		wantCode   string
	}{
		{"authenticated", "succeeded", bridge.PaymentSucceeded, ""},
		{"authorized for capture", "requires_capture", bridge.PaymentSucceeded, ""},
		{"still requires action", "", bridge.PaymentDeclined, "authentication_failed"},
		{"failed", "requires_payment_method", bridge.PaymentDeclined, "authentication_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.AddToken(stripefake.Token{ID: "spt_3ds", Currency: "usd"})
			f.Script("spt_3ds", stripefake.Script{Outcome: stripefake.RequiresAction})
			p := newProvider(t, f, nil)
			first, err := p.Charge(context.Background(), req("k1", "spt_3ds", 100))
			if err != nil || first.Status != bridge.PaymentRequiresAction || first.Ref == "" {
				t.Fatalf("first = %+v, %v", first, err)
			}
			if tt.setStatus != "" {
				f.SetIntentStatus(first.Ref, tt.setStatus)
			}
			r := req("k2", "spt_3ds", 100)
			r.PaymentRef = first.Ref
			r.Auth = &bridge.AuthResult{Outcome: "authenticated"}
			res, err := p.Charge(context.Background(), r)
			if err != nil || res.Status != tt.wantStatus || res.DeclineCode != tt.wantCode || res.Ref != first.Ref {
				t.Fatalf("continuation = %+v, %v; want %s %q", res, err, tt.wantStatus, tt.wantCode)
			}
			if len(f.Intents()) != 1 {
				t.Errorf("%d PaymentIntents, want 1", len(f.Intents()))
			}
		})
	}
	t.Run("unknown ref", func(t *testing.T) {
		f := newFake(t)
		p := newProvider(t, f, nil)
		r := req("k2", "", 100)
		r.PaymentRef = "pi_nope"
		_, err := p.Charge(context.Background(), r)
		if err == nil || errors.Is(err, bridge.ErrPaymentUnavailable) {
			t.Fatalf("err = %v, want a plain error", err)
		}
	})
}

func TestProcessingSettles(t *testing.T) {
	f := newFake(t)
	f.AddToken(stripefake.Token{ID: "spt_p", Currency: "usd"})
	f.Script("spt_p", stripefake.Script{Outcome: stripefake.Processing})
	p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = 50 * time.Millisecond })
	_, err := p.Charge(context.Background(), req("k1", "spt_p", 100))
	if !errors.Is(err, bridge.ErrPaymentUnavailable) {
		t.Fatalf("err = %v, want unavailable while processing", err)
	}
	f.SetIntentStatus(f.Intents()[0].ID, "succeeded")
	res, err := p.Charge(context.Background(), req("k1", "spt_p", 100))
	if err != nil || res.Status != bridge.PaymentSucceeded || res.Ref != f.Intents()[0].ID {
		t.Fatalf("retry = %+v, %v", res, err)
	}
}

func TestContextCancellation(t *testing.T) {
	t.Run("canceled before", func(t *testing.T) {
		f := newFake(t)
		p := newProvider(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Charge(ctx, req("k1", "spt_x", 100))
		if !errors.Is(err, bridge.ErrPaymentUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if len(f.Calls()) != 0 {
			t.Error("Stripe was called")
		}
	})
	t.Run("deadline during a slow create", func(t *testing.T) {
		f := newFake(t)
		f.AddToken(stripefake.Token{ID: "spt_slow", Currency: "usd"})
		f.Script("spt_slow", stripefake.Script{Faults: repeat(stripefake.Fault{Kind: stripefake.FaultSlow, Delay: 5 * time.Second}, 10)})
		p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = 10 * time.Second; c.RequestTimeout = 10 * time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Charge(ctx, req("k1", "spt_slow", 100))
		if !errors.Is(err, bridge.ErrPaymentUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("took %v after the deadline", el)
		}
		assertNoSecrets(t, err, "spt_slow")
	})
	t.Run("canceled during backoff", func(t *testing.T) {
		f := newFake(t)
		f.AddToken(stripefake.Token{ID: "spt_b", Currency: "usd"})
		f.Script("spt_b", stripefake.Script{Faults: repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 503}, 100)})
		p := newProvider(t, f, func(c *Config) { c.MaxRetryTime = 10 * time.Second })
		p.baseDelay, p.maxDelay = time.Second, time.Second
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := p.Charge(ctx, req("k1", "spt_b", 100))
		if !errors.Is(err, bridge.ErrPaymentUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRedact(t *testing.T) {
	c := &call{secrets: []string{"sk_test_abc", "tok-raw"}}
	in := `Get "http://x/v1/shared_payment/granted_tokens/spt_123abc": EOF; key sk_live_zzz rk_test_q tok-raw`
	out := c.redact(in)
	for _, s := range []string{"spt_123abc", "sk_live_zzz", "rk_test_q", "tok-raw"} {
		if strings.Contains(out, s) {
			t.Errorf("redact left %q in %q", s, out)
		}
	}
}
