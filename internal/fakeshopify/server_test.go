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
