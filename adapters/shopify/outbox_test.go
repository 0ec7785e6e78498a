package shopify

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeshopify"
	"github.com/acp-bridge/bridge/orders"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// TestOutboxWritesOnceWhenAnswerLost runs the adapter under the real
// outbox (orders.Service on SQLite): Shopify commits the order and drops
// the connection, and its search index shows the order only after the
// adapter's own lookups gave up. The outbox's next attempt looks the order
// up before writing, and is told "not known yet" (not "not found") while
// the create is recent: Shopify ends with exactly one order, and the
// bridge's order is confirmed with its id.
func TestOutboxWritesOnceWhenAnswerLost(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{SearchLag: 1500 * time.Millisecond, LagUnfiltered: true})
	a, _ := newAdapter(t, s, func(o *Options) { o.LookupWait = 200 * time.Millisecond; o.StatusPagePermalink = true })
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := &orders.Service{Store: db, Shop: a, SyncBudget: 5 * time.Second,
		Backoff: func(int) time.Duration { return 300 * time.Millisecond }}
	o := paidOrder("ord_outbox", big.Variants[0].ID)
	o.CreatedAt = time.Now().UTC()
	o.SetStatus(o.CreatedAt, bridge.OrderCreated, "paid")
	ctx := context.Background()
	if err := db.Commit(ctx, bridge.Change{Order: &o, Jobs: svc.PlacedJobs(o)}); err != nil {
		t.Fatal(err)
	}
	s.DropAfterCommit(1)
	svc.Place(ctx, o.ID)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := svc.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := db.Order(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.StoreID != "" {
			shop := s.Orders()
			if len(shop) != 1 || got.StoreID != fmt.Sprintf("gid://shopify/Order/%d", shop[0].ID) || got.Status != bridge.OrderConfirmed {
				t.Fatalf("%d Shopify orders; bridge order %s as %s", len(shop), got.Status, got.StoreID)
			}
			// status_page_permalink: Shopify's status page is the permalink.
			if !strings.HasPrefix(got.PermalinkURL, "https://fake-shop.myshopify.com/") || got.PermalinkURL != got.StoreURL {
				t.Errorf("permalink %q, store URL %q", got.PermalinkURL, got.StoreURL)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order was never confirmed; Shopify has %d", len(s.Orders()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := s.Calls()["orderCreate"]; n != 1 {
		t.Errorf("orderCreate sent %d times, want 1", n)
	}
	if n := s.Calls()["orders"]; n < 2 {
		t.Errorf("%d lookups: the outbox did not look the order up before retrying", n)
	}
}
