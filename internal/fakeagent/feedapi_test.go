package fakeagent_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/internal/reqsign"
)

const feedToken = "tok_fake_feed_api"

// send makes one Feed API request with the headers a correct client sends,
// then lets edit change it.
func sendFeed(t *testing.T, f *fakeagent.FeedAPI, method, path, body string, edit func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().UTC().Format(time.RFC3339)
	req.Header.Set("Authorization", "Bearer "+feedToken)
	req.Header.Set("API-Version", fakeagent.FeedAPIVersion)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Request-Id", "req_1")
	req.Header.Set("Timestamp", ts)
	req.Header.Set("Idempotency-Key", "key_"+method+path+body)
	req.Header.Set("Signature", reqsign.Sign([]byte("secret"), ts, []byte(body)))
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const product = `{"id":"p1","title":"Tee","variants":[{"id":"p1-v1","title":"Tee / S","price":{"amount":1999,"currency":"USD"}}]}`

// TestFeedAPIRefuses checks that the fake is as strict as the brief says,
// so that a client passing it is a correct client.
func TestFeedAPIRefuses(t *testing.T) {
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		edit         func(*http.Request)
		status       int
		want         string // in the answer
	}{
		{"valid upsert", "PATCH", "/feeds/{id}/products", `{"products":[` + product + `]}`, nil, 200, `"accepted":true`},
		{"valid create", "POST", "/feeds", `{"target_country":"US"}`, nil, 201, `"target_country":"US"`},
		{"wrong token", "PATCH", "/feeds/{id}/products", `{"products":[]}`, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401, "invalid_token"},
		{"no API-Version", "PATCH", "/feeds/{id}/products", `{"products":[]}`, func(r *http.Request) { r.Header.Del("API-Version") }, 400, "unsupported_api_version"},
		{"no idempotency key", "POST", "/feeds", `{}`, func(r *http.Request) { r.Header.Del("Idempotency-Key") }, 400, "idempotency_key_required"},
		{"bad signature", "POST", "/feeds", `{}`, func(r *http.Request) { r.Header.Set("Signature", "AAAA") }, 401, "invalid_signature"},
		{"product without variants", "PATCH", "/feeds/{id}/products", `{"products":[{"id":"p1"}]}`, nil, 400, "invalid_request_body"},
		{"unknown field", "PATCH", "/feeds/{id}/products", `{"products":[` + strings.Replace(product, `"title":"Tee",`, `"title":"Tee","brand":"x",`, 1) + `]}`, nil, 400, "invalid_request_body"},
		{"price as a decimal", "PATCH", "/feeds/{id}/products", `{"products":[` + strings.Replace(product, "1999", "19.99", 1) + `]}`, nil, 400, "invalid_request_body"},
		{"lower-case country", "POST", "/feeds", `{"target_country":"us"}`, nil, 400, "invalid_request_body"},
		{"unknown feed", "PATCH", "/feeds/feed_x/products", `{"products":[` + product + `]}`, nil, 404, "feed_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakeagent.NewFeedAPI(t, feedToken)
			f.SetSigningSecret("secret")
			path := strings.Replace(tc.path, "{id}", f.AddFeed("US"), 1)
			status, body := sendFeed(t, f, tc.method, path, tc.body, tc.edit)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("answer %d %s, want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
}

// TestFeedAPIIdempotency: a key replays its first answer and is not applied
// twice; the same key with another body is a conflict.
func TestFeedAPIIdempotency(t *testing.T) {
	f := fakeagent.NewFeedAPI(t, feedToken)
	key := func(r *http.Request) { r.Header.Set("Idempotency-Key", "same") }
	s1, b1 := sendFeed(t, f, "POST", "/feeds", `{"target_country":"US"}`, key)
	s2, b2 := sendFeed(t, f, "POST", "/feeds", `{"target_country":"US"}`, key)
	if s1 != 201 || s2 != 201 || b1 != b2 || len(f.Feeds()) != 1 {
		t.Fatalf("replay: %d %s / %d %s, feeds %v", s1, b1, s2, b2, f.Feeds())
	}
	if s, b := sendFeed(t, f, "POST", "/feeds", `{"target_country":"DE"}`, key); s != 422 || !strings.Contains(b, "idempotency_conflict") {
		t.Fatalf("reuse with another body: %d %s", s, b)
	}
}
