package fakestore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// fastConfig keeps waits in milliseconds and the breaker out of the way
// unless a test wants it.
func fastConfig() upstream.Config {
	return upstream.Config{
		Name:         "fakestore-test",
		RetryMax:     4,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		Budget:       3 * time.Second,
		MinRequests:  1000,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// newClient returns a client of s with fastConfig changed by mod.
func newClient(t *testing.T, s *Server, mod func(*upstream.Config)) *Client {
	t.Helper()
	cfg := fastConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(s.URL(), s.Token(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testOrder is a paid order of two sku-1 and one sku-2, with buyer data
// that must never show up in logs or errors.
func testOrder(id string) bridge.Order {
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	return bridge.Order{
		ID:       id,
		Status:   bridge.OrderCreated,
		Currency: "USD",
		Lines: []bridge.OrderLine{
			{VariantID: "sku-1", Quantity: 2, UnitPrice: usd(1999), Total: usd(3998)},
			{VariantID: "sku-2", Quantity: 1, UnitPrice: usd(500), Total: usd(500)},
		},
		Subtotal: usd(4498),
		Shipping: usd(499),
		Total:    usd(4997),
		Buyer:    bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo:   &bridge.Address{Line1: "12 Analytical Row", City: "London", PostalCode: "N1 9GU", Country: "GB"},
	}
}

// deliver finishes writing o after a failed first attempt the way the
// outbox worker does (orders.Service.storeWrite): every later attempt
// looks the order up first and creates it only when the store does not
// have it. It stops at a refusal.
func deliver(t *testing.T, c *Client, o bridge.Order) (bridge.StoreOrder, error) {
	t.Helper()
	ctx := context.Background()
	var last error
	for range 3 {
		so, err := c.FindOrder(ctx, o.ID)
		if err == nil {
			return so, nil
		}
		if !errors.Is(err, bridge.ErrNotFound) {
			last = err
			continue
		}
		so, err = c.WriteOrder(ctx, o)
		if err == nil || errors.Is(err, bridge.ErrOrderRefused) {
			return so, err
		}
		last = err
	}
	return bridge.StoreOrder{}, last
}

// call sends one raw request to the store and returns the status, headers
// and body.
func call(t *testing.T, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	status, hdr, b, err := rawCall(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, hdr, b
}

// rawCall is call for goroutines, which must not call t.Fatal.
func rawCall(method, url, token, body string) (int, http.Header, string, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// checkErr fails the test unless err wraps every error of want and none of
// notWant; want empty means no error.
func checkErr(t *testing.T, err error, want, notWant []error) {
	t.Helper()
	if len(want) == 0 && err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if len(want) > 0 && err == nil {
		t.Fatalf("no error, want one wrapping %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %q does not wrap %q", err, w)
		}
	}
	for _, w := range notWant {
		if errors.Is(err, w) {
			t.Errorf("error %q wraps %q", err, w)
		}
	}
}
