package acp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/acpspec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const checkoutSchema = "schema.agentic_checkout.json"

func testCodec() *Codec {
	h := TokenizedCard("card_tokenized", "stripe", "acct_123", "visa", "mastercard", "amex", "discover", "jcb")
	h.DisplayName = "Card"
	return &Codec{Handler: h, Currencies: []string{"USD", "EUR"}}
}

// loadSession reads testdata/sessions/name.json, a bridge.Session as the
// engine stores it.
func loadSession(t testing.TB, name string) *bridge.Session {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "sessions", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var s bridge.Session
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &s
}

func fixtureNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sessions", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return names
}

// encode encodes s at v, validates the result against v's official schema
// (CheckoutSessionWithOrder when s has an order) and returns it decoded.
func encode(t testing.TB, c *Codec, v Version, s *bridge.Session) map[string]any {
	t.Helper()
	raw, err := c.EncodeSession(v, s)
	if err != nil {
		t.Fatalf("%s: encode: %v", v, err)
	}
	def := "CheckoutSession"
	if s.Order != nil {
		def = "CheckoutSessionWithOrder"
	}
	if err := acpspec.Validate(string(v), checkoutSchema, def, raw); err != nil {
		t.Errorf("%s %s: not a valid %s: %v\n%s", s.ID, v, def, err, raw)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestEncodeValidatesAtEveryVersion encodes every fixture session at every
// version against the official schemas.
func TestEncodeValidatesAtEveryVersion(t *testing.T) {
	c := testCodec()
	for _, name := range fixtureNames(t) {
		s := loadSession(t, name)
		for _, v := range Versions {
			encode(t, c, v, s)
		}
	}
	// A merchant without a handler, and one whose PSP older versions cannot name.
	for _, c := range []*Codec{{}, {Handler: TokenizedCard("h", "adyen", "m")}} {
		for _, v := range Versions {
			doc := encode(t, c, v, loadSession(t, "ready_shipping"))
			if _, ok := doc["payment_provider"]; ok {
				t.Errorf("%s: payment_provider without a stripe handler: %v", v, doc["payment_provider"])
			}
		}
	}
}

func TestEncodeStatus(t *testing.T) {
	// want[i] is the status at Versions[i].
	tests := map[string][5]string{
		"not_ready":            {"not_ready_for_payment", "not_ready_for_payment", "not_ready_for_payment", "not_ready_for_payment", "not_ready_for_payment"},
		"ready_shipping":       {"ready_for_payment", "ready_for_payment", "ready_for_payment", "ready_for_payment", "ready_for_payment"},
		"auth_required":        {"ready_for_payment", "ready_for_payment", "ready_for_payment", "ready_for_payment", "authentication_required"},
		"auth_unusable":        {"ready_for_payment", "ready_for_payment", "ready_for_payment", "ready_for_payment", "ready_for_payment"},
		"complete_in_progress": {"in_progress", "in_progress", "in_progress", "complete_in_progress", "complete_in_progress"},
		"completed":            {"completed", "completed", "completed", "completed", "completed"},
		"canceled":             {"canceled", "canceled", "canceled", "canceled", "canceled"},
		"expired":              {"canceled", "canceled", "canceled", "expired", "expired"},
	}
	c := testCodec()
	for name, want := range tests {
		s := loadSession(t, name)
		for i, v := range Versions {
			if got := encode(t, c, v, s)["status"]; got != want[i] {
				t.Errorf("%s at %s: status %v, want %s", name, v, got, want[i])
			}
		}
	}
}

// TestEncodeAuthentication: only 2026-04-17 can carry the 3DS challenge;
// older versions get a requires_3ds message instead (unless the engine's is
// already there).
func TestEncodeAuthentication(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "auth_required")
	for _, v := range Versions {
		doc := encode(t, c, v, s)
		md, has := doc["authentication_metadata"].(map[string]any)
		if has != (v == Latest) {
			t.Errorf("%s: authentication_metadata present = %v", v, has)
		}
		if has {
			ad := md["acquirer_details"].(map[string]any)
			if ad["acquirer_bin"] != "123456" || md["directory_server"] != "visa" || len([]rune(ad["merchant_name"].(string))) != 40 {
				t.Errorf("metadata = %v", md)
			}
		}
		if n := countMessages(doc, "error", "requires_3ds"); n != b2i(v != Latest) {
			t.Errorf("%s: %d requires_3ds messages", v, n)
		}
	}
	// The engine's own message is not repeated.
	u := loadSession(t, "auth_unusable")
	for _, v := range Versions {
		if n := countMessages(encode(t, c, v, u), "error", "requires_3ds"); n != 1 {
			t.Errorf("auth_unusable %s: %d requires_3ds messages", v, n)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func countMessages(doc map[string]any, typ, code string) int {
	n := 0
	for _, m := range doc["messages"].([]any) {
		m := m.(map[string]any)
		if m["type"] == typ && (code == "" || m["code"] == code) {
			n++
		}
	}
	return n
}

// TestEncodeMessages checks codes, warnings and params per version.
func TestEncodeMessages(t *testing.T) {
	type msg struct{ typ, code, param string }
	tests := []struct {
		fixture string
		v       Version
		want    []msg
	}{
		{"errors", V20260417, []msg{
			{"error", "out_of_stock", "$.line_items[1]"},
			{"error", "quantity_exceeded", "$.line_items[0].quantity"},
			{"error", "invalid", "$.buyer.email"},
			{"error", "region_restricted", "$.fulfillment_details.address.country"},
			{"error", "missing", "$.selected_fulfillment_options"},
			{"error", "not_found", "$.line_items[2].item.id"},
			{"error", "intervention_required", ""},
			{"error", "payment_declined", ""},
			{"error", "invalid", "$.line_items[0].totals"},
			{"error", "invalid", "$.fulfillment_details.address.company"},
		}},
		{"errors", V20260130, []msg{
			{"error", "out_of_stock", "$.line_items[1]"},
			{"error", "quantity_exceeded", "$.line_items[0].quantity"},
			{"error", "invalid", "$.buyer.email"},
			{"error", "region_restricted", "$.fulfillment_details.address.country"},
			{"error", "missing", "$.selected_fulfillment_options"},
			{"error", "not_found", "$.line_items[2].item.id"},
			{"error", "intervention_required", ""},
			{"error", "payment_declined", ""},
			{"error", "invalid", "$.line_items[0].totals"},
			{"error", "invalid", "$.fulfillment_details.address"},
		}},
		{"errors", V20260116, []msg{
			{"error", "out_of_stock", "$.line_items[1]"},
			{"error", "out_of_stock", "$.line_items[0].item.quantity"},
			{"error", "invalid", "$.buyer.email"},
			{"error", "invalid", "$.fulfillment_details.address.country"},
			{"error", "missing", "$.selected_fulfillment_options"},
			{"error", "invalid", "$.line_items[2].item.id"},
			{"error", "requires_3ds", ""},
			{"error", "payment_declined", ""},
			{"error", "invalid", "$.line_items[0]"},
			{"error", "invalid", "$.fulfillment_details.address"},
		}},
		{"errors", V20250929, []msg{
			{"error", "out_of_stock", "$.line_items[1]"},
			{"error", "out_of_stock", "$.line_items[0].item.quantity"},
			{"error", "invalid", "$.buyer.email"},
			{"error", "invalid", "$.fulfillment_address.country"},
			{"error", "missing", "$.fulfillment_option_id"},
			{"error", "invalid", "$.line_items[2].item.id"},
			{"error", "requires_3ds", ""},
			{"error", "payment_declined", ""},
			{"error", "invalid", "$.line_items[0]"},
			{"error", "invalid", "$.fulfillment_address"},
		}},
		{"warnings", V20260417, []msg{{"warning", "low_stock", "$.line_items[2]"}, {"info", "", ""}, {"info", "", "$.line_items[0].quantity"}}},
		{"warnings", V20260130, []msg{{"warning", "low_stock", "$.line_items[2]"}, {"info", "", ""}, {"info", "", "$.line_items[0].quantity"}}},
		{"warnings", V20260116, []msg{{"info", "", "$.line_items[2]"}, {"info", "", ""}, {"info", "", "$.line_items[0].item.quantity"}}},
		{"not_ready", V20251212, []msg{{"error", "missing", "$.fulfillment_details.address"}}},
		{"not_ready", V20250929, []msg{{"error", "missing", "$.fulfillment_address"}}},
	}
	c := testCodec()
	for _, tt := range tests {
		doc := encode(t, c, tt.v, loadSession(t, tt.fixture))
		var got []msg
		for _, m := range doc["messages"].([]any) {
			m := m.(map[string]any)
			code, _ := m["code"].(string)
			param, _ := m["param"].(string)
			got = append(got, msg{m["type"].(string), code, param})
			if m["content_type"] != "plain" || m["content"] == "" {
				t.Errorf("%s %s: message %v", tt.fixture, tt.v, m)
			}
			if _, ok := m["resolution"]; ok && tt.v != Latest {
				t.Errorf("%s %s: resolution before 2026-04-17", tt.fixture, tt.v)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s at %s: messages\n got %v\nwant %v", tt.fixture, tt.v, got, tt.want)
		}
	}
}

func TestEncodeLinks(t *testing.T) {
	want := [5][]string{
		{"terms_of_use", "privacy_policy", "seller_shop_policies"},
		{"terms_of_use", "privacy_policy", "return_policy"},
		{"terms_of_use", "privacy_policy", "return_policy"},
		{"terms_of_use", "privacy_policy", "return_policy", "shipping_policy", "support"},
		{"terms_of_use", "privacy_policy", "return_policy", "shipping_policy", "support"},
	}
	c := testCodec()
	s := loadSession(t, "ready_shipping")
	for i, v := range Versions {
		var got []string
		for _, l := range encode(t, c, v, s)["links"].([]any) {
			got = append(got, l.(map[string]any)["type"].(string))
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("%s: links %v, want %v", v, got, want[i])
		}
	}
}

// TestEncodeShapes spot-checks the per-version shapes of one session.
func TestEncodeShapes(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "ready_shipping")
	get := func(doc map[string]any, path ...any) any {
		var x any = doc
		for _, p := range path {
			switch p := p.(type) {
			case string:
				m, _ := x.(map[string]any)
				x = m[p]
			case int:
				a, _ := x.([]any)
				if p >= len(a) {
					return nil
				}
				x = a[p]
			}
		}
		return x
	}
	for _, v := range Versions {
		doc := encode(t, c, v, s)
		if doc["currency"] != "usd" {
			t.Errorf("%s: currency %v", v, doc["currency"])
		}
		newer := !v.Before(V20260130)
		// selection
		switch {
		case v == V20250929:
			if doc["fulfillment_option_id"] != "ship_std" {
				t.Errorf("%s: fulfillment_option_id %v", v, doc["fulfillment_option_id"])
			}
		case newer:
			if get(doc, "selected_fulfillment_options", 0, "option_id") != "ship_std" ||
				len(get(doc, "selected_fulfillment_options", 0, "item_ids").([]any)) != 3 {
				t.Errorf("%s: selection %v", v, doc["selected_fulfillment_options"])
			}
		default:
			if get(doc, "selected_fulfillment_options", 0, "shipping", "option_id") != "ship_std" ||
				get(doc, "selected_fulfillment_options", 0, "shipping", "item_ids", 2) != "li_3" {
				t.Errorf("%s: selection %v", v, doc["selected_fulfillment_options"])
			}
		}
		// line item 2 (discounted mug): 1250 − 250 = 1000, tax 80
		if newer {
			if get(doc, "line_items", 1, "quantity") != 1.0 || get(doc, "line_items", 1, "item", "id") != "mug-blue" ||
				get(doc, "line_items", 1, "product_id") != "mug" {
				t.Errorf("%s: line %v", v, get(doc, "line_items", 1))
			}
		} else if get(doc, "line_items", 1, "item", "quantity") != 1.0 || get(doc, "line_items", 1, "discount") != 250.0 ||
			get(doc, "line_items", 1, "subtotal") != 1000.0 || get(doc, "line_items", 1, "total") != 1080.0 {
			t.Errorf("%s: line %v", v, get(doc, "line_items", 1))
		}
		// buyer: "Jane Q Doe" splits as "Jane Q" + "Doe" for old versions
		if newer {
			if get(doc, "buyer", "full_name") != "Jane Q Doe" {
				t.Errorf("%s: buyer %v", v, doc["buyer"])
			}
		} else if get(doc, "buyer", "first_name") != "Jane Q" || get(doc, "buyer", "last_name") != "Doe" {
			t.Errorf("%s: buyer %v", v, doc["buyer"])
		}
		// address
		addr := get(doc, "fulfillment_details", "address")
		if v == V20250929 {
			addr = doc["fulfillment_address"]
		}
		if get(addr.(map[string]any), "state") != "IL" || get(addr.(map[string]any), "line_two") != "Apt 4" {
			t.Errorf("%s: address %v", v, addr)
		}
		// payment
		switch {
		case newer:
			if get(doc, "capabilities", "payment", "handlers", 0, "config", "merchant_id") != "acct_123" ||
				get(doc, "capabilities", "interventions", "supported", 0) != "3ds" {
				t.Errorf("%s: capabilities %v", v, doc["capabilities"])
			}
		case v == V20250929:
			if get(doc, "payment_provider", "supported_payment_methods", 0) != "card" {
				t.Errorf("%s: payment_provider %v", v, doc["payment_provider"])
			}
		default:
			nets := get(doc, "payment_provider", "supported_payment_methods", 0, "supported_card_networks").([]any)
			if len(nets) != 4 || (v == V20260116) != (get(doc, "payment_provider", "merchant_id") == "acct_123") {
				t.Errorf("%s: payment_provider %v", v, doc["payment_provider"])
			}
		}
		// fulfillment option amounts
		opt := get(doc, "fulfillment_options", 0).(map[string]any)
		if v.Before(V20260116) {
			if opt["subtotal"] != 500.0 || opt["tax"] != 40.0 || opt["total"] != 540.0 || opt["subtitle"] != "3-5 business days" {
				t.Errorf("%s: option %v", v, opt)
			}
		} else if opt["description"] != "3-5 business days" || totalOf(opt["totals"], "total") != 540 {
			t.Errorf("%s: option %v", v, opt)
		}
		_, hasProtocol := doc["protocol"]
		_, hasCreated := doc["created_at"]
		if hasProtocol != newer || hasCreated != newer {
			t.Errorf("%s: protocol %v created_at %v", v, hasProtocol, hasCreated)
		}
		if newer && get(doc, "protocol", "version") != string(v) {
			t.Errorf("%s: protocol %v", v, doc["protocol"])
		}
	}
}

func totalOf(totals any, typ string) float64 {
	for _, x := range totals.([]any) {
		if x := x.(map[string]any); x["type"] == typ {
			return x["amount"].(float64)
		}
	}
	return -1
}

// TestEncodeBuyerRules: the old Buyer requires first and last name; a
// single-word name cannot be split, so the buyer is left out there.
func TestEncodeBuyerRules(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "digital_only")
	for _, v := range Versions {
		doc := encode(t, c, v, s)
		_, has := doc["buyer"]
		if has != !v.Before(V20260130) {
			t.Errorf("%s: buyer present = %v: %v", v, has, doc["buyer"])
		}
		if v == V20250929 {
			if _, ok := doc["fulfillment_address"]; ok {
				t.Errorf("digital session has an address: %v", doc["fulfillment_address"])
			}
		}
	}
	// Given apart, the names are kept as given.
	done := loadSession(t, "completed")
	for _, v := range Versions {
		b := encode(t, c, v, done)["buyer"].(map[string]any)
		if b["first_name"] != "Jane" || b["last_name"] != "Doe" {
			t.Errorf("%s: buyer %v", v, b)
		}
	}
}

func TestEncodeTaxInclusive(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "tax_inclusive")
	for _, v := range Versions {
		doc := encode(t, c, v, s)
		var tax map[string]any
		for _, x := range doc["totals"].([]any) {
			if x := x.(map[string]any); x["type"] == "tax" {
				tax = x
			}
		}
		if tax == nil || tax["amount"] != 0.0 || !strings.Contains(tax["display_text"].(string), "7.00 EUR included") {
			t.Errorf("%s: tax total %v", v, tax)
		}
		if totalOf(doc["totals"], "total") != 4870 || doc["currency"] != "eur" {
			t.Errorf("%s: totals %v", v, doc["totals"])
		}
		addr, _ := doc["fulfillment_address"].(map[string]any)
		if addr == nil {
			addr = doc["fulfillment_details"].(map[string]any)["address"].(map[string]any)
		}
		if addr["state"] != "" || addr["name"] != "Max Mustermann" {
			t.Errorf("%s: address %v", v, addr)
		}
	}
}

func TestEncodeOrder(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "completed")
	for _, v := range Versions {
		o := encode(t, c, v, s)["order"].(map[string]any)
		want := map[string]any{"id": "ord_1", "checkout_session_id": "cs_done", "permalink_url": "https://shop.example/orders/ord_1"}
		if v == Latest {
			want["type"] = "order"
		}
		if len(o) != len(want) {
			t.Errorf("%s: order %v", v, o)
		}
		for k, x := range want {
			if o[k] != x {
				t.Errorf("%s: order.%s = %v, want %v", v, k, o[k], x)
			}
		}
	}
}

// TestCrossVersionFacts: the facts an agent acts on are the same at every
// version.
func TestCrossVersionFacts(t *testing.T) {
	c := testCodec()
	for _, name := range fixtureNames(t) {
		s := loadSession(t, name)
		for _, v := range Versions {
			doc := encode(t, c, v, s)
			if doc["id"] != s.ID || doc["currency"] != strings.ToLower(s.Currency) {
				t.Errorf("%s %s: id/currency %v %v", name, v, doc["id"], doc["currency"])
			}
			if got := totalOf(doc["totals"], "total"); got != float64(s.Totals.Total) {
				t.Errorf("%s %s: total %v, want %d", name, v, got, s.Totals.Total)
			}
			if got := totalOf(doc["totals"], "subtotal"); got != float64(s.Totals.Subtotal) {
				t.Errorf("%s %s: subtotal %v, want %d", name, v, got, s.Totals.Subtotal)
			}
			lines := doc["line_items"].([]any)
			if len(lines) != len(s.Lines) {
				t.Fatalf("%s %s: %d lines", name, v, len(lines))
			}
			for i, l := range lines {
				l := l.(map[string]any)
				item := l["item"].(map[string]any)
				q, total := l["quantity"], l["total"]
				if v.Before(V20260130) {
					q = item["quantity"]
				} else {
					total = totalOf(l["totals"], "total")
				}
				if l["id"] != s.Lines[i].ID || item["id"] != s.Lines[i].VariantID || q != float64(s.Lines[i].Quantity) || total != float64(s.Lines[i].Total) {
					t.Errorf("%s %s: line %d = %v", name, v, i, l)
				}
			}
		}
	}
}

// TestEncodeGolden pins the complete documents of two sessions at every
// version (go test -run Golden -update rewrites them).
func TestEncodeGolden(t *testing.T) {
	c := testCodec()
	for _, name := range []string{"ready_shipping", "auth_required"} {
		s := loadSession(t, name)
		for _, v := range Versions {
			raw, err := c.EncodeSession(v, s)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", name+"."+string(v)+".json"), raw)
		}
	}
}

func TestEncodeUnsupportedVersion(t *testing.T) {
	if _, err := testCodec().EncodeSession("2024-01-01", loadSession(t, "empty")); err == nil {
		t.Error("no error for an unknown version")
	}
}

// TestEncodeConcurrent: a Codec and a session are shared by requests.
func TestEncodeConcurrent(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "ready_shipping")
	want := map[Version][]byte{}
	for _, v := range Versions {
		want[v], _ = c.EncodeSession(v, s)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, v := range Versions {
				if got, _ := c.EncodeSession(v, s); !bytes.Equal(got, want[v]) {
					t.Errorf("%s: concurrent encoding differs", v)
				}
			}
		})
	}
	wg.Wait()
}

func TestDiscovery(t *testing.T) {
	c := testCodec()
	raw, err := c.Discovery("https://shop.example/acp", []string{"rest", "rest"})
	if err != nil {
		t.Fatal(err)
	}
	if err := acpspec.Validate(string(Latest), checkoutSchema, "DiscoveryResponse", raw); err != nil {
		t.Errorf("%s: %v", raw, err)
	}
	want := `{"protocol":{"name":"acp","version":"2026-04-17","supported_versions":["2025-09-29","2025-12-12","2026-01-16","2026-01-30","2026-04-17"]},` +
		`"api_base_url":"https://shop.example/acp","transports":["rest"],` +
		`"capabilities":{"services":["checkout"],"intervention_types":["3ds"],"supported_currencies":["usd","eur"]}}`
	if string(raw) != want {
		t.Errorf("discovery\n got %s\nwant %s", raw, want)
	}
	for _, bad := range []struct {
		url        string
		transports []string
	}{{"/acp", []string{"rest"}}, {"https://x", []string{"grpc"}}, {"https://x", nil}} {
		if _, err := c.Discovery(bad.url, bad.transports); err == nil {
			t.Errorf("Discovery(%q, %v): no error", bad.url, bad.transports)
		}
	}
	if _, err := (&Codec{Currencies: []string{"dollars"}}).Discovery("https://x", []string{"mcp"}); err == nil {
		t.Error("bad currency accepted")
	}
}

// TestEncodeDropsBadInput: what an agent sent (any string) never makes a
// response invalid; the engine's messages say what is wrong.
func TestEncodeDropsBadInput(t *testing.T) {
	c := testCodec()
	s := loadSession(t, "bad_input")
	for _, v := range Versions {
		doc := encode(t, c, v, s)
		if _, ok := doc["buyer"]; ok {
			t.Errorf("%s: buyer with a malformed email: %v", v, doc["buyer"])
		}
		if d, ok := doc["fulfillment_details"].(map[string]any); ok {
			if _, ok := d["email"]; ok || d["phone_number"] != "12" {
				t.Errorf("%s: details %v", v, d)
			}
		}
		if n := len(doc["links"].([]any)); n != 1 {
			t.Errorf("%s: %d links, want the one absolute link", v, n)
		}
	}
}

func TestValidEmail(t *testing.T) {
	for _, ok := range []string{"a@b.c", "jane.doe+tag@example.co.uk", "x_y@sub-domain.example", "a@localhost"} {
		if !validEmail(ok) {
			t.Errorf("validEmail(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "a", "@b.c", "a@", "a@b..c", ".a@b.c", "a.@b.c", "a..b@c.d", "a b@c.d", "a@-b.c", "a@b_c.d",
		`"q"@b.c`, "a@[127.0.0.1]", strings.Repeat("a", 65) + "@b.c", "a@" + strings.Repeat("b", 64) + ".c"} {
		if validEmail(bad) {
			t.Errorf("validEmail(%q) = true", bad)
		}
	}
}

func TestCodecValidate(t *testing.T) {
	if err := testCodec().Validate(); err != nil {
		t.Errorf("valid codec: %v", err)
	}
	if err := (&Codec{}).Validate(); err != nil {
		t.Errorf("zero codec: %v", err)
	}
	bad := &Codec{Handler: PaymentHandler{ID: "h", Version: "2026-1-22", Spec: "/spec"}, Currencies: []string{"usd", "euro"}}
	err := bad.Validate()
	for _, want := range []string{"name is empty", "psp is empty", "merchant_id is empty", "not YYYY-MM-DD", `"/spec" is not an absolute URL`, "no instrument schema", `"euro"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
}

// FuzzEncodeSession puts arbitrary strings where the engine passes on what
// agents and shop admins wrote, and requires a valid document at every
// version.
func FuzzEncodeSession(f *testing.F) {
	f.Add("Jane Q Doe", "jane@example.com", "https://shop.example/terms", "$.line_items[0].quantity", "quantity_exceeded", "ready_for_payment", int64(700))
	f.Add("Madonna", "m@", "/x", "$.fulfillment_details.address.company", "warning", "authentication_required", int64(0))
	f.Add("", "", "", "", "", "expired", int64(-1))
	f.Fuzz(func(t *testing.T, name, email, link, param, code, status string, n int64) {
		s := loadSession(t, "ready_shipping")
		s.Status = bridge.SessionStatus(status)
		if !validStatus[s.Status] {
			s.Status = bridge.StatusNotReady
		}
		s.Buyer = &bridge.Buyer{Name: name, Email: email}
		s.Contact = &bridge.Buyer{Name: name, Email: email, Phone: name}
		s.ShipTo.Name, s.ShipTo.Region, s.ShipTo.Company = name, code, name
		s.Links = append(s.Links, bridge.Link{Type: code, URL: link}, bridge.Link{Type: "return_policy", URL: link})
		s.Lines[0].ImageURL, s.Lines[1].Title = link, name
		s.Totals.TaxIncluded, s.Totals.Tax = n, 0
		s.Interventions = []string{code, "3ds", code}
		s.Auth = &bridge.AuthChallenge{AcquirerBIN: code, AcquirerCountry: code, AcquirerMerchantID: name, MerchantName: name, DirectoryServer: code}
		for _, typ := range []bridge.MessageType{bridge.MessageError, bridge.MessageWarning, bridge.MessageInfo, bridge.MessageType(code)} {
			s.Messages = append(s.Messages, bridge.Message{Type: typ, Code: code, Param: param, Content: name, Resolution: code})
		}
		if n%2 == 0 {
			s.Order = &bridge.SessionOrder{ID: "ord_1", PermalinkURL: "https://shop.example/o/1"}
		}
		c := testCodec()
		for _, v := range Versions {
			encode(t, c, v, s)
		}
	})
}

var validStatus = map[bridge.SessionStatus]bool{
	bridge.StatusNotReady: true, bridge.StatusReady: true, bridge.StatusAuthRequired: true, bridge.StatusCompleteInProgress: true,
	bridge.StatusCompleted: true, bridge.StatusCanceled: true, bridge.StatusExpired: true,
}

// checkGolden compares the indented JSON raw with the golden file (written
// instead with -update).
func checkGolden(t *testing.T, file string, raw []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(file, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s differs from the golden file:\n%s", file, pretty.Bytes())
	}
}
