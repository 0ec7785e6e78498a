package orders_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	csvstore "github.com/acp-bridge/bridge/adapters/csv"
	"github.com/acp-bridge/bridge/orders"
)

// BenchmarkDrain measures how fast the outbox drains: b.N paid orders are
// queued with their jobs (as the checkout commits them, without Place),
// then the worker (Run, real time, default concurrency) runs until every
// store write and agent notice is done. orders/s is b.N over that time.
//
//	go test -run x -bench Drain -benchtime 2000x ./orders/
//
// fakestore+agent writes over HTTP to the fake store (upstream client,
// breaker) and sends two signed, schema-checked webhooks per order to the
// fake agent; csv appends to the CSV adapter's JSONL order file (fsync per
// order, stock reserved in SQLite), with no agent.
func BenchmarkDrain(b *testing.B) {
	b.Run("fakestore+agent", func(b *testing.B) {
		h := newHarness(b, harnessOptions{noRun: true})
		ids := orderIDs(b.N)
		queue(b, h, ids)
		elapsed := drain(b, h)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
		b.ReportMetric(sample(b, h.reg, "bridge_outbox_jobs_total", map[string]string{"kind": orders.KindNotice, "result": "later"})/float64(b.N), "postponed/order")
		h.checkWrittenOnce(b, ids)
		h.checkHeard(b, ids, confirmedEvents...)
	})
	b.Run("csv", func(b *testing.B) {
		dir := b.TempDir()
		ordersPath := filepath.Join(dir, "orders.jsonl")
		// A harness without a store adapter yet: the adapter needs its
		// database for reservations.
		h := newHarness(b, harnessOptions{noRun: true, noAgent: true, shop: nopShop{}})
		ad, err := csvstore.New(csvstore.Options{Path: filepath.Join(dir, "catalog.csv"), OrdersPath: ordersPath}, h.db, h.db)
		if err != nil {
			b.Fatal(err)
		}
		h.svc.Shop = ad
		ids := orderIDs(b.N)
		queue(b, h, ids)
		elapsed := drain(b, h)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "orders/s")
		checkOrderFile(b, ordersPath, ids)
		for _, id := range ids {
			if o := h.order(b, id); o.Status != bridge.OrderConfirmed || o.StoreID != id {
				b.Fatalf("order %s: %q store id %q, want confirmed as itself", id, o.Status, o.StoreID)
			}
		}
		h.checkNoneDead(b)
	})
}

// queue commits the paid orders with their jobs, 16 at a time, with the
// timer stopped.
func queue(b *testing.B, h *harness, ids []string) {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	work := make(chan string)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range work {
				if err := h.commit(b.Context(), id, bridge.PaymentStateCaptured); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, id := range ids {
		select {
		case work <- id:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// drain starts the worker and waits until no job is pending; it returns
// how long that took. The timer runs only meanwhile.
func drain(b *testing.B, h *harness) time.Duration {
	b.Helper()
	b.ResetTimer()
	start := time.Now()
	h.start(b)
	h.settleWithin(b, 10*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}

// checkOrderFile checks that the CSV adapter's order file holds every
// order exactly once.
func checkOrderFile(b *testing.B, path string, ids []string) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			b.Fatalf("order file line %q: %v", sc.Text(), err)
		}
		seen[line.ID]++
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			b.Errorf("order %s is in the order file %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		b.Errorf("the order file has %d orders, want %d", len(seen), len(ids))
	}
}

// nopShop stands in for a store adapter until the real one is made.
type nopShop struct{}

func (nopShop) WriteOrder(context.Context, bridge.Order) (bridge.StoreOrder, error) {
	return bridge.StoreOrder{}, errors.New("nopShop")
}

func (nopShop) FindOrder(context.Context, string) (bridge.StoreOrder, error) {
	return bridge.StoreOrder{}, bridge.ErrNotFound
}
