package acp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
)

// Limits of one request.
const (
	// MaxLineItems caps the items of a create or update.
	MaxLineItems = 100
	// MaxQuantity caps one item's quantity, keeping every amount far from
	// int64 overflow.
	MaxQuantity = 1_000_000
	// maxTraceSummary is IntentTrace.trace_summary's maxLength; longer
	// summaries are cut rather than refused (a cancel must not fail on it).
	maxTraceSummary = 500
)

// Error codes of request decoding (type invalid_request).
const (
	CodeInvalidJSON = "invalid_json" // the body is not one JSON value
	CodeInvalidType = "invalid_type" // a value has the wrong JSON type
	CodeMissing     = "missing"      // a required field is absent or null
	CodeInvalid     = "invalid"      // a value is out of range or not allowed
	CodeUnsupported = "unsupported"  // valid ACP the bridge does not support
)

// DecodeCreate decodes the body of POST /checkout_sessions sent at version v.
func DecodeCreate(v Version, body []byte) (checkout.CreateRequest, *Error) {
	d, m, err := newDecoder(v, body)
	if err != nil {
		return checkout.CreateRequest{}, err
	}
	var r checkout.CreateRequest
	if r.Items, err = d.items(m, true); err != nil {
		return checkout.CreateRequest{}, err
	}
	if r.Currency, err = d.currency(m); err != nil {
		return checkout.CreateRequest{}, err
	}
	if r.Interventions, err = d.capabilities(m); err != nil {
		return checkout.CreateRequest{}, err
	}
	if r.Buyer, err = d.buyer(m); err != nil {
		return checkout.CreateRequest{}, err
	}
	if r.ShipTo, r.Contact, err = d.fulfillmentDetails(m); err != nil {
		return checkout.CreateRequest{}, err
	}
	return r, nil
}

// DecodeUpdate decodes the body of POST /checkout_sessions/{id} sent at
// version v. Of selected_fulfillment_options only the first entry's
// option_id is read: the bridge ships all lines with one option.
func DecodeUpdate(v Version, body []byte) (checkout.UpdateRequest, *Error) {
	d, m, err := newDecoder(v, body)
	if err != nil {
		return checkout.UpdateRequest{}, err
	}
	var r checkout.UpdateRequest
	if r.Items, err = d.items(m, false); err != nil {
		return checkout.UpdateRequest{}, err
	}
	if r.Buyer, err = d.buyer(m); err != nil {
		return checkout.UpdateRequest{}, err
	}
	if r.ShipTo, r.Contact, err = d.fulfillmentDetails(m); err != nil {
		return checkout.UpdateRequest{}, err
	}
	sel, err := d.array(m, "selected_fulfillment_options", "$.selected_fulfillment_options", false)
	if err != nil {
		return checkout.UpdateRequest{}, err
	}
	if len(sel) > 0 {
		o, err := d.asObject(sel[0], "$.selected_fulfillment_options[0]")
		if err != nil {
			return checkout.UpdateRequest{}, err
		}
		id, err := d.nonEmpty(o, "option_id", "$.selected_fulfillment_options[0].option_id")
		if err != nil {
			return checkout.UpdateRequest{}, err
		}
		r.SelectedOption = &id
	}
	return r, nil
}

// DecodeComplete decodes the body of POST /checkout_sessions/{id}/complete
// sent at version v. Purchase orders (payment_data.purchase_order_number
// without a handler) are refused with code "unsupported".
func DecodeComplete(v Version, body []byte) (checkout.CompleteRequest, *Error) {
	d, m, err := newDecoder(v, body)
	if err != nil {
		return checkout.CompleteRequest{}, err
	}
	var r checkout.CompleteRequest
	if r.Buyer, err = d.buyer(m); err != nil {
		return checkout.CompleteRequest{}, err
	}
	if r.Payment, err = d.payment(m); err != nil {
		return checkout.CompleteRequest{}, err
	}
	if r.Auth, err = d.authResult(m); err != nil {
		return checkout.CompleteRequest{}, err
	}
	return r, nil
}

// DecodeCancel decodes the optional body of POST
// /checkout_sessions/{id}/cancel sent at version v: an empty body is no
// trace. Only structurally wrong traces are refused; an unknown or missing
// reason_code is "other" and a long summary is cut to 500 characters,
// because a cancel must not fail on its trace (intent traces RFC §5, §7).
func DecodeCancel(v Version, body []byte) (checkout.CancelRequest, *Error) {
	d, m, err := newDecoder(v, body)
	if err != nil {
		return checkout.CancelRequest{}, err
	}
	t, err := d.object(m, "intent_trace", "$.intent_trace", false)
	if err != nil || t == nil {
		return checkout.CancelRequest{}, err
	}
	r := checkout.CancelRequest{ReasonCode: "other"}
	code, err := d.str(t, "reason_code", "$.intent_trace.reason_code", false)
	if err != nil {
		return checkout.CancelRequest{}, err
	}
	if reasonCodes[code] {
		r.ReasonCode = code
	}
	if r.Summary, err = d.str(t, "trace_summary", "$.intent_trace.trace_summary", false); err != nil {
		return checkout.CancelRequest{}, err
	}
	if utf8.RuneCountInString(r.Summary) > maxTraceSummary {
		r.Summary = string([]rune(r.Summary)[:maxTraceSummary])
	}
	md, err := d.object(t, "metadata", "$.intent_trace.metadata", false)
	if err != nil {
		return checkout.CancelRequest{}, err
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		switch x := md[k].(type) {
		case string, json.Number, bool, nil:
		default:
			return checkout.CancelRequest{}, d.wrongType(memberPath("$.intent_trace.metadata", k), "a string, number or boolean", x)
		}
	}
	return r, nil
}

var reasonCodes = set("price_sensitivity", "shipping_cost", "shipping_speed", "product_fit", "trust_security",
	"returns_policy", "payment_options", "comparison", "timing_deferred", "other")

// decoder reads one request. Up-transforms first bring the caller's
// request to 2026-04-17's shape, recording how they moved things; errors
// found later are reported at the caller's own paths.
type decoder struct {
	// renames holds, per up-transform step, where the step moved values.
	renames [][]rename
	// legacy: the request comes from a version before 2026-01-30, whose
	// requests have no currency or capabilities, require item quantities
	// and buyer names, and pay with a provider token.
	legacy   bool
	provider string // legacy payment_data.provider
	v        Version
}

// rename says the value now at path to was at from. A whole rename maps
// everything under to onto from itself (a value moved into a structure
// the caller never sent).
type rename struct {
	to, from string
	whole    bool
}

func newDecoder(v Version, body []byte) (*decoder, map[string]any, *Error) {
	i := v.index()
	if i < 0 {
		return nil, nil, VersionError(fmt.Errorf("%w %q", ErrUnsupportedVersion, string(v)))
	}
	d := &decoder{v: v}
	root, err := parseJSON(body)
	if err != nil {
		return nil, nil, &Error{Type: InvalidRequest, Code: CodeInvalidJSON, Param: "$",
			Message: "the request body is not valid JSON: " + err.Error()}
	}
	m, ok := root.(map[string]any)
	if !ok {
		return nil, nil, d.wrongType("$", "an object", root)
	}
	for ; i < len(upgrades); i++ {
		d.renames = append(d.renames, nil)
		if err := upgrades[i](d, m); err != nil {
			return nil, nil, err
		}
	}
	return d, m, nil
}

// parseJSON reads exactly one JSON value, numbers as json.Number. A body of
// nothing but whitespace is the empty object (a cancel without a body).
func parseJSON(body []byte) (any, error) {
	if len(bytes.Trim(body, " \t\r\n")) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("%v (at byte %d)", err, syn.Offset)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("it ends too early")
		}
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("more data follows the JSON value (at byte %d)", dec.InputOffset())
	}
	return v, nil
}

// ---- up-transforms ----

// upgrades[i] turns a request of Versions[i] into the shape of
// Versions[i+1]. A step first deletes the fields the newer version added:
// sent to the older version they are unknown, and unknown fields are
// ignored.
var upgrades = [...]func(*decoder, map[string]any) *Error{
	from20250929,
	from20251212,
	from20260116,
	from20260130,
}

// from20250929 → 2025-12-12: fulfillment_address goes into
// fulfillment_details, fulfillment_option_id becomes a selection.
func from20250929(d *decoder, m map[string]any) *Error {
	for _, k := range []string{"fulfillment_details", "selected_fulfillment_options", "authentication_result", "intent_trace"} {
		delete(m, k)
	}
	if a, ok := field(m, "fulfillment_address"); ok {
		m["fulfillment_details"] = map[string]any{"address": a}
	}
	d.rename("$.fulfillment_details.address", "$.fulfillment_address", false)
	if id, ok := field(m, "fulfillment_option_id"); ok {
		m["selected_fulfillment_options"] = []any{map[string]any{"shipping": map[string]any{"option_id": id, "item_ids": []any{}}}}
		d.rename("$.selected_fulfillment_options", "$.fulfillment_option_id", true)
	}
	delete(m, "fulfillment_address")
	delete(m, "fulfillment_option_id")
	return nil
}

// from20251212 → 2026-01-16: the requests did not change (the
// authentication outcome enum did; from20260116 maps its values and lets
// 2025-12-12's, which are 2026-04-17's, through).
func from20251212(*decoder, map[string]any) *Error { return nil }

// from20260116 → 2026-01-30: items become line_items, nested selections
// flat ones, provider tokens handler instruments.
func from20260116(d *decoder, m map[string]any) *Error {
	d.legacy = true
	for _, k := range []string{"line_items", "currency", "capabilities"} {
		delete(m, k)
	}
	if items, ok := field(m, "items"); ok {
		m["line_items"] = items
	}
	delete(m, "items")
	d.rename("$.line_items", "$.items", false) // also when absent: "$.items is required"
	if sel, ok := m["selected_fulfillment_options"].([]any); ok {
		for i, e := range sel {
			o, ok := e.(map[string]any)
			if !ok {
				continue // reported by the canonical decoder
			}
			p := "$.selected_fulfillment_options[" + strconv.Itoa(i) + "]"
			key, _ := o["type"].(string)
			if key != "shipping" && key != "digital" {
				key = "shipping"
				if _, ok := field(o, "shipping"); !ok && o["digital"] != nil {
					key = "digital"
				}
			}
			delete(o, "option_id")
			delete(o, "item_ids")
			nv, ok := field(o, key)
			if !ok {
				return d.missing(p + "." + key)
			}
			n, err := d.asObject(nv, p+"."+key)
			if err != nil {
				return err
			}
			for _, f := range []string{"option_id", "item_ids"} {
				if x, ok := n[f]; ok {
					o[f] = x
				}
				d.rename(p+"."+f, p+"."+key+"."+f, false)
			}
			delete(o, "shipping")
			delete(o, "digital")
		}
	}
	if pd, ok := m["payment_data"].(map[string]any); ok {
		for _, k := range []string{"handler_id", "instrument", "purchase_order_number"} {
			delete(pd, k)
		}
		token, err := d.nonEmpty(pd, "token", "$.payment_data.token")
		if err != nil {
			return err
		}
		provider, err := d.str(pd, "provider", "$.payment_data.provider", true)
		if err != nil {
			return err
		}
		if provider != "stripe" {
			return d.fail(CodeInvalid, "$.payment_data.provider", `must be "stripe"`)
		}
		pd["instrument"] = map[string]any{"type": "card", "credential": map[string]any{"type": "spt", "token": token}}
		delete(pd, "token")
		delete(pd, "provider")
		d.rename("$.payment_data.instrument.credential.token", "$.payment_data.token", false)
		d.provider = provider
	}
	if ar, ok := m["authentication_result"].(map[string]any); ok {
		if o, ok := ar["outcome"].(string); ok && legacyOutcome[o] != "" {
			ar["outcome"] = legacyOutcome[o]
		}
	}
	return nil
}

// legacyOutcome maps 2026-01-16's authentication outcomes that later
// versions renamed.
var legacyOutcome = map[string]string{"failed": "denied", "unavailable": "not_supported", "attempt": "attempt_acknowledged"}

// from20260130 → 2026-04-17: nothing the bridge reads changed.
func from20260130(*decoder, map[string]any) *Error { return nil }

func (d *decoder) rename(to, from string, whole bool) {
	last := len(d.renames) - 1
	d.renames[last] = append(d.renames[last], rename{to: to, from: from, whole: whole})
}

// caller maps a path of the canonical request back to the caller's, undoing
// the renames newest step first (longest match within a step).
func (d *decoder) caller(p string) string {
	for i := len(d.renames) - 1; i >= 0; i-- {
		var best *rename
		for j := range d.renames[i] {
			r := &d.renames[i][j]
			if hasPathPrefix(p, r.to) && (best == nil || len(r.to) > len(best.to)) {
				best = r
			}
		}
		switch {
		case best == nil:
		case best.whole:
			p = best.from
		default:
			p = best.from + p[len(best.to):]
		}
	}
	return p
}

func hasPathPrefix(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '.' || p[len(prefix)] == '[')
}

// ---- the canonical (2026-04-17) request ----

func (d *decoder) items(m map[string]any, required bool) ([]checkout.Item, *Error) {
	const path = "$.line_items"
	arr, err := d.array(m, "line_items", path, required)
	if err != nil || arr == nil {
		return nil, err
	}
	if required && len(arr) == 0 {
		return nil, d.fail(CodeInvalid, path, "must list at least one item")
	}
	if len(arr) > MaxLineItems {
		return nil, d.fail(CodeInvalid, path, "may list at most %d items, not %d", MaxLineItems, len(arr))
	}
	items := make([]checkout.Item, 0, len(arr))
	for i, e := range arr {
		p := path + "[" + strconv.Itoa(i) + "]"
		o, err := d.asObject(e, p)
		if err != nil {
			return nil, err
		}
		id, err := d.nonEmpty(o, "id", p+".id")
		if err != nil {
			return nil, err
		}
		q, err := d.quantity(o, p+".quantity")
		if err != nil {
			return nil, err
		}
		items = append(items, checkout.Item{ID: id, Quantity: q})
	}
	return items, nil
}

// quantity reads a whole number ≥ 1. Since 2026-01-30 request items have
// no quantity in the schema (spec issue #264) although every example sends
// one: it is read when present and 1 otherwise.
func (d *decoder) quantity(o map[string]any, path string) (int64, *Error) {
	x, ok := field(o, "quantity")
	if !ok {
		if d.legacy {
			return 0, d.missing(path)
		}
		return 1, nil
	}
	n, ok := x.(json.Number)
	if !ok {
		return 0, d.wrongType(path, "a number", x)
	}
	q, whole := wholeNumber(string(n))
	switch {
	case !whole:
		return 0, d.fail(CodeInvalid, path, "must be a whole number, not %s", n)
	case q < 1:
		return 0, d.fail(CodeInvalid, path, "must be at least 1, not %s", n)
	case q > MaxQuantity:
		return 0, d.fail(CodeInvalid, path, "must be at most %d", MaxQuantity)
	}
	return q, nil
}

func (d *decoder) currency(m map[string]any) (string, *Error) {
	if d.legacy {
		return "", nil
	}
	c, err := d.str(m, "currency", "$.currency", true)
	if err != nil {
		return "", err
	}
	if !isAlpha3(c) {
		return "", d.fail(CodeInvalid, "$.currency", "must be a three-letter ISO 4217 code such as \"usd\", not %q", c)
	}
	return strings.ToUpper(c), nil
}

// isAlpha3 reports whether s is three ASCII letters.
func isAlpha3(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// capabilities returns the agent's supported interventions: nil without
// capabilities (versions before 2026-01-30), else the known values it
// lists (possibly none). Unknown values are ignored.
func (d *decoder) capabilities(m map[string]any) ([]string, *Error) {
	if d.legacy {
		return nil, nil
	}
	c, err := d.object(m, "capabilities", "$.capabilities", true)
	if err != nil {
		return nil, err
	}
	iv, err := d.object(c, "interventions", "$.capabilities.interventions", false)
	if err != nil {
		return nil, err
	}
	const path = "$.capabilities.interventions.supported"
	arr, err := d.array(iv, "supported", path, false)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, d.wrongType(path+"["+strconv.Itoa(i)+"]", "a string", e)
		}
		if interventionTypes[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (d *decoder) buyer(m map[string]any) (*bridge.Buyer, *Error) {
	o, err := d.object(m, "buyer", "$.buyer", false)
	if err != nil || o == nil {
		return nil, err
	}
	var b bridge.Buyer
	var full string
	for _, f := range []struct {
		key      string
		dst      *string
		required bool
	}{
		{"first_name", &b.FirstName, d.legacy},
		{"last_name", &b.LastName, d.legacy},
		{"full_name", &full, false},
		{"email", &b.Email, true},
		{"phone_number", &b.Phone, false},
	} {
		if *f.dst, err = d.str(o, f.key, "$.buyer."+f.key, f.required); err != nil {
			return nil, err
		}
	}
	b.Name = full
	if b.Name == "" {
		b.Name = strings.TrimSpace(b.FirstName + " " + b.LastName)
	}
	return &b, nil
}

// fulfillmentDetails returns the address and the contact (name, email,
// phone) of fulfillment_details.
func (d *decoder) fulfillmentDetails(m map[string]any) (*bridge.Address, *bridge.Buyer, *Error) {
	const path = "$.fulfillment_details"
	o, err := d.object(m, "fulfillment_details", path, false)
	if err != nil || o == nil {
		return nil, nil, err
	}
	var c bridge.Buyer
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &c.Name}, {"email", &c.Email}, {"phone_number", &c.Phone}} {
		if *f.dst, err = d.str(o, f.key, path+"."+f.key, false); err != nil {
			return nil, nil, err
		}
	}
	a, err := d.address(o, "address", path+".address")
	if err != nil {
		return nil, nil, err
	}
	if c == (bridge.Buyer{}) {
		return a, nil, nil
	}
	return a, &c, nil
}

// address reads an Address; every version requires name, line_one, city,
// state, country and postal_code (empty strings are accepted: not every
// country has states). The country code is upper-cased.
func (d *decoder) address(m map[string]any, key, path string) (*bridge.Address, *Error) {
	o, err := d.object(m, key, path, false)
	if err != nil || o == nil {
		return nil, err
	}
	var a bridge.Address
	for _, f := range []struct {
		key      string
		dst      *string
		required bool
	}{
		{"name", &a.Name, true},
		{"line_one", &a.Line1, true},
		{"line_two", &a.Line2, false},
		{"city", &a.City, true},
		{"state", &a.Region, true},
		{"country", &a.Country, true},
		{"postal_code", &a.PostalCode, true},
		{"company", &a.Company, false},
	} {
		if *f.dst, err = d.str(o, f.key, path+"."+f.key, f.required); err != nil {
			return nil, err
		}
	}
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	return &a, nil
}

func (d *decoder) payment(m map[string]any) (checkout.Payment, *Error) {
	const path = "$.payment_data"
	pd, err := d.object(m, "payment_data", path, true)
	if err != nil {
		return checkout.Payment{}, err
	}
	var p checkout.Payment
	if d.provider != "" {
		p.Provider = d.provider // the up-transform made the instrument
	} else {
		_, handler := field(pd, "handler_id")
		_, instrument := field(pd, "instrument")
		if _, po := field(pd, "purchase_order_number"); po && !handler && !instrument {
			return checkout.Payment{}, d.fail(CodeUnsupported, path+".purchase_order_number",
				"is not accepted: this merchant takes payment through its payment handler only")
		}
		if p.HandlerID, err = d.nonEmpty(pd, "handler_id", path+".handler_id"); err != nil {
			return checkout.Payment{}, err
		}
	}
	in, err := d.object(pd, "instrument", path+".instrument", true)
	if err != nil {
		return checkout.Payment{}, err
	}
	if _, err := d.str(in, "type", path+".instrument.type", true); err != nil {
		return checkout.Payment{}, err
	}
	cred, err := d.object(in, "credential", path+".instrument.credential", true)
	if err != nil {
		return checkout.Payment{}, err
	}
	if _, err := d.str(cred, "type", path+".instrument.credential.type", true); err != nil {
		return checkout.Payment{}, err
	}
	if p.Token, err = d.nonEmpty(cred, "token", path+".instrument.credential.token"); err != nil {
		return checkout.Payment{}, err
	}
	if p.BillingAddress, err = d.address(pd, "billing_address", path+".billing_address"); err != nil {
		return checkout.Payment{}, err
	}
	return p, nil
}

var (
	authOutcomes = set("abandoned", "attempt_acknowledged", "authenticated", "canceled", "denied", "informational",
		"internal_error", "not_supported", "processing_error", "rejected")
	// outcomes that carry a cryptogram (outcome_details required, except in
	// 2026-01-16, whose schema never required it)
	authWithDetails = set("authenticated", "informational", "attempt_acknowledged")
)

func (d *decoder) authResult(m map[string]any) (*bridge.AuthResult, *Error) {
	const path = "$.authentication_result"
	o, err := d.object(m, "authentication_result", path, false)
	if err != nil || o == nil {
		return nil, err
	}
	var r bridge.AuthResult
	if r.Outcome, err = d.str(o, "outcome", path+".outcome", true); err != nil {
		return nil, err
	}
	if !authOutcomes[r.Outcome] {
		return nil, d.fail(CodeInvalid, path+".outcome", "is not a known outcome: %q", r.Outcome)
	}
	det, err := d.object(o, "outcome_details", path+".outcome_details", authWithDetails[r.Outcome] && d.v != V20260116)
	if err != nil || det == nil {
		return &r, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"three_ds_cryptogram", &r.Cryptogram},
		{"electronic_commerce_indicator", &r.ECI},
		{"transaction_id", &r.TransactionID},
		{"version", &r.Version},
	} {
		if *f.dst, err = d.str(det, f.key, path+".outcome_details."+f.key, true); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// ---- typed access to the JSON tree; null counts as absent ----

func field(m map[string]any, key string) (any, bool) {
	v, ok := m[key]
	return v, ok && v != nil
}

func (d *decoder) object(m map[string]any, key, path string, required bool) (map[string]any, *Error) {
	v, ok := field(m, key)
	if !ok {
		if required {
			return nil, d.missing(path)
		}
		return nil, nil
	}
	return d.asObject(v, path)
}

func (d *decoder) asObject(v any, path string) (map[string]any, *Error) {
	o, ok := v.(map[string]any)
	if !ok {
		return nil, d.wrongType(path, "an object", v)
	}
	return o, nil
}

func (d *decoder) array(m map[string]any, key, path string, required bool) ([]any, *Error) {
	v, ok := field(m, key)
	if !ok {
		if required {
			return nil, d.missing(path)
		}
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, d.wrongType(path, "an array", v)
	}
	return a, nil
}

// str returns a string field, "" when absent and not required.
func (d *decoder) str(m map[string]any, key, path string, required bool) (string, *Error) {
	v, ok := field(m, key)
	if !ok {
		if required {
			return "", d.missing(path)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", d.wrongType(path, "a string", v)
	}
	return s, nil
}

// nonEmpty returns a required string that must not be blank.
func (d *decoder) nonEmpty(m map[string]any, key, path string) (string, *Error) {
	s, err := d.str(m, key, path, true)
	if err == nil && strings.TrimSpace(s) == "" {
		err = d.fail(CodeInvalid, path, "must not be empty")
	}
	return s, err
}

func (d *decoder) missing(path string) *Error { return d.fail(CodeMissing, path, "is required") }

func (d *decoder) wrongType(path, want string, got any) *Error {
	return d.fail(CodeInvalidType, path, "must be %s, not %s", want, jsonType(got))
}

// fail makes an invalid_request error whose param and message name the
// caller's own path.
func (d *decoder) fail(code, path, format string, a ...any) *Error {
	p := d.caller(path)
	name := strings.TrimPrefix(p, "$.")
	if p == "$" {
		name = "the request body"
	}
	return &Error{Type: InvalidRequest, Code: code, Param: p, Message: name + " " + fmt.Sprintf(format, a...)}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// memberPath appends a member name to an RFC 9535 path: dot notation for
// plain names, a quoted bracket otherwise.
func memberPath(parent, name string) string {
	plain := name != ""
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80 || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return parent + "." + name
	}
	var b strings.Builder
	b.WriteString(parent)
	b.WriteString("['")
	for _, r := range name {
		switch {
		case r == '\'' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString("']")
	return b.String()
}

// wholeNumber reads the JSON number s exactly: whether it is a whole
// number and, if so, its value (beyond ±10^18 it is clamped to ±10^18).
func wholeNumber(s string) (int64, bool) {
	neg, digits, exp, _ := splitNumber(s)
	if digits == "" {
		return 0, true
	}
	if exp < 0 {
		return 0, false
	}
	const big = 1_000_000_000_000_000_000
	v := int64(big)
	if int64(len(digits))+exp <= 18 {
		v, _ = strconv.ParseInt(digits+strings.Repeat("0", int(exp)), 10, 64)
	}
	if neg {
		v = -v
	}
	return v, true
}

// splitNumber breaks a valid JSON number into sign, significant digits
// (no leading or trailing zeros; "" for zero) and exponent: value =
// ±digits × 10^exp. Exponents beyond ±2^40 are clamped (exact is false).
func splitNumber(s string) (neg bool, digits string, exp int64, exact bool) {
	const limit = 1 << 40
	exact = true
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	mant := s
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.ParseInt(s[i+1:], 10, 64)
		if err != nil || e > limit || e < -limit {
			exact, e = false, limit
			if strings.HasPrefix(s[i+1:], "-") {
				e = -limit
			}
		}
		exp = e
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits = strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return false, "", 0, exact
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits)-len(trimmed)) - int64(len(frac))
	return neg, trimmed, exp, exact
}
