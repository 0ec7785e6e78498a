package acpspec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing"
)

func TestWebhookSchemasCompile(t *testing.T) {
	for _, v := range Versions {
		if _, err := WebhookSchema(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	if _, err := WebhookSchema("2024-01-01"); err == nil {
		t.Error("an unknown version must fail")
	}
}

// TestWebhookSpecExamples runs the spec's own webhook examples through the
// validator. The outcomes are the spec's, checked by hand against the
// schemas (docs/acp-conformance.md §7): where an example is wrong, the test
// says so and expects the failure, so a validator that lets everything pass
// cannot hide behind them.
func TestWebhookSpecExamples(t *testing.T) {
	const file = "examples.agentic_checkout.json"
	tests := []struct {
		version, source, name string
		valid                 bool
		why                   string // why an invalid example is invalid
	}{
		{"2025-09-29", file, "webhook_order_create_event", true, ""},
		{"2025-09-29", file, "webhook_order_update_event", true, ""},
		{"2025-12-12", file, "webhook_order_create_event", true, ""},
		{"2025-12-12", file, "webhook_order_update_event", true, ""},
		{"2026-01-16", file, "webhook_order_create_event", true, ""},
		{"2026-01-16", file, "webhook_order_update_event", true, ""},
		{"2026-01-30", file, "webhook_order_create_event", true, ""},
		{"2026-01-30", file, "webhook_order_update_event", true, ""},
		// 2026-04-17's examples file kept the legacy event.
		{"2026-04-17", file, "webhook_order_create_event", false, "legacy refunds[], no id"},
		{"2026-04-17", file, "webhook_order_update_event", false, "legacy refunds[], no id"},

		// Examples written inline in the OpenAPI files.
		{"2025-09-29", "openapi", "order_created", true, ""},
		{"2025-09-29", "openapi", "order_updated", false, `refund amount "1.00" is a string`},
		{"2025-12-12", "openapi", "order_created", true, ""},
		{"2025-12-12", "openapi", "order_updated", false, `refund amount "1.00" is a string`},
		{"2026-01-16", "openapi", "order_created", true, ""},
		{"2026-01-16", "openapi", "order_updated", false, `refund amount "1.00" is a string`},
		{"2026-01-30", "openapi", "order_created", true, ""},
		{"2026-01-30", "openapi", "order_updated", true, ""},
		{"2026-04-17", "openapi", "order_created", true, ""},
		{"2026-04-17", "openapi", "order_shipped", true, ""},
		{"2026-04-17", "openapi", "order_with_refund", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.version+"/"+tt.source+"/"+tt.name, func(t *testing.T) {
			raw := webhookExample(t, tt.version, tt.source, tt.name)
			err := ValidateWebhook(tt.version, raw)
			switch {
			case tt.valid && err != nil:
				t.Errorf("official example does not validate: %v", err)
			case !tt.valid && err == nil:
				t.Errorf("example validates, but it is invalid (%s)", tt.why)
			}
		})
	}
}

func webhookExample(t *testing.T, version, source, name string) json.RawMessage {
	t.Helper()
	if source == "openapi" {
		all, err := WebhookExamples(version)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := all[name]
		if !ok {
			t.Fatalf("no inline example %q", name)
		}
		return raw
	}
	raw, err := Example(version, source, name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestWebhookOrderExamples wraps the official 2026-04-17 Order examples in
// an event: each is a valid webhook once it carries type "order" — except
// the minimal order, which has no status (an Order may omit it, a webhook's
// data may not).
func TestWebhookOrderExamples(t *testing.T) {
	dir := "examples/2026-04-17/orders"
	files, err := fs.ReadDir(FS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no order examples")
	}
	for _, f := range files {
		t.Run(f.Name(), func(t *testing.T) {
			raw, err := fs.ReadFile(FS(), path.Join(dir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			var order map[string]any
			if err := json.Unmarshal(raw, &order); err != nil {
				t.Fatal(err)
			}
			delete(order, "$schema") // annotations of the example files
			delete(order, "_description")
			order["type"] = "order"
			_, hasStatus := order["status"]
			body, _ := json.Marshal(map[string]any{"type": "order_update", "data": order})
			err = ValidateWebhook("2026-04-17", body)
			if hasStatus && err != nil {
				t.Errorf("does not validate: %v", err)
			}
			if !hasStatus && err == nil {
				t.Error("an order without status must not validate as webhook data")
			}
		})
	}
}

// TestWebhookValidatorFails proves the validator rejects what the schemas
// forbid: an external $ref that resolved to nothing, or a lax conversion,
// would let these through.
func TestWebhookValidatorFails(t *testing.T) {
	const (
		latest = `{"type":"order_create","data":{"type":"order","id":"ord_1","checkout_session_id":"cs_1","permalink_url":"https://shop.example/orders/ord_1","status":"created"%s}}`
		legacy = `{"type":"order_create","data":{"type":"order","checkout_session_id":"cs_1","permalink_url":"https://shop.example/orders/ord_1","status":"%s","refunds":[]%s}}`
	)
	tests := []struct {
		name, version, body string
		valid               bool
		want                string // a piece of the error
	}{
		{"latest minimal", "2026-04-17", fmtBody(latest, ""), true, ""},
		{"latest unknown field", "2026-04-17", fmtBody(latest, `,"gift_message":"hi"`), false, "gift_message"},
		{"latest missing id", "2026-04-17", strings.Replace(fmtBody(latest, ""), `"id":"ord_1",`, "", 1), false, "'id'"},
		{"latest missing status", "2026-04-17", strings.Replace(fmtBody(latest, ""), `,"status":"created"`, "", 1), false, "'status'"},
		{"latest line quantity 0", "2026-04-17", fmtBody(latest, `,"line_items":[{"id":"li_1","title":"T","quantity":{"ordered":0,"current":0}}]`), false, "ordered"},
		{"latest uppercase currency", "2026-04-17", fmtBody(latest, `,"adjustments":[{"id":"a","type":"refund","occurred_at":"2026-01-01T00:00:00Z","status":"completed","currency":"USD"}]`), false, "currency"},
		{"latest bad date", "2026-04-17", fmtBody(latest, `,"adjustments":[{"id":"a","type":"refund","occurred_at":"yesterday","status":"completed"}]`), false, "occurred_at"},
		{"latest relative permalink", "2026-04-17", strings.Replace(fmtBody(latest, ""), "https://shop.example", "", 1), false, "permalink_url"},
		{"latest unknown event field", "2026-04-17", strings.Replace(fmtBody(latest, ""), `{"type":"order_create",`, `{"type":"order_create","id":"evt_1",`, 1), false, "id"},
		{"legacy minimal", "2025-09-29", fmtBody(legacy, "confirmed", ""), true, ""},
		{"legacy order id", "2025-09-29", fmtBody(legacy, "confirmed", `,"id":"ord_1"`), false, "id"},
		{"legacy completed status", "2026-01-30", fmtBody(legacy, "completed", ""), false, "status"},
		{"legacy unknown event type", "2026-01-30", strings.Replace(fmtBody(legacy, "shipped", ""), "order_create", "order_created", 1), false, "type"},
		{"legacy refund type", "2025-12-12", strings.Replace(fmtBody(legacy, "shipped", ""), `"refunds":[]`, `"refunds":[{"type":"credit","amount":1}]`, 1), false, "type"},
		{"not JSON", "2026-04-17", `{"type":`, false, "decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateWebhook(tt.version, []byte(tt.body))
			if tt.valid {
				if err != nil {
					t.Fatalf("want valid: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want invalid:\n%s", tt.body)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not mention %q: %v", tt.want, err)
			}
		})
	}
}

func fmtBody(format string, args ...any) string { return fmt.Sprintf(format, args...) }
