package fakewoo

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// do sends one request with the default keys (Basic auth unless noAuth)
// and returns the status, headers and decoded body.
func do(t *testing.T, s *Server, method, path, body string, auth bool) (int, http.Header, any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+prefix+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(DefaultKey, DefaultSecret)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, resp.Header, v
}

func code(v any) string {
	m, _ := v.(map[string]any)
	c, _ := m["code"].(string)
	return c
}

func TestAPI(t *testing.T) {
	s := New(t)
	s.AddCatalog(25, 2)
	big := strings.Repeat(`{"id":1},`, 100) + `{"id":2}`
	tests := []struct {
		name, method, path, body string
		auth                     bool
		status                   int
		code                     string
	}{
		{"no credentials", "GET", "/products", "", false, 401, "woocommerce_rest_cannot_view"},
		{"no credentials, write", "POST", "/orders", "{}", false, 401, "woocommerce_rest_cannot_create"},
		{"per_page over 100", "GET", "/products?per_page=101", "", true, 400, "rest_invalid_param"},
		{"per_page zero", "GET", "/products?per_page=0", "", true, 400, "rest_invalid_param"},
		{"unknown product", "GET", "/products/99999", "", true, 404, "woocommerce_rest_product_invalid_id"},
		{"unknown route", "GET", "/nothing", "", true, 404, "rest_no_route"},
		{"batch of 101", "POST", "/products/batch", `{"update":[` + big + `]}`, true, 413, "woocommerce_rest_request_entity_too_large"},
		{"batch of 100", "POST", "/products/batch", `{"update":[` + strings.TrimSuffix(strings.Repeat(`{"id":1},`, 100), ",") + `]}`, true, 200, ""},
		{"shipping line without method", "POST", "/orders", `{"shipping_lines":[{"total":"5.00"}]}`, true, 400, "woocommerce_rest_invalid_shipping_item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, tt.method, tt.path, tt.body, tt.auth)
			if status != tt.status || code(body) != tt.code {
				t.Errorf("got %d %q, want %d %q (%v)", status, code(body), tt.status, tt.code, body)
			}
		})
	}
}

func TestQueryStringAuth(t *testing.T) {
	s := New(t)
	resp, err := s.Client.Get(s.URL + prefix + "/products?consumer_key=" + DefaultKey + "&consumer_secret=" + DefaultSecret)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	resp, err = s.Client.Get(s.URL + prefix + "/products?consumer_key=" + DefaultKey + "&consumer_secret=cs_wrong")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("wrong secret: status %d", resp.StatusCode)
	}
}

func TestPaginationHeaders(t *testing.T) {
	s := New(t)
	s.AddCatalog(25, 1)
	status, h, body := do(t, s, "GET", "/products?per_page=10&page=2", "", true)
	if status != 200 || h.Get("X-WP-Total") != "25" || h.Get("X-WP-TotalPages") != "3" {
		t.Fatalf("%d %v", status, h)
	}
	if l := h.Get("Link"); !strings.Contains(l, `page=1&per_page=10>; rel="prev"`) || !strings.Contains(l, `page=3&per_page=10>; rel="next"`) {
		t.Errorf("Link: %s", l)
	}
	if n := len(body.([]any)); n != 10 {
		t.Errorf("%d items", n)
	}
	_, _, body = do(t, s, "GET", "/products", "", true)
	if n := len(body.([]any)); n != 10 {
		t.Errorf("default per_page: %d items", n)
	}
}

// An order takes stock like WooCommerce: a "parent" variation's from its
// parent, past zero when it must, with no check at all.
func TestOrderTakesStock(t *testing.T) {
	s := New(t)
	ids := s.AddCatalog(1, 2) // product 0 keeps its stock (5) on the parent
	p, _ := s.Product(ids[0])
	v := p.Variations[0]
	body, _ := json.Marshal(map[string]any{"set_paid": true, "line_items": []any{
		map[string]any{"product_id": ids[0], "variation_id": v, "quantity": 7, "total": "76.93"},
		map[string]any{"product_id": 424242, "quantity": 1, "total": "1.00"}, // no such product: taken anyway
	}})
	status, _, o := do(t, s, "POST", "/orders", string(bytes.TrimSpace(body)), true)
	if status != 201 || o.(map[string]any)["status"] != "processing" {
		t.Fatalf("%d %v", status, o)
	}
	p, _ = s.Product(ids[0])
	if *p.StockQuantity != -2 || p.StockStatus != "outofstock" {
		t.Errorf("parent stock %d %s", *p.StockQuantity, p.StockStatus)
	}
	if vv, _ := s.Product(v); vv.StockStatus != "outofstock" {
		t.Errorf("variation status %s", vv.StockStatus)
	}
}

// status=any lists every order but the trashed ones, as WP_Query's "any".
func TestOrdersAnyLeavesTrashOut(t *testing.T) {
	s := New(t)
	s.AddOrder(Order{Status: "processing"})
	s.AddOrder(Order{Status: "trash"})
	tests := []struct {
		query string
		want  int
	}{
		{"", 1},
		{"?status=any", 1},
		{"?status=trash", 1},
		{"?status=processing", 1},
	}
	for _, tt := range tests {
		_, h, v := do(t, s, "GET", "/orders"+tt.query, "", true)
		if l, _ := v.([]any); len(l) != tt.want || h.Get("X-WP-Total") != strconv.Itoa(tt.want) {
			t.Errorf("%q: %d orders (X-WP-Total %s), want %d", tt.query, len(l), h.Get("X-WP-Total"), tt.want)
		}
	}
}
