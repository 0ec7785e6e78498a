package acp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// Order events (the merchant's webhooks to the agent) follow the same
// pattern as sessions: the 2026-04-17 document is built from the domain
// order in typed structs, and the older form is derived from that document
// alone, never from the domain, so that every older field provably has a
// source in the newer version.
//
//   - 2026-04-17: data is the full Order (the spec says full state, never
//     deltas) plus type "order": lines with ordered/current/fulfilled
//     quantities, fulfillments, adjustments and totals.
//   - 2025-09-29 … 2026-01-30 (one webhook schema, unchanged over the four
//     versions): data is closed {type, checkout_session_id, permalink_url,
//     status, refunds}, without even the order id; statuses shrink to
//     created, manual_review, confirmed, canceled, shipped, fulfilled and
//     refunds are the completed refund and credit adjustments.

// ErrOrderNotPlaced is returned for an order whose payment has not
// succeeded: agents hear only of placed orders.
var ErrOrderNotPlaced = errors.New("acp: order not placed")

// EncodeOrderEvent returns the body of the webhook telling the agent of
// n at version v: {"type": n.Type, "data": <order>}. It fails for an order
// that is not placed, for one without an id, a checkout session id or an
// absolute permalink URL (the schemas require them), and for an event type
// v cannot carry. The encoding depends only on n, so every delivery
// attempt of a notice sends the same bytes.
func EncodeOrderEvent(v Version, n bridge.OrderNotice) ([]byte, error) {
	i := v.index()
	if i < 0 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedVersion, string(v))
	}
	o := &n.Order
	switch {
	case !o.Placed():
		return nil, fmt.Errorf("%w: order %s is %q", ErrOrderNotPlaced, o.ID, o.Status)
	case o.ID == "":
		return nil, errors.New("acp: order event: the order has no id")
	case o.SessionID == "":
		return nil, fmt.Errorf("acp: order %s: no checkout session id", o.ID)
	case !absURL(o.PermalinkURL):
		return nil, fmt.Errorf("acp: order %s: permalink URL %q is not absolute", o.ID, o.PermalinkURL)
	case n.Type == "":
		return nil, fmt.Errorf("acp: order %s: event without a type", o.ID)
	}
	data, err := latestOrder(n)
	if err != nil {
		return nil, err
	}
	if v == Latest {
		return json.Marshal(wireOrderEvent{Type: n.Type, Data: data})
	}
	if n.Type != bridge.NoticeOrderCreate && n.Type != bridge.NoticeOrderUpdate {
		return nil, fmt.Errorf("acp: order %s: event type %q does not exist at %s", o.ID, n.Type, v)
	}
	return json.Marshal(wireOrderEvent{Type: n.Type, Data: legacyOrder(data)})
}

// wireOrderEvent is the webhook body; Data is *wireOrderData (2026-04-17)
// or *wireLegacyOrder.
type wireOrderEvent struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// wireOrderData is 2026-04-17's Order with the fields a webhook requires.
// The four lists are always present, empty included: the agent receives
// the full state and may replace what it knew.
type wireOrderData struct {
	Type              string            `json:"type"`
	ID                string            `json:"id"`
	CheckoutSessionID string            `json:"checkout_session_id"`
	PermalinkURL      string            `json:"permalink_url"`
	Status            string            `json:"status"`
	LineItems         []wireOrderLine   `json:"line_items"`
	Fulfillments      []wireFulfillment `json:"fulfillments"`
	Adjustments       []wireAdjustment  `json:"adjustments"`
	Totals            []wireTotal       `json:"totals"`
}

type wireOrderLine struct {
	ID        string            `json:"id"`
	Title     string            `json:"title"`
	ProductID string            `json:"product_id,omitempty"`
	Quantity  wireOrderQuantity `json:"quantity"`
	UnitPrice int64             `json:"unit_price"`
	Subtotal  int64             `json:"subtotal"`
	Status    string            `json:"status"`
}

type wireOrderQuantity struct {
	Ordered   int64 `json:"ordered"`
	Current   int64 `json:"current"`
	Fulfilled int64 `json:"fulfilled"`
}

type wireFulfillment struct {
	ID             string                 `json:"id"`
	Type           string                 `json:"type"`
	Status         string                 `json:"status,omitempty"`
	LineItems      []wireLineRef          `json:"line_items,omitempty"`
	Carrier        string                 `json:"carrier,omitempty"`
	TrackingNumber string                 `json:"tracking_number,omitempty"`
	TrackingURL    string                 `json:"tracking_url,omitempty"`
	Events         []wireFulfillmentEvent `json:"events,omitempty"`
}

type wireLineRef struct {
	ID       string `json:"id"`
	Quantity int64  `json:"quantity"`
}

type wireFulfillmentEvent struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	OccurredAt string `json:"occurred_at"`
}

type wireAdjustment struct {
	ID         string        `json:"id"`
	Type       string        `json:"type"`
	OccurredAt string        `json:"occurred_at"`
	Status     string        `json:"status"`
	Amount     int64         `json:"amount,omitempty"`
	Currency   string        `json:"currency,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	LineItems  []wireLineRef `json:"line_items,omitempty"`
}

// wireLegacyOrder is EventDataOrder up to 2026-01-30 (all fields required,
// no others allowed).
type wireLegacyOrder struct {
	Type              string       `json:"type"`
	CheckoutSessionID string       `json:"checkout_session_id"`
	PermalinkURL      string       `json:"permalink_url"`
	Status            string       `json:"status"`
	Refunds           []wireRefund `json:"refunds"`
}

type wireRefund struct {
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
}

// latestOrder builds the 2026-04-17 data of n.
func latestOrder(n bridge.OrderNotice) (*wireOrderData, error) {
	o := &n.Order
	w := &wireOrderData{
		Type: "order", ID: o.ID, CheckoutSessionID: o.SessionID, PermalinkURL: o.PermalinkURL, Status: o.Status,
		LineItems:    make([]wireOrderLine, 0, len(o.Lines)),
		Fulfillments: make([]wireFulfillment, 0, len(o.Fulfillments)),
		Adjustments:  make([]wireAdjustment, 0, len(o.Adjustments)),
		Totals:       orderTotals(o),
	}
	ids := lineIDs(o.Lines)
	for _, l := range o.Lines {
		cur := l.CurrentQuantity()
		// The schema's minimums; the domain never makes such a line, so
		// one is a bug upstream that the agent must not see half-encoded.
		if l.Quantity < 1 || cur < 0 || l.Fulfilled < 0 {
			return nil, fmt.Errorf("acp: order %s: line %s: quantities ordered %d, current %d, fulfilled %d out of range",
				o.ID, lineID(l), l.Quantity, cur, l.Fulfilled)
		}
		w.LineItems = append(w.LineItems, wireOrderLine{
			ID: lineID(l), Title: l.Title, ProductID: l.ProductID,
			Quantity:  wireOrderQuantity{Ordered: l.Quantity, Current: cur, Fulfilled: l.Fulfilled},
			UnitPrice: l.UnitPrice.Amount, Subtotal: l.Total.Amount,
			Status: lineStatus(cur, l.Fulfilled),
		})
	}
	for _, f := range o.Fulfillments {
		typ, ok := fulfillmentType(f.Type)
		if !ok {
			continue // no counterpart in the enum (shipping, pickup, digital)
		}
		wf := wireFulfillment{ID: f.ID, Type: typ, Status: f.Status, LineItems: lineRefs(f.Lines, ids),
			Carrier: f.Carrier, TrackingNumber: f.TrackingNumber}
		if absURL(f.TrackingURL) {
			wf.TrackingURL = f.TrackingURL
		}
		for i, e := range f.Events {
			if e.OccurredAt.IsZero() || e.Type == "" {
				continue // required by the schema; an undated event says nothing
			}
			id := e.ID
			if id == "" {
				id = fmt.Sprintf("%s_evt_%d", f.ID, i+1) // stable: events are append-only
			}
			wf.Events = append(wf.Events, wireFulfillmentEvent{ID: id, Type: e.Type, OccurredAt: timestamp(e.OccurredAt)})
		}
		w.Fulfillments = append(w.Fulfillments, wf)
	}
	for _, a := range o.Adjustments {
		at := a.OccurredAt
		if at.IsZero() {
			at = n.At // required: the notice's time is when the bridge learnt of it
		}
		cur := strings.ToLower(a.Currency)
		if cur == "" {
			cur = strings.ToLower(o.Currency)
		}
		if !isAlpha3(cur) {
			cur = "" // optional, but the pattern is ^[a-z]{3}$
		}
		w.Adjustments = append(w.Adjustments, wireAdjustment{
			ID: a.ID, Type: a.Type, OccurredAt: rfc3339(at), Status: a.Status,
			Amount: a.Amount, Currency: cur, Reason: a.Reason, LineItems: lineRefs(a.Lines, ids),
		})
	}
	return w, nil
}

// lineID is the line's id, or one derived from its variant for orders
// made before lines had ids (stable, so fulfillments can refer to it).
func lineID(l bridge.OrderLine) string {
	if l.ID != "" {
		return l.ID
	}
	return "li_" + l.VariantID
}

// lineIDs maps what a LineRef may name (a line id, or the variant id of a
// line without one) to the line's wire id.
func lineIDs(lines []bridge.OrderLine) map[string]string {
	m := make(map[string]string, 2*len(lines))
	for _, l := range lines {
		if l.ID == "" {
			m[l.VariantID] = lineID(l)
		}
	}
	for _, l := range lines { // a real line id wins over a variant id
		if l.ID != "" {
			m[l.ID] = l.ID
		}
	}
	return m
}

// lineRefs encodes references to lines; quantities below 1 (the schema's
// minimum) say nothing and are left out.
func lineRefs(refs []bridge.LineRef, ids map[string]string) []wireLineRef {
	var out []wireLineRef
	for _, r := range refs {
		if r.Quantity < 1 || r.ID == "" {
			continue
		}
		id := r.ID
		if mapped, ok := ids[id]; ok {
			id = mapped
		}
		out = append(out, wireLineRef{ID: id, Quantity: r.Quantity})
	}
	return out
}

// lineStatus is the spec's derived line status.
func lineStatus(current, fulfilled int64) string {
	switch {
	case current == 0:
		return "removed"
	case fulfilled >= current:
		return "fulfilled"
	case fulfilled > 0:
		return "partial"
	}
	return "processing"
}

// fulfillmentType maps a fulfillment's type onto the schema's closed enum:
// a local delivery is the shop shipping it itself.
func fulfillmentType(t string) (string, bool) {
	switch t {
	case "shipping", "pickup", "digital":
		return t, true
	case "local_delivery", "":
		return "shipping", true
	}
	return "", false
}

// orderTotals lists the order's sums as a receipt does. total is what was
// charged, whatever was refunded since (the spec's rule); amount_refunded
// appears once money went back.
func orderTotals(o *bridge.Order) []wireTotal {
	out := make([]wireTotal, 0, 5)
	out = append(out, wireTotal{"subtotal", "Subtotal", o.Subtotal.Amount})
	if o.ShippingMethod != nil || o.Shipping.Amount != 0 {
		text := "Shipping"
		if m := o.ShippingMethod; m != nil && m.Type != "" && m.Type != "shipping" {
			text = "Fulfillment"
		}
		out = append(out, wireTotal{"fulfillment", text, o.Shipping.Amount})
	}
	out = append(out, wireTotal{"tax", "Tax", o.Tax.Amount}, wireTotal{"total", "Total", o.Total.Amount})
	if r := o.Refunded(); r > 0 {
		out = append(out, wireTotal{"amount_refunded", "Refunded", r})
	}
	return out
}

// legacyOrder derives the ≤2026-01-30 data from the 2026-04-17 document.
func legacyOrder(w *wireOrderData) *wireLegacyOrder {
	l := &wireLegacyOrder{Type: "order", CheckoutSessionID: w.CheckoutSessionID, PermalinkURL: w.PermalinkURL,
		Status: legacyOrderStatus(w.Status), Refunds: []wireRefund{}}
	for _, a := range w.Adjustments {
		if a.Status != "completed" || a.Amount <= 0 {
			continue
		}
		switch a.Type {
		case "refund":
			l.Refunds = append(l.Refunds, wireRefund{Type: "original_payment", Amount: a.Amount})
		case "credit": // 2026-04-17: "credit replaces store_credit"
			l.Refunds = append(l.Refunds, wireRefund{Type: "store_credit", Amount: a.Amount})
		}
	}
	return l
}

// legacyOrderStatus maps 2026-04-17's open status onto the older closed
// enum. completed (all delivered) was fulfilled, and delivered its name
// until 2026-05-01; processing (being prepared) is past confirmation. A
// status the bridge does not know is a placed order, so confirmed is the
// one claim that is certainly true.
func legacyOrderStatus(s string) string {
	switch s {
	case "created", "manual_review", "confirmed", "canceled", "shipped", "fulfilled":
		return s
	case "completed", "delivered":
		return "fulfilled"
	}
	return "confirmed"
}

// rfc3339 is a date-time in UTC with the precision it has.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
