package shopify

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeshopify"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/upstream"
)

// newAdapter returns an adapter on the fake shop with quick retries and
// bulk polls; mod adjusts the options first. Its log goes to the returned
// buffer.
func newAdapter(t testing.TB, s *fakeshopify.Server, mod func(*Options)) (*Adapter, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := Options{
		Shop: s.URL, AccessToken: fakeshopify.DefaultToken, AllowHTTP: true, Logger: log,
		BulkPoll: 5 * time.Millisecond, LookupWait: 3 * time.Second,
		Upstream: upstream.New(upstream.Config{Name: "shopify", RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond,
			Budget: 5 * time.Second, Logger: log}),
	}
	if mod != nil {
		mod(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// readAll runs ReadCatalog and returns its records by product id and the
// problems reported.
func readAll(t testing.TB, a *Adapter) (map[string]bridge.Record, []bridge.Problem) {
	t.Helper()
	recs := map[string]bridge.Record{}
	var probs []bridge.Problem
	err := a.ReadCatalog(context.Background(), func(r bridge.Record) error {
		if _, dup := recs[r.Key]; dup {
			t.Errorf("product %s emitted twice", r.Key)
		}
		recs[r.Key] = r
		return nil
	}, func(p bridge.Problem) { probs = append(probs, p) })
	if err != nil {
		t.Fatalf("ReadCatalog: %v", err)
	}
	return recs, probs
}

// variant returns the record's variant with id, failing the test if absent.
func variant(t testing.TB, r bridge.Record, id string) map[string]any {
	t.Helper()
	for _, v := range r.Variants {
		if v["id"] == id {
			return v
		}
	}
	t.Fatalf("product %s has no variant %s", r.Key, id)
	return nil
}

// memEvents is an in-memory bridge.EventLog.
type memEvents struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (m *memEvents) EventSeen(_ context.Context, source, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[source+"/"+id], nil
}

func (m *memEvents) RecordEvent(_ context.Context, source, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	m.seen[source+"/"+id] = true
	return nil
}

// newsLog records what the webhooks told the orders service.
type newsLog struct {
	mu      sync.Mutex
	updates []bridge.OrderUpdate
	adjusts map[string][]bridge.Adjustment // by payment ref
	alerts  []string                       // "order reason detail…"
	fail    error
}

func (n *newsLog) Alert(orderID, reason string, detail ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alerts = append(n.alerts, fmt.Sprint(append([]any{orderID, reason}, detail...)...))
}

func (n *newsLog) Update(_ context.Context, u bridge.OrderUpdate) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return false, n.fail
	}
	n.updates = append(n.updates, u)
	return true, nil
}

func (n *newsLog) Adjust(_ context.Context, ref string, a bridge.Adjustment) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.adjusts == nil {
		n.adjusts = map[string][]bridge.Adjustment{}
	}
	n.adjusts[ref] = append(n.adjusts[ref], a)
	return nil
}

// triggers counts catalog sync requests.
type triggers struct {
	mu sync.Mutex
	n  int
}

func (c *triggers) Trigger() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *triggers) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
