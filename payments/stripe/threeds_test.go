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
	stripego "github.com/stripe/stripe-go/v82"
)

// testCryptogram is 20 bytes, base64-encoded: the shape Stripe documents.
const testCryptogram = "AJkBBkhgQQAAAE4gSEJydQAAAAA="

var testThreeDS = ThreeDS{AcquirerBIN: "400551", AcquirerCountry: "US", AcquirerMerchantID: "acq_merchant_42", MerchantName: "Demo Shop"}

func with3DS(c *Config) { td := testThreeDS; c.ThreeDS = &td }

func authResult(outcome, eci string) *bridge.AuthResult {
	return &bridge.AuthResult{Outcome: outcome, Cryptogram: testCryptogram, ECI: eci,
		TransactionID: "f38e6948-5388-41a6-bca4-b49723c19437", Version: "2.2.0"}
}

func TestNewThreeDS(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*ThreeDS)
		wantErr string
	}{
		{"valid", func(*ThreeDS) {}, ""},
		{"8-digit BIN", func(td *ThreeDS) { td.AcquirerBIN = "40055112" }, ""},
		{"40-character name", func(td *ThreeDS) { td.MerchantName = strings.Repeat("é", 40) }, ""},
		{"5-digit BIN", func(td *ThreeDS) { td.AcquirerBIN = "40055" }, "BIN"},
		{"9-digit BIN", func(td *ThreeDS) { td.AcquirerBIN = "400551123" }, "BIN"},
		{"BIN with a letter", func(td *ThreeDS) { td.AcquirerBIN = "40055A" }, "BIN"},
		{"lower-case country", func(td *ThreeDS) { td.AcquirerCountry = "us" }, "country"},
		{"alpha-3 country", func(td *ThreeDS) { td.AcquirerCountry = "USA" }, "country"},
		{"no merchant id", func(td *ThreeDS) { td.AcquirerMerchantID = "" }, "merchant id"},
		{"36-character merchant id", func(td *ThreeDS) { td.AcquirerMerchantID = strings.Repeat("x", 36) }, "merchant id"},
		{"merchant id with a newline", func(td *ThreeDS) { td.AcquirerMerchantID = "a\nb" }, "merchant id"},
		{"no merchant name", func(td *ThreeDS) { td.MerchantName = "" }, "merchant name"},
		{"41-character name", func(td *ThreeDS) { td.MerchantName = strings.Repeat("x", 41) }, "merchant name"},
		{"name with surrounding spaces", func(td *ThreeDS) { td.MerchantName = " Demo " }, "merchant name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := testThreeDS
			tt.mod(&td)
			_, err := New(Config{SecretKey: "sk_test_1", ThreeDS: &td})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("New: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("New: err = %v, want one about %s", err, tt.wantErr)
			}
		})
	}
}

// TestThreeDSChallenge: a PaymentIntent in requires_action becomes a
// Challenge with the configured acquirer details and the directory server
// of the card's brand — only when ThreeDS is configured and ACP has a
// directory server for the brand.
func TestThreeDSChallenge(t *testing.T) {
	tests := []struct {
		name      string
		token     stripefake.Token
		threeDS   bool
		wantDS    string // "" = no Challenge
		wantReads int    // GET /v1/payment_methods
	}{
		{"visa", stripefake.Token{Brand: "visa"}, true, "visa", 0},
		{"mastercard", stripefake.Token{Brand: "mastercard"}, true, "mastercard", 0},
		{"amex", stripefake.Token{Brand: "amex"}, true, "american_express", 0},
		{"brand only on the PaymentMethod", stripefake.Token{Brand: "mastercard", NoCardDetails: true}, true, "mastercard", 1},
		{"brand without an ACP directory server", stripefake.Token{Brand: "discover"}, true, "", 0},
		{"not configured", stripefake.Token{Brand: "visa"}, false, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			tok := tt.token
			tok.ID, tok.Currency = "spt_3ds", "usd"
			f.AddToken(tok)
			f.Script("spt_3ds", stripefake.Script{Outcome: stripefake.RequiresAction})
			mod := with3DS
			if !tt.threeDS {
				mod = nil
			}
			p := newProvider(t, f, mod)
			res, err := p.Charge(context.Background(), req("ord_1_0", "spt_3ds", 4999))
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			pi := f.Intents()[0]
			if res.Status != bridge.PaymentRequiresAction || res.Ref != pi.ID {
				t.Fatalf("result = %+v, want requires_action with %s", res, pi.ID)
			}
			if got := len(f.CallsTo(http.MethodGet, "/v1/payment_methods/")); got != tt.wantReads {
				t.Errorf("%d PaymentMethod reads, want %d", got, tt.wantReads)
			}
			if tt.wantDS == "" {
				if res.Challenge != nil {
					t.Fatalf("Challenge = %+v, want none", res.Challenge)
				}
				return
			}
			want := bridge.AuthChallenge{AcquirerBIN: "400551", AcquirerCountry: "US", AcquirerMerchantID: "acq_merchant_42",
				MerchantName: "Demo Shop", DirectoryServer: tt.wantDS, PaymentRef: pi.ID}
			if res.Challenge == nil || *res.Challenge != want {
				t.Fatalf("Challenge = %+v, want %+v", res.Challenge, want)
			}
		})
	}
}

// TestThreeDSChallengeBrandLookup: when only the PaymentMethod can tell
// the brand, a PaymentMethod Stripe will not show means no Challenge (as
// before 3-D Secure was mapped), and one Stripe cannot be reached for
// makes the charge unavailable (the engine's retry asks again).
func TestThreeDSChallengeBrandLookup(t *testing.T) {
	requiresAction := func(pm string) *stripego.PaymentIntent {
		return &stripego.PaymentIntent{ID: "pi_x", Status: stripego.PaymentIntentStatusRequiresAction, PaymentMethod: &stripego.PaymentMethod{ID: pm}}
	}
	tests := []struct {
		name    string
		apiBase string // "" = the fake
		wantErr error
	}{
		{"PaymentMethod unknown to Stripe: no Challenge", "", nil},
		{"Stripe unreachable: unavailable", "http://127.0.0.1:1", bridge.ErrPaymentUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			p := newProvider(t, f, func(c *Config) {
				with3DS(c)
				if tt.apiBase != "" {
					c.APIBase = tt.apiBase
				}
			})
			c := &call{p: p, deadline: time.Now().Add(50 * time.Millisecond)}
			res, err := c.needsAction(context.Background(), requiresAction("pm_unknown"))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (res.Challenge != nil || res.Status != bridge.PaymentRequiresAction || res.Ref != "pi_x") {
				t.Fatalf("result = %+v, want requires_action without a Challenge", res)
			}
		})
	}
}

// TestThreeDSContinuation: the agent's 3-D Secure result confirms the
// PaymentIntent (authenticated outcomes) or declines at once (the rest).
func TestThreeDSContinuation(t *testing.T) {
	tests := []struct {
		name          string
		script        stripefake.Script
		authorizeOnly bool
		auth          *bridge.AuthResult
		faults        []stripefake.Fault
		budget        time.Duration
		wantStatus    bridge.PaymentStatus
		wantCode      string
		wantMsg       string
		wantErr       error
		wantConfirms  int // 0 = Stripe is not asked
		wantECI       string
		wantPIStatus  string
	}{
		{name: "authenticated → succeeded", auth: authResult("authenticated", "05"),
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 1, wantECI: "05", wantPIStatus: "succeeded"},
		{name: "mastercard authenticated (ECI 02)", auth: authResult("authenticated", "02"),
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 1, wantECI: "02", wantPIStatus: "succeeded"},
		{name: "attempt acknowledged (ECI 06)", auth: authResult("attempt_acknowledged", "06"),
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 1, wantECI: "06", wantPIStatus: "succeeded"},
		{name: "informational, ECI without its leading zero", auth: authResult("informational", "7"),
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 1, wantECI: "07", wantPIStatus: "succeeded"},
		{name: "no ECI: left out", auth: authResult("authenticated", ""),
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 1, wantECI: "", wantPIStatus: "succeeded"},
		{name: "authorize only → Authorized", authorizeOnly: true, auth: authResult("authenticated", "05"),
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 1, wantECI: "05", wantPIStatus: "requires_capture"},
		{name: "issuer declines after authentication",
			script: stripefake.Script{AfterAuth: stripefake.Decline, AfterAuthDeclineCode: "insufficient_funds"}, auth: authResult("authenticated", "05"),
			wantStatus: bridge.PaymentDeclined, wantCode: "insufficient_funds", wantMsg: "The card has insufficient funds.", wantConfirms: 1, wantECI: "05", wantPIStatus: "requires_payment_method"},
		{name: "Stripe still wants action",
			script: stripefake.Script{AfterAuth: stripefake.RequiresAction}, auth: authResult("authenticated", "05"),
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_failed", wantConfirms: 1, wantECI: "05", wantPIStatus: "requires_payment_method"},
		{name: "denied", auth: &bridge.AuthResult{Outcome: "denied"},
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_failed", wantMsg: "The card issuer did not authenticate the buyer.", wantPIStatus: "requires_action"},
		{name: "rejected", auth: &bridge.AuthResult{Outcome: "rejected"},
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_failed", wantPIStatus: "requires_action"},
		{name: "abandoned", auth: &bridge.AuthResult{Outcome: "abandoned"},
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_abandoned", wantPIStatus: "requires_action"},
		{name: "canceled", auth: &bridge.AuthResult{Outcome: "canceled"},
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_abandoned", wantPIStatus: "requires_action"},
		{name: "not supported", auth: &bridge.AuthResult{Outcome: "not_supported"},
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_unavailable", wantPIStatus: "requires_action"},
		{name: "3DS server error", auth: &bridge.AuthResult{Outcome: "internal_error"},
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_unavailable", wantPIStatus: "requires_action"},
		{name: "ECI neither ACP nor Stripe knows", auth: authResult("authenticated", "03"),
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_incomplete", wantPIStatus: "requires_action"},
		{name: "malformed version", auth: func() *bridge.AuthResult { a := authResult("authenticated", "05"); a.Version = "2.2"; return a }(),
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_incomplete", wantPIStatus: "requires_action"},
		{name: "no transaction id", auth: func() *bridge.AuthResult { a := authResult("authenticated", "05"); a.TransactionID = ""; return a }(),
			wantStatus: bridge.PaymentDeclined, wantCode: "authentication_incomplete", wantPIStatus: "requires_action"},
		{name: "503 then success", auth: authResult("authenticated", "05"), faults: []stripefake.Fault{{Kind: stripefake.FaultStatus, Status: 503}},
			wantStatus: bridge.PaymentSucceeded, wantConfirms: 2, wantECI: "05", wantPIStatus: "succeeded"},
		{name: "5xx past the budget → unavailable", auth: authResult("authenticated", "05"),
			faults: repeat(stripefake.Fault{Kind: stripefake.FaultStatus, Status: 500}, 1000), budget: 200 * time.Millisecond,
			wantErr: bridge.ErrPaymentUnavailable, wantECI: "05", wantPIStatus: "requires_action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.AddToken(stripefake.Token{ID: "spt_3ds", Currency: "usd"})
			sc := tt.script
			sc.Outcome = stripefake.RequiresAction
			f.Script("spt_3ds", sc)
			p := newProvider(t, f, func(c *Config) {
				with3DS(c)
				if tt.budget > 0 {
					c.MaxRetryTime = tt.budget
				}
			})
			first := req("ord_1_0", "spt_3ds", 4999)
			first.AuthorizeOnly = tt.authorizeOnly
			ch, err := p.Charge(context.Background(), first)
			if err != nil || ch.Challenge == nil {
				t.Fatalf("first charge = %+v, %v; want a Challenge", ch, err)
			}
			f.ScriptActions(ch.Ref, stripefake.ActionScript{ConfirmFaults: tt.faults})

			r := req("ord_1_0_3ds1", "spt_3ds", 4999)
			r.PaymentRef, r.Auth = ch.Challenge.PaymentRef, tt.auth
			res, err := p.Charge(context.Background(), r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				assertNoSecrets(t, err, "spt_3ds")
				assertNoSecrets(t, err, testCryptogram)
			} else {
				if err != nil {
					t.Fatalf("continuation: %v", err)
				}
				if res.Status != tt.wantStatus || res.DeclineCode != tt.wantCode || res.Ref != ch.Ref {
					t.Errorf("continuation = %+v, want %s %q on %s", res, tt.wantStatus, tt.wantCode, ch.Ref)
				}
				if tt.wantMsg != "" && res.DeclineMessage != tt.wantMsg {
					t.Errorf("message = %q, want %q", res.DeclineMessage, tt.wantMsg)
				}
				if res.Status == bridge.PaymentDeclined && res.DeclineMessage == "" {
					t.Error("a decline without words for the buyer")
				}
				if res.Authorized != tt.authorizeOnly {
					t.Errorf("Authorized = %v, want %v", res.Authorized, tt.authorizeOnly)
				}
			}

			confirms := f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ch.Ref+"/confirm")
			if tt.wantErr == nil && len(confirms) != tt.wantConfirms {
				t.Fatalf("%d confirms, want %d", len(confirms), tt.wantConfirms)
			}
			for _, c := range confirms {
				if c.IdempotencyKey != "ord_1_0_3ds1" || c.StripeVersion != DefaultStripeVersion {
					t.Errorf("confirm with key %q, version %q", c.IdempotencyKey, c.StripeVersion)
				}
				const pre = "payment_method_options[card][three_d_secure]"
				f := c.Form
				if f.Get(pre+"[cryptogram]") != testCryptogram || f.Get(pre+"[transaction_id]") != tt.auth.TransactionID ||
					f.Get(pre+"[version]") != "2.2.0" || f.Get(pre+"[electronic_commerce_indicator]") != tt.wantECI ||
					f.Has(pre+"[electronic_commerce_indicator]") != (tt.wantECI != "") || f.Get("error_on_requires_action") != "true" {
					t.Errorf("confirm form = %v", f)
				}
			}
			pi, _ := f.Intent(ch.Ref)
			if pi.Status != tt.wantPIStatus {
				t.Errorf("PaymentIntent status %q, want %q", pi.Status, tt.wantPIStatus)
			}
			if n := len(f.Intents()); n != 1 {
				t.Errorf("%d PaymentIntents, want 1", n)
			}
			if n := len(f.CallsTo(http.MethodPost, "/v1/payment_intents/"+ch.Ref+"/cancel")); n != 0 {
				t.Errorf("%d cancels, want none: the PaymentIntent is left as it is", n)
			}
		})
	}
}

// TestThreeDSContinuationIdempotent: the continuation is idempotent by its
// key like a charge: a retry replays Stripe's answer, an answer lost after
// Stripe confirmed is found again, and a key reused with another result
// (or a PaymentIntent that cannot be confirmed any more) is settled by the
// PaymentIntent's own state.
func TestThreeDSContinuationIdempotent(t *testing.T) {
	start := func(t *testing.T, faults []stripefake.Fault) (*stripefake.Server, *Provider, bridge.PaymentRequest) {
		t.Helper()
		f := newFake(t)
		f.AddToken(stripefake.Token{ID: "spt_3ds", Currency: "usd"})
		f.Script("spt_3ds", stripefake.Script{Outcome: stripefake.RequiresAction})
		p := newProvider(t, f, with3DS)
		ch, err := p.Charge(context.Background(), req("ord_1_0", "spt_3ds", 4999))
		if err != nil || ch.Challenge == nil {
			t.Fatalf("first charge = %+v, %v", ch, err)
		}
		f.ScriptActions(ch.Ref, stripefake.ActionScript{ConfirmFaults: faults})
		r := req("ord_1_0_3ds1", "spt_3ds", 4999)
		r.PaymentRef, r.Auth = ch.Ref, authResult("authenticated", "05")
		return f, p, r
	}
	succeeded := func(t *testing.T, f *stripefake.Server, res bridge.PaymentResult, err error, ref string) {
		t.Helper()
		if err != nil || res.Status != bridge.PaymentSucceeded || res.Ref != ref {
			t.Fatalf("result = %+v, %v; want succeeded on %s", res, err, ref)
		}
		if pi, _ := f.Intent(ref); pi.Status != "succeeded" || pi.AmountReceived != 4999 || len(f.Intents()) != 1 {
			t.Fatalf("PaymentIntents = %+v", f.Intents())
		}
	}

	t.Run("replay under the same key", func(t *testing.T) {
		f, p, r := start(t, nil)
		a, err := p.Charge(context.Background(), r)
		succeeded(t, f, a, err, r.PaymentRef)
		b, err := p.Charge(context.Background(), r)
		if err != nil || a != b {
			t.Fatalf("replay = %+v, %v; want %+v", b, err, a)
		}
		confirms := f.CallsTo(http.MethodPost, "/v1/payment_intents/"+r.PaymentRef+"/confirm")
		if len(confirms) != 2 || confirms[0].Replayed || !confirms[1].Replayed {
			t.Fatalf("confirms = %+v, want the second replayed", confirms)
		}
	})
	t.Run("answer lost after the confirm, retried later", func(t *testing.T) {
		f, p, r := start(t, repeat(stripefake.Fault{Kind: stripefake.FaultDropAfterCommit}, 2))
		p.maxRetryTime = time.Millisecond
		if _, err := p.Charge(context.Background(), r); !errors.Is(err, bridge.ErrPaymentUnavailable) {
			t.Fatalf("first continuation err = %v, want unavailable", err)
		}
		p.maxRetryTime = 2 * time.Second
		res, err := p.Charge(context.Background(), r)
		succeeded(t, f, res, err, r.PaymentRef)
	})
	t.Run("same key, another result: settled by the PaymentIntent", func(t *testing.T) {
		f, p, r := start(t, nil)
		if _, err := p.Charge(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		r.Auth = authResult("attempt_acknowledged", "06")
		res, err := p.Charge(context.Background(), r)
		succeeded(t, f, res, err, r.PaymentRef)
	})
	t.Run("PaymentIntent already paid: settled by its state", func(t *testing.T) {
		f, p, r := start(t, nil)
		f.SetIntentStatus(r.PaymentRef, "succeeded")
		res, err := p.Charge(context.Background(), r)
		succeeded(t, f, res, err, r.PaymentRef)
	})
	t.Run("PaymentIntent canceled meanwhile", func(t *testing.T) {
		f, p, r := start(t, nil)
		f.SetIntentStatus(r.PaymentRef, "canceled")
		res, err := p.Charge(context.Background(), r)
		if err != nil || res.Status != bridge.PaymentDeclined || res.DeclineCode != "payment_canceled" {
			t.Fatalf("result = %+v, %v; want declined payment_canceled", res, err)
		}
	})
}
