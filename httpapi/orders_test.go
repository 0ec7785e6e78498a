package httpapi

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// memOrders is an in-memory OrderReader.
type memOrders map[string]bridge.Order

func (m memOrders) Order(_ context.Context, id string) (bridge.Order, error) {
	if id == "ord_broken" {
		return bridge.Order{}, errors.New("disk I/O error")
	}
	o, ok := m[id]
	if !ok {
		return bridge.Order{}, bridge.ErrNotFound
	}
	return o, nil
}

const (
	shopName    = "Demo Outfitters"
	sampleID    = "ord_3f9a1c2e4b6d8f0a1c2e4b6d"
	sampleToken = "9c1e5a7b3d2f4e6a8b0c1d2e"
)

// personal is what a status page must never show: every value of the
// sample's buyer and address.
var personal = []string{"Ada Lovelace", "Ada", "Lovelace", "ada@example.com", "+44 20 7946 0958",
	"12 St James", "Flat 3", "London", "SW1A 1AA", "Analytical Engines Ltd", "pi_secret_ref", "storeonly"}

func day0(d int) time.Time { return time.Date(2026, time.March, d, 14, 5, 0, 0, time.UTC) }

func i64(n int64) *int64 { return &n }

// sampleOrder is a shipped order with a bit of everything: a partly shipped
// line, a removed line, a shipment with tracking, a refund, personal data
// and admin notes that must stay off the page.
func sampleOrder() bridge.Order {
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	o := bridge.Order{
		ID: sampleID, Token: sampleToken, Status: "pending_payment", CreatedAt: day0(1), Currency: "USD",
		Lines: []bridge.OrderLine{
			{ID: "li_1", VariantID: "v1", Title: "Trail Runner Sock", Quantity: 3, Fulfilled: 2, UnitPrice: usd(1200), Total: usd(3600)},
			{ID: "li_2", VariantID: "v2", Title: "Merino Beanie", Quantity: 1, Current: i64(0), UnitPrice: usd(2500), Total: usd(2500)},
			{ID: "li_3", VariantID: "v3", Title: "Water Bottle", Quantity: 4, Current: i64(3), UnitPrice: usd(150000), Total: usd(600000)},
		},
		Subtotal: usd(606100), Shipping: usd(599), Tax: usd(48488), Total: usd(655187),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0958"},
		ShipTo:         &bridge.Address{Name: "Ada Lovelace", Company: "Analytical Engines Ltd", Line1: "12 St James", Line2: "Flat 3", City: "London", PostalCode: "SW1A 1AA", Country: "GB"},
		ShippingMethod: &bridge.ShippingMethod{ID: "std", Title: "Standard", Type: "shipping"},
		PaymentRef:     "pi_secret_ref", Payment: bridge.PaymentStateCaptured, StoreID: "storeonly",
		Fulfillments: []bridge.Fulfillment{{
			ID: "fu_1", Type: "shipping", Status: "in_transit", Carrier: "UPS", TrackingNumber: "1Z999AA10123456784",
			TrackingURL: "https://www.ups.com/track?tracknum=1Z999AA10123456784&x=1",
			Lines:       []bridge.LineRef{{ID: "li_1", Quantity: 2}},
			Events:      []bridge.FulfillmentEvent{{ID: "ev_1", Type: "shipped", OccurredAt: day0(3)}},
		}},
		Adjustments: []bridge.Adjustment{
			{ID: "adj_1", Type: "refund", Status: "completed", OccurredAt: day0(2), Amount: 1200, Reason: "storeonly"},
			{ID: "adj_2", Type: "refund", Status: "pending", OccurredAt: day0(4), Amount: 250000},
		},
	}
	o.SetStatus(day0(1), bridge.OrderCreated, "paid: pi_secret_ref")
	o.Note(day0(1), "written to the store as storeonly")
	o.SetStatus(day0(3), bridge.OrderShipped, "storeonly shipped it")
	return o
}

func orderStore() memOrders {
	m := memOrders{}
	add := func(o bridge.Order) { m[o.ID] = o }
	add(sampleOrder())
	for i, st := range []string{"pending_payment", "payment_unknown", "requires_authentication", "payment_declined", "", "some_future_state"} {
		o := sampleOrder()
		o.ID, o.Status, o.Token = "ord_pre"+strconv.Itoa(i), st, "aaaaaaaaaaaaaaaaaaaaaaa"+strconv.Itoa(i)
		add(o)
	}
	legacy := sampleOrder()
	legacy.ID, legacy.Token = "ord_legacy", ""
	add(legacy)
	other := sampleOrder()
	other.ID, other.Token = "ord_other", "0123456789abcdef01234567"
	add(other)
	return m
}

func orderHandler(t *testing.T, orders OrderReader) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return New(Config{Logger: quietLogger(&logs), Orders: orders, MerchantName: shopName}), &logs
}

func pageURL(id, token string) string { return "/orders/" + id + "?t=" + token }

func TestOrderPage(t *testing.T) {
	h, _ := orderHandler(t, orderStore())
	notFound := do(t, h, http.MethodGet, "/orders/ord_nope", nil, nil)
	if notFound.Code != http.StatusNotFound || !strings.Contains(notFound.Body.String(), "Order not found") {
		t.Fatalf("unknown order: %d %s", notFound.Code, notFound.Body)
	}

	tests := []struct {
		name string
		path string
		code int
		want []string
	}{
		{"right token", pageURL(sampleID, sampleToken), 200, []string{
			"<h1>Demo Outfitters</h1>", sampleID, "placed 1 March 2026", `<strong id="status">shipped</strong>`,
			"3 ×</td><td>Trail Runner Sock", "· 2 shipped", "Merino Beanie <span class=\"n\">· removed", "Water Bottle <span class=\"n\">· 1 removed",
			"$36.00", "$6,000.00", `id="shipping">$5.99<`, `id="tax">$484.88<`, `id="total">$6,551.87<`, `id="refunded">$12.00<`,
			"in transit", "Carrier: UPS", `<a href="https://www.ups.com/track?tracknum=1Z999AA10123456784&amp;x=1" rel="noopener noreferrer">1Z999AA10123456784</a>`,
			"<li>2 × Trail Runner Sock</li>", "shipped 3 March 2026",
			"Refunded $12.00 on 2 March 2026", "Refund of $2,500.00 pending since 4 March 2026",
			"<li>1 March 2026: received</li><li>3 March 2026: shipped</li>",
		}},
		{"wrong token", pageURL(sampleID, "9c1e5a7b3d2f4e6a8b0c1d2f"), 404, nil},
		{"another order's token", pageURL(sampleID, "0123456789abcdef01234567"), 404, nil},
		{"token prefix", pageURL(sampleID, sampleToken[:12]), 404, nil},
		{"token with more after it", pageURL(sampleID, sampleToken+"0"), 404, nil},
		{"token in upper case", pageURL(sampleID, strings.ToUpper(sampleToken)), 404, nil},
		{"no token", "/orders/" + sampleID, 404, nil},
		{"empty token", pageURL(sampleID, ""), 404, nil},
		{"token under another name", "/orders/" + sampleID + "?token=" + sampleToken, 404, nil},
		{"unknown id with a token", pageURL("ord_nope", sampleToken), 404, nil},
		{"pending_payment", pageURL("ord_pre0", "aaaaaaaaaaaaaaaaaaaaaaa0"), 404, nil},
		{"payment_unknown", pageURL("ord_pre1", "aaaaaaaaaaaaaaaaaaaaaaa1"), 404, nil},
		{"requires_authentication", pageURL("ord_pre2", "aaaaaaaaaaaaaaaaaaaaaaa2"), 404, nil},
		{"payment_declined", pageURL("ord_pre3", "aaaaaaaaaaaaaaaaaaaaaaa3"), 404, nil},
		{"no status", pageURL("ord_pre4", "aaaaaaaaaaaaaaaaaaaaaaa4"), 404, nil},
		{"a status nobody worded", pageURL("ord_pre5", "aaaaaaaaaaaaaaaaaaaaaaa5"), 404, nil},
		{"order without a token, empty t", pageURL("ord_legacy", ""), 404, nil},
		{"order without a token, no t", "/orders/ord_legacy", 404, nil},
		{"order without a token, some t", pageURL("ord_legacy", sampleToken), 404, nil},
		{"other order, right token", pageURL("ord_other", "0123456789abcdef01234567"), 200, []string{"ord_other", "shipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, http.MethodGet, tt.path, nil, nil)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			body := rec.Body.String()
			if tt.code == http.StatusNotFound {
				// Byte for byte the unknown order's page: nothing tells
				// that this order exists.
				if body != notFound.Body.String() {
					t.Fatalf("404 body differs from an unknown order's:\n%s\nwant\n%s", body, notFound.Body)
				}
				if strings.Contains(body, sampleID) || strings.Contains(body, "Trail Runner") {
					t.Fatalf("404 shows the order: %s", body)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, p := range personal {
				if strings.Contains(body, p) {
					t.Errorf("page shows personal or internal data %q", p)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

// TestOrderPageGolden keeps the whole page, and the 404, under review: a
// change to either shows up as a diff of testdata/golden.
func TestOrderPageGolden(t *testing.T) {
	h, _ := orderHandler(t, orderStore())
	for _, tt := range []struct {
		file, path string
		code       int
	}{
		{"order_page.html", pageURL(sampleID, sampleToken), http.StatusOK},
		{"order_not_found.html", pageURL(sampleID, "nope"), http.StatusNotFound},
	} {
		t.Run(tt.file, func(t *testing.T) {
			rec := do(t, h, http.MethodGet, tt.path, nil, nil)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d", rec.Code, tt.code)
			}
			golden := filepath.Join("testdata", "golden", tt.file)
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, rec.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(rec.Body.Bytes(), want) {
				t.Errorf("page differs from %s (run with -update after checking the change):\n%s", golden, rec.Body)
			}
		})
	}
}

func TestOrderPageStatusWords(t *testing.T) {
	tests := []struct{ status, want string }{
		{bridge.OrderCreated, "received"},
		{bridge.OrderConfirmed, "confirmed"},
		{bridge.OrderProcessing, "processing"},
		{bridge.OrderShipped, "shipped"},
		{bridge.OrderCompleted, "delivered"},
		{bridge.OrderCanceled, "canceled"},
		{bridge.OrderManualReview, "being reviewed by the shop"},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			o := sampleOrder()
			o.SetStatus(day0(5), tt.status, "")
			h, _ := orderHandler(t, memOrders{o.ID: o})
			rec := do(t, h, http.MethodGet, pageURL(o.ID, o.Token), nil, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if want := `<strong id="status">` + tt.want + `</strong>`; !strings.Contains(rec.Body.String(), want) {
				t.Fatalf("page lacks %q:\n%s", want, rec.Body)
			}
		})
	}
}

// TestOrderPageEscaping feeds the page what a hostile store export or a
// compromised carrier integration could put in an order.
func TestOrderPageEscaping(t *testing.T) {
	o := sampleOrder()
	o.Lines[0].Title = `<script>alert("title")</script>`
	o.Lines[1].Title = `"><img src=x onerror=alert(1)>`
	o.Fulfillments = []bridge.Fulfillment{
		{ID: "f1", Type: "shipping", Status: "shipped", Carrier: `<b onmouseover=alert(2)>UPS</b>`, TrackingNumber: "JS1", TrackingURL: "javascript:alert(document.cookie)"},
		{ID: "f2", Type: "shipping", Status: "shipped", TrackingNumber: "JS2", TrackingURL: " JaVaScRiPt:alert(3)"},
		{ID: "f3", Type: "shipping", Status: "shipped", TrackingNumber: "DATA", TrackingURL: "data:text/html,<script>alert(4)</script>"},
		{ID: "f4", Type: "shipping", Status: "shipped", TrackingNumber: "REL", TrackingURL: "//evil.example/x"},
		{ID: "f5", Type: "shipping", Status: "shipped", TrackingNumber: "PATH", TrackingURL: "/orders/other?t=x"},
		{ID: "f6", Type: "shipping", Status: "shipped", TrackingNumber: "MAIL", TrackingURL: "mailto:x@example.com"},
		{ID: "f7", Type: "shipping", Status: `"onload="alert(5)`, TrackingNumber: `QUOTE"><script>alert(6)</script>`, TrackingURL: `https://track.example/?q="><script>alert(7)</script>`},
	}
	h, _ := orderHandler(t, memOrders{o.ID: o})
	rec := do(t, h, http.MethodGet, pageURL(o.ID, o.Token), nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	for _, bad := range []string{"<script", "<img", "<b ", "javascript:", "JaVaScRiPt", "data:text", "evil.example", "/orders/other", "mailto:", "ZgotmplZ", `"onload=`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;",
		"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
		"Carrier: &lt;b onmouseover=alert(2)&gt;UPS&lt;/b&gt;",
		"Tracking number: JS1<", "Tracking number: JS2<", "Tracking number: DATA<", "Tracking number: REL<", "Tracking number: PATH<", "Tracking number: MAIL<",
		`<a href="https://track.example/?q=%22%3e%3cscript%3ealert%287%29%3c/script%3e" rel="noopener noreferrer">QUOTE&#34;&gt;&lt;script&gt;alert(6)&lt;/script&gt;</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(body, "<a "); n != 1 {
		t.Errorf("%d links, want only the https one", n)
	}
	if t.Failed() {
		t.Log(body)
	}

	// The merchant name is configuration, but escaped all the same, on the
	// 404 page too.
	var logs bytes.Buffer
	h = New(Config{Logger: quietLogger(&logs), Orders: memOrders{}, MerchantName: "<script>x</script>"})
	if body := do(t, h, http.MethodGet, "/orders/ord_x", nil, nil).Body.String(); strings.Contains(body, "<script") {
		t.Errorf("404 page: %s", body)
	}
}

func TestOrderPageHeaders(t *testing.T) {
	h, logs := orderHandler(t, orderStore())
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"Cache-Control":           "no-store",
		"Referrer-Policy":         "no-referrer",
		"X-Robots-Tag":            "noindex, nofollow",
		"X-Content-Type-Options":  "nosniff",
	}
	for _, tt := range []struct {
		name, path string
		code       int
	}{
		{"page", pageURL(sampleID, sampleToken), 200},
		{"not found", pageURL(sampleID, "nope"), 404},
		{"storage error", pageURL("ord_broken", sampleToken), 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, h, http.MethodGet, tt.path, nil, nil)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d", rec.Code, tt.code)
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
				t.Errorf("Content-Length %s, body %s bytes", got, want)
			}
		})
	}
	if !strings.Contains(logs.String(), "disk I/O error") {
		t.Errorf("storage error not logged: %s", logs)
	}
}

// TestOrderPageHead goes through a real server: net/http is what drops a
// HEAD answer's body, so a recorder would not show it.
func TestOrderPageHead(t *testing.T) {
	h, _ := orderHandler(t, orderStore())
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tt := range []struct {
		name, path string
		code       int
	}{
		{"page", pageURL(sampleID, sampleToken), 200},
		{"wrong token", pageURL(sampleID, "nope"), 404},
		{"unknown", pageURL("ord_nope", "nope"), 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			get, getBody := fetch(t, http.MethodGet, srv.URL+tt.path)
			head, headBody := fetch(t, http.MethodHead, srv.URL+tt.path)
			if get.StatusCode != tt.code || head.StatusCode != tt.code {
				t.Fatalf("GET %d, HEAD %d, want %d", get.StatusCode, head.StatusCode, tt.code)
			}
			if len(headBody) != 0 {
				t.Errorf("HEAD body: %q", headBody)
			}
			if head.ContentLength != int64(len(getBody)) {
				t.Errorf("HEAD Content-Length %d, GET body %d bytes", head.ContentLength, len(getBody))
			}
			for _, k := range []string{"Content-Type", "Content-Security-Policy", "Cache-Control", "Referrer-Policy", "X-Robots-Tag"} {
				if head.Header.Get(k) != get.Header.Get(k) {
					t.Errorf("%s: HEAD %q, GET %q", k, head.Header.Get(k), get.Header.Get(k))
				}
			}
		})
	}
	// Anything but GET and HEAD is refused by the router, before the order
	// is looked up.
	post, _ := fetch(t, http.MethodPost, srv.URL+pageURL(sampleID, sampleToken))
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", post.StatusCode)
	}
}

func fetch(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestTokenMatches(t *testing.T) {
	tests := []struct {
		got, want string
		ok        bool
	}{
		{sampleToken, sampleToken, true},
		{"", "", false},
		{"", sampleToken, false},
		{sampleToken, "", false},
		{sampleToken[:23], sampleToken, false},
		{sampleToken + "0", sampleToken, false},
		{"9c1e5a7b3d2f4e6a8b0c1d2f", sampleToken, false},
	}
	for _, tt := range tests {
		if got := tokenMatches(tt.got, tt.want); got != tt.ok {
			t.Errorf("tokenMatches(%q, %q) = %v", tt.got, tt.want, got)
		}
	}
}

func TestDisplayMoney(t *testing.T) {
	tests := []struct {
		amount int64
		cur    string
		want   string
	}{
		{1200, "USD", "$12.00"},
		{5, "USD", "$0.05"},
		{0, "USD", "$0.00"},
		{123456789, "USD", "$1,234,567.89"},
		{-1250, "USD", "-$12.50"},
		{100000, "EUR", "€1,000.00"},
		{1500, "JPY", "¥1,500"},
		{123456, "KWD", "123.456 KWD"},
		{99900, "CAD", "999.00 CAD"},
		{100000000, "IDR", "1,000,000.00 IDR"},
	}
	for _, tt := range tests {
		if got := displayMoney(tt.amount, tt.cur); got != tt.want {
			t.Errorf("displayMoney(%d, %s) = %q, want %q", tt.amount, tt.cur, got, tt.want)
		}
	}
}

func TestOrderAdjustmentText(t *testing.T) {
	tests := []struct {
		a    bridge.Adjustment
		want string
	}{
		{bridge.Adjustment{Type: "refund", Status: "completed", Amount: 1200, OccurredAt: day0(2)}, "Refunded $12.00 on 2 March 2026"},
		{bridge.Adjustment{Type: "refund", Status: "pending", Amount: 1200, OccurredAt: day0(2)}, "Refund of $12.00 pending since 2 March 2026"},
		{bridge.Adjustment{Type: "refund", Status: "failed", Amount: 1200}, "Refund of $12.00 failed"},
		{bridge.Adjustment{Type: "dispute", Status: "needs_response", Amount: 5000, OccurredAt: day0(9)}, "Dispute of $50.00 (needs response) on 9 March 2026"},
		{bridge.Adjustment{Type: "cancellation", Status: "completed", OccurredAt: day0(9), Reason: "buyer's phone +1 555"}, "Cancellation (completed) on 9 March 2026"},
	}
	for _, tt := range tests {
		if got := adjustmentText(tt.a, "USD"); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.a, got, tt.want)
		}
	}
}
