package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/storagetest"
	"github.com/jackc/pgx/v5"
)

// The benchmarks mirror storage/sqlite's (same names, data and shapes), so
// that
//
//	BRIDGE_TEST_POSTGRES_DSN=… go test -run '^$' -bench . ./storage/...
//
// compares the drivers. They are skipped without a server. Each runs in a
// schema of its own; the server's own settings (synchronous_commit, the
// disk under it) decide most of what a commit costs.

// BenchmarkCatalogPut writes one snapshot of b.N entries over a committed
// snapshot of the same size, Commit included (it deletes the old rows).
func BenchmarkCatalogPut(b *testing.B) {
	db := openTest(b)
	ctx := b.Context()
	write := func(n int) time.Duration {
		w, err := db.BeginCatalog(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Rollback()
		for i := range n {
			if err := w.Put(ctx, storagetest.Entry(i)); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if err := w.Commit(ctx, bridge.CatalogInfo{Version: "bench", SyncedAt: time.Now(), Products: n, Variants: 3 * n}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	write(b.N)
	b.ResetTimer()
	commit := write(b.N)
	b.StopTimer()
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/s, "entries/s")
	b.ReportMetric(float64(3*b.N)/s, "variants/s")
	b.ReportMetric(commit.Seconds(), "commit-s")
}

// snapshot commits n storagetest entries to a fresh schema.
func snapshot(b *testing.B, n int) *DB {
	b.Helper()
	db := openTest(b)
	ctx := b.Context()
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := w.Put(ctx, storagetest.Entry(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "bench"}); err != nil {
		b.Fatal(err)
	}
	// Fresh statistics, as autovacuum would gather them soon after.
	if _, err := db.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkEachCatalogEntry is the read side of a feed export: one pass
// over a 20k-entry snapshot per iteration.
func BenchmarkEachCatalogEntry(b *testing.B) {
	const n = 20000
	db := snapshot(b, n)
	ctx := b.Context()
	for b.Loop() {
		count := 0
		if err := db.EachCatalogEntry(ctx, func(bridge.CatalogEntry) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("read %d entries, want %d", count, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkCatalogEntryByVariant is the lookup every checkout line makes
// (no cache in this driver: every lookup is a query).
func BenchmarkCatalogEntryByVariant(b *testing.B) {
	const n = 20000
	db := snapshot(b, n)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		if _, err := db.CatalogEntryByVariant(ctx, fmt.Sprintf("p%d-v1", i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// benchSession is a session of typical size (about 2 kB of JSON), the
// SQLite benchmarks' own.
func benchSession(id string) bridge.Session {
	now := time.Now().UTC()
	avail := int64(40)
	s := bridge.Session{
		ID: id, Owner: "agent-key", Rev: 1, Status: bridge.StatusReady, Currency: "USD",
		Buyer:  &bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo: &bridge.Address{Name: "Ada Lovelace", Line1: "1 Main St", City: "Springfield", Region: "IL", PostalCode: "62701", Country: "US"},
		Options: []bridge.FulfillmentOption{
			{ID: "std", Type: "shipping", Title: "Standard", Carrier: "USPS", Earliest: now.Add(72 * time.Hour), Latest: now.Add(120 * time.Hour), Subtotal: 500, Total: 500},
			{ID: "exp", Type: "shipping", Title: "Express", Carrier: "UPS", Earliest: now.Add(24 * time.Hour), Latest: now.Add(48 * time.Hour), Subtotal: 1500, Total: 1500},
		},
		Selected:  "std",
		Messages:  []bridge.Message{{Type: bridge.MessageWarning, Code: bridge.MsgLowStock, Param: "$.line_items[0]", Content: "Only 3 left"}},
		Links:     []bridge.Link{{Type: "terms_of_use", URL: "https://shop.example.com/terms"}, {Type: "return_policy", URL: "https://shop.example.com/returns"}},
		Totals:    bridge.Totals{ItemsBase: 5997, Subtotal: 5997, Fulfillment: 500, Tax: 520, Total: 7017},
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(6 * time.Hour),
	}
	for i := range 3 {
		s.Lines = append(s.Lines, bridge.SessionLine{
			ID: fmt.Sprintf("li_%d", i), VariantID: fmt.Sprintf("p%d-v1", i), ProductID: fmt.Sprintf("p%d", i),
			Title: "Classic Tee / Navy / M", ImageURL: "https://cdn.example.com/img/p1-v1.jpg",
			URL: "https://shop.example.com/products/classic-tee", Quantity: 1, Available: &avail,
			UnitAmount: 1999, Base: 1999, Subtotal: 1999, Tax: 173, Total: 2172,
		})
	}
	return s
}

// BenchmarkCommitSessionUpdate is the write of every checkout update: the
// session over its previous revision and the request's idempotency claim
// finished with the answer, in one transaction (one round trip, one WAL
// flush). The claims are inserted beforehand, untimed.
func BenchmarkCommitSessionUpdate(b *testing.B) {
	db := openTest(b)
	ctx := b.Context()
	s := benchSession("s1")
	if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	claims := make([]bridge.IdempotencyRecord, b.N)
	batch := &pgx.Batch{}
	for i := range claims {
		claims[i] = bridge.IdempotencyRecord{
			Scope: "agent-key POST /checkout_sessions/s1", Key: fmt.Sprintf("key-%d", i),
			RequestHash: "sha256:0123456789abcdef0123456789abcdef", Token: fmt.Sprintf("tok-%d", i),
			LockedUntil: now.Add(time.Hour), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		}
		c := claims[i]
		batch.Queue(insertIdemSQL, c.Scope, c.Key, c.RequestHash, c.Token,
			c.LockedUntil.UnixNano(), false, nil, c.CreatedAt.UnixNano(), c.ExpiresAt.UnixNano(), now.UnixNano())
	}
	if err := db.pool.SendBatch(ctx, batch).Close(); err != nil {
		b.Fatal(err)
	}
	outcome := make([]byte, 1500) // an encoded session answer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Rev++
		s.UpdatedAt = time.Now()
		done := claims[i]
		done.Done, done.Outcome, done.LockedUntil = true, outcome, time.Time{}
		if err := db.Commit(ctx, bridge.Change{Session: &s, IdemOp: bridge.IdemFinish, Idempotency: &done}); err != nil {
			b.Fatal(err)
		}
	}
}

// sessions commits n sessions to a fresh schema.
func sessions(b *testing.B, n int) *DB {
	b.Helper()
	db := openTest(b)
	for i := range n {
		s := benchSession(fmt.Sprintf("s%d", i))
		if err := db.Commit(b.Context(), bridge.Change{Session: &s}); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkSession is the read that starts every checkout request.
func BenchmarkSession(b *testing.B) {
	const n = 1000
	db := sessions(b, n)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		if _, err := db.Session(ctx, "agent-key", fmt.Sprintf("s%d", i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}

// BenchmarkSessionParallel is the same read from GOMAXPROCS goroutines.
func BenchmarkSessionParallel(b *testing.B) {
	const n = 1000
	db := sessions(b, n)
	ctx := b.Context()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.Session(ctx, "agent-key", fmt.Sprintf("s%d", i%n)); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}

// BenchmarkCommitParallel is the write of checkout creates under load: 64
// goroutines each insert a new session with its idempotency record
// (already answered), the shape of a create's Commit.
func BenchmarkCommitParallel(b *testing.B) {
	db := openTest(b)
	ctx := b.Context()
	outcome := make([]byte, 1500)
	var seq atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS goroutines: 64 on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			s := benchSession(fmt.Sprintf("s%d", i))
			now := time.Now()
			r := bridge.IdempotencyRecord{
				Scope: "agent-key POST /checkout_sessions", Key: fmt.Sprintf("key-%d", i),
				RequestHash: "sha256:0123456789abcdef0123456789abcdef", Done: true, Outcome: outcome,
				CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
			}
			if err := db.Commit(ctx, bridge.Change{Session: &s, IdemOp: bridge.IdemInsert, Idempotency: &r}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkUpdateFlowParallel is the storage side of a checkout update
// under load, from 64 goroutines over 1000 sessions: the idempotency key
// looked up (new, so missing), the session read, its line's catalog entry
// and reserved stock read, and the Commit of the next revision with the
// answered key; ErrStale reads again.
func BenchmarkUpdateFlowParallel(b *testing.B) {
	const n = 1000
	db := snapshot(b, 100)
	ctx := b.Context()
	for i := range n {
		s := benchSession(fmt.Sprintf("s%d", i))
		if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
			b.Fatal(err)
		}
	}
	outcome := make([]byte, 1500)
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			id := fmt.Sprintf("s%d", i%n)
			scope := "agent-key POST /checkout_sessions/" + id
			key := fmt.Sprintf("key-%d", i)
			for {
				if _, err := db.Idempotency(ctx, scope, key); !errors.Is(err, bridge.ErrNotFound) {
					b.Errorf("Idempotency = %v, want ErrNotFound", err)
					return
				}
				s, err := db.Session(ctx, "agent-key", id)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := db.CatalogEntryByVariant(ctx, fmt.Sprintf("p%d-v1", i%100)); err != nil {
					b.Error(err)
					return
				}
				if _, err := db.Reserved(ctx, "p1-v1", time.Time{}); err != nil {
					b.Error(err)
					return
				}
				s.Rev++
				s.UpdatedAt = time.Now()
				now := time.Now()
				r := bridge.IdempotencyRecord{
					Scope: scope, Key: key, RequestHash: "sha256:0123456789abcdef0123456789abcdef",
					Done: true, Outcome: outcome, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
				}
				err = db.Commit(ctx, bridge.Change{Session: &s, IdemOp: bridge.IdemInsert, Idempotency: &r})
				if errors.Is(err, bridge.ErrStale) {
					continue
				}
				if err != nil {
					b.Error(err)
					return
				}
				break
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

// BenchmarkOutbox is the outbox worker's storage traffic: claim due jobs
// (up to 8 per claim), then finish each one done; b.N jobs are queued
// beforehand, untimed.
//
//   - serial: one worker.
//   - parallel: 8 workers claiming and finishing concurrently.
//   - store-write: like parallel, but each run reads its order, and the
//     finish writes its next revision and queues the agent's notice, in
//     the job's transaction.
//   - two-replicas: like parallel, the 8 workers split over two pools, as
//     two bridges on one database.
func BenchmarkOutbox(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchOutbox(b, 1, 1, false) })
	b.Run("parallel", func(b *testing.B) { benchOutbox(b, 8, 1, false) })
	b.Run("store-write", func(b *testing.B) { benchOutbox(b, 8, 1, true) })
	b.Run("two-replicas", func(b *testing.B) { benchOutbox(b, 8, 2, false) })
}

func benchOutbox(b *testing.B, workers, replicas int, withOrder bool) {
	dsn := newSchema(b)
	dbs := make([]*DB, replicas)
	for i := range dbs {
		dbs[i] = openSchema(b, dsn)
	}
	db := dbs[0]
	ctx := b.Context()
	t0 := time.Date(2026, 6, 5, 9, 0, 0, 0, time.UTC)
	payload := []byte(`{"event_id":"evt_0123456789abcdef","type":"order_update","api_version":"2026-04-17"}`)
	if withOrder {
		o := benchOrder("o")
		batch := &pgx.Batch{}
		for i := range b.N {
			o.ID = fmt.Sprintf("o%d", i)
			body, _ := json.Marshal(o)
			batch.Queue(insertOrderSQL, o.ID, o.SessionID, o.Owner, o.Status,
				o.CreatedAt.UnixNano(), string(body), o.PaymentRef, o.UpdatedAt.UnixNano())
		}
		if err := db.pool.SendBatch(ctx, batch).Close(); err != nil {
			b.Fatal(err)
		}
	}
	for start := 0; start < b.N; start += 1000 {
		var jobs []bridge.Job
		for i := start; i < min(start+1000, b.N); i++ {
			jobs = append(jobs, bridge.Job{ID: fmt.Sprintf("job_%d", i), Kind: "store_write",
				OrderID: fmt.Sprintf("o%d", i), Payload: payload, NextRunAt: t0})
		}
		if err := db.Commit(ctx, bridge.Change{Jobs: jobs}); err != nil {
			b.Fatal(err)
		}
	}
	var finished atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		db := dbs[w%replicas]
		wg.Go(func() {
			for {
				claimed, err := db.ClaimJobs(ctx, t0, time.Hour, 8)
				if err != nil {
					b.Error(err)
					return
				}
				if len(claimed) == 0 {
					return
				}
				for _, j := range claimed {
					var c bridge.Change
					if withOrder {
						o, err := db.Order(ctx, j.OrderID)
						if err != nil {
							b.Error(err)
							return
						}
						o.Rev++
						o.StoreID = "store-" + o.ID
						c = bridge.Change{Order: &o, Jobs: []bridge.Job{{ID: "notice_" + j.ID, Kind: "notice",
							OrderID: o.ID, Payload: payload, NextRunAt: t0.Add(time.Hour)}}}
					}
					j.Status = bridge.JobDone
					if err := db.FinishJob(ctx, j, c); err != nil {
						b.Error(err)
						return
					}
					finished.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := finished.Load(); n != int64(b.N) {
		b.Fatalf("finished %d jobs, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// benchOrder is an order of typical size (about 1.3 kB of JSON).
func benchOrder(id string) bridge.Order {
	now := time.Now().UTC()
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	o := bridge.Order{
		ID: id, SessionID: "cs_" + id, Owner: "agent-key", APIVersion: "2026-04-17", Status: bridge.OrderCreated,
		PermalinkURL: "https://shop.example.com/orders/" + id, CreatedAt: now, UpdatedAt: now, Currency: "USD",
		Subtotal: usd(5997), Shipping: usd(500), Tax: usd(520), Total: usd(7017),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo:         &bridge.Address{Name: "Ada Lovelace", Line1: "1 Main St", City: "Springfield", Region: "IL", PostalCode: "62701", Country: "US"},
		ShippingMethod: &bridge.ShippingMethod{ID: "std", Title: "Standard", Type: "shipping"},
		PaymentRef:     "pi_3PqRsTuVwXyZ" + id, Payment: bridge.PaymentStateCaptured, Token: "0123456789abcdef0123456789abcdef",
		History: []bridge.OrderEvent{{At: now, Status: "pending_payment"}, {At: now, Status: bridge.OrderCreated, Note: "paid"}},
	}
	for i := range 3 {
		o.Lines = append(o.Lines, bridge.OrderLine{ID: fmt.Sprintf("li_%d", i), VariantID: fmt.Sprintf("p%d-v1", i),
			ProductID: fmt.Sprintf("p%d", i), Title: "Classic Tee / Navy / M", Quantity: 1, UnitPrice: usd(1999), Total: usd(1999)})
	}
	return o
}
