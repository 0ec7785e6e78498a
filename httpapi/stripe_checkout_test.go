package httpapi_test

import (
	"github.com/acp-bridge/bridge"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/acp"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/acp-bridge/bridge/payments/stripe"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
)

// The checkout paying with Shared Payment Tokens through the Stripe
// provider, against the fake Stripe server: a good token makes an order
// charged once with the session's total; a declined card is a 2xx session
// saying so in words; a token whose allowance is below the total is
// refused before anything is charged.
func TestCheckoutWithStripe(t *testing.T) {
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	fake.AddToken(stripefake.Token{ID: "spt_good", Currency: "usd", MaxAmount: 100000, ExpiresAt: time.Now().Add(time.Hour)})
	fake.AddToken(stripefake.Token{ID: "spt_poor", Currency: "usd", MaxAmount: 100000, ExpiresAt: time.Now().Add(time.Hour)})
	fake.Script("spt_poor", stripefake.Script{Outcome: stripefake.Decline, DeclineCode: "insufficient_funds"})
	fake.AddToken(stripefake.Token{ID: "spt_small", Currency: "usd", MaxAmount: 100, ExpiresAt: time.Now().Add(time.Hour)})
	provider, err := stripe.New(stripe.Config{SecretKey: stripefake.DefaultSecretKey, APIBase: fake.URL, MaxRetryTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := ct.New(t, ct.Options{Payments: provider})
	v := acp.Latest
	b := ct.Bodies{V: v}
	open := func() string {
		s := session(t, v, st.Do(t, post(v, ct.Path(), b.Create(ct.Item{ID: "ebook", Qty: 2}))), http.StatusCreated)
		return s["id"].(string)
	}

	id := open()
	s := session(t, v, st.Do(t, post(v, ct.Path(id, "complete"), b.Complete("spt_small"))), http.StatusOK)
	if !hasMessage(s, "error:payment_declined:") || len(fake.Intents()) != 0 {
		t.Fatalf("allowance below the total: %v %v", messageCodes(s), fake.Intents())
	}
	s = session(t, v, st.Do(t, post(v, ct.Path(id, "complete"), b.Complete("spt_poor"))), http.StatusOK)
	if s["status"] != "ready_for_payment" || !hasMessage(s, "error:payment_declined:") {
		t.Fatalf("declined card: %v %v", s["status"], messageCodes(s))
	}
	s = session(t, v, st.Do(t, post(v, ct.Path(id, "complete"), b.Complete("spt_good"))), http.StatusOK)
	if s["status"] != "completed" {
		t.Fatalf("good token: %v %v", s["status"], messageCodes(s))
	}
	orderID := s["order"].(map[string]any)["id"].(string)
	var paid int
	for _, pi := range fake.Intents() {
		if pi.Status == "succeeded" {
			paid++
			if pi.Amount != 1998 || pi.Currency != "usd" || pi.Metadata["order_id"] != orderID || pi.Metadata["session_id"] != id ||
				!strings.HasPrefix(pi.Metadata["payment_key"], orderID+"_") {
				t.Fatalf("charged %+v", pi)
			}
		}
	}
	if paid != 1 {
		t.Fatalf("%d successful charges, want 1: %+v", paid, fake.Intents())
	}
	o, err := st.DB.Order(t.Context(), orderID)
	if err != nil || o.PaymentRef == "" || o.Status != bridge.OrderConfirmed {
		t.Fatalf("order %+v %v", o, err)
	}
}
