package fakestore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const validBody = `{"external_id":"ord_raw","currency":"USD","total":"10.00","lines":[{"sku":"sku-1","quantity":1,"unit_price":"10.00"}]}`

func TestServerAPI(t *testing.T) {
	t.Parallel()
	s := New(t)
	tok := s.Token()
	for _, tc := range []struct {
		name         string
		method, path string
		token, body  string
		status       int
		code         string // the JSON error code, for errors
		contains     string // in the body, for successes
	}{
		{name: "empty search", method: "GET", path: "/orders?external_id=nope", token: tok, status: 200, contains: `{"orders":[]}`},
		{name: "create", method: "POST", path: "/orders", token: tok, body: validBody, status: 201, contains: `"id":"S-1"`},
		{name: "search finds it", method: "GET", path: "/orders?external_id=ord_raw", token: tok, status: 200, contains: `"external_id":"ord_raw"`},
		{name: "get one", method: "GET", path: "/orders/S-1", token: tok, status: 200, contains: `"status":"open"`},
		{name: "get unknown", method: "GET", path: "/orders/S-99", token: tok, status: 404, code: "not_found"},
		{name: "no token", method: "GET", path: "/orders", status: 401, code: "unauthorized"},
		{name: "wrong token", method: "POST", path: "/orders", token: "nope", body: validBody, status: 401, code: "unauthorized"},
		{name: "bad JSON", method: "POST", path: "/orders", token: tok, body: `{"external_id":`, status: 400, code: "invalid_json"},
		{name: "no external id", method: "POST", path: "/orders", token: tok, status: 422, code: "invalid",
			body: `{"currency":"USD","total":"1.00","lines":[{"sku":"a","quantity":1,"unit_price":"1.00"}]}`},
		{name: "no lines", method: "POST", path: "/orders", token: tok, status: 422, code: "invalid",
			body: `{"external_id":"x","currency":"USD","total":"1.00","lines":[]}`},
		{name: "too many decimals", method: "POST", path: "/orders", token: tok, status: 422, code: "invalid",
			body: `{"external_id":"x","currency":"USD","total":"1.001","lines":[{"sku":"a","quantity":1,"unit_price":"1.00"}]}`},
		{name: "zero quantity", method: "POST", path: "/orders", token: tok, status: 422, code: "invalid",
			body: `{"external_id":"x","currency":"USD","total":"1.00","lines":[{"sku":"a","quantity":0,"unit_price":"1.00"}]}`},
		{name: "method not allowed", method: "DELETE", path: "/orders/S-1", token: tok, status: 405, code: "method_not_allowed"},
		{name: "unknown path", method: "GET", path: "/products", token: tok, status: 404, code: "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := call(t, tc.method, s.URL()+tc.path, tc.token, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.code != "" {
				var e ErrorBody
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
					t.Fatalf("error body %s (%v), want code %s", body, err, tc.code)
				}
			}
			if !strings.Contains(body, tc.contains) {
				t.Fatalf("body %s lacks %s", body, tc.contains)
			}
		})
	}
	// The 422s created nothing; the request counter saw every request.
	if n := len(s.Orders()); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	if n := s.Requests("POST /orders"); n != 7 {
		t.Fatalf("Requests(POST /orders) = %d, want 7", n)
	}
	if n := s.Requests("GET /orders"); n != 3 {
		t.Fatalf("Requests(GET /orders) = %d, want 3 (the query is not part of the key)", n)
	}
}

func TestServerFaultAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		arm        func(*Server)
		status     int
		retryAfter string
	}{
		{name: "FailNext", arm: func(s *Server) { s.FailNext(1, 502) }, status: 502},
		{name: "ThrottleNext rounds up", arm: func(s *Server) { s.ThrottleNext(1, 1500*time.Millisecond) }, status: 429, retryAfter: "2"},
		{name: "ThrottleNext without delay", arm: func(s *Server) { s.ThrottleNext(1, 0) }, status: 429},
		{name: "SetDown", arm: func(s *Server) { s.SetDown(true) }, status: 503},
		{name: "DownFor", arm: func(s *Server) { s.DownFor(time.Minute) }, status: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			tc.arm(s)
			// Faults come before authentication, as from a proxy in front of the store.
			status, hdr, body := call(t, "POST", s.URL()+"/orders", "", validBody)
			if status != tc.status || hdr.Get("Retry-After") != tc.retryAfter || !strings.Contains(body, `"error"`) {
				t.Fatalf("got %d Retry-After %q %s; want %d %q", status, hdr.Get("Retry-After"), body, tc.status, tc.retryAfter)
			}
			if s.Count("ord_raw") != 0 {
				t.Fatal("a faulted create was stored")
			}
		})
	}

	t.Run("SetDown(false) ends DownFor", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		s.DownFor(time.Minute)
		s.SetDown(false)
		if status, _, body := call(t, "GET", s.URL()+"/orders", s.Token(), ""); status != 200 {
			t.Fatalf("got %d %s", status, body)
		}
	})
}

// TestConcurrentSwitchesAndStock: counts are consumed exactly once under
// concurrent requests, and stock never goes below zero.
func TestConcurrentSwitchesAndStock(t *testing.T) {
	t.Parallel()
	s := New(t)
	const n = 20
	s.FailNext(3, 500)
	s.ThrottleNext(4, 0)
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			status, _, _, err := rawCall("GET", s.URL()+"/orders", s.Token(), "")
			if err != nil {
				t.Error(err)
			}
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	got := map[int]int{}
	for st := range statuses {
		got[st]++
	}
	if got[500] != 3 || got[429] != 4 || got[200] != n-7 {
		t.Fatalf("statuses %v", got)
	}

	s.SetStock("sku-1", 5)
	for i := range n {
		wg.Go(func() {
			body := strings.Replace(validBody, "ord_raw", fmt.Sprintf("ord_%d", i), 1)
			status, _, _, err := rawCall("POST", s.URL()+"/orders", s.Token(), body)
			if err != nil || (status != 201 && status != 422) {
				t.Errorf("create answered %d, %v", status, err)
			}
		})
	}
	wg.Wait()
	if left, _ := s.Stock("sku-1"); len(s.Orders()) != 5 || left != 0 {
		t.Fatalf("%d orders created from 5 in stock, %d left", len(s.Orders()), left)
	}
}

// TestDropAfterCommitOnlyConsumedByCreates: a refused create or a search
// does not use up the drop, so a test arms it for the create it means.
func TestDropAfterCommitOnlyConsumedByCreates(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.SetStock("sku-1", 0)
	s.DropAfterCommitNext(1)
	if status, _, _ := call(t, "GET", s.URL()+"/orders", s.Token(), ""); status != 200 {
		t.Fatalf("search answered %d", status)
	}
	if status, _, _ := call(t, "POST", s.URL()+"/orders", s.Token(), validBody); status != 422 {
		t.Fatalf("create beyond stock answered %d", status)
	}
	s.SetStock("sku-1", 1)
	req, err := http.NewRequest("POST", s.URL()+"/orders", strings.NewReader(validBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token())
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d, want the connection dropped", resp.StatusCode)
	}
	if s.Count("ord_raw") != 1 {
		t.Fatalf("the dropped create was not committed: count %d", s.Count("ord_raw"))
	}
}

// TestHangEndsWhenClientGivesUp: a create whose client gives up during
// the hang is never processed, even after the hang would have ended.
func TestHangEndsWhenClientGivesUp(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.HangNext(1, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL()+"/orders", strings.NewReader(validBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token())
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d within the hang", resp.StatusCode)
	}
	time.Sleep(400 * time.Millisecond) // past the hang
	if n := s.Count("ord_raw"); n != 0 {
		t.Fatalf("the abandoned create was processed: count %d", n)
	}
	// The hang was used up: the next create goes through at once.
	if status, _, body := call(t, "POST", s.URL()+"/orders", s.Token(), validBody); status != 201 {
		t.Fatalf("create answered %d %s", status, body)
	}
}
