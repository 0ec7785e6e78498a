package checkouttest

import (
	"encoding/json"
	"strings"

	"github.com/acp-bridge/bridge/acp"
)

// Bodies writes request bodies in the shape of one API version, so one test
// flow runs at every version.
type Bodies struct{ V acp.Version }

// Item is an item id and quantity.
type Item struct {
	ID  string
	Qty int
}

func (b Bodies) atLeast(v acp.Version) bool { return !b.V.Before(v) }

func mustJSON(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// Create opens a session for items.
func (b Bodies) Create(items ...Item) string {
	list := make([]map[string]any, len(items))
	for i, it := range items {
		list[i] = map[string]any{"id": it.ID, "quantity": it.Qty}
	}
	if b.atLeast(acp.V20260130) {
		return mustJSON(map[string]any{"line_items": list, "currency": "usd",
			"capabilities": map[string]any{"interventions": map[string]any{"supported": []string{"3ds"}}}})
	}
	return mustJSON(map[string]any{"items": list})
}

// Items replaces the session's items (update).
func (b Bodies) Items(items ...Item) string {
	list := make([]map[string]any, len(items))
	for i, it := range items {
		list[i] = map[string]any{"id": it.ID, "quantity": it.Qty}
	}
	if b.atLeast(acp.V20260130) {
		return mustJSON(map[string]any{"line_items": list})
	}
	return mustJSON(map[string]any{"items": list})
}

// Address sets the shipping address (update). state "CA" in country US.
func (b Bodies) Address(country, state string) string {
	addr := map[string]any{"name": "Ada Lovelace", "line_one": "1 Infinite Loop", "city": "Cupertino",
		"state": state, "country": country, "postal_code": "95014"}
	if b.V == acp.V20250929 {
		return mustJSON(map[string]any{"fulfillment_address": addr,
			"buyer": map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}})
	}
	return mustJSON(map[string]any{"fulfillment_details": map[string]any{"name": "Ada Lovelace", "email": "ada@example.com",
		"phone_number": "+14155550100", "address": addr}})
}

// Select picks a fulfillment option for the given line ids (update).
func (b Bodies) Select(option string, lineIDs ...string) string {
	switch {
	case b.V == acp.V20250929:
		return mustJSON(map[string]any{"fulfillment_option_id": option})
	case b.atLeast(acp.V20260130):
		return mustJSON(map[string]any{"selected_fulfillment_options": []any{
			map[string]any{"type": "shipping", "option_id": option, "item_ids": lineIDs}}})
	default:
		return mustJSON(map[string]any{"selected_fulfillment_options": []any{
			map[string]any{"type": "shipping", "shipping": map[string]any{"option_id": option, "item_ids": lineIDs}}}})
	}
}

// Complete pays with a token (the sandbox reads its last four digits).
func (b Bodies) Complete(token string) string {
	return mustJSON(map[string]any{"payment_data": b.payment(token)})
}

func (b Bodies) payment(token string) map[string]any {
	if b.atLeast(acp.V20260130) {
		return map[string]any{"handler_id": "card", "instrument": map[string]any{"type": "card",
			"credential": map[string]any{"type": "spt", "token": token}}}
	}
	return map[string]any{"token": token, "provider": "stripe"}
}

// CompleteAuthenticated pays after 3-D Secure with the given outcome.
func (b Bodies) CompleteAuthenticated(token, outcome string) string {
	res := map[string]any{"outcome": outcome}
	if outcome == "authenticated" || outcome == "attempt_acknowledged" || outcome == "informational" {
		res["outcome_details"] = map[string]any{"three_ds_cryptogram": "YnJpZGdlLTNkcy1jcnlwdG9ncm0=", "electronic_commerce_indicator": "05",
			"transaction_id": "ds_tx_1", "version": "2.2.0"}
	}
	return mustJSON(map[string]any{"payment_data": b.payment(token), "authentication_result": res})
}

// Cancel ends a session, with an intent trace where the version has one.
func (b Bodies) Cancel(reason string) string {
	if b.V == acp.V20250929 || reason == "" {
		return ""
	}
	return mustJSON(map[string]any{"intent_trace": map[string]any{"reason_code": reason, "trace_summary": "changed mind"}})
}

// Path joins the checkout path parts.
func Path(parts ...string) string {
	return "/checkout_sessions" + strings.TrimSuffix("/"+strings.Join(parts, "/"), "/")
}
