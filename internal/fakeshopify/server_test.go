package fakeshopify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// post sends a GraphQL document the way a client does and decodes the
// answer.
func post(t *testing.T, s *Server, version, token, query string, vars map[string]any) (int, http.Header, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/admin/api/"+version+"/graphql.json", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Shopify-Access-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer is not JSON: %s", raw)
	}
	return resp.StatusCode, resp.Header, m
}

func TestAuthAndVersion(t *testing.T) {
	s := New(t, Config{})
	for _, tc := range []struct {
		name, version, token string
		status               int
		served               string
	}{
		{"good", "2026-10", DefaultToken, 200, "2026-10"},
		{"expired version falls forward", "2024-01", DefaultToken, 200, "2025-10"},
		{"no token", "2026-10", "", 401, "2026-10"},
		{"bad token", "2026-10", "shpat_nope", 401, "2026-10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, h, m := post(t, s, tc.version, tc.token, `{ shop { currencyCode } }`, nil)
			if st != tc.status || h.Get("X-Shopify-API-Version") != tc.served {
				t.Fatalf("status %d version %q: %v", st, h.Get("X-Shopify-API-Version"), m)
			}
			if st == 200 {
				if m["extensions"].(map[string]any)["cost"] == nil {
					t.Error("no cost extension")
				}
			} else if !strings.Contains(fmt.Sprint(m["errors"]), "Invalid API key or access token") {
				t.Errorf("401 body %v", m)
			}
		})
	}
}

func TestThrottledAt200(t *testing.T) {
	s := New(t, Config{BucketSize: 100, RestoreRate: 1})
	s.Generate(3, 2)
	q := `{ products(first: 10) { nodes { id variants(first: 5) { nodes { id } } } } }` // requested 2 + 10×(1+2+5×1) = 82
	st, _, m := post(t, s, "2026-10", DefaultToken, q, nil)
	if st != 200 || m["errors"] != nil {
		t.Fatalf("first query: %d %v", st, m)
	}
	// What a query does not use is given back (actual < requested), so
	// one query leaves the bucket nearly full; drain it.
	if avail := m["extensions"].(map[string]any)["cost"].(map[string]any)["throttleStatus"].(map[string]any)["currentlyAvailable"].(float64); avail < 80 {
		t.Errorf("unused cost not given back: %v available", avail)
	}
	s.DrainBucket()
	st, _, m = post(t, s, "2026-10", DefaultToken, q, nil)
	errs := fmt.Sprint(m["errors"])
	cost := m["extensions"].(map[string]any)["cost"].(map[string]any)
	if st != 200 || !strings.Contains(errs, "THROTTLED") || m["data"] != nil || cost["actualQueryCost"] != nil {
		t.Fatalf("second query: %d %v", st, m)
	}
	ts := cost["throttleStatus"].(map[string]any)
	if cost["requestedQueryCost"].(float64) != 82 || ts["restoreRate"].(float64) != 1 || ts["currentlyAvailable"].(float64) >= 82 {
		t.Errorf("cost %v", cost)
	}
}

func TestFaults(t *testing.T) {
	s := New(t, Config{})
	s.Fail(1, 429, "2.0")
	s.Fail(1, 503, "")
	for _, want := range []int{429, 503, 200} {
		body, _ := json.Marshal(map[string]any{"query": `{ shop { name } }`})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/admin/api/2026-10/graphql.json", bytes.NewReader(body))
		req.Header.Set("X-Shopify-Access-Token", DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("status %d, want %d", resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "2.0" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
}

// TestCursors walks all pages and gets every product once, in id order,
// even when a product is added between pages.
func TestCursors(t *testing.T) {
	s := New(t, Config{})
	s.Generate(7, 1)
	var ids []string
	var after any
	for page := 0; ; page++ {
		_, _, m := post(t, s, "2026-10", DefaultToken, `query($after: String) { products(first: 3, after: $after) { pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }`, map[string]any{"after": after})
		conn := m["data"].(map[string]any)["products"].(map[string]any)
		for _, e := range conn["edges"].([]any) {
			ids = append(ids, e.(map[string]any)["node"].(map[string]any)["id"].(string))
		}
		if page == 0 {
			s.AddProduct(Product{Title: "Late", Variants: []*Variant{{Title: "Default Title", Price: "1.00"}}})
		}
		pi := conn["pageInfo"].(map[string]any)
		if !pi["hasNextPage"].(bool) {
			break
		}
		after = pi["endCursor"]
	}
	if len(ids) != 8 {
		t.Fatalf("%d products over the pages, want 8: %v", len(ids), ids)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("%s twice", id)
		}
		seen[id] = true
	}
	_, _, m := post(t, s, "2026-10", DefaultToken, `{ products(first: 3, after: "bm90IGEgY3Vyc29y") { nodes { id } } }`, nil)
	if !strings.Contains(fmt.Sprint(m["errors"]), "invalid cursor") {
		t.Errorf("a forged cursor: %v", m)
	}
}

func TestBulk(t *testing.T) {
	s := New(t, Config{})
	s.Generate(2, 2)
	run := `mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { message code } } }`
	for _, tc := range []struct{ name, query, code string }{
		{"first argument", `{ products(first: 5) { edges { node { id } } } }`, "INVALID"},
		{"unknown field", `{ products { edges { node { id titel } } } }`, "INVALID"},
	} {
		_, _, m := post(t, s, "2026-10", DefaultToken, run, map[string]any{"q": tc.query})
		if !strings.Contains(fmt.Sprint(m["data"]), tc.code) {
			t.Errorf("%s: %v", tc.name, m)
		}
	}
	_, _, m := post(t, s, "2026-10", DefaultToken, run, map[string]any{"q": `{ products { edges { node { id variants { edges { node { id } } } } } } }`})
	op := m["data"].(map[string]any)["bulkOperationRunQuery"].(map[string]any)["bulkOperation"].(map[string]any)
	_, _, m = post(t, s, "2026-10", DefaultToken, `query($id: ID!) { node(id: $id) { ... on BulkOperation { status url objectCount } } }`, map[string]any{"id": op["id"]})
	node := m["data"].(map[string]any)["node"].(map[string]any)
	if node["status"] != "COMPLETED" || node["objectCount"] != "6" {
		t.Fatalf("bulk operation %v", node)
	}
	resp, err := http.Get(node["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	products, children := 0, 0
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if p, ok := line["__parentId"].(string); ok {
			if !strings.HasPrefix(p, "gid://shopify/Product/") || line["variants"] != nil {
				t.Errorf("child line %v", line)
			}
			children++
		} else {
			products++
		}
	}
	if products != 2 || children != 4 {
		t.Errorf("%d product lines, %d child lines", products, children)
	}
}

// TestOrderCreateTax: the order's total adds the tax lines (on the order,
// its lines and its shipping lines) unless taxesIncluded; tax lines on both
// the order and its lines are refused.
func TestOrderCreateTax(t *testing.T) {
	const doc = `mutation C($order: OrderCreateOrderInput!) { orderCreate(order: $order) {
  order { totalPriceSet { shopMoney { amount } } totalTaxSet { shopMoney { amount } } taxesIncluded } userErrors { field code } } }`
	money := func(a string) map[string]any {
		return map[string]any{"shopMoney": map[string]any{"amount": a, "currencyCode": "USD"}}
	}
	tax := func(a string) []any {
		return []any{map[string]any{"title": "VAT", "rate": "0.2", "priceSet": money(a)}}
	}
	for _, tc := range []struct {
		name       string
		included   bool
		orderTax   bool
		total, tax string // "" when refused
	}{
		{"tax added", false, false, "18.00", "3.00"},
		{"tax included", true, false, "15.00", "3.00"},
		{"order and line tax lines", false, true, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, Config{})
			p := s.AddProduct(Product{Title: "Tee", Variants: []*Variant{{Title: "S", Price: "10.00"}}})
			in := map[string]any{"taxesIncluded": tc.included,
				"lineItems":     []any{map[string]any{"variantId": gid("ProductVariant", p.Variants[0].ID), "quantity": 1, "priceSet": money("10.00"), "taxLines": tax("2.00")}},
				"shippingLines": []any{map[string]any{"title": "Post", "priceSet": money("5.00"), "taxLines": tax("1.00")}}}
			if tc.orderTax {
				in["taxLines"] = tax("3.00")
			}
			_, _, m := post(t, s, "2026-10", DefaultToken, doc, map[string]any{"order": in})
			oc := m["data"].(map[string]any)["orderCreate"].(map[string]any)
			if tc.total == "" {
				if oc["order"] != nil || !strings.Contains(fmt.Sprint(oc["userErrors"]), "INVALID") {
					t.Fatalf("answer %v, want an INVALID userError", oc)
				}
				return
			}
			o := oc["order"].(map[string]any)
			got := fmt.Sprint(o["totalPriceSet"].(map[string]any)["shopMoney"].(map[string]any)["amount"], " ",
				o["totalTaxSet"].(map[string]any)["shopMoney"].(map[string]any)["amount"], " ", o["taxesIncluded"])
			if want := fmt.Sprint(tc.total, " ", tc.tax, " ", tc.included); got != want {
				t.Errorf("total, tax, included = %s, want %s", got, want)
			}
		})
	}
}

// TestBulkCancel: a running bulk operation can be canceled, after which a
// new run is accepted; an ended one cannot.
func TestBulkCancel(t *testing.T) {
	s := New(t, Config{BulkDelay: time.Hour})
	run := `mutation R($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } userErrors { code } } }`
	cancel := `mutation C($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }`
	q := map[string]any{"q": `{ products { edges { node { id } } } }`}
	_, _, m := post(t, s, "2026-10", DefaultToken, run, q)
	id := m["data"].(map[string]any)["bulkOperationRunQuery"].(map[string]any)["bulkOperation"].(map[string]any)["id"]
	for _, tc := range []struct {
		name string
		doc  string
		vars map[string]any
		want string
	}{
		{"cancel the running one", cancel, map[string]any{"id": id}, "status:CANCELED"},
		{"cancel it again", cancel, map[string]any{"id": id}, "cannot be canceled"},
		{"a new run", run, q, "status:RUNNING"},
	} {
		_, _, m := post(t, s, "2026-10", DefaultToken, tc.doc, tc.vars)
		if got := fmt.Sprint(m["data"]); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %s, want %q in it", tc.name, got, tc.want)
		}
	}
}
