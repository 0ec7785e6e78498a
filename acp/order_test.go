package acp

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/acpspec"
)

var (
	placedAt  = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	shippedAt = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
)

func usd(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }

func i64(n int64) *int64 { return &n }

// simpleOrder is a confirmed order of two lines, one without a line id
// (orders made before lines had ids).
func simpleOrder() bridge.Order {
	return bridge.Order{
		ID: "ord_7Hq2", SessionID: "cs_9Xk1", Owner: "agent", APIVersion: "2026-04-17",
		Status: bridge.OrderConfirmed, PermalinkURL: "https://shop.example/orders/ord_7Hq2?t=tok",
		CreatedAt: placedAt, Currency: "USD",
		Lines: []bridge.OrderLine{
			{ID: "li_1", VariantID: "var_mug_blue", ProductID: "prod_mug", Title: "Mug, blue", Quantity: 2,
				UnitPrice: usd(1250), Total: usd(2500)},
			{VariantID: "var_tea", ProductID: "prod_tea", Title: "Green tea", Quantity: 1,
				UnitPrice: usd(800), Total: usd(800)},
		},
		Subtotal: usd(3300), Shipping: usd(500), Tax: usd(264), Total: usd(4064),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo:         &bridge.Address{Line1: "1 Main St", City: "Springfield", PostalCode: "12345", Country: "US"},
		ShippingMethod: &bridge.ShippingMethod{ID: "ship_std", Title: "Standard", Type: "shipping"},
		PaymentRef:     "pi_123", Payment: bridge.PaymentStateCaptured, Token: "tok",
	}
}

// shippedOrder: everything left in one parcel with tracking; the
// fulfillment names the untracked line by its variant id.
func shippedOrder() bridge.Order {
	o := simpleOrder()
	o.Status = bridge.OrderShipped
	o.Lines[0].Fulfilled, o.Lines[1].Fulfilled = 2, 1
	o.Fulfillments = []bridge.Fulfillment{{
		ID: "ful_1", Type: "shipping", Status: "shipped",
		Lines:   []bridge.LineRef{{ID: "li_1", Quantity: 2}, {ID: "var_tea", Quantity: 1}},
		Carrier: "USPS", TrackingNumber: "9400111899223456789012",
		TrackingURL: "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223456789012",
		Events:      []bridge.FulfillmentEvent{{ID: "evt_1", Type: "shipped", OccurredAt: shippedAt}, {Type: "in_transit", OccurredAt: shippedAt.Add(time.Hour)}},
	}}
	return o
}

// partialOrder: one of two mugs shipped, the tea not yet; the tracking URL
// from the store is not a URL and is left out.
func partialOrder() bridge.Order {
	o := simpleOrder()
	o.Status = bridge.OrderProcessing
	o.Lines[0].Fulfilled = 1
	o.Fulfillments = []bridge.Fulfillment{{
		ID: "ful_1", Type: "shipping", Status: "in_transit",
		Lines:   []bridge.LineRef{{ID: "li_1", Quantity: 1}},
		Carrier: "UPS", TrackingNumber: "1Z999", TrackingURL: "see carrier site",
	}}
	return o
}

// refundedOrder: delivered, one mug returned and refunded, a goodwill
// credit, and a refund still pending (which counts nowhere yet).
func refundedOrder() bridge.Order {
	o := shippedOrder()
	o.Status = bridge.OrderCompleted
	o.Lines[0].Current = i64(1)
	o.Fulfillments[0].Status = "delivered"
	o.Adjustments = []bridge.Adjustment{
		{ID: "adj_1", Type: "refund", Status: "completed", OccurredAt: shippedAt.Add(72 * time.Hour),
			Amount: 1350, Currency: "USD", Reason: "damaged", Lines: []bridge.LineRef{{ID: "li_1", Quantity: 1}}},
		{ID: "adj_2", Type: "credit", Status: "completed", OccurredAt: shippedAt.Add(73 * time.Hour), Amount: 200},
		{ID: "adj_3", Type: "refund", Status: "pending", OccurredAt: shippedAt.Add(74 * time.Hour), Amount: 500, Currency: "usd"},
	}
	o.Payment = bridge.PaymentStateRefunded
	return o
}

// canceledOrder: canceled before shipping, every line removed, the whole
// charge refunded. The cancellation came without a date.
func canceledOrder() bridge.Order {
	o := simpleOrder()
	o.Status = bridge.OrderCanceled
	o.Lines[0].Current, o.Lines[1].Current = i64(0), i64(0)
	o.Adjustments = []bridge.Adjustment{
		{ID: "adj_c", Type: "cancellation", Status: "completed", Reason: "out_of_stock"},
		{ID: "adj_r", Type: "refund", Status: "completed", OccurredAt: shippedAt, Amount: 4064, Currency: "USD"},
	}
	return o
}

var orderFixtures = []struct {
	name  string
	order func() bridge.Order
}{
	{"simple", simpleOrder},
	{"shipped", shippedOrder},
	{"partial", partialOrder},
	{"refunded", refundedOrder},
	{"canceled", canceledOrder},
}

func notice(typ string, o bridge.Order) bridge.OrderNotice {
	return bridge.OrderNotice{ID: "evt_" + o.ID + "_" + o.Status, Type: typ, At: shippedAt.Add(100 * time.Hour), Order: o}
}

// encodeEvent encodes n at v, validates the body against v's official
// webhook schema and returns it decoded.
func encodeEvent(t *testing.T, v Version, n bridge.OrderNotice) map[string]any {
	t.Helper()
	raw, err := EncodeOrderEvent(v, n)
	if err != nil {
		t.Fatalf("%s: encode: %v", v, err)
	}
	if err := acpspec.ValidateWebhook(string(v), raw); err != nil {
		t.Errorf("%s %s: not a valid webhook: %v\n%s", v, n.Order.ID, err, raw)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestOrderEventValidatesAtEveryVersion: every fixture, as order_create
// and order_update, is a valid webhook body at every version.
func TestOrderEventValidatesAtEveryVersion(t *testing.T) {
	for _, f := range orderFixtures {
		for _, typ := range []string{bridge.NoticeOrderCreate, bridge.NoticeOrderUpdate} {
			for _, v := range Versions {
				t.Run(f.name+"/"+typ+"/"+string(v), func(t *testing.T) {
					doc := encodeEvent(t, v, notice(typ, f.order()))
					if doc["type"] != typ {
						t.Errorf("type = %v, want %s", doc["type"], typ)
					}
					data := doc["data"].(map[string]any)
					if data["type"] != "order" || data["checkout_session_id"] != "cs_9Xk1" {
						t.Errorf("data = %v", data)
					}
				})
			}
		}
	}
}

// TestOrderEventLatest checks what the 2026-04-17 document says about each
// fixture, beyond being valid.
func TestOrderEventLatest(t *testing.T) {
	type line struct {
		id                          string
		ordered, current, fulfilled float64
		status                      string
	}
	tests := []struct {
		name     string
		order    bridge.Order
		lines    []line
		totals   map[string]float64
		refunded bool
		check    func(t *testing.T, data map[string]any)
	}{
		{name: "simple", order: simpleOrder(),
			lines:  []line{{"li_1", 2, 2, 0, "processing"}, {"li_var_tea", 1, 1, 0, "processing"}},
			totals: map[string]float64{"subtotal": 3300, "fulfillment": 500, "tax": 264, "total": 4064},
			check: func(t *testing.T, data map[string]any) {
				for _, k := range []string{"fulfillments", "adjustments"} {
					if l, ok := data[k].([]any); !ok || len(l) != 0 {
						t.Errorf("%s = %v, want [] (full state, nothing yet)", k, data[k])
					}
				}
				if data["id"] != "ord_7Hq2" || data["status"] != "confirmed" || data["permalink_url"] != "https://shop.example/orders/ord_7Hq2?t=tok" {
					t.Errorf("data = %v", data)
				}
			}},
		{name: "shipped", order: shippedOrder(),
			lines:  []line{{"li_1", 2, 2, 2, "fulfilled"}, {"li_var_tea", 1, 1, 1, "fulfilled"}},
			totals: map[string]float64{"subtotal": 3300, "fulfillment": 500, "tax": 264, "total": 4064},
			check: func(t *testing.T, data map[string]any) {
				f := data["fulfillments"].([]any)[0].(map[string]any)
				want := map[string]any{
					"id": "ful_1", "type": "shipping", "status": "shipped", "carrier": "USPS",
					"tracking_number": "9400111899223456789012",
					"tracking_url":    "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223456789012",
					"line_items": []any{
						map[string]any{"id": "li_1", "quantity": 2.0},
						map[string]any{"id": "li_var_tea", "quantity": 1.0}, // variant id → the line's id
					},
					"events": []any{
						map[string]any{"id": "evt_1", "type": "shipped", "occurred_at": "2026-03-03T14:00:00Z"},
						map[string]any{"id": "ful_1_evt_2", "type": "in_transit", "occurred_at": "2026-03-03T15:00:00Z"},
					},
				}
				if !reflect.DeepEqual(f, want) {
					t.Errorf("fulfillment =\n%v\nwant\n%v", f, want)
				}
			}},
		{name: "partial", order: partialOrder(),
			lines:  []line{{"li_1", 2, 2, 1, "partial"}, {"li_var_tea", 1, 1, 0, "processing"}},
			totals: map[string]float64{"subtotal": 3300, "fulfillment": 500, "tax": 264, "total": 4064},
			check: func(t *testing.T, data map[string]any) {
				f := data["fulfillments"].([]any)[0].(map[string]any)
				if _, ok := f["tracking_url"]; ok {
					t.Errorf("a tracking URL that is no URL must be left out: %v", f)
				}
				if data["status"] != "processing" {
					t.Errorf("status = %v", data["status"])
				}
			}},
		{name: "refunded", order: refundedOrder(), refunded: true,
			lines:  []line{{"li_1", 2, 1, 2, "fulfilled"}, {"li_var_tea", 1, 1, 1, "fulfilled"}},
			totals: map[string]float64{"subtotal": 3300, "fulfillment": 500, "tax": 264, "total": 4064, "amount_refunded": 1350},
			check: func(t *testing.T, data map[string]any) {
				adj := data["adjustments"].([]any)
				if len(adj) != 3 {
					t.Fatalf("adjustments = %v", adj)
				}
				want := map[string]any{"id": "adj_1", "type": "refund", "status": "completed", "occurred_at": "2026-03-06T14:00:00Z",
					"amount": 1350.0, "currency": "usd", "reason": "damaged",
					"line_items": []any{map[string]any{"id": "li_1", "quantity": 1.0}}}
				if !reflect.DeepEqual(adj[0], want) {
					t.Errorf("refund = %v, want %v", adj[0], want)
				}
				if c := adj[1].(map[string]any)["currency"]; c != "usd" {
					t.Errorf("an adjustment without currency takes the order's, lower case: %v", c)
				}
			}},
		{name: "canceled", order: canceledOrder(), refunded: true,
			lines:  []line{{"li_1", 2, 0, 0, "removed"}, {"li_var_tea", 1, 0, 0, "removed"}},
			totals: map[string]float64{"subtotal": 3300, "fulfillment": 500, "tax": 264, "total": 4064, "amount_refunded": 4064},
			check: func(t *testing.T, data map[string]any) {
				c := data["adjustments"].([]any)[0].(map[string]any)
				if c["occurred_at"] != "2026-03-07T18:00:00Z" {
					t.Errorf("an undated adjustment takes the notice's time: %v", c["occurred_at"])
				}
				if _, ok := c["amount"]; ok {
					t.Errorf("no amount, none written: %v", c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encodeEvent(t, Latest, notice(bridge.NoticeOrderUpdate, tt.order))["data"].(map[string]any)
			items := data["line_items"].([]any)
			if len(items) != len(tt.lines) {
				t.Fatalf("line_items = %v", items)
			}
			for i, want := range tt.lines {
				got := items[i].(map[string]any)
				q := got["quantity"].(map[string]any)
				if got["id"] != want.id || got["status"] != want.status ||
					q["ordered"] != want.ordered || q["current"] != want.current || q["fulfilled"] != want.fulfilled {
					t.Errorf("line %d = %v, want %+v", i, got, want)
				}
			}
			totals := map[string]float64{}
			for _, x := range data["totals"].([]any) {
				m := x.(map[string]any)
				totals[m["type"].(string)] = m["amount"].(float64)
				if m["display_text"] == "" {
					t.Errorf("total %v without text", m)
				}
			}
			if !reflect.DeepEqual(totals, tt.totals) {
				t.Errorf("totals = %v, want %v", totals, tt.totals)
			}
			if tt.check != nil {
				tt.check(t, data)
			}
		})
	}
}

// TestOrderEventLegacy: up to 2026-01-30 the data is closed and the four
// versions share one schema, so they share one body.
func TestOrderEventLegacy(t *testing.T) {
	tests := []struct {
		name    string
		order   bridge.Order
		status  string
		refunds []any
	}{
		{"simple", simpleOrder(), "confirmed", []any{}},
		{"shipped", shippedOrder(), "shipped", []any{}},
		{"partial", partialOrder(), "confirmed", []any{}}, // processing
		{"refunded", refundedOrder(), "fulfilled", []any{ // completed; the pending refund is not one yet
			map[string]any{"type": "original_payment", "amount": 1350.0},
			map[string]any{"type": "store_credit", "amount": 200.0},
		}},
		{"canceled", canceledOrder(), "canceled", []any{map[string]any{"type": "original_payment", "amount": 4064.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := notice(bridge.NoticeOrderUpdate, tt.order)
			first, err := EncodeOrderEvent(V20250929, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []Version{V20251212, V20260116, V20260130} {
				raw, err := EncodeOrderEvent(v, n)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(raw, first) {
					t.Errorf("%s differs from 2025-09-29:\n%s\n%s", v, raw, first)
				}
			}
			data := encodeEvent(t, V20260130, n)["data"].(map[string]any)
			want := map[string]any{"type": "order", "checkout_session_id": "cs_9Xk1",
				"permalink_url": "https://shop.example/orders/ord_7Hq2?t=tok", "status": tt.status, "refunds": tt.refunds}
			if !reflect.DeepEqual(data, want) {
				t.Errorf("data =\n%v\nwant\n%v", data, want)
			}
		})
	}
}

func TestLegacyOrderStatus(t *testing.T) {
	tests := map[string]string{
		bridge.OrderCreated: "created", bridge.OrderConfirmed: "confirmed", bridge.OrderManualReview: "manual_review",
		bridge.OrderProcessing: "confirmed", bridge.OrderShipped: "shipped", bridge.OrderCompleted: "fulfilled",
		bridge.OrderCanceled: "canceled", "delivered": "fulfilled", "fulfilled": "fulfilled",
		"on_hold": "confirmed", // unknown: a placed order is at least confirmed
	}
	for in, want := range tests {
		o := simpleOrder()
		o.Status = in
		data := encodeEvent(t, V20251212, notice(bridge.NoticeOrderUpdate, o))["data"].(map[string]any)
		if data["status"] != want {
			t.Errorf("%s → %v, want %s", in, data["status"], want)
		}
		// 2026-04-17's status is open: passed through as it is.
		if got := encodeEvent(t, Latest, notice(bridge.NoticeOrderUpdate, o))["data"].(map[string]any)["status"]; got != in {
			t.Errorf("2026-04-17: %s → %v", in, got)
		}
	}
}

func TestOrderEventErrors(t *testing.T) {
	tests := []struct {
		name    string
		version Version
		change  func(n *bridge.OrderNotice)
		is      error
		want    string
	}{
		{"pending payment", Latest, func(n *bridge.OrderNotice) { n.Order.Status = "pending_payment" }, ErrOrderNotPlaced, "pending_payment"},
		{"no status", V20250929, func(n *bridge.OrderNotice) { n.Order.Status = "" }, ErrOrderNotPlaced, "not placed"},
		{"declined", V20260130, func(n *bridge.OrderNotice) { n.Order.Status = "payment_declined" }, ErrOrderNotPlaced, "payment_declined"},
		{"no id", Latest, func(n *bridge.OrderNotice) { n.Order.ID = "" }, nil, "no id"},
		{"no session", Latest, func(n *bridge.OrderNotice) { n.Order.SessionID = "" }, nil, "checkout session"},
		{"relative permalink", V20250929, func(n *bridge.OrderNotice) { n.Order.PermalinkURL = "/orders/ord_7Hq2" }, nil, "permalink"},
		{"no type", Latest, func(n *bridge.OrderNotice) { n.Type = "" }, nil, "type"},
		{"unknown type at a legacy version", V20260130, func(n *bridge.OrderNotice) { n.Type = "order_refund" }, nil, "order_refund"},
		{"ordered 0", Latest, func(n *bridge.OrderNotice) { n.Order.Lines[0].Quantity = 0 }, nil, "li_1"},
		{"negative current", Latest, func(n *bridge.OrderNotice) { n.Order.Lines[1].Current = i64(-1) }, nil, "li_var_tea"},
		{"unsupported version", "2024-01-01", func(*bridge.OrderNotice) {}, ErrUnsupportedVersion, "2024-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := notice(bridge.NoticeOrderCreate, simpleOrder())
			tt.change(&n)
			_, err := EncodeOrderEvent(tt.version, n)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v does not mention %q", err, tt.want)
			}
		})
	}
	// 2026-04-17's event type is open.
	n := notice("order_refund", simpleOrder())
	encodeEvent(t, Latest, n)
}

// TestOrderEventSkipsWhatTheSchemaCannotCarry: values the closed enums
// and formats refuse are mapped or left out, never sent invalid.
func TestOrderEventSkipsWhatTheSchemaCannotCarry(t *testing.T) {
	o := shippedOrder()
	o.Fulfillments = append(o.Fulfillments,
		bridge.Fulfillment{ID: "ful_local", Type: "local_delivery", Lines: []bridge.LineRef{{ID: "li_1", Quantity: 0}}},
		bridge.Fulfillment{ID: "ful_drone", Type: "drone"},
	)
	o.Fulfillments[0].Events = append(o.Fulfillments[0].Events, bridge.FulfillmentEvent{ID: "evt_undated", Type: "delivered"})
	o.Adjustments = []bridge.Adjustment{{ID: "adj_1", Type: "refund", Status: "completed", OccurredAt: shippedAt, Amount: 5, Currency: "US Dollar"}}
	data := encodeEvent(t, Latest, notice(bridge.NoticeOrderUpdate, o))["data"].(map[string]any)
	fs := data["fulfillments"].([]any)
	if len(fs) != 2 {
		t.Fatalf("fulfillments = %v, want the shipping one and the local delivery as shipping", fs)
	}
	local := fs[1].(map[string]any)
	if local["type"] != "shipping" || local["line_items"] != nil {
		t.Errorf("local delivery = %v", local)
	}
	if ev := fs[0].(map[string]any)["events"].([]any); len(ev) != 2 {
		t.Errorf("the undated event must be left out: %v", ev)
	}
	if _, ok := data["adjustments"].([]any)[0].(map[string]any)["currency"]; ok {
		t.Error("a currency that is no ISO code must be left out")
	}
}

// TestOrderEventDeterministic: a notice is fixed when it happens, and
// every delivery attempt must send the same bytes (receivers dedupe by id,
// signatures cover the body).
func TestOrderEventDeterministic(t *testing.T) {
	for _, v := range Versions {
		n := notice(bridge.NoticeOrderUpdate, refundedOrder())
		a, err := EncodeOrderEvent(v, n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := EncodeOrderEvent(v, n)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two encodings differ", v)
		}
		for _, secret := range []string{"ada@example.com", "1 Main St", "pi_123", "Ada"} {
			if bytes.Contains(a, []byte(secret)) {
				t.Errorf("%s: the event carries buyer or payment data %q", v, secret)
			}
		}
	}
}

// TestOrderEventGolden pins whole documents (go test -run OrderEventGolden
// -update rewrites them): 2026-04-17 and the legacy form of two fixtures.
func TestOrderEventGolden(t *testing.T) {
	for _, f := range []struct {
		name  string
		order bridge.Order
	}{{"shipped", shippedOrder()}, {"refunded", refundedOrder()}} {
		for _, v := range []Version{V20260130, V20260417} {
			raw, err := EncodeOrderEvent(v, notice(bridge.NoticeOrderUpdate, f.order))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", "order_event_"+f.name+"."+string(v)+".json"), raw)
		}
	}
}

func BenchmarkEncodeOrderEvent(b *testing.B) {
	n := notice(bridge.NoticeOrderUpdate, refundedOrder())
	for _, v := range []Version{V20260417, V20250929} {
		b.Run(string(v), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeOrderEvent(v, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
