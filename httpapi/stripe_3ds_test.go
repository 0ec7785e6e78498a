package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/internal/acpspec"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/acp-bridge/bridge/payments/stripe"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
)

// 3-D Secure through the Stripe provider at 2026-04-17, against the fake
// Stripe server: the charge needs action → the session is
// authentication_required with the configured acquirer details and the
// card brand's directory server → the agent completes again with its
// authentication_result → the bridge imports it into the same
// PaymentIntent: authenticated pays (one succeeded PaymentIntent, the
// order made), denied is a decline in words and the PaymentIntent is left
// as it is. Every answer is checked against the official schemas.
func TestCheckoutWithStripe3DS(t *testing.T) {
	const cryptogram = "AJkBBkhgQQAAAE4gSEJydQAAAAA=" // 20 bytes, base64
	tests := []struct {
		name       string
		outcome    string
		wantStatus string
		wantPI     string
	}{
		{"authenticated", "authenticated", "completed", "succeeded"},
		{"denied", "denied", "ready_for_payment", "requires_action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := stripefake.New()
			t.Cleanup(fake.Close)
			fake.AddToken(stripefake.Token{ID: "spt_3ds", Currency: "usd", MaxAmount: 100000, ExpiresAt: time.Now().Add(time.Hour), Brand: "mastercard"})
			fake.Script("spt_3ds", stripefake.Script{Outcome: stripefake.RequiresAction})
			provider, err := stripe.New(stripe.Config{SecretKey: stripefake.DefaultSecretKey, APIBase: fake.URL, MaxRetryTime: 2 * time.Second,
				ThreeDS: &stripe.ThreeDS{AcquirerBIN: "545454", AcquirerCountry: "US", AcquirerMerchantID: "acq_m_1", MerchantName: "Demo Shop"}})
			if err != nil {
				t.Fatal(err)
			}
			st := ct.New(t, ct.Options{Payments: provider})
			v := acp.V20260417
			b := ct.Bodies{V: v}
			s := session(t, v, st.Do(t, post(v, ct.Path(), b.Create(ct.Item{ID: "ebook", Qty: 1}))), http.StatusCreated)
			id := s["id"].(string)

			// The charge needs 3-D Secure.
			s = session(t, v, st.Do(t, post(v, ct.Path(id, "complete"), b.Complete("spt_3ds"))), http.StatusOK)
			if s["status"] != "authentication_required" || !hasMessage(s, "error:requires_3ds:") {
				t.Fatalf("after the first complete: %v %v", s["status"], messageCodes(s))
			}
			meta, _ := json.Marshal(s["authentication_metadata"])
			const wantMeta = `{"acquirer_details":{"acquirer_bin":"545454","acquirer_country":"US","acquirer_merchant_id":"acq_m_1","merchant_name":"Demo Shop"},"directory_server":"mastercard"}`
			if string(meta) != wantMeta {
				t.Fatalf("authentication_metadata = %s, want %s", meta, wantMeta)
			}
			intents := fake.Intents()
			if len(intents) != 1 || intents[0].Status != "requires_action" {
				t.Fatalf("PaymentIntents after the challenge: %+v", intents)
			}
			pi := intents[0]

			// Without the result: the protocol's requires_3ds error.
			protoError(t, v, st.Do(t, post(v, ct.Path(id, "complete"), b.Complete("spt_3ds"))), http.StatusBadRequest, "requires_3ds")

			// With it.
			body := completeWith3DS(t, v, "spt_3ds", tt.outcome, cryptogram)
			s = session(t, v, st.Do(t, post(v, ct.Path(id, "complete"), body)), http.StatusOK)
			if s["status"] != tt.wantStatus {
				t.Fatalf("after authentication: %v %v", s["status"], messageCodes(s))
			}
			intents = fake.Intents()
			if len(intents) != 1 || intents[0].ID != pi.ID || intents[0].Status != tt.wantPI {
				t.Fatalf("PaymentIntents: %+v, want the one %s", intents, tt.wantPI)
			}
			confirms := fake.CallsTo(http.MethodPost, "/v1/payment_intents/"+pi.ID+"/confirm")
			if tt.outcome != "authenticated" {
				if len(confirms) != 0 || !hasMessage(s, "error:payment_declined:") {
					t.Fatalf("denied: confirms %+v, messages %v", confirms, messageCodes(s))
				}
				return
			}
			if len(confirms) != 1 || !strings.HasSuffix(confirms[0].IdempotencyKey, "_3ds1") {
				t.Fatalf("confirms = %+v, want one under the order's _3ds1 key", confirms)
			}
			want := map[string]string{"cryptogram": cryptogram, "electronic_commerce_indicator": "02",
				"transaction_id": "f38e6948-5388-41a6-bca4-b49723c19437", "version": "2.2.0"}
			for k, w := range want {
				if intents[0].ThreeDSecure[k] != w {
					t.Errorf("imported %s = %q, want %q", k, intents[0].ThreeDSecure[k], w)
				}
			}
			orderID := s["order"].(map[string]any)["id"].(string)
			o, err := st.DB.Order(t.Context(), orderID)
			if err != nil || o.PaymentRef != pi.ID || o.Status != bridge.OrderConfirmed || intents[0].AmountReceived != total(t, s, "total") {
				t.Fatalf("order %+v %v; PaymentIntent %+v", o, err, intents[0])
			}
		})
	}
}

// completeWith3DS is a 2026-04-17 complete carrying an authentication
// result, itself checked against the official request schema.
func completeWith3DS(t *testing.T, v acp.Version, token, outcome, cryptogram string) string {
	t.Helper()
	res := map[string]any{"outcome": outcome}
	if outcome == "authenticated" {
		res["outcome_details"] = map[string]any{"three_ds_cryptogram": cryptogram, "electronic_commerce_indicator": "02",
			"transaction_id": "f38e6948-5388-41a6-bca4-b49723c19437", "version": "2.2.0"}
	}
	raw, err := json.Marshal(map[string]any{
		"payment_data": map[string]any{"handler_id": "card", "instrument": map[string]any{"type": "card",
			"credential": map[string]any{"type": "spt", "token": token}}},
		"authentication_result": res,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := acpspec.Validate(string(v), schemaFile, "CheckoutSessionCompleteRequest", raw); err != nil {
		t.Fatalf("the test's request is not a valid %s complete: %v\n%s", v, err, raw)
	}
	return string(raw)
}
