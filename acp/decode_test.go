package acp

import (
	"encoding/json"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/internal/acpspec"
)

// decodeAny decodes body as the request kind, by the prefix of an example
// name ("create_…", "update_…", "complete_…", "cancel_…").
func decodeAny(v Version, kind string, body []byte) (any, *Error) {
	switch kind {
	case "create":
		return DecodeCreate(v, body)
	case "update":
		return DecodeUpdate(v, body)
	case "complete":
		return DecodeComplete(v, body)
	case "cancel":
		return DecodeCancel(v, body)
	}
	panic("unknown kind " + kind)
}

// exampleRequests returns the request examples of every version's
// examples.agentic_checkout.json, by version and name.
func exampleRequests(t testing.TB) map[Version]map[string]json.RawMessage {
	t.Helper()
	out := map[Version]map[string]json.RawMessage{}
	for _, v := range Versions {
		raw, err := fs.ReadFile(acpspec.FS(), path.Join("examples", string(v), "examples.agentic_checkout.json"))
		if err != nil {
			t.Fatal(err)
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal(raw, &all); err != nil {
			t.Fatal(err)
		}
		out[v] = map[string]json.RawMessage{}
		for name, ex := range all {
			if strings.HasSuffix(name, "_request") || strings.Contains(name, "_request_") {
				out[v][name] = ex
			}
		}
	}
	return out
}

func exampleKind(name string) string { kind, _, _ := strings.Cut(name, "_"); return kind }

// TestDecodeOfficialExamples decodes every official request example at its
// version and spot-checks the canonical values.
func TestDecodeOfficialExamples(t *testing.T) {
	johnSmith := &bridge.Buyer{Name: "John Smith", FirstName: "John", LastName: "Smith", Email: "johnsmith@mail.com", Phone: "15552003434"}
	sf := &bridge.Address{Name: "John Doe", Line1: "1234 Chat Road,", City: "San Francisco", Region: "CA", Country: "US", PostalCode: "94131"}
	johnDoe := &bridge.Buyer{Name: "John Doe", Email: "johndoe@example.com", Phone: "15551234567"}
	billing := &bridge.Address{Name: "John Smith", Line1: "1234 Chat Road,", City: "San Francisco", Region: "CA", Country: "US", PostalCode: "94131"}
	alice := &bridge.AuthResult{Outcome: "authenticated", Cryptogram: "ABCDEFGHIJKLMNOPQRSTUVWX==", ECI: "05", TransactionID: "dsTransId_12345", Version: "2.2.0"}
	option456 := "fulfillment_option_456"
	shippingCost := checkout.CancelRequest{ReasonCode: "shipping_cost", Summary: "User loves the item but isn't willing to pay $10 for standard shipping."}
	deferred := checkout.CancelRequest{ReasonCode: "timing_deferred", Summary: "User confirmed product fit and price but plans to purchase after next paycheck."}
	oldCreate := checkout.CreateRequest{Items: []checkout.Item{{ID: "item_123", Quantity: 1}}, ShipTo: sf, Contact: johnDoe}
	newCreate := checkout.CreateRequest{Items: []checkout.Item{{ID: "item_123", Quantity: 1}}, Currency: "USD", ShipTo: sf, Contact: johnDoe,
		Interventions: []string{"3ds", "address_verification"}}
	stripeComplete := checkout.CompleteRequest{Buyer: johnSmith, Payment: checkout.Payment{Provider: "stripe", Token: "spt_123", BillingAddress: billing}}
	handlerComplete := checkout.CompleteRequest{Buyer: johnSmith, Payment: checkout.Payment{HandlerID: "card_tokenized", Token: "spt_123", BillingAddress: billing}}

	want := map[Version]map[string]any{
		V20250929: {
			"update_checkout_session_request":   checkout.UpdateRequest{SelectedOption: &option456},
			"complete_checkout_session_request": stripeComplete,
		},
		V20251212: {
			"create_checkout_session_request":                               oldCreate,
			"create_checkout_session_request_with_first_touch_attribution":  checkout.CreateRequest{Items: []checkout.Item{{ID: "item_123", Quantity: 1}}},
			"update_checkout_session_request":                               checkout.UpdateRequest{SelectedOption: &option456},
			"complete_checkout_session_request":                             stripeComplete,
			"complete_checkout_session_request_with_last_touch_attribution": stripeComplete,
			"cancel_checkout_session_request":                               shippingCost,
			"cancel_checkout_session_request_timing_deferred":               deferred,
		},
		V20260116: {
			"create_checkout_session_request": oldCreate,
			"update_checkout_session_request": checkout.UpdateRequest{SelectedOption: &option456},
			"complete_session_with_authentication_result_request": checkout.CompleteRequest{
				Buyer:   &bridge.Buyer{Name: "Alice Example", FirstName: "Alice", LastName: "Example", Email: "alice@example.com"},
				Payment: checkout.Payment{Provider: "stripe", Token: "spt_3ds_token_001", BillingAddress: aliceAddress()},
				Auth:    alice,
			},
			"cancel_checkout_session_request": shippingCost,
		},
		V20260130: {
			"create_checkout_session_request":   newCreate,
			"update_checkout_session_request":   checkout.UpdateRequest{SelectedOption: &option456},
			"complete_checkout_session_request": handlerComplete,
			"complete_checkout_session_request_seller_backed": checkout.CompleteRequest{Buyer: johnSmith,
				Payment: checkout.Payment{HandlerID: "seller_pm_123", Token: "vt_01J8Z3WXYZ9ABC"}},
			"complete_session_with_authentication_result_request": checkout.CompleteRequest{
				Buyer:   &bridge.Buyer{Name: "Alice Example", FirstName: "Alice", LastName: "Example", Email: "alice@example.com"},
				Payment: checkout.Payment{HandlerID: "card_tokenized", Token: "spt_3ds_token_001", BillingAddress: aliceAddress()},
				Auth:    alice,
			},
		},
		V20260417: {
			"create_checkout_session_request": newCreate,
			"create_checkout_session_request_with_first_touch_attribution": checkout.CreateRequest{Items: []checkout.Item{{ID: "item_123", Quantity: 1}},
				Currency: "USD", Interventions: []string{"3ds", "address_verification"}},
			"update_checkout_session_request":                               checkout.UpdateRequest{SelectedOption: &option456},
			"complete_checkout_session_request":                             handlerComplete,
			"complete_checkout_session_request_with_last_touch_attribution": handlerComplete,
			"complete_session_with_denied_authentication_request": checkout.CompleteRequest{
				Buyer:   &bridge.Buyer{Name: "Marie Dupont", FirstName: "Marie", LastName: "Dupont", Email: "marie.dupont@example.fr"},
				Payment: checkout.Payment{HandlerID: "card_tokenized", Token: "spt_3ds_denied_001", BillingAddress: &bridge.Address{Name: "Marie Dupont", Line1: "12 Rue de la Paix", City: "Paris", Region: "IDF", Country: "FR", PostalCode: "75002"}},
				Auth:    &bridge.AuthResult{Outcome: "denied"},
			},
			"cancel_checkout_session_request_timing_deferred": deferred,
		},
	}

	examples := exampleRequests(t)
	checked := 0
	for _, v := range Versions {
		if len(examples[v]) < 3 {
			t.Fatalf("%s: only %d request examples", v, len(examples[v]))
		}
		for name, body := range examples[v] {
			got, err := decodeAny(v, exampleKind(name), body)
			if v == V20250929 && name == "create_checkout_session_request" {
				// The snapshot was edited after release to quantity 2.5
				// (number > 0); the bridge sells whole units. Known defect.
				if err == nil || err.Code != CodeInvalid || err.Param != "$.items[0].quantity" {
					t.Errorf("%s %s: %v, want invalid $.items[0].quantity", v, name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s: %v", v, name, err)
				continue
			}
			if w, ok := want[v][name]; ok {
				checked++
				if !reflect.DeepEqual(got, w) {
					t.Errorf("%s %s:\n got %+v\nwant %+v", v, name, got, w)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d examples spot-checked", checked)
	}
}

func aliceAddress() *bridge.Address {
	return &bridge.Address{Name: "Alice Example", Line1: "1 Example St", Line2: "Unit 2", City: "Oakland", Region: "CA", Country: "US", PostalCode: "94607"}
}

// TestDecodeErrors: errors name the path in the caller's own request.
func TestDecodeErrors(t *testing.T) {
	const (
		okItem = `{"id":"a","quantity":1}`
		caps   = `"currency":"usd","capabilities":{}`
		addr   = `{"name":"N","line_one":"L","city":"C","state":"S","country":"US","postal_code":"P"}`
		oldPay = `"payment_data":{"token":"t","provider":"stripe"}`
		newPay = `"payment_data":{"handler_id":"h","instrument":{"type":"card","credential":{"type":"spt","token":"t"}}}`
	)
	tests := []struct {
		v     Version
		kind  string
		body  string
		code  string
		param string
	}{
		// malformed
		{V20260417, "create", `{"line_items":`, CodeInvalidJSON, "$"},
		{V20260417, "create", `{"line_items":[]} {}`, CodeInvalidJSON, "$"},
		{V20260417, "create", `{"a":1,}`, CodeInvalidJSON, "$"},
		{V20260417, "update", `[]`, CodeInvalidType, "$"},
		{V20250929, "cancel", `"x"`, CodeInvalidType, "$"},
		{V20260417, "create", ``, CodeMissing, "$.line_items"},
		{V20250929, "create", `  `, CodeMissing, "$.items"},
		{"2024-01-01", "create", `{}`, "unsupported_api_version", ""},
		// create, 2025-09-29
		{V20250929, "create", `{"items":[` + okItem + `,{"id":"b","quantity":0}]}`, CodeInvalid, "$.items[1].quantity"},
		{V20250929, "create", `{"items":[{"id":"a","quantity":1.5}]}`, CodeInvalid, "$.items[0].quantity"},
		{V20250929, "create", `{"items":[{"id":"a"}]}`, CodeMissing, "$.items[0].quantity"},
		{V20250929, "create", `{"items":[{"id":"a","quantity":null}]}`, CodeMissing, "$.items[0].quantity"},
		{V20250929, "create", `{"items":[{"id":"a","quantity":"2"}]}`, CodeInvalidType, "$.items[0].quantity"},
		{V20250929, "create", `{"items":[{"id":" ","quantity":1}]}`, CodeInvalid, "$.items[0].id"},
		{V20250929, "create", `{"items":[{"quantity":1}]}`, CodeMissing, "$.items[0].id"},
		{V20250929, "create", `{"items":[{"id":7,"quantity":1}]}`, CodeInvalidType, "$.items[0].id"},
		{V20250929, "create", `{"items":[]}`, CodeInvalid, "$.items"},
		{V20250929, "create", `{"items":{}}`, CodeInvalidType, "$.items"},
		{V20250929, "create", `{"line_items":[{"id":"a"}]}`, CodeMissing, "$.items"},
		{V20250929, "create", `{"items":[` + okItem + `],"fulfillment_address":{"name":"x"}}`, CodeMissing, "$.fulfillment_address.line_one"},
		{V20250929, "create", `{"items":[` + okItem + `],"fulfillment_address":{"name":"x","line_one":"l","city":9}}`, CodeInvalidType, "$.fulfillment_address.city"},
		{V20250929, "create", `{"items":[` + okItem + `],"fulfillment_address":"x"}`, CodeInvalidType, "$.fulfillment_address"},
		{V20250929, "create", `{"items":[` + okItem + `],"buyer":{"first_name":"A","email":"a@b.c"}}`, CodeMissing, "$.buyer.last_name"},
		// create, 2025-12-12 … 2026-01-30
		{V20251212, "create", `{"items":[` + okItem + `],"fulfillment_details":{"address":{"name":"x","line_one":"l","city":"c","state":"s","country":"US"}}}`, CodeMissing, "$.fulfillment_details.address.postal_code"},
		{V20251212, "create", `{"items":[` + okItem + `],"fulfillment_details":{"email":false}}`, CodeInvalidType, "$.fulfillment_details.email"},
		{V20260116, "create", `{"items":[` + okItem + `,` + okItem + `,{"id":"c","quantity":2.25}]}`, CodeInvalid, "$.items[2].quantity"},
		{V20260130, "create", `{"line_items":[{"id":"a"}],"capabilities":{}}`, CodeMissing, "$.currency"},
		{V20260130, "create", `{"line_items":[{"id":"a"}],"currency":"dollars","capabilities":{}}`, CodeInvalid, "$.currency"},
		{V20260130, "create", `{"line_items":[{"id":"a"}],"currency":"usd"}`, CodeMissing, "$.capabilities"},
		{V20260130, "create", `{"items":[` + okItem + `],` + caps + `}`, CodeMissing, "$.line_items"},
		// create, 2026-04-17
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a"},{"id":"b","quantity":-1}]}`, CodeInvalid, "$.line_items[1].quantity"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a","quantity":2.5}]}`, CodeInvalid, "$.line_items[0].quantity"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a","quantity":1e7}]}`, CodeInvalid, "$.line_items[0].quantity"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a","quantity":1e999999999999}]}`, CodeInvalid, "$.line_items[0].quantity"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a","quantity":1e-999999999999}]}`, CodeInvalid, "$.line_items[0].quantity"},
		{V20260417, "create", `{` + caps + `,"line_items":[null]}`, CodeInvalidType, "$.line_items[0]"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a"}` + strings.Repeat(`,{"id":"a"}`, MaxLineItems) + `]}`, CodeInvalid, "$.line_items"},
		{V20260417, "create", `{"currency":"usd","capabilities":{"interventions":{"supported":[1]}},"line_items":[{"id":"a"}]}`, CodeInvalidType, "$.capabilities.interventions.supported[0]"},
		{V20260417, "create", `{"currency":"usd","capabilities":[],"line_items":[{"id":"a"}]}`, CodeInvalidType, "$.capabilities"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a"}],"buyer":{"full_name":"A B"}}`, CodeMissing, "$.buyer.email"},
		{V20260417, "create", `{` + caps + `,"line_items":[{"id":"a"}],"fulfillment_details":{"address":` + strings.Replace(addr, `"state":"S",`, ``, 1) + `}}`, CodeMissing, "$.fulfillment_details.address.state"},
		// update
		{V20250929, "update", `{"fulfillment_option_id":5}`, CodeInvalidType, "$.fulfillment_option_id"},
		{V20250929, "update", `{"fulfillment_option_id":""}`, CodeInvalid, "$.fulfillment_option_id"},
		{V20250929, "update", `{"items":[{"id":"a","quantity":1},{"id":"b","quantity":true}]}`, CodeInvalidType, "$.items[1].quantity"},
		{V20251212, "update", `{"selected_fulfillment_options":[{"type":"shipping"}]}`, CodeMissing, "$.selected_fulfillment_options[0].shipping"},
		{V20251212, "update", `{"selected_fulfillment_options":[{"type":"shipping","shipping":{"item_ids":[]}}]}`, CodeMissing, "$.selected_fulfillment_options[0].shipping.option_id"},
		{V20260116, "update", `{"selected_fulfillment_options":[{"type":"digital","digital":"x"}]}`, CodeInvalidType, "$.selected_fulfillment_options[0].digital"},
		{V20260116, "update", `{"selected_fulfillment_options":[{"type":"shipping","option_id":"o","item_ids":[]}]}`, CodeMissing, "$.selected_fulfillment_options[0].shipping"},
		{V20260116, "update", `{"items":[{"id":"a","quantity":3},{"id":"b"}]}`, CodeMissing, "$.items[1].quantity"},
		{V20260417, "update", `{"selected_fulfillment_options":[{"type":"shipping","item_ids":[]}]}`, CodeMissing, "$.selected_fulfillment_options[0].option_id"},
		{V20260417, "update", `{"selected_fulfillment_options":[7]}`, CodeInvalidType, "$.selected_fulfillment_options[0]"},
		{V20260417, "update", `{"selected_fulfillment_options":{}}`, CodeInvalidType, "$.selected_fulfillment_options"},
		{V20260417, "update", `{"line_items":[{"id":"a","quantity":0}]}`, CodeInvalid, "$.line_items[0].quantity"},
		// complete
		{V20250929, "complete", `{}`, CodeMissing, "$.payment_data"},
		{V20250929, "complete", `{"payment_data":[]}`, CodeInvalidType, "$.payment_data"},
		{V20250929, "complete", `{"payment_data":{"provider":"stripe"}}`, CodeMissing, "$.payment_data.token"},
		{V20250929, "complete", `{"payment_data":{"token":"","provider":"stripe"}}`, CodeInvalid, "$.payment_data.token"},
		{V20250929, "complete", `{"payment_data":{"token":"t"}}`, CodeMissing, "$.payment_data.provider"},
		{V20250929, "complete", `{"payment_data":{"token":"t","provider":"adyen"}}`, CodeInvalid, "$.payment_data.provider"},
		{V20250929, "complete", `{` + oldPay + `,"buyer":{"first_name":"A","last_name":"B"}}`, CodeMissing, "$.buyer.email"},
		{V20251212, "complete", `{"payment_data":{"token":"t","provider":"stripe","billing_address":{"name":"N"}}}`, CodeMissing, "$.payment_data.billing_address.line_one"},
		{V20251212, "complete", `{` + oldPay + `,"authentication_result":{"outcome":"authenticated","outcome_details":{"three_ds_cryptogram":"c"}}}`, CodeMissing, "$.authentication_result.outcome_details.electronic_commerce_indicator"},
		{V20251212, "complete", `{` + oldPay + `,"authentication_result":{"outcome":"authenticated"}}`, CodeMissing, "$.authentication_result.outcome_details"},
		{V20260116, "complete", `{` + newPay + `}`, CodeMissing, "$.payment_data.token"},
		{V20260116, "complete", `{` + oldPay + `,"authentication_result":{}}`, CodeMissing, "$.authentication_result.outcome"},
		{V20260130, "complete", `{` + oldPay + `}`, CodeMissing, "$.payment_data.handler_id"},
		{V20260417, "complete", `{"payment_data":{"purchase_order_number":"PO-1"}}`, CodeUnsupported, "$.payment_data.purchase_order_number"},
		{V20260417, "complete", `{"payment_data":{"handler_id":"h","instrument":{"type":"card","credential":{"type":"spt"}}}}`, CodeMissing, "$.payment_data.instrument.credential.token"},
		{V20260417, "complete", `{"payment_data":{"handler_id":"h","instrument":{"type":"card","credential":{"type":"spt","token":5}}}}`, CodeInvalidType, "$.payment_data.instrument.credential.token"},
		{V20260417, "complete", `{"payment_data":{"handler_id":"h","instrument":{"type":"card"}}}`, CodeMissing, "$.payment_data.instrument.credential"},
		{V20260417, "complete", `{"payment_data":{"handler_id":"h"}}`, CodeMissing, "$.payment_data.instrument"},
		{V20260417, "complete", `{"payment_data":{"handler_id":"","instrument":{}}}`, CodeInvalid, "$.payment_data.handler_id"},
		{V20260417, "complete", `{` + newPay + `,"authentication_result":{"outcome":"authenticated"}}`, CodeMissing, "$.authentication_result.outcome_details"},
		{V20260417, "complete", `{` + newPay + `,"authentication_result":{"outcome":"maybe"}}`, CodeInvalid, "$.authentication_result.outcome"},
		// cancel
		{V20260417, "cancel", `{"intent_trace":"x"}`, CodeInvalidType, "$.intent_trace"},
		{V20251212, "cancel", `{"intent_trace":{"reason_code":5}}`, CodeInvalidType, "$.intent_trace.reason_code"},
		{V20260417, "cancel", `{"intent_trace":{"reason_code":"other","trace_summary":[]}}`, CodeInvalidType, "$.intent_trace.trace_summary"},
		{V20260417, "cancel", `{"intent_trace":{"reason_code":"other","metadata":{"ok":1,"nested_object":{}}}}`, CodeInvalidType, "$.intent_trace.metadata.nested_object"},
		{V20260417, "cancel", `{"intent_trace":{"reason_code":"other","metadata":{"a b":[],"z":{}}}}`, CodeInvalidType, "$.intent_trace.metadata['a b']"},
	}
	for _, tt := range tests {
		_, err := decodeAny(tt.v, tt.kind, []byte(tt.body))
		if err == nil {
			t.Errorf("%s %s %s: no error, want %s at %s", tt.v, tt.kind, tt.body, tt.code, tt.param)
			continue
		}
		if err.Type != InvalidRequest || err.Code != tt.code || err.Param != tt.param || err.Message == "" {
			t.Errorf("%s %s %s:\n got %s %q (%s)\nwant %s %q", tt.v, tt.kind, tt.body, err.Code, err.Param, err.Message, tt.code, tt.param)
		}
		if raw, encErr := err.Encode(tt.v); tt.v.index() >= 0 && (encErr != nil || acpspec.Validate(string(tt.v), checkoutSchema, "Error", raw) != nil) {
			t.Errorf("%s: error %s does not validate", tt.v, raw)
		}
	}
}

func TestDecodeErrorMessages(t *testing.T) {
	tests := []struct {
		v    Version
		body string
		want string
	}{
		{V20250929, `{"items":[{"id":"a","quantity":2.5}]}`, "items[0].quantity must be a whole number, not 2.5"},
		{V20260417, `{"currency":"usd","capabilities":{},"line_items":[{"id":"a","quantity":"1"}]}`, "line_items[0].quantity must be a number, not a string"},
		{V20260417, `{"currency":"usd","capabilities":{}}`, "line_items is required"},
		{V20260417, `{`, "the request body is not valid JSON: it ends too early"},
	}
	for _, tt := range tests {
		_, err := DecodeCreate(tt.v, []byte(tt.body))
		if err == nil || err.Message != tt.want {
			t.Errorf("%s %s: %v, want message %q", tt.v, tt.body, err, tt.want)
		}
	}
}

func TestDecodeAccepts(t *testing.T) {
	// Whole numbers however spelled; missing quantity since 2026-01-30 is 1.
	for _, q := range []string{"2", "2.0", "2e0", "20e-1", "0.2E1", "2.000000000000000000000"} {
		r, err := DecodeCreate(V20250929, []byte(`{"items":[{"id":"a","quantity":`+q+`}]}`))
		if err != nil || r.Items[0].Quantity != 2 {
			t.Errorf("quantity %s: %v %v", q, r.Items, err)
		}
	}
	r, err := DecodeCreate(V20260130, []byte(`{"currency":"EUR","capabilities":{"interventions":{"supported":["3ds","telepathy","3ds"]}},"line_items":[{"id":"a"},{"id":"b","quantity":4}],
		"buyer":{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","unknown":1},"fulfillment_details":{"name":null},"extra":[1,2]}`))
	want := checkout.CreateRequest{Items: []checkout.Item{{ID: "a", Quantity: 1}, {ID: "b", Quantity: 4}}, Currency: "EUR",
		Buyer: &bridge.Buyer{Name: "Ada Lovelace", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com"}, Interventions: []string{"3ds"}}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Errorf("create = %+v, %v\nwant %+v", r, err, want)
	}
	// Capabilities without interventions: a non-nil empty list.
	r, err = DecodeCreate(Latest, []byte(`{"currency":"usd","capabilities":{},"line_items":[{"id":"a"}]}`))
	if err != nil || r.Interventions == nil || len(r.Interventions) != 0 {
		t.Errorf("interventions = %#v, %v", r.Interventions, err)
	}
	// Fields of newer versions are unknown to older ones and ignored.
	u, err := DecodeUpdate(V20250929, []byte(`{"selected_fulfillment_options":[{"type":"shipping","option_id":"x","item_ids":[]}],"fulfillment_details":{"name":5}}`))
	if err != nil || !reflect.DeepEqual(u, checkout.UpdateRequest{}) {
		t.Errorf("2025-09-29 update with newer fields = %+v, %v", u, err)
	}
	c, err := DecodeComplete(V20250929, []byte(`{"payment_data":{"token":"t","provider":"stripe"},"authentication_result":"junk"}`))
	if err != nil || c.Auth != nil || c.Payment.Token != "t" {
		t.Errorf("2025-09-29 complete = %+v, %v", c, err)
	}
	// 2026-01-16's own outcome names; no details required there.
	c, err = DecodeComplete(V20260116, []byte(`{"payment_data":{"token":"t","provider":"stripe"},"authentication_result":{"outcome":"attempt"}}`))
	if err != nil || c.Auth == nil || c.Auth.Outcome != "attempt_acknowledged" {
		t.Errorf("2026-01-16 outcome = %+v, %v", c.Auth, err)
	}
	// An empty update changes nothing; an empty selection list selects nothing.
	for _, body := range []string{``, `{}`, `{"selected_fulfillment_options":[]}`, `{"buyer":null}`} {
		u, err := DecodeUpdate(Latest, []byte(body))
		if err != nil || !reflect.DeepEqual(u, checkout.UpdateRequest{}) {
			t.Errorf("update %q = %+v, %v", body, u, err)
		}
	}
	u, err = DecodeUpdate(Latest, []byte(`{"line_items":[]}`))
	if err != nil || u.Items == nil || len(u.Items) != 0 {
		t.Errorf("update with no items = %#v, %v", u.Items, err)
	}
	// Address country codes are upper-cased; a 2025-09-29 address lands in ShipTo.
	r, err = DecodeCreate(V20250929, []byte(`{"items":[{"id":"a","quantity":1}],"fulfillment_address":{"name":"N","line_one":"L","city":"C","state":"","country":"de","postal_code":"1"}}`))
	if err != nil || r.ShipTo == nil || r.ShipTo.Country != "DE" || r.Contact != nil {
		t.Errorf("2025-09-29 address = %+v %+v, %v", r.ShipTo, r.Contact, err)
	}
}

func TestDecodeCancel(t *testing.T) {
	long := strings.Repeat("é", maxTraceSummary+10)
	tests := []struct {
		v    Version
		body string
		want checkout.CancelRequest
	}{
		{V20260417, ``, checkout.CancelRequest{}},
		{V20260417, `{}`, checkout.CancelRequest{}},
		{V20260417, `{"intent_trace":null}`, checkout.CancelRequest{}},
		{V20260417, `{"intent_trace":{"reason_code":"price_sensitivity"}}`, checkout.CancelRequest{ReasonCode: "price_sensitivity"}},
		{V20260417, `{"intent_trace":{"reason_code":"invented_later"}}`, checkout.CancelRequest{ReasonCode: "other"}},
		{V20260417, `{"intent_trace":{"trace_summary":"no code"}}`, checkout.CancelRequest{ReasonCode: "other", Summary: "no code"}},
		{V20260417, `{"intent_trace":{"reason_code":"comparison","trace_summary":"` + long + `","metadata":{"a":1,"b":"x","c":true,"d":null}}}`,
			checkout.CancelRequest{ReasonCode: "comparison", Summary: long[:2*maxTraceSummary]}},
		{V20250929, `{"intent_trace":"not known in 2025-09-29"}`, checkout.CancelRequest{}},
	}
	for _, tt := range tests {
		got, err := DecodeCancel(tt.v, []byte(tt.body))
		if err != nil || got != tt.want {
			t.Errorf("%s %.60s: %+v, %v; want %+v", tt.v, tt.body, got, err, tt.want)
		}
	}
}

func TestMemberPath(t *testing.T) {
	tests := map[string]string{
		"plain":  "$.m.plain",
		"_x9":    "$.m._x9",
		"9lives": "$.m['9lives']",
		"a b":    "$.m['a b']",
		"it's":   `$.m['it\'s']`,
		"tab\t":  `$.m['tab\t']`,
		"\x01":   `$.m['\u0001']`,
		"ünï":    "$.m.ünï",
		"":       "$.m['']",
	}
	for in, want := range tests {
		if got := memberPath("$.m", in); got != want {
			t.Errorf("memberPath(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSplitParam(t *testing.T) {
	for _, p := range []string{"$.line_items[0].item.quantity", "$.buyer", "$.a[10][2].b"} {
		segs, ok := splitParam(p)
		if !ok || joinParam(segs) != p {
			t.Errorf("splitParam(%s) = %v %v", p, segs, ok)
		}
	}
	for _, p := range []string{"", "$", "line_items", "$.a[x]", "$..a", "$['a']", "$.a[]"} {
		if segs, ok := splitParam(p); ok {
			t.Errorf("splitParam(%q) = %v, want not understood", p, segs)
		}
	}
	if !slices.Equal(must(splitParam("$.x[3].y")), []string{"x", "[3]", "y"}) {
		t.Error("segments")
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("not ok")
	}
	return v
}
