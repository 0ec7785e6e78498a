package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

// The group committer's batches, made deterministic: the test holds the
// write lock while it queues changes one after the other, so they arrive in
// a known order and all land in the batch that starts when it lets go.

// holdWrites takes the write lock; the committer cannot start a batch until
// the returned func is called.
func holdWrites(t *testing.T, db *DB) (release func()) {
	t.Helper()
	unlock, err := db.lockWrites(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return unlock
}

// waitQueued waits until n requests are queued.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for db.commits.queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", db.commits.queued(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// queue starts op in its own goroutine once the queue holds exactly the
// requests queued before, so requests arrive in the order of queue calls.
func queue(t *testing.T, db *DB, op func() error) <-chan error {
	t.Helper()
	n := db.commits.queued()
	done := make(chan error, 1)
	go func() { done <- op() }()
	waitQueued(t, db, n+1)
	return done
}

func result(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return nil
	}
}

func testSession(id string, rev int64, selected string) *bridge.Session {
	s := bridge.Session{ID: id, Owner: "alice", Rev: rev, Status: bridge.StatusNotReady, Currency: "USD",
		Selected: selected, CreatedAt: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC),
		ExpiresAt: time.Date(2030, 6, 1, 16, 0, 0, 0, time.UTC)}
	return &s
}

func testClaim(key, token string) *bridge.IdempotencyRecord {
	now := time.Now().UTC()
	return &bridge.IdempotencyRecord{Scope: "alice POST /checkout_sessions", Key: key, RequestHash: "h", Token: token,
		LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// One batch holding changes that succeed and changes that fail for every
// reason: each caller gets its own outcome, the failures leave nothing, and
// changes to the same session see the ones before them in the batch.
func TestGroupCommitMixedBatch(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	k0 := testClaim("k0", "tok-0")
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: k0}); err != nil {
		t.Fatal(err)
	}
	commit := func(c bridge.Change) func() error { return func() error { return db.Commit(ctx, c) } }
	release := holdWrites(t, db)
	batches := db.commits.batches.Load()

	a := queue(t, db, commit(bridge.Change{Session: testSession("s1", 1, "a"), IdemOp: bridge.IdemInsert, Idempotency: testClaim("k1", "tok-a")}))
	b := queue(t, db, commit(bridge.Change{Session: testSession("s2", 1, "b"), IdemOp: bridge.IdemInsert, Idempotency: testClaim("k1", "tok-b")}))
	c := queue(t, db, commit(bridge.Change{Session: testSession("s1", 2, "c")}))
	d := queue(t, db, commit(bridge.Change{Session: testSession("s1", 2, "d")}))
	order := bridge.Order{ID: "o1", SessionID: "s1", Owner: "alice", Status: "pending_payment"}
	e := queue(t, db, commit(bridge.Change{Session: testSession("s1", 3, "e"), Order: &order, HoldOrderID: "o1",
		Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 2}}}))
	fctx, cancel := context.WithCancel(ctx)
	f := queue(t, db, func() error {
		return db.Commit(fctx, bridge.Change{Session: testSession("s3", 1, "f"), HoldOrderID: "o3",
			Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 7}}})
	})
	g := queue(t, db, commit(bridge.Change{Session: testSession("s1", 1, "g")}))
	h := queue(t, db, func() error { return db.Reserve(ctx, "o2", []bridge.Reservation{{VariantID: "v1", Quantity: 1}}) })
	i := queue(t, db, func() error { return db.Release(ctx, "o2") })
	lost := *k0
	lost.Token, lost.Done = "tok-x", true
	j := queue(t, db, commit(bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &lost}))
	k := queue(t, db, commit(bridge.Change{HoldOrderID: "o1", Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 5}}}))

	// A caller canceled while its change waits leaves at once, lock or not.
	cancel()
	if err := result(t, f); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled while queued: err = %v, want context.Canceled", err)
	}
	release()

	for _, tt := range []struct {
		name string
		ch   <-chan error
		want error // nil: success
	}{
		{"a: new session and key", a, nil},
		{"b: the key a took in the same batch", b, bridge.ErrIdempotencyExists},
		{"c: revision 2 over a's revision 1", c, nil},
		{"d: revision 2 again", d, bridge.ErrStale},
		{"e: revision 3 over c's, with order and hold", e, nil},
		{"g: revision 1 of an existing session", g, bridge.ErrStale},
		{"h: reserve", h, nil},
		{"i: release of h's order", i, nil},
		{"j: finish by another token", j, bridge.ErrIdempotencyLost},
		{"k: hold of an order that holds already", k, nil},
	} {
		err := result(t, tt.ch)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		for _, other := range []error{bridge.ErrStale, bridge.ErrIdempotencyExists, bridge.ErrIdempotencyLost} {
			if other != tt.want && errors.Is(err, other) {
				t.Errorf("%s: err = %v also wraps %v", tt.name, err, other)
			}
		}
	}
	if n := db.commits.batches.Load() - batches; n != 1 {
		t.Errorf("%d transactions, want 1", n)
	}

	s1, err := db.Session(ctx, "alice", "s1")
	if err != nil || s1.Rev != 3 || s1.Selected != "e" {
		t.Errorf("s1 = rev %d by %q, %v; want rev 3 by e", s1.Rev, s1.Selected, err)
	}
	for _, id := range []string{"s2", "s3"} {
		if _, err := db.Session(ctx, "alice", id); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("session %s of a failed change: err = %v, want ErrNotFound", id, err)
		}
	}
	if r, err := db.Idempotency(ctx, "alice POST /checkout_sessions", "k1"); err != nil || r.Token != "tok-a" {
		t.Errorf("k1 = %q, %v; want a's", r.Token, err)
	}
	if r, err := db.Idempotency(ctx, "alice POST /checkout_sessions", "k0"); err != nil || r.Done {
		t.Errorf("k0 = %+v, %v; want the unfinished claim", r, err)
	}
	if _, err := db.Order(ctx, "o1"); err != nil {
		t.Errorf("order o1: %v", err)
	}
	if n, err := db.Reserved(ctx, "v1", time.Time{}); err != nil || n != 2 {
		t.Errorf("reserved v1 = %d, %v; want 2 (o1 only)", n, err)
	}
}

// A caller whose context ends while its batch is applied: before its own
// change is applied, it gets ctx.Err() and nothing of it is written; after,
// its change commits and it hears so.
func TestGroupCommitCancelDuringBatch(t *testing.T) {
	db := openTemp(t)
	actx, cancelA := context.WithCancel(t.Context())
	bctx, cancelB := context.WithCancel(t.Context())
	defer cancelA()
	defer cancelB()
	applied := 0
	db.commits.afterApply = func() {
		applied++
		if applied == 1 { // a is applied, b is next
			cancelA()
			cancelB()
		}
	}
	release := holdWrites(t, db)
	a := queue(t, db, func() error { return db.Commit(actx, bridge.Change{Session: testSession("a", 1, "")}) })
	b := queue(t, db, func() error { return db.Commit(bctx, bridge.Change{Session: testSession("b", 1, "")}) })
	c := queue(t, db, func() error { return db.Commit(t.Context(), bridge.Change{Session: testSession("c", 1, "")}) })
	release()
	if err := result(t, a); err != nil {
		t.Errorf("a, canceled after it was applied: %v, want nil (committed)", err)
	}
	if err := result(t, b); !errors.Is(err, context.Canceled) {
		t.Errorf("b, canceled before it was applied: err = %v, want context.Canceled", err)
	}
	if err := result(t, c); err != nil {
		t.Errorf("c: %v", err)
	}
	for id, want := range map[string]bool{"a": true, "b": false, "c": true} {
		_, err := db.Session(t.Context(), "alice", id)
		if got := err == nil; got != want {
			t.Errorf("session %s stored = %v (%v), want %v", id, got, err, want)
		}
	}
}

// A COMMIT that fails reaches every caller of the batch, including one whose
// own change had failed, and the committer recovers for the next batch. The
// failure is real: a deferred foreign key, violated by a trigger on one
// order, is checked only at COMMIT.
func TestGroupCommitCommitFails(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	if _, err := db.db.ExecContext(ctx, `
		CREATE TABLE poison_parent (id INTEGER PRIMARY KEY);
		CREATE TABLE poison_child (pid INTEGER REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED);
		CREATE TRIGGER poison AFTER INSERT ON orders WHEN NEW.id = 'poison'
		BEGIN INSERT INTO poison_child VALUES (1); END;`); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(ctx, bridge.Change{Session: testSession("base", 1, "")}); err != nil {
		t.Fatal(err)
	}
	commit := func(c bridge.Change) func() error { return func() error { return db.Commit(ctx, c) } }
	release := holdWrites(t, db)
	a := queue(t, db, commit(bridge.Change{Session: testSession("a", 1, "")}))
	stale := queue(t, db, commit(bridge.Change{Session: testSession("base", 1, "")}))
	poison := bridge.Order{ID: "poison", SessionID: "p", Owner: "alice"}
	p := queue(t, db, commit(bridge.Change{Order: &poison}))
	b := queue(t, db, func() error { return db.Reserve(ctx, "o1", []bridge.Reservation{{VariantID: "v1", Quantity: 1}}) })
	release()
	for name, ch := range map[string]<-chan error{"a": a, "stale": stale, "poison": p, "b": b} {
		err := result(t, ch)
		if err == nil || !strings.Contains(err.Error(), "commit transaction") || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("%s: err = %v, want the failed COMMIT", name, err)
		}
		if errors.Is(err, bridge.ErrStale) {
			t.Errorf("%s: err = %v wraps ErrStale", name, err)
		}
	}
	if _, err := db.Session(ctx, "alice", "a"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("session of the failed batch: err = %v, want ErrNotFound", err)
	}
	if n, _ := db.Reserved(ctx, "v1", time.Time{}); n != 0 {
		t.Errorf("reserved %d in the failed batch", n)
	}
	// The next batch runs on a fresh connection.
	if err := db.Commit(ctx, bridge.Change{Session: testSession("a", 1, "")}); err != nil {
		t.Fatalf("Commit after the failed batch: %v", err)
	}
	if _, err := db.Session(ctx, "alice", "a"); err != nil {
		t.Errorf("session after recovery: %v", err)
	}
}

// Batches stop at maxBatch changes; the rest go into the next.
func TestGroupCommitBatchCap(t *testing.T) {
	db := openTemp(t)
	const n = maxBatch + 72
	release := holdWrites(t, db)
	batches := db.commits.batches.Load()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- db.Commit(t.Context(), bridge.Change{Session: testSession(fmt.Sprint(i), 1, "")}) }()
	}
	waitQueued(t, db, n)
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := db.commits.batches.Load() - batches; got != 2 {
		t.Errorf("%d changes in %d transactions, want 2", n, got)
	}
	if got := db.commits.applied.Load(); got != n {
		t.Errorf("%d changes applied, want %d", got, n)
	}
}

// Close answers the changes still queued, and later Commits fail at once.
func TestCloseWithQueuedChanges(t *testing.T) {
	db := openTemp(t)
	release := holdWrites(t, db)
	defer release()
	queued := queue(t, db, func() error { return db.Commit(t.Context(), bridge.Change{Session: testSession("a", 1, "")}) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := result(t, queued); err == nil || !strings.Contains(err.Error(), "database closed") {
		t.Errorf("queued change at Close: err = %v, want database closed", err)
	}
	if err := db.Commit(t.Context(), bridge.Change{Session: testSession("b", 1, "")}); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if err := db.Reserve(t.Context(), "o1", []bridge.Reservation{{VariantID: "v", Quantity: 1}}); err == nil {
		t.Error("Reserve after Close succeeded")
	}
}

// The catalog swap and the committer take turns with the write lock: a
// sync's Commit between two batches, changes queued meanwhile in the next.
func TestGroupCommitWithCatalogSwap(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Rollback()
	for i := range 200 {
		if err := w.Put(ctx, storagetest.Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 100)
	for i := range 100 {
		go func() {
			errs <- db.Commit(ctx, bridge.Change{Session: testSession(fmt.Sprint(i), 1, ""),
				HoldOrderID: fmt.Sprint("o", i), Hold: []bridge.Reservation{{VariantID: "p1-v1", Quantity: 1}}})
		}()
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n, err := db.Reserved(ctx, "p1-v1", time.Time{}); err != nil || n != 100 {
		t.Errorf("reserved = %d, %v; want 100", n, err)
	}
	if _, err := db.CatalogEntryByVariant(ctx, "p199-v1"); err != nil {
		t.Errorf("entry of the new snapshot: %v", err)
	}
}
