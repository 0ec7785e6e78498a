package acp

import (
	"slices"
	"strings"

	"github.com/acp-bridge/bridge"
)

// downgrades[i] turns a session document of Versions[i+1] into one of
// Versions[i]. Each step reads only the newer document, never the domain
// session: whatever an older version shows must be derivable from the
// version after it.
var downgrades = [...]func(*wireSession){
	to20250929, // from 2025-12-12
	to20251212, // from 2026-01-16
	to20260116, // from 2026-01-30
	to20260130, // from 2026-04-17
}

// to20260130: 2026-04-17 → 2026-01-30.
func to20260130(w *wireSession) {
	w.Protocol.Version = string(V20260130)
	for i := range w.Capabilities.Payment.Handlers {
		w.Capabilities.Payment.Handlers[i].DisplayName = ""
	}
	if d := w.FulfillmentDetails; d != nil && d.Address != nil {
		d.Address.Company = ""
	}
	for i := range w.Messages {
		w.Messages[i].Resolution = ""
	}
	if w.Order != nil {
		w.Order.Type = ""
	}
	// AuthenticationMetadata requires the buyer's browser (channel) until
	// 2026-04-17: the merchant cannot fill it, so no 3DS state before.
	downgradeAuth(w)
	keepTotals(w, func(t string) bool { return t != "amount_refunded" })
	rewriteParams(w, func(p []string) []string {
		if at(p, 0, "fulfillment_details") && at(p, 1, "address") && at(p, 2, "company") {
			return p[:2]
		}
		return p
	})
}

// to20260116: 2026-01-30 → 2026-01-16, the big break: capabilities become
// payment_provider, line amounts flat fields, selections nested, and the
// status, message and link enums shrink.
func to20260116(w *wireSession) {
	w.Protocol = nil
	w.CreatedAt, w.UpdatedAt, w.ExpiresAt = "", "", ""
	w.PaymentProvider = paymentProvider(w.Capabilities)
	w.Capabilities = nil
	if st, ok := legacyStatus[w.Status]; ok {
		w.Status = st
	}
	w.Buyer = legacyBuyer(w.Buyer)
	for i := range w.LineItems {
		l := &w.LineItems[i]
		l.Item.Quantity, l.Quantity = l.Quantity, 0
		l.BaseAmount = ptr(amount(l.Totals, "items_base_amount", 0))
		l.Discount = ptr(amount(l.Totals, "items_discount", 0))
		l.Tax = ptr(amount(l.Totals, "tax", 0))
		l.Total = ptr(amount(l.Totals, "total", 0))
		l.Subtotal = ptr(amount(l.Totals, "subtotal", *l.Total-*l.Tax))
		l.Totals, l.ProductID, l.VariantID = nil, "", ""
	}
	for i := range w.SelectedOptions {
		s := &w.SelectedOptions[i]
		name := &wireSelName{OptionID: s.OptionID, ItemIDs: *s.ItemIDs}
		if s.Type == "digital" {
			s.Digital = name
		} else {
			s.Shipping = name
		}
		s.OptionID, s.ItemIDs = "", nil
	}
	msgs := w.Messages[:0]
	for _, m := range w.Messages {
		switch m.Type {
		case "warning":
			m.Type, m.Code = "info", "" // no warnings before 2026-01-30
		case "error":
			if c, ok := legacyErrorCode[m.Code]; ok {
				m.Code = c
			} else if !slices.Contains(legacyErrorCodes, m.Code) {
				m.Code = bridge.MsgInvalid
			}
		}
		msgs = append(msgs, m)
	}
	w.Messages = msgs
	w.Links = slices.DeleteFunc(w.Links, func(l wireLink) bool {
		return l.Type != "terms_of_use" && l.Type != "privacy_policy" && l.Type != "return_policy"
	})
	keepTotals(w, func(t string) bool { return !slices.Contains([]string{"gift_wrap", "tip", "store_credit"}, t) })
	rewriteParams(w, func(p []string) []string {
		switch {
		case at(p, 0, "line_items") && len(p) > 2:
			switch p[2] {
			case "quantity":
				return []string{p[0], p[1], "item", "quantity"}
			case "item", "name", "description", "images", "unit_amount", "disclosures", "custom_attributes", "marketplace_seller_details":
				return p
			}
			return p[:2] // totals, product_id, … are gone
		case at(p, 0, "selected_fulfillment_options") && len(p) > 2:
			return p[:2] // the nesting depends on the type
		case at(p, 0, "buyer") && len(p) > 1 && !slices.Contains([]string{"first_name", "last_name", "email", "phone_number"}, p[1]):
			return p[:1]
		case at(p, 0, "capabilities"), at(p, 0, "protocol"), at(p, 0, "created_at"), at(p, 0, "updated_at"), at(p, 0, "expires_at"):
			return nil
		}
		return p
	})
}

// to20251212: 2026-01-16 → 2025-12-12: fulfillment options go back to
// flat amounts; no merchant_id on the provider.
func to20251212(w *wireSession) {
	if w.PaymentProvider != nil {
		w.PaymentProvider.MerchantID = ""
	}
	for i := range w.FulfillmentOptions {
		o := &w.FulfillmentOptions[i]
		o.Subtitle, o.Description = o.Description, ""
		o.Tax = ptr(amount(o.Totals, "tax", 0))
		o.Total = ptr(amount(o.Totals, "total", 0))
		o.Subtotal = ptr(amount(o.Totals, "subtotal", *o.Total-*o.Tax))
		o.Totals = nil
	}
	rewriteParams(w, func(p []string) []string {
		if at(p, 0, "fulfillment_options") && len(p) > 2 && (p[2] == "totals" || p[2] == "description") ||
			at(p, 0, "line_items") && at(p, 2, "description") || at(p, 0, "payment_provider") && at(p, 1, "merchant_id") {
			return p[:min(len(p), 2)]
		}
		return p
	})
}

// to20250929: 2025-12-12 → 2025-09-29: one address instead of details, one
// option id instead of selections, no display fields on lines, payment
// methods as plain strings.
func to20250929(w *wireSession) {
	downgradeAuth(w)
	if p := w.PaymentProvider; p != nil {
		p.SupportedPaymentMethods = []string{"card"}
	}
	if d := w.FulfillmentDetails; d != nil {
		w.FulfillmentAddress = d.Address
	}
	w.FulfillmentDetails = nil
	for _, s := range w.SelectedOptions {
		if n := cmp(s.Shipping, s.Digital); n != nil {
			w.FulfillmentOptionID = n.OptionID
			break
		}
	}
	w.SelectedOptions = nil
	for i := range w.LineItems {
		l := &w.LineItems[i]
		l.Name, l.Images, l.UnitAmount = "", nil, nil
	}
	// 2025-12-12 makes subtotal and tax optional; 2025-09-29 requires them.
	for i := range w.FulfillmentOptions {
		o := &w.FulfillmentOptions[i]
		if o.Tax == nil {
			o.Tax = ptr(0)
		}
		if o.Subtotal == nil {
			o.Subtotal = ptr(*o.Total - *o.Tax)
		}
	}
	// The return policy becomes the shop's policies (one link of that type).
	if i := slices.IndexFunc(w.Links, func(l wireLink) bool { return l.Type == "return_policy" }); i >= 0 {
		w.Links[i].Type = "seller_shop_policies"
	}
	w.Links = slices.DeleteFunc(w.Links, func(l wireLink) bool { return l.Type == "return_policy" })
	rewriteParams(w, func(p []string) []string {
		switch {
		case at(p, 0, "fulfillment_details"):
			if at(p, 1, "address") {
				return append([]string{"fulfillment_address"}, p[2:]...)
			}
			return []string{"fulfillment_address"}
		case at(p, 0, "selected_fulfillment_options"):
			return []string{"fulfillment_option_id"}
		case at(p, 0, "line_items") && len(p) > 2 && p[2] != "item":
			return p[:2]
		case at(p, 0, "authentication_metadata"):
			return nil
		}
		return p
	})
}

func cmp(a, b *wireSelName) *wireSelName {
	if a != nil {
		return a
	}
	return b
}

// legacyStatus maps the 2026-01-30 status enum onto 2025-12-12's and
// 2026-01-16's (2025-09-29's lacks only authentication_required, which
// never gets past to20260130).
var legacyStatus = map[string]string{
	"incomplete":              "not_ready_for_payment",
	"not_ready_for_payment":   "not_ready_for_payment",
	"requires_escalation":     "not_ready_for_payment",
	"authentication_required": "ready_for_payment",
	"ready_for_payment":       "ready_for_payment",
	"pending_approval":        "in_progress",
	"complete_in_progress":    "in_progress",
	"in_progress":             "in_progress",
	"completed":               "completed",
	"canceled":                "canceled",
	"expired":                 "canceled",
}

// legacyErrorCodes is the MessageError code enum up to 2026-01-16;
// legacyErrorCode maps the newer codes that have a close older one, the
// rest become "invalid" (the message's param and content still say what).
var (
	legacyErrorCodes = []string{"missing", "invalid", "out_of_stock", "payment_declined", "requires_sign_in", "requires_3ds"}
	legacyErrorCode  = map[string]string{
		"low_stock":             "out_of_stock", // as an error: not enough stock for the quantity
		"quantity_exceeded":     "out_of_stock", // the engine's limit is the stock
		"intervention_required": "requires_3ds", // the only intervention the bridge requires
	}
)

// legacyCardNetworks is the PaymentMethod.supported_card_networks enum of
// 2025-12-12 and 2026-01-16.
var legacyCardNetworks = []string{"amex", "discover", "mastercard", "visa"}

// paymentProvider derives 2026-01-16's payment_provider from the first
// handler. The provider enum is only "stripe" and merchant_id is required,
// so a handler without them gives none (the field is optional).
func paymentProvider(c *wireCapabilities) *wirePaymentProvider {
	if c == nil || c.Payment == nil || len(c.Payment.Handlers) == 0 {
		return nil
	}
	h := c.Payment.Handlers[0]
	if h.PSP != "stripe" || h.Config.MerchantID == "" {
		return nil
	}
	networks := []string{}
	for _, b := range h.Config.AcceptedBrands {
		if b = strings.ToLower(b); slices.Contains(legacyCardNetworks, b) && !slices.Contains(networks, b) {
			networks = append(networks, b)
		}
	}
	return &wirePaymentProvider{Provider: "stripe", MerchantID: h.Config.MerchantID,
		SupportedPaymentMethods: []wirePaymentMethod{{Type: "card", SupportedCardNetworks: networks}}}
}

// legacyBuyer is the Buyer up to 2026-01-16, which requires first_name,
// last_name and email: a full name alone is split at its last space; a
// buyer that still lacks a part is left out.
func legacyBuyer(b *wireBuyer) *wireBuyer {
	if b == nil {
		return nil
	}
	if b.FirstName == "" || b.LastName == "" {
		name := strings.TrimSpace(b.FullName)
		i := strings.LastIndexByte(name, ' ')
		if i < 0 {
			return nil
		}
		b.FirstName, b.LastName = strings.TrimSpace(name[:i]), name[i+1:]
	}
	b.FullName = ""
	return b
}

// downgradeAuth takes a session out of authentication_required for a
// version that cannot carry its metadata: the RFC says the status MUST
// come with authentication_metadata. The session is then payable as far as
// the agent can tell (like a declined card, it may pay with another) and an
// error message with code requires_3ds says why this card cannot; the
// engine normally adds that message itself.
func downgradeAuth(w *wireSession) {
	w.AuthenticationMetadata = nil
	if w.Status != string(bridge.StatusAuthRequired) {
		return
	}
	w.Status = string(bridge.StatusReady)
	for _, m := range w.Messages {
		if m.Type == "error" && m.Code == bridge.MsgRequires3DS {
			return
		}
	}
	w.Messages = append(w.Messages, wireMessage{Type: "error", Code: bridge.MsgRequires3DS, ContentType: "plain",
		Content: "This card needs 3-D Secure authentication, which this checkout cannot complete. Please pay with another card."})
}

// amount returns the amount of the first total of type t, or def.
func amount(ts []wireTotal, t string, def int64) int64 {
	for _, x := range ts {
		if x.Type == t {
			return x.Amount
		}
	}
	return def
}

// keepTotals drops, everywhere in the session, the totals whose type keep
// refuses.
func keepTotals(w *wireSession, keep func(string) bool) {
	drop := func(t wireTotal) bool { return !keep(t.Type) }
	w.Totals = slices.DeleteFunc(w.Totals, drop)
	for i := range w.LineItems {
		w.LineItems[i].Totals = slices.DeleteFunc(w.LineItems[i].Totals, drop)
	}
	for i := range w.FulfillmentOptions {
		w.FulfillmentOptions[i].Totals = slices.DeleteFunc(w.FulfillmentOptions[i].Totals, drop)
	}
}

// rewriteParams passes each message's param, as path segments ("$.a[0].b"
// → a, [0], b), through f; nil drops the param (it is optional
// everywhere). Params that are not simple paths are left alone.
func rewriteParams(w *wireSession, f func([]string) []string) {
	for i := range w.Messages {
		m := &w.Messages[i]
		segs, ok := splitParam(m.Param)
		if !ok {
			continue
		}
		if segs = f(segs); segs == nil {
			m.Param = ""
		} else {
			m.Param = joinParam(segs)
		}
	}
}

// at reports whether segment i of p is s.
func at(p []string, i int, s string) bool { return i < len(p) && p[i] == s }

// splitParam splits "$.line_items[0].quantity" into line_items, [0],
// quantity. Only dotted names and numeric indexes are understood.
func splitParam(p string) ([]string, bool) {
	if !strings.HasPrefix(p, "$") || p == "$" {
		return nil, false
	}
	var segs []string
	rest := p[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			n := strings.IndexAny(rest[1:], ".[")
			if n < 0 {
				n = len(rest) - 1
			}
			if n == 0 {
				return nil, false
			}
			segs, rest = append(segs, rest[1:1+n]), rest[1+n:]
		case '[':
			n := strings.IndexByte(rest, ']')
			if n < 2 || strings.Trim(rest[1:n], "0123456789") != "" {
				return nil, false
			}
			segs, rest = append(segs, rest[:n+1]), rest[n+1:]
		default:
			return nil, false
		}
	}
	return segs, true
}

func joinParam(segs []string) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, s := range segs {
		if !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
