package woocommerce

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakewoo"
	"github.com/acp-bridge/bridge/upstream"
)

// quiet is a logger for tests whose warnings are expected.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newAdapter returns an adapter of shop with fast retries; edit changes the
// options first.
func newAdapter(t *testing.T, shop *fakewoo.Server, cat VariantFinder, edit ...func(*Options)) *Adapter {
	t.Helper()
	opts := Options{URL: shop.URL, ConsumerKey: fakewoo.DefaultKey, ConsumerSecret: fakewoo.DefaultSecret,
		Logger:   quiet,
		Upstream: upstream.Config{Transport: shop.Client.Transport, RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, Budget: 5 * time.Second}}
	for _, e := range edit {
		e(&opts)
	}
	a, err := New(opts, cat)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readAll runs one catalog read and returns its records by key, the
// problems, and the keys in order.
func readAll(t *testing.T, a *Adapter) (map[string]bridge.Record, []bridge.Problem, []string) {
	t.Helper()
	recs := map[string]bridge.Record{}
	var keys []string
	var probs []bridge.Problem
	err := a.ReadCatalog(context.Background(), func(r bridge.Record) error {
		recs[r.Key] = r
		keys = append(keys, r.Key)
		return nil
	}, func(p bridge.Problem) { probs = append(probs, p) })
	if err != nil {
		t.Fatal(err)
	}
	return recs, probs, keys
}

// memCatalog is a snapshot that knows which product holds each variant.
type memCatalog struct{ byVariant map[string]string }

func (c memCatalog) CatalogEntryByVariant(_ context.Context, id string) (bridge.CatalogEntry, error) {
	pid, ok := c.byVariant[id]
	if !ok {
		return bridge.CatalogEntry{}, bridge.ErrNotFound
	}
	return bridge.CatalogEntry{Product: bridge.Product{ID: pid}}, nil
}

// catalogOf is the memCatalog of what a read found.
func catalogOf(recs map[string]bridge.Record) memCatalog {
	c := memCatalog{byVariant: map[string]string{}}
	for k, r := range recs {
		for _, v := range r.Variants {
			c.byVariant[v["id"].(string)] = k
		}
	}
	return c
}

// memHolds is a reservation store in memory.
type memHolds struct {
	mu    sync.Mutex
	held  map[string]map[string]int64 // order → variant → quantity
	fails bool
}

func (h *memHolds) hold(order, variant string, q int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		h.held = map[string]map[string]int64{}
	}
	if h.held[order] == nil {
		h.held[order] = map[string]int64{}
	}
	h.held[order][variant] += q
}

func (h *memHolds) Reserved(_ context.Context, variant string, _ time.Time) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fails {
		return 0, errors.New("storage down")
	}
	var n int64
	for _, vs := range h.held {
		n += vs[variant]
	}
	return n, nil
}

func i64(n int64) *int64 { return &n }
