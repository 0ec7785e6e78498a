package fakestore

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/upstream"
)

func TestCreateAndFind(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.SetStock("sku-1", 5)
	c := newClient(t, s, nil)
	ctx := context.Background()

	so, err := c.WriteOrder(ctx, testOrder("ord_1"))
	if err != nil {
		t.Fatal(err)
	}
	if so.StoreID != "S-1" || so.URL != s.URL()+"/orders/S-1" {
		t.Fatalf("store order %+v", so)
	}
	got := s.Orders()
	if len(got) != 1 {
		t.Fatalf("%d orders", len(got))
	}
	o := got[0]
	if o.ExternalID != "ord_1" || o.Status != "open" || o.Currency != "USD" || o.Total != "49.97" ||
		o.Email != "ada@example.com" || len(o.Lines) != 2 ||
		o.Lines[0] != (Line{SKU: "sku-1", Quantity: 2, UnitPrice: "19.99"}) ||
		o.Lines[1] != (Line{SKU: "sku-2", Quantity: 1, UnitPrice: "5.00"}) ||
		o.ShippingAddress == nil || o.ShippingAddress.Name != "Ada Lovelace" || o.ShippingAddress.Country != "GB" {
		t.Fatalf("stored %+v", o)
	}
	if n, tracked := s.Stock("sku-1"); !tracked || n != 3 {
		t.Fatalf("sku-1 stock %d tracked %v, want 3", n, tracked)
	}
	if _, tracked := s.Stock("sku-2"); tracked {
		t.Fatal("sku-2 tracked without SetStock")
	}

	found, err := c.FindOrder(ctx, "ord_1")
	if err != nil || found != so {
		t.Fatalf("FindOrder = %+v, %v; want %+v", found, err, so)
	}
	_, err = c.FindOrder(ctx, "ord_unknown")
	checkErr(t, err, []error{bridge.ErrNotFound}, nil)
}

func TestServerDoesNotDeduplicate(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s, nil)
	ctx := context.Background()
	first, err := c.WriteOrder(ctx, testOrder("ord_dup"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.WriteOrder(ctx, testOrder("ord_dup"))
	if err != nil {
		t.Fatal(err)
	}
	if first.StoreID == second.StoreID || s.Count("ord_dup") != 2 || s.Requests("POST /orders") != 2 {
		t.Fatalf("ids %s %s, count %d", first.StoreID, second.StoreID, s.Count("ord_dup"))
	}
	if found, err := c.FindOrder(ctx, "ord_dup"); err != nil || found != first {
		t.Fatalf("FindOrder = %+v, %v; want the oldest %+v", found, err, first)
	}
}

// TestWriteOrderFaults checks how each fault reaches the write-back through
// the client, then that finishing the write the outbox's way (look up,
// create only if absent) leaves exactly one store order.
func TestWriteOrderFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     func(*upstream.Config)
		order   func(*bridge.Order)
		arm     func(*Server)
		want    []error // the first attempt's error wraps all of these
		notWant []error
		// posts is how many creates reached the store in the first
		// attempt; count how many store orders it left.
		posts, count int
		minTime      time.Duration
		// final is the store's order count after the outbox-style retries.
		final   int
		refused bool
	}{
		{
			name: "500 before commit is ambiguous", arm: func(s *Server) { s.FailNext(1, 500) },
			want: []error{upstream.ErrAmbiguous}, notWant: []error{bridge.ErrOrderRefused},
			posts: 1, count: 0, final: 1,
		},
		{
			name: "502 is never replayed", arm: func(s *Server) { s.FailNext(3, 502) },
			want: []error{upstream.ErrAmbiguous}, notWant: []error{bridge.ErrOrderRefused},
			posts: 1, count: 0, final: 1,
		},
		{
			name: "503 without Retry-After is ambiguous", arm: func(s *Server) { s.FailNext(1, 503) },
			want: []error{upstream.ErrAmbiguous}, posts: 1, count: 0, final: 1,
		},
		{
			name: "connection dropped after commit", arm: func(s *Server) { s.DropAfterCommitNext(1) },
			want: []error{upstream.ErrAmbiguous}, notWant: []error{bridge.ErrOrderRefused},
			posts: 1, count: 1, final: 1,
		},
		{
			name: "hang past the budget", arm: func(s *Server) { s.HangNext(1, 10*time.Second) },
			cfg:  func(c *upstream.Config) { c.Budget = 300 * time.Millisecond },
			want: []error{upstream.ErrAmbiguous, upstream.ErrBudget}, posts: 1, count: 0, final: 1,
		},
		{
			name: "hang within the budget", arm: func(s *Server) { s.HangNext(1, 100*time.Millisecond) },
			posts: 1, count: 1, minTime: 100 * time.Millisecond, final: 1,
		},
		{
			name: "429 Retry-After honoured", arm: func(s *Server) { s.ThrottleNext(1, time.Second) },
			posts: 2, count: 1, minTime: time.Second, final: 1,
		},
		{
			name: "429 without Retry-After retried", arm: func(s *Server) { s.ThrottleNext(2, 0) },
			posts: 3, count: 1, final: 1,
		},
		{
			name: "429 Retry-After beyond the budget", arm: func(s *Server) { s.ThrottleNext(1, 10*time.Second) },
			want: []error{upstream.ErrBudget}, notWant: []error{upstream.ErrAmbiguous, bridge.ErrOrderRefused},
			posts: 1, count: 0, final: 1,
		},
		{
			name: "insufficient stock refused", arm: func(s *Server) { s.SetStock("sku-1", 1) },
			want: []error{bridge.ErrOrderRefused}, notWant: []error{upstream.ErrAmbiguous},
			posts: 1, count: 0, final: 0, refused: true,
		},
		{
			name:  "invalid currency refused",
			order: func(o *bridge.Order) { o.Currency, o.Total.Currency = "XXX", "" },
			want:  []error{bridge.ErrOrderRefused}, posts: 1, count: 0, final: 0, refused: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			c := newClient(t, s, tc.cfg)
			o := testOrder("ord_" + strings.ReplaceAll(tc.name, " ", "_"))
			if tc.order != nil {
				tc.order(&o)
			}
			if tc.arm != nil {
				tc.arm(s)
			}

			start := time.Now()
			so, err := c.WriteOrder(context.Background(), o)
			elapsed := time.Since(start)
			checkErr(t, err, tc.want, tc.notWant)
			if err == nil && so.StoreID == "" {
				t.Errorf("success without a store id")
			}
			if got := s.Requests("POST /orders"); got != tc.posts {
				t.Errorf("%d creates reached the store, want %d", got, tc.posts)
			}
			if got := s.Count(o.ID); got != tc.count {
				t.Errorf("first attempt left %d store orders, want %d", got, tc.count)
			}
			if elapsed < tc.minTime {
				t.Errorf("took %s, want at least %s", elapsed, tc.minTime)
			}
			if tc.refused {
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnprocessableEntity || ae.Message == "" {
					t.Errorf("refusal %v lacks the store's 422 and message", err)
				}
			}

			if err != nil {
				_, err = deliver(t, c, o)
				if tc.refused != errors.Is(err, bridge.ErrOrderRefused) || (!tc.refused && err != nil) {
					t.Fatalf("finishing the write: %v", err)
				}
			}
			if got := s.Count(o.ID); got != tc.final {
				t.Fatalf("store has the order %d times, want %d", got, tc.final)
			}
		})
	}
}

func TestFindOrderFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     func(*upstream.Config)
		arm     func(*Server)
		want    []error
		notWant []error
		gets    int
		minTime time.Duration
	}{
		{name: "502 twice then found", arm: func(s *Server) { s.FailNext(2, 502) }, gets: 3},
		{name: "500 every time", arm: func(s *Server) { s.FailNext(10, 500) },
			cfg:  func(c *upstream.Config) { c.RetryMax = 2 },
			want: []error{upstream.ErrRetriesExhausted}, notWant: []error{bridge.ErrNotFound, upstream.ErrAmbiguous}, gets: 3},
		{name: "429 Retry-After honoured", arm: func(s *Server) { s.ThrottleNext(1, time.Second) }, gets: 2, minTime: time.Second},
		{name: "hang within the budget", arm: func(s *Server) { s.HangNext(1, 100*time.Millisecond) }, gets: 1, minTime: 100 * time.Millisecond},
		{name: "hang past the budget", arm: func(s *Server) { s.HangNext(1, 10*time.Second) },
			cfg:  func(c *upstream.Config) { c.Budget = 300 * time.Millisecond },
			want: []error{upstream.ErrBudget}, notWant: []error{bridge.ErrNotFound, upstream.ErrAmbiguous}, gets: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			c := newClient(t, s, tc.cfg)
			want, err := c.WriteOrder(context.Background(), testOrder("ord_find"))
			if err != nil {
				t.Fatal(err)
			}
			tc.arm(s)
			start := time.Now()
			got, err := c.FindOrder(context.Background(), "ord_find")
			elapsed := time.Since(start)
			checkErr(t, err, tc.want, tc.notWant)
			if err == nil && got != want {
				t.Errorf("found %+v, want %+v", got, want)
			}
			if n := s.Requests("GET /orders"); n != tc.gets {
				t.Errorf("%d searches reached the store, want %d", n, tc.gets)
			}
			if elapsed < tc.minTime {
				t.Errorf("took %s, want at least %s", elapsed, tc.minTime)
			}
		})
	}
}

// TestBreaker: a store that is down opens the breaker, which then stops
// creates before they reach the store, and closes again once the store is
// back and the open timeout has passed.
func TestBreaker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		down func(*Server)
		up   func(*Server)
	}{
		{name: "SetDown", down: func(s *Server) { s.SetDown(true) }, up: func(s *Server) { s.SetDown(false) }},
		{name: "DownFor", down: func(s *Server) { s.DownFor(300 * time.Millisecond) }, up: func(*Server) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			const openFor = 100 * time.Millisecond
			c := newClient(t, s, func(c *upstream.Config) {
				c.MinRequests = 3
				c.OpenTimeout = openFor
			})
			ctx := context.Background()
			o := testOrder("ord_breaker")
			tc.down(s)

			// The search retries on 503 until three failed attempts trip
			// the breaker mid-call.
			_, err := c.FindOrder(ctx, o.ID)
			checkErr(t, err, []error{upstream.ErrOpen}, []error{bridge.ErrNotFound})
			if n := s.Requests("GET /orders"); n != 3 || c.BreakerState() != "open" {
				t.Fatalf("%d searches reached the store, breaker %s", n, c.BreakerState())
			}
			_, err = c.WriteOrder(ctx, o)
			checkErr(t, err, []error{upstream.ErrOpen}, []error{bridge.ErrOrderRefused, upstream.ErrAmbiguous})
			if n := s.Requests("POST /orders"); n != 0 {
				t.Fatalf("%d creates reached the store through an open breaker", n)
			}

			tc.up(s)
			deadline := time.Now().Add(5 * time.Second)
			var so bridge.StoreOrder
			for {
				// Wait out the open timeout (and DownFor) as the outbox's
				// backoff would; every probe into a down store re-opens it.
				time.Sleep(openFor + 20*time.Millisecond)
				if so, err = deliver(t, c, o); err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil || so.StoreID == "" || c.BreakerState() != "closed" || s.Count(o.ID) != 1 {
				t.Fatalf("after recovery: %+v, %v, breaker %s, count %d", so, err, c.BreakerState(), s.Count(o.ID))
			}
		})
	}
}

func TestClientAuthFailure(t *testing.T) {
	t.Parallel()
	s := New(t)
	c, err := NewClient(s.URL(), "wrong-token", fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func() error
		// notWant: a bad token must neither refuse the order for good
		// (which cancels it) nor claim that it is not in the store.
		notWant []error
	}{
		{name: "write", run: func() error { _, err := c.WriteOrder(ctx, testOrder("ord_auth")); return err },
			notWant: []error{bridge.ErrOrderRefused, upstream.ErrAmbiguous}},
		{name: "find", run: func() error { _, err := c.FindOrder(ctx, "ord_auth"); return err },
			notWant: []error{bridge.ErrNotFound}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil {
				t.Fatal("no error with a wrong token")
			}
			for _, w := range tc.notWant {
				if errors.Is(err, w) {
					t.Errorf("error %q wraps %q", err, w)
				}
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.Code != "unauthorized" {
				t.Fatalf("error %v lacks the store's 401", err)
			}
		})
	}
	if s.Count("ord_auth") != 0 {
		t.Fatal("an unauthorized create was stored")
	}
}

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, token string
	}{
		{"empty URL", "", "tok"},
		{"relative URL", "/orders", "tok"},
		{"other scheme", "ftp://store.example", "tok"},
		{"user info", "https://user:SECRET@store.example", "tok"},
		{"query", "https://store.example/?key=SECRET", "tok"},
		{"no token", "https://store.example", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.url, tc.token, fastConfig())
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
	c, err := NewClient("https://store.example/api/v1/", "tok", upstream.Config{})
	if err != nil || c.orders != "https://store.example/api/v1/orders" {
		t.Fatalf("client %+v, %v", c, err)
	}
}

// TestNoSecretsInLogsOrErrors runs failing calls with the upstream
// client's logs captured at debug level: neither the logs nor the errors
// may show the token, buyer data or the search's query string.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	s := New(t)
	c := newClient(t, s, func(c *upstream.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.RetryMax = 1
	})
	ctx := context.Background()
	o := testOrder("ord_secret")
	var errs []error
	for _, arm := range []func(){
		func() { s.FailNext(1, 500) },
		func() { s.DropAfterCommitNext(1) },
		func() { s.FailNext(5, 503) },
		func() { s.SetStock("sku-1", 0) },
	} {
		arm()
		_, err := c.WriteOrder(ctx, o)
		errs = append(errs, err)
		_, err = c.FindOrder(ctx, o.ID)
		errs = append(errs, err)
	}
	out := logs.String()
	if !strings.Contains(out, "upstream request failed") {
		t.Fatalf("nothing logged:\n%s", out)
	}
	for _, err := range errs {
		if err != nil {
			out += "\n" + err.Error()
		}
	}
	for _, secret := range []string{DefaultToken, "Bearer", "ada@example.com", "Lovelace", "Analytical", "external_id="} {
		if strings.Contains(out, secret) {
			t.Errorf("%q in logs or errors:\n%s", secret, out)
		}
	}
}
