package woocommerce

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/orders"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// The orders outbox over this adapter writes a paid order to WooCommerce
// exactly once, even when the first create's answer is lost after the shop
// committed it: the retry looks the order up first and finds it.
func TestOutboxWritesOnceThroughAmbiguousCreate(t *testing.T) {
	shop := newShop(t)
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := newAdapter(t, shop, db)
	svc := &orders.Service{Store: db, Shop: a, SyncBudget: 5 * time.Second, Backoff: func(int) time.Duration { return 0 },
		Log: quiet}

	o := paidOrder("ord_once", 1)
	o.CreatedAt, o.Payment = time.Now().UTC(), bridge.PaymentStateCaptured
	o.SetStatus(o.CreatedAt, bridge.OrderCreated, "paid")
	if err := db.Commit(t.Context(), bridge.Change{Order: &o, Jobs: svc.PlacedJobs(o),
		HoldOrderID: o.ID, Hold: []bridge.Reservation{{VariantID: "12", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	shop.DropAfterCommitNext(1)
	svc.Place(t.Context(), o.ID) // the answer is lost: the job is left to retry
	if n := len(shop.Orders()); n != 1 {
		t.Fatalf("%d orders after the dropped create", n)
	}
	for range 3 {
		if _, err := svc.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(shop.Orders()); n != 1 {
		t.Fatalf("%d WooCommerce orders, want exactly 1", n)
	}
	if n := shop.Requests()["POST /orders"]; n != 1 {
		t.Errorf("the create was sent %d times", n)
	}
	got, err := db.Order(t.Context(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != bridge.OrderConfirmed || got.StoreID != idString(shop.Orders()[0].ID) {
		t.Errorf("bridge order: %s store %q", got.Status, got.StoreID)
	}
	// The hold stays for the grace (a checkout may have read the shop's
	// figure before the write), then goes.
	if n, _ := db.Reserved(t.Context(), "12", time.Time{}); n != 1 {
		t.Errorf("%d held right after the shop took the order, want 1", n)
	}
	jobs, err := db.Jobs(t.Context(), bridge.JobFilter{OrderID: o.ID, Status: bridge.JobPending})
	if err != nil || len(jobs) != 1 || jobs[0].Kind != orders.KindHoldRelease {
		t.Fatalf("pending jobs %+v, %v; want the hold's release", jobs, err)
	}
}
