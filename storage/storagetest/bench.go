package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// BenchDriver is what Bench needs of a driver. Only Open is required.
type BenchDriver struct {
	// Open returns a new, empty store and arranges its cleanup on tb.
	Open func(tb testing.TB) bridge.Storage
	// OpenShared returns n stores on one new, empty database, as n bridge
	// processes (replicas) share it; nil for a driver one process serves
	// alone. Outbox/two-replicas runs only with it.
	OpenShared func(tb testing.TB, n int) []bridge.Storage
	// Analyze, when set, refreshes the database's statistics after a
	// catalog was loaded, before the timer starts, as the server would
	// soon after a real sync (Postgres: ANALYZE).
	Analyze func(tb testing.TB, s bridge.Storage)
	// Commits, when set, returns how many transactions s ran and how many
	// writes they held (SQLite's group commit); the benchmarks of
	// concurrent writes then report the mean writes per transaction of
	// their timed part as "batch".
	Commits func(s bridge.Storage) (transactions, writes int64)
}

// Bench runs the storage benchmarks against the stores d opens, each a
// sub-benchmark of b, so that the drivers are measured by the same code
// and compare:
//
//	func BenchmarkStorage(b *testing.B) {
//		storagetest.Bench(b, storagetest.BenchDriver{Open: func(tb testing.TB) bridge.Storage { return openTemp(tb) }})
//	}
//
//	go test -run '^$' -bench . ./storage/...
//	go test -run '^$' -bench Storage/CatalogPut -benchtime 333334x ./storage/sqlite   # 1M variants
//
// The data are the shapes of real traffic: catalog entries of one product
// and three variants (~2.5 kB of JSON), sessions of three lines (~2 kB),
// orders of three lines (~1.3 kB). Setup (loading catalogs, sessions,
// claims, orders and jobs) is untimed.
func Bench(b *testing.B, d BenchDriver) {
	b.Run("CatalogPut", func(b *testing.B) { benchCatalogPut(b, d) })
	b.Run("EachCatalogEntry", func(b *testing.B) { benchEachCatalogEntry(b, d) })
	b.Run("CatalogEntryByVariant", func(b *testing.B) { benchCatalogEntryByVariant(b, d, 20000) })
	b.Run("CatalogEntryByVariantHot", func(b *testing.B) { benchCatalogEntryByVariant(b, d, 1000) })
	b.Run("CommitSessionUpdate", func(b *testing.B) { benchCommitSessionUpdate(b, d) })
	b.Run("Session", func(b *testing.B) { benchSession(b, d) })
	b.Run("SessionParallel", func(b *testing.B) { benchSessionParallel(b, d) })
	b.Run("CommitParallel", func(b *testing.B) { benchCommitParallel(b, d) })
	b.Run("UpdateFlowParallel", func(b *testing.B) { benchUpdateFlowParallel(b, d) })
	b.Run("Outbox", func(b *testing.B) {
		b.Run("serial", func(b *testing.B) { benchOutbox(b, d, 1, 1, false) })
		b.Run("parallel", func(b *testing.B) { benchOutbox(b, d, 8, 1, false) })
		b.Run("store-write", func(b *testing.B) { benchOutbox(b, d, 8, 1, true) })
		if d.OpenShared != nil {
			b.Run("two-replicas", func(b *testing.B) { benchOutbox(b, d, 8, 2, false) })
		}
	})
}

// batches starts counting s's transactions (BenchDriver.Commits); the
// function it returns reports the mean writes per transaction since.
func (d BenchDriver) batches(s bridge.Storage) (report func(b *testing.B)) {
	if d.Commits == nil {
		return func(*testing.B) {}
	}
	tx0, w0 := d.Commits(s)
	return func(b *testing.B) {
		if tx, w := d.Commits(s); tx > tx0 {
			b.ReportMetric(float64(w-w0)/float64(tx-tx0), "batch")
		}
	}
}

// commitAll commits changes from 32 goroutines: setup, untimed, and
// faster concurrent on every driver (SQLite group-commits them, Postgres
// flushes its WAL for several at once).
func commitAll(b *testing.B, s bridge.Storage, changes []bridge.Change) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(changes) {
					return
				}
				if err := s.Commit(b.Context(), changes[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// CatalogPut writes one snapshot of b.N entries over a committed snapshot
// of the same size, and reports the throughput of the whole sync, Commit
// included (a real sync replaces a snapshot; deleting the old rows is part
// of it).
func benchCatalogPut(b *testing.B, d BenchDriver) {
	s := d.Open(b)
	info := bridge.CatalogInfo{Version: "bench", SyncedAt: time.Now(), Products: b.N, Variants: 3 * b.N}
	commitEach(b, s, info, b.N, Entry)
	b.ResetTimer()
	commit := commitEach(b, s, info, b.N, Entry)
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "entries/s")
	b.ReportMetric(float64(3*b.N)/secs, "variants/s")
	b.ReportMetric(commit.Seconds(), "commit-s")
}

// snapshot commits n Entry entries to a new store.
func (d BenchDriver) snapshot(b *testing.B, n int) bridge.Storage {
	b.Helper()
	s := d.Open(b)
	commitEach(b, s, bridge.CatalogInfo{Version: "bench"}, n, Entry)
	if d.Analyze != nil {
		d.Analyze(b, s)
	}
	return s
}

// EachCatalogEntry is the read side of a feed export: one pass over a
// 20k-entry snapshot per iteration.
func benchEachCatalogEntry(b *testing.B, d BenchDriver) {
	const n = 20000
	s := d.snapshot(b, n)
	ctx := b.Context()
	for b.Loop() {
		count := 0
		if err := s.EachCatalogEntry(ctx, func(bridge.CatalogEntry) error { count++; return nil }); err != nil {
			b.Fatal(err)
		}
		if count != n {
			b.Fatalf("read %d entries, want %d", count, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}

// CatalogEntryByVariant is the lookup every checkout line makes, over the
// variants of a 20k-entry snapshot. With hot 20000 the lookups hop around
// the whole snapshot (a prime stride, like real ones); with hot 1000 they
// go to 1000 variants over and over, like a shop whose checkouts
// concentrate on its popular items (a driver that caches entries answers
// from its cache after the first round).
func benchCatalogEntryByVariant(b *testing.B, d BenchDriver, hot int) {
	const n = 20000
	s := d.snapshot(b, n)
	ctx := b.Context()
	stride := 7919
	if hot < n {
		stride = 7
	}
	i := 0
	for b.Loop() {
		if _, err := s.CatalogEntryByVariant(ctx, fmt.Sprintf("p%d-v1", i%hot)); err != nil {
			b.Fatal(err)
		}
		i += stride
	}
}

// withSessions commits n sessions s0 … s(n−1) to s.
func withSessions(b *testing.B, s bridge.Storage, n int) bridge.Storage {
	b.Helper()
	changes := make([]bridge.Change, n)
	for i := range changes {
		sess := TypicalSession(fmt.Sprintf("s%d", i))
		changes[i] = bridge.Change{Session: &sess}
	}
	commitAll(b, s, changes)
	return s
}

// benchHash is a request hash of the engine's form.
const benchHash = "sha256:0123456789abcdef0123456789abcdef"

// CommitSessionUpdate is the write of every checkout update: the session
// over its previous revision and the request's idempotency claim finished
// with the answer, in one transaction (a durable commit each). The claims
// are inserted beforehand, untimed.
func benchCommitSessionUpdate(b *testing.B, d BenchDriver) {
	s := d.Open(b)
	ctx := b.Context()
	sess := TypicalSession("s1")
	if err := s.Commit(ctx, bridge.Change{Session: &sess}); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	claims := make([]bridge.IdempotencyRecord, b.N)
	changes := make([]bridge.Change, b.N)
	for i := range claims {
		claims[i] = bridge.IdempotencyRecord{
			Scope: "agent-key POST /checkout_sessions/s1", Key: fmt.Sprintf("key-%d", i),
			RequestHash: benchHash, Token: fmt.Sprintf("tok-%d", i),
			LockedUntil: now.Add(time.Hour), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		}
		changes[i] = bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &claims[i]}
	}
	commitAll(b, s, changes)
	outcome := make([]byte, 1500) // an encoded session answer
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sess.Rev++
		sess.UpdatedAt = time.Now()
		done := claims[i]
		done.Done, done.Outcome, done.LockedUntil = true, outcome, time.Time{}
		if err := s.Commit(ctx, bridge.Change{Session: &sess, IdemOp: bridge.IdemFinish, Idempotency: &done}); err != nil {
			b.Fatal(err)
		}
	}
}

// Session is the read that starts every checkout request.
func benchSession(b *testing.B, d BenchDriver) {
	const n = 1000
	s := withSessions(b, d.Open(b), n)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		if _, err := s.Session(ctx, "agent-key", fmt.Sprintf("s%d", i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}

// SessionParallel is the same read from GOMAXPROCS goroutines.
func benchSessionParallel(b *testing.B, d BenchDriver) {
	const n = 1000
	s := withSessions(b, d.Open(b), n)
	ctx := b.Context()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Session(ctx, "agent-key", fmt.Sprintf("s%d", i%n)); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

// CommitParallel is the write of checkout creates under load: 64
// goroutines on 2 cores each insert a new session with its idempotency
// record (already answered), the shape of a create's Commit; commits/s is
// the throughput.
func benchCommitParallel(b *testing.B, d BenchDriver) {
	s := d.Open(b)
	ctx := b.Context()
	outcome := make([]byte, 1500) // an encoded session answer
	var seq atomic.Int64
	report := d.batches(s)
	b.SetParallelism(32) // × GOMAXPROCS goroutines: 64 on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			sess := TypicalSession(fmt.Sprintf("s%d", i))
			now := time.Now()
			r := bridge.IdempotencyRecord{
				Scope: "agent-key POST /checkout_sessions", Key: fmt.Sprintf("key-%d", i),
				RequestHash: benchHash, Done: true, Outcome: outcome,
				CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
			}
			if err := s.Commit(ctx, bridge.Change{Session: &sess, IdemOp: bridge.IdemInsert, Idempotency: &r}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	report(b)
}

// UpdateFlowParallel is the storage side of a checkout update under load,
// from 64 goroutines over 1000 sessions: the idempotency key looked up
// (new, so missing), the session read, its line's catalog entry and
// reserved stock read, and the Commit of the next revision with the
// answered key. A goroutine that loses a race for a session (ErrStale)
// reads it again, as the engine's caller would.
func benchUpdateFlowParallel(b *testing.B, d BenchDriver) {
	const sessions = 1000
	s := withSessions(b, d.snapshot(b, 100), sessions)
	ctx := b.Context()
	outcome := make([]byte, 1500)
	var seq atomic.Int64
	report := d.batches(s)
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			id := fmt.Sprintf("s%d", i%sessions)
			scope := "agent-key POST /checkout_sessions/" + id
			key := fmt.Sprintf("key-%d", i)
			for {
				if _, err := s.Idempotency(ctx, scope, key); !errors.Is(err, bridge.ErrNotFound) {
					b.Errorf("Idempotency = %v, want ErrNotFound", err)
					return
				}
				sess, err := s.Session(ctx, "agent-key", id)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := s.CatalogEntryByVariant(ctx, fmt.Sprintf("p%d-v1", i%100)); err != nil {
					b.Error(err)
					return
				}
				if _, err := s.Reserved(ctx, "p1-v1", time.Time{}); err != nil {
					b.Error(err)
					return
				}
				sess.Rev++
				sess.UpdatedAt = time.Now()
				now := time.Now()
				r := bridge.IdempotencyRecord{
					Scope: scope, Key: key, RequestHash: benchHash,
					Done: true, Outcome: outcome, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
				}
				err = s.Commit(ctx, bridge.Change{Session: &sess, IdemOp: bridge.IdemInsert, Idempotency: &r})
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
	report(b)
}

// Outbox is the outbox worker's storage traffic: claim due jobs (up to 8
// per claim, the worker's concurrency), then finish each one done. b.N
// jobs are queued beforehand, untimed; jobs/s is claimed-and-finished jobs
// per second.
//
//   - serial: one worker, so every FinishJob is a transaction of its own.
//   - parallel: 8 workers claiming and finishing concurrently.
//   - store-write: like parallel, but each run is a store write-back: the
//     order is read, and the finish writes its next revision (store id)
//     and queues the agent's notice, in the job's transaction.
//   - two-replicas: like parallel, the 8 workers split over two stores on
//     one database, as two bridges (OpenShared).
func benchOutbox(b *testing.B, d BenchDriver, workers, replicas int, withOrder bool) {
	var stores []bridge.Storage
	if replicas > 1 {
		stores = d.OpenShared(b, replicas)
	} else {
		stores = []bridge.Storage{d.Open(b)}
	}
	s := stores[0]
	ctx := b.Context()
	t0 := time.Date(2026, 6, 5, 9, 0, 0, 0, time.UTC)
	payload := []byte(`{"event_id":"evt_0123456789abcdef","type":"order_update","api_version":"2026-04-17"}`)
	if withOrder {
		// One order per job, at revision 1.
		changes := make([]bridge.Change, b.N)
		for i := range changes {
			o := typicalOrder(fmt.Sprintf("o%d", i))
			o.Rev = 1
			changes[i] = bridge.Change{Order: &o}
		}
		commitAll(b, s, changes)
	}
	for start := 0; start < b.N; start += 1000 {
		var jobs []bridge.Job
		for i := start; i < min(start+1000, b.N); i++ {
			jobs = append(jobs, bridge.Job{ID: fmt.Sprintf("job_%d", i), Kind: "store_write",
				OrderID: fmt.Sprintf("o%d", i), Payload: payload, NextRunAt: t0})
		}
		if err := s.Commit(ctx, bridge.Change{Jobs: jobs}); err != nil {
			b.Fatal(err)
		}
	}
	report := d.batches(s)
	var finished atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for {
				claimed, err := s.ClaimJobs(ctx, t0, time.Hour, 8)
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
						o, err := s.Order(ctx, j.OrderID)
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
					if err := s.FinishJob(ctx, j, c); err != nil {
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
	report(b)
}
