// Package storagetest is the conformance suite every storage driver must pass.
// The bridge's engines are written against bridge.Storage, not against a
// database, so the suite pins down the behaviour they rely on and that an
// interface cannot express: snapshots are all-or-nothing, uncommitted writes
// are invisible, duplicate ids are refused, reservations are idempotent by
// order, a checkout Change commits whole or not at all, sessions are written
// only over the revision they were read at and only by their owner, an
// idempotency key is claimed by exactly one request, orders are written by
// the rules of their revisions, an outbox job is queued with its change and
// run by one worker at a time, feed push records replace by product and
// keep their withdrawal bodies, and all of it holds under concurrent use
// (checkout.go lists the checkout rules, outbox.go those of orders and the
// outbox, stock.go those of the optional check-and-hold of stock,
// feedpush.go those of the push targets' records).
//
// A driver's tests call Run with a function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) bridge.Storage {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// The suite may Close a store itself, so a driver's Close must tolerate being
// called again by the cleanup.
//
// A driver meant for several processes on one database also calls
// RunShared, which runs the concurrency tests across stores that share a
// database. Bench is the drivers' common benchmark suite (bench.go), so
// that their numbers come from the same code and compare.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// Run runs the conformance suite against stores made by open. open must
// return a new, empty store each time and arrange its cleanup on t.
func Run(t *testing.T, open func(t *testing.T) bridge.Storage) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("SecondCommitReplaces", func(t *testing.T) { testSecondCommitReplaces(t, open(t)) })
	t.Run("Rollback", func(t *testing.T) { testRollback(t, open(t)) })
	t.Run("RollbackAfterCommit", func(t *testing.T) { testRollbackAfterCommit(t, open(t)) })
	t.Run("CanceledWriter", func(t *testing.T) { testCanceledWriter(t, open(t)) })
	t.Run("UncommittedInvisible", func(t *testing.T) { testUncommittedInvisible(t, open(t)) })
	t.Run("Duplicates", func(t *testing.T) { testDuplicates(t, open) })
	t.Run("EachStopsOnError", func(t *testing.T) { testEachStopsOnError(t, open(t)) })
	t.Run("EachSeesOneSnapshot", func(t *testing.T) { testEachSeesOneSnapshot(t, open(t)) })
	t.Run("LargeSnapshot", func(t *testing.T) { testLargeSnapshot(t, open(t)) })
	t.Run("ReserveIdempotent", func(t *testing.T) { testReserveIdempotent(t, open(t)) })
	t.Run("ReservedSums", func(t *testing.T) { testReservedSums(t, open(t)) })
	t.Run("ReservedSince", func(t *testing.T) { testReservedSince(t, open(t)) })
	t.Run("Release", func(t *testing.T) { testRelease(t, open(t)) })
	t.Run("ReserveInvalid", func(t *testing.T) { testReserveInvalid(t, open) })
	t.Run("ConcurrentReserve", func(t *testing.T) { testConcurrentReserve(t, open(t)) })
	t.Run("ReserveWhileWriterOpen", func(t *testing.T) { testReserveWhileWriterOpen(t, open(t)) })
	runCheckout(t, open)
	runOutbox(t, open)
	runStock(t, open)
	runFeedPush(t, open)
	t.Run("EventLog", func(t *testing.T) { testEventLog(t, open(t)) })
	t.Run("PingClose", func(t *testing.T) { testPingClose(t, open(t)) })
}

// commit writes entries as one snapshot described by info.
func commit(t *testing.T, s bridge.Storage, info bridge.CatalogInfo, entries ...bridge.CatalogEntry) {
	t.Helper()
	commitEach(t, s, info, len(entries), func(i int) bridge.CatalogEntry { return entries[i] })
}

// CommitEach writes entry(0) … entry(n−1) into s as one snapshot
// described by info, for other packages' tests (see commitEach).
func CommitEach(tb testing.TB, s bridge.CatalogStore, info bridge.CatalogInfo, n int, entry func(int) bridge.CatalogEntry) {
	tb.Helper()
	commitEach(tb, s, info, n, entry)
}

// commitEach writes entry(0) … entry(n−1) as one snapshot described by
// info, making each entry as it is put (a large snapshot is never in
// memory whole), and returns how long the Commit took.
func commitEach(tb testing.TB, s bridge.CatalogStore, info bridge.CatalogInfo, n int, entry func(int) bridge.CatalogEntry) time.Duration {
	tb.Helper()
	ctx := tb.Context()
	w, err := s.BeginCatalog(ctx)
	if err != nil {
		tb.Fatalf("BeginCatalog: %v", err)
	}
	defer w.Rollback()
	for i := range n {
		e := entry(i)
		if err := w.Put(ctx, e); err != nil {
			tb.Fatalf("Put %q: %v", e.Product.ID, err)
		}
	}
	start := time.Now()
	if err := w.Commit(ctx, info); err != nil {
		tb.Fatalf("Commit %q: %v", info.Version, err)
	}
	return time.Since(start)
}

// collect returns every entry of the current snapshot in order.
func collect(t *testing.T, s bridge.Storage) []bridge.CatalogEntry {
	t.Helper()
	var out []bridge.CatalogEntry
	err := s.EachCatalogEntry(t.Context(), func(e bridge.CatalogEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("EachCatalogEntry: %v", err)
	}
	return out
}

func productIDs(entries []bridge.CatalogEntry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.Product.ID
	}
	return ids
}

// sameEntry fails unless got equals want field by field; the message shows
// both as JSON because a nested struct diff is unreadable otherwise.
func sameEntry(t *testing.T, what string, got, want bridge.CatalogEntry) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s: entry differs\n got: %s\nwant: %s", what, g, w)
	}
}

// sameInfo compares CatalogInfo; SyncedAt must be the same instant, in UTC.
func sameInfo(t *testing.T, got, want bridge.CatalogInfo) {
	t.Helper()
	if !got.SyncedAt.Equal(want.SyncedAt) {
		t.Errorf("SyncedAt = %v, want %v", got.SyncedAt, want.SyncedAt)
	}
	if got.SyncedAt.Location() != time.UTC {
		t.Errorf("SyncedAt location = %v, want UTC", got.SyncedAt.Location())
	}
	if !got.SourceTime.Equal(want.SourceTime) {
		t.Errorf("SourceTime = %v, want %v", got.SourceTime, want.SourceTime)
	}
	got.SyncedAt, want.SyncedAt = time.Time{}, time.Time{}
	got.SourceTime, want.SourceTime = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CatalogInfo = %+v, want %+v", got, want)
	}
}

// wantSnapshot checks that readers see exactly the snapshot (version, entries).
func wantSnapshot(t *testing.T, s bridge.Storage, version string, entries []bridge.CatalogEntry) {
	t.Helper()
	ctx := t.Context()
	info, err := s.CatalogInfo(ctx)
	if err != nil {
		t.Fatalf("CatalogInfo: %v", err)
	}
	if info.Version != version {
		t.Errorf("CatalogInfo.Version = %q, want %q", info.Version, version)
	}
	if got, want := productIDs(collect(t, s)), productIDs(entries); !slices.Equal(got, want) {
		t.Errorf("EachCatalogEntry ids = %v, want %v", got, want)
	}
	for _, e := range entries {
		if _, err := s.CatalogEntry(ctx, e.Product.ID); err != nil {
			t.Errorf("CatalogEntry(%q): %v", e.Product.ID, err)
		}
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("%s: err = %v, want one wrapping bridge.ErrNotFound", what, err)
	}
}

func testEmpty(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	_, err := s.CatalogInfo(ctx)
	wantNotFound(t, "CatalogInfo before any snapshot", err)
	_, err = s.CatalogEntry(ctx, "nope")
	wantNotFound(t, "CatalogEntry", err)
	_, err = s.CatalogEntryByVariant(ctx, "nope")
	wantNotFound(t, "CatalogEntryByVariant", err)
	if got := collect(t, s); len(got) != 0 {
		t.Errorf("EachCatalogEntry on empty store yielded %d entries", len(got))
	}
	n, err := s.Reserved(ctx, "nope", time.Time{})
	if err != nil || n != 0 {
		t.Errorf("Reserved(unknown) = %d, %v; want 0, nil", n, err)
	}
}

func testRoundTrip(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	entries := fullEntries()
	info := infoFor("v1", entries)
	info.Problems = []bridge.Problem{
		{Line: 12, Key: "broken", Message: "unterminated quote"},
		{Message: "header has no price column"},
	}
	info.ProblemCount = 57 // more than listed: Problems is capped
	commit(t, s, info, entries...)

	got, err := s.CatalogInfo(ctx)
	if err != nil {
		t.Fatalf("CatalogInfo: %v", err)
	}
	sameInfo(t, got, info)

	all := collect(t, s)
	if len(all) != len(entries) {
		t.Fatalf("EachCatalogEntry yielded %d entries, want %d", len(all), len(entries))
	}
	for i, want := range entries {
		sameEntry(t, fmt.Sprintf("EachCatalogEntry[%d]", i), all[i], want)
		e, err := s.CatalogEntry(ctx, want.Product.ID)
		if err != nil {
			t.Errorf("CatalogEntry(%q): %v", want.Product.ID, err)
			continue
		}
		sameEntry(t, "CatalogEntry("+want.Product.ID+")", e, want)
		for _, v := range want.Product.Variants {
			e, err := s.CatalogEntryByVariant(ctx, v.ID)
			if err != nil {
				t.Errorf("CatalogEntryByVariant(%q): %v", v.ID, err)
				continue
			}
			sameEntry(t, "CatalogEntryByVariant("+v.ID+")", e, want)
		}
	}
	// The distinctions JSON-ish encodings tend to lose, checked by name so a
	// failure says what broke.
	v := all[0].Product.Variants
	if v[0].Quantity == nil || *v[0].Quantity != 5 || v[1].Quantity == nil || *v[1].Quantity != 0 {
		t.Errorf("Quantity 5 and 0 did not survive: %v, %v", v[0].Quantity, v[1].Quantity)
	}
	if q := all[1].Product.Variants[0].Quantity; q != nil {
		t.Errorf("nil Quantity came back as %d", *q)
	}
	if v[0].ListPrice == nil || v[1].ListPrice != nil {
		t.Errorf("ListPrice set/nil did not survive: %v, %v", v[0].ListPrice, v[1].ListPrice)
	}

	_, err = s.CatalogEntry(ctx, "var-1a")
	wantNotFound(t, "CatalogEntry by a variant id", err)
	_, err = s.CatalogEntryByVariant(ctx, "prod-1")
	wantNotFound(t, "CatalogEntryByVariant by a product id", err)
}

func testSecondCommitReplaces(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	first := []bridge.CatalogEntry{simple("a", "a1", "a2"), simple("b", "b1"), simple("c", "c1")}
	commit(t, s, infoFor("v1", first), first...)

	// b is gone, a lost a variant and changed title, d is new; order changes.
	changed := simple("a", "a1")
	changed.Product.Title = "Renamed"
	second := []bridge.CatalogEntry{simple("d", "d1"), changed, simple("c", "c1")}
	commit(t, s, infoFor("v2", second), second...)

	wantSnapshot(t, s, "v2", second)
	for _, id := range []string{"b"} {
		_, err := s.CatalogEntry(ctx, id)
		wantNotFound(t, "CatalogEntry of removed product "+id, err)
	}
	for _, id := range []string{"b1", "a2"} {
		_, err := s.CatalogEntryByVariant(ctx, id)
		wantNotFound(t, "CatalogEntryByVariant of removed variant "+id, err)
	}
	e, err := s.CatalogEntryByVariant(ctx, "a1")
	if err != nil {
		t.Fatalf("CatalogEntryByVariant(a1): %v", err)
	}
	sameEntry(t, "changed product", e, changed)
}

func testRollback(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	old := []bridge.CatalogEntry{simple("a", "a1"), simple("b", "b1")}
	commit(t, s, infoFor("v1", old), old...)

	w, err := s.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []bridge.CatalogEntry{simple("x", "x1"), simple("a", "a9")} {
		if err := w.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	wantSnapshot(t, s, "v1", old)
	_, err = s.CatalogEntryByVariant(ctx, "x1")
	wantNotFound(t, "variant of rolled-back snapshot", err)

	// The rolled-back writer released whatever it held.
	next := []bridge.CatalogEntry{simple("c", "c1")}
	commit(t, s, infoFor("v2", next), next...)
	wantSnapshot(t, s, "v2", next)
}

// The usual `defer w.Rollback()` runs after a successful Commit; it must not
// undo it.
func testRollbackAfterCommit(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	w, err := s.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries := []bridge.CatalogEntry{simple("a", "a1")}
	if err := w.Put(ctx, entries[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, infoFor("v1", entries)); err != nil {
		t.Fatal(err)
	}
	_ = w.Rollback() // may report that the writer is done; must change nothing
	wantSnapshot(t, s, "v1", entries)
}

// A sync whose context is canceled (shutdown, timeout) and that never gets to
// Rollback must neither publish anything nor keep locks that stop the next
// sync.
func testCanceledWriter(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	old := []bridge.CatalogEntry{simple("a", "a1")}
	commit(t, s, infoFor("v1", old), old...)

	wctx, cancel := context.WithCancel(ctx)
	w, err := s.BeginCatalog(wctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := w.Put(wctx, simple(fmt.Sprintf("n%d", i), fmt.Sprintf("n%d-1", i))); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := w.Put(wctx, simple("late", "late1")); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	if err := w.Commit(ctx, infoFor("v2", nil)); err == nil {
		t.Error("Commit of a writer whose context was canceled succeeded")
	}
	wantSnapshot(t, s, "v1", old)

	// No Rollback was called: the next writer must still get through.
	next := []bridge.CatalogEntry{simple("b", "b1")}
	commit(t, s, infoFor("v3", next), next...)
	wantSnapshot(t, s, "v3", next)
}

// Readers keep seeing the committed snapshot while a writer streams a new one,
// from other goroutines, until the moment it commits.
func testUncommittedInvisible(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	old := []bridge.CatalogEntry{simple("a", "a1"), simple("b", "b1")}
	commit(t, s, infoFor("v1", old), old...)

	w, err := s.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Rollback()
	var next []bridge.CatalogEntry
	put := func(n int) {
		t.Helper()
		for range n {
			e := simple(fmt.Sprintf("n%d", len(next)), fmt.Sprintf("n%d-1", len(next)))
			if err := w.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			next = append(next, e)
		}
	}
	put(100)

	// check runs in a reader goroutine; it reports instead of calling
	// t.Fatal, which must not be called off the test goroutine.
	check := func() error {
		info, err := s.CatalogInfo(ctx)
		if err != nil {
			return fmt.Errorf("CatalogInfo: %w", err)
		}
		if info.Version != "v1" {
			return fmt.Errorf("reader saw version %q before commit", info.Version)
		}
		var ids []string
		if err := s.EachCatalogEntry(ctx, func(e bridge.CatalogEntry) error {
			ids = append(ids, e.Product.ID)
			return nil
		}); err != nil {
			return fmt.Errorf("EachCatalogEntry: %w", err)
		}
		if !slices.Equal(ids, []string{"a", "b"}) {
			return fmt.Errorf("reader saw entries %v before commit", ids)
		}
		if _, err := s.CatalogEntryByVariant(ctx, "n0-1"); !errors.Is(err, bridge.ErrNotFound) {
			return fmt.Errorf("reader found uncommitted variant n0-1 (err %v)", err)
		}
		if _, err := s.CatalogEntry(ctx, "a"); err != nil {
			return fmt.Errorf("reader lost committed product a: %w", err)
		}
		return nil
	}
	done := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for {
			if err := check(); err != nil {
				done <- err
				return
			}
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
		}
	}()
	put(400) // keep writing while the reader reads
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := w.Commit(ctx, infoFor("v2", next)); err != nil {
		t.Fatal(err)
	}
	wantSnapshot(t, s, "v2", next)
	_, err = s.CatalogEntry(ctx, "a")
	wantNotFound(t, "product of the replaced snapshot", err)
}

// The catalog pipeline de-duplicates ids before storing; if one slips
// through, storage must refuse the snapshot rather than let one product
// silently overwrite another.
func testDuplicates(t *testing.T, open func(t *testing.T) bridge.Storage) {
	tests := []struct {
		name    string
		entries []bridge.CatalogEntry
		dup     string // the id the error must name
	}{
		{"product id twice", []bridge.CatalogEntry{simple("p1", "v1"), simple("p2", "v2"), simple("p1", "v9")}, "p1"},
		{"variant id in two products", []bridge.CatalogEntry{simple("p1", "v1"), simple("p2", "v2", "v1")}, "v1"},
		{"variant id twice in one product", []bridge.CatalogEntry{simple("p1", "v1", "v2", "v1")}, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			old := []bridge.CatalogEntry{simple("old", "old1")}
			commit(t, s, infoFor("v1", old), old...)

			w, err := s.BeginCatalog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var putErr error
			for _, e := range tt.entries {
				if putErr = w.Put(ctx, e); putErr != nil {
					break
				}
			}
			commitErr := w.Commit(ctx, infoFor("v2", tt.entries))
			_ = w.Rollback()
			switch {
			case putErr != nil && commitErr == nil:
				t.Errorf("Put failed (%v) but Commit of the same writer succeeded", putErr)
			case putErr == nil && commitErr == nil:
				t.Fatalf("duplicate %q accepted", tt.dup)
			}
			err = putErr
			if err == nil {
				err = commitErr
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.dup)) {
				t.Errorf("error %q does not name the duplicate id %q", err, tt.dup)
			}
			wantSnapshot(t, s, "v1", old)
		})
	}
}

func testEachStopsOnError(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	entries := []bridge.CatalogEntry{simple("a", "a1"), simple("b", "b1"), simple("c", "c1"), simple("d", "d1")}
	commit(t, s, infoFor("v1", entries), entries...)
	stop := errors.New("stop here")
	calls := 0
	err := s.EachCatalogEntry(ctx, func(bridge.CatalogEntry) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("EachCatalogEntry = %v, want fn's error", err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times after failing on call 2", calls)
	}
	// The aborted iteration released what it held.
	wantSnapshot(t, s, "v1", entries)
}

// A feed writer streams the whole catalog with EachCatalogEntry; a sync that
// commits meanwhile must not give it half of each snapshot.
func testEachSeesOneSnapshot(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const n = 2000 // more than any driver buffers in one batch
	old := make([]bridge.CatalogEntry, n)
	for i := range old {
		old[i] = simple(fmt.Sprintf("old%d", i), fmt.Sprintf("old%d-1", i))
	}
	commit(t, s, infoFor("v1", old), old...)
	next := []bridge.CatalogEntry{simple("new0", "new0-1"), simple("new1", "new1-1")}

	var seen []string
	err := s.EachCatalogEntry(ctx, func(e bridge.CatalogEntry) error {
		if len(seen) == 1 {
			commit(t, s, infoFor("v2", next), next...)
		}
		seen = append(seen, e.Product.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("EachCatalogEntry: %v", err)
	}
	if !slices.Equal(seen, productIDs(old)) {
		t.Errorf("iteration across a commit saw %d entries (first %v, last %v), want exactly the %d of the snapshot it started on",
			len(seen), seen[:min(3, len(seen))], seen[max(0, len(seen)-3):], n)
	}
	wantSnapshot(t, s, "v2", next)
}

func testLargeSnapshot(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const n = 20000
	commitEach(t, s, bridge.CatalogInfo{Version: "big", SyncedAt: time.Now(), Products: n, Variants: 3 * n}, n, Entry)

	count, variants := 0, 0
	err := s.EachCatalogEntry(ctx, func(e bridge.CatalogEntry) error {
		if want := fmt.Sprintf("p%d", count); e.Product.ID != want {
			return fmt.Errorf("entry %d is %q, want %q", count, e.Product.ID, want)
		}
		count++
		variants += len(e.Product.Variants)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n || variants != 3*n {
		t.Errorf("read back %d entries with %d variants, want %d with %d", count, variants, n, 3*n)
	}
	got, err := s.CatalogInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Products != n || got.Variants != 3*n {
		t.Errorf("CatalogInfo counts = %d/%d, want %d/%d", got.Products, got.Variants, n, 3*n)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		e, err := s.CatalogEntryByVariant(ctx, fmt.Sprintf("p%d-v2", i))
		if err != nil {
			t.Errorf("CatalogEntryByVariant(p%d-v2): %v", i, err)
			continue
		}
		sameEntry(t, fmt.Sprintf("entry %d", i), e, Entry(i))
	}
}

func wantReserved(t *testing.T, s bridge.Storage, variantID string, want int64) {
	t.Helper()
	got, err := s.Reserved(t.Context(), variantID, time.Time{})
	if err != nil {
		t.Fatalf("Reserved(%q): %v", variantID, err)
	}
	if got != want {
		t.Errorf("Reserved(%q) = %d, want %d", variantID, got, want)
	}
}

func reserve(t *testing.T, s bridge.Storage, orderID string, lines ...bridge.Reservation) {
	t.Helper()
	if err := s.Reserve(t.Context(), orderID, lines); err != nil {
		t.Fatalf("Reserve(%q): %v", orderID, err)
	}
}

func testReserveIdempotent(t *testing.T, s bridge.Storage) {
	reserve(t, s, "o1", bridge.Reservation{VariantID: "v1", Quantity: 2}, bridge.Reservation{VariantID: "v2", Quantity: 1})
	// A retried or replayed request: same order id, whatever the lines.
	reserve(t, s, "o1", bridge.Reservation{VariantID: "v1", Quantity: 2}, bridge.Reservation{VariantID: "v2", Quantity: 1})
	reserve(t, s, "o1", bridge.Reservation{VariantID: "v1", Quantity: 7}, bridge.Reservation{VariantID: "v3", Quantity: 4})
	wantReserved(t, s, "v1", 2)
	wantReserved(t, s, "v2", 1)
	wantReserved(t, s, "v3", 0)
}

// testReservedSince: holds count from a point in time on (the date of the
// catalog export that already reflects older orders).
func testReservedSince(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	reserve(t, s, "old", bridge.Reservation{VariantID: "v1", Quantity: 2})
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	reserve(t, s, "new", bridge.Reservation{VariantID: "v1", Quantity: 3})
	for _, tt := range []struct {
		name  string
		since time.Time
		want  int64
	}{
		{"zero counts all", time.Time{}, 5},
		{"before both", mid.Add(-time.Hour), 5},
		{"between", mid, 3},
		{"after both", time.Now().Add(time.Second), 0},
	} {
		got, err := s.Reserved(ctx, "v1", tt.since)
		if err != nil || got != tt.want {
			t.Errorf("%s: Reserved(v1, %v) = %d, %v; want %d", tt.name, tt.since, got, err, tt.want)
		}
	}
	// A replayed Reserve keeps the original time.
	reserve(t, s, "old", bridge.Reservation{VariantID: "v1", Quantity: 2})
	if got, _ := s.Reserved(ctx, "v1", mid); got != 3 {
		t.Errorf("after replaying the old order: Reserved since mid = %d, want 3", got)
	}
}

func testReservedSums(t *testing.T, s bridge.Storage) {
	reserve(t, s, "o1", bridge.Reservation{VariantID: "v1", Quantity: 2})
	reserve(t, s, "o2", bridge.Reservation{VariantID: "v1", Quantity: 3}, bridge.Reservation{VariantID: "v2", Quantity: 1})
	// The same variant on two lines of one order holds both quantities.
	reserve(t, s, "o3", bridge.Reservation{VariantID: "v1", Quantity: 1}, bridge.Reservation{VariantID: "v1", Quantity: 4})
	wantReserved(t, s, "v1", 10)
	wantReserved(t, s, "v2", 1)
	wantReserved(t, s, "unknown", 0)
}

func testRelease(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	reserve(t, s, "o1", bridge.Reservation{VariantID: "v1", Quantity: 2}, bridge.Reservation{VariantID: "v2", Quantity: 5})
	reserve(t, s, "o2", bridge.Reservation{VariantID: "v1", Quantity: 3})
	if err := s.Release(ctx, "o1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantReserved(t, s, "v1", 3)
	wantReserved(t, s, "v2", 0)
	// Releasing twice, or an order never reserved, is not an error: cancel
	// handlers retry.
	for _, id := range []string{"o1", "never"} {
		if err := s.Release(ctx, id); err != nil {
			t.Errorf("Release(%q): %v", id, err)
		}
	}
	wantReserved(t, s, "v1", 3)
}

func testReserveInvalid(t *testing.T, open func(t *testing.T) bridge.Storage) {
	good := bridge.Reservation{VariantID: "v1", Quantity: 1}
	tests := []struct {
		name  string
		order string
		lines []bridge.Reservation
	}{
		{"zero quantity", "o1", []bridge.Reservation{{VariantID: "v2", Quantity: 0}}},
		{"negative quantity", "o1", []bridge.Reservation{{VariantID: "v2", Quantity: -3}}},
		{"bad line after a good one", "o1", []bridge.Reservation{good, {VariantID: "v2", Quantity: 0}}},
		{"empty variant id", "o1", []bridge.Reservation{good, {VariantID: "", Quantity: 1}}},
		{"empty order id", "", []bridge.Reservation{good}},
		{"no lines", "o1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if err := s.Reserve(t.Context(), tt.order, tt.lines); err == nil {
				t.Fatal("Reserve succeeded")
			}
			// Nothing of the refused call is held, and the order id is
			// still free: the failed call must not count as "reserved".
			wantReserved(t, s, "v1", 0)
			wantReserved(t, s, "v2", 0)
			if tt.order != "" {
				reserve(t, s, tt.order, good)
				wantReserved(t, s, "v1", 1)
			}
		})
	}
}

func testConcurrentReserve(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const workers, orders = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*orders*2+workers)
	for g := range workers {
		wg.Go(func() {
			for o := range orders {
				id := fmt.Sprintf("w%d-o%d", g, o)
				lines := []bridge.Reservation{
					{VariantID: "shared", Quantity: 1},
					{VariantID: fmt.Sprintf("own%d", g), Quantity: 2},
				}
				// Each order twice: the retry must not double-count even
				// while other orders are being written.
				for range 2 {
					if err := s.Reserve(ctx, id, lines); err != nil {
						errs <- fmt.Errorf("Reserve(%s): %w", id, err)
					}
				}
			}
		})
	}
	// Several goroutines racing on the same order id: exactly one wins.
	for range workers {
		wg.Go(func() {
			if err := s.Reserve(ctx, "contested", []bridge.Reservation{{VariantID: "hot", Quantity: 3}}); err != nil {
				errs <- fmt.Errorf("Reserve(contested): %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantReserved(t, s, "shared", workers*orders)
	for g := range workers {
		wantReserved(t, s, fmt.Sprintf("own%d", g), 2*orders)
	}
	wantReserved(t, s, "hot", 3)
}

// Checkouts must not stall or fail while a catalog sync is streaming in.
func testReserveWhileWriterOpen(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	w, err := s.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Rollback()
	entries := []bridge.CatalogEntry{simple("a", "a1")}
	if err := w.Put(ctx, entries[0]); err != nil {
		t.Fatal(err)
	}
	// A deadline far above a reservation's cost but finite: the reservation
	// must not wait for the sync to end, which here is never.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Reserve(rctx, "o1", []bridge.Reservation{{VariantID: "a1", Quantity: 1}}); err != nil {
		t.Fatalf("Reserve while a catalog writer is open: %v", err)
	}
	if err := s.Release(rctx, "o1"); err != nil {
		t.Fatalf("Release while a catalog writer is open: %v", err)
	}
	if err := s.Reserve(rctx, "o2", []bridge.Reservation{{VariantID: "a1", Quantity: 2}}); err != nil {
		t.Fatalf("Reserve while a catalog writer is open: %v", err)
	}
	if err := w.Put(ctx, simple("b", "b1")); err != nil {
		t.Fatal(err)
	}
	entries = append(entries, simple("b", "b1"))
	if err := w.Commit(ctx, infoFor("v1", entries)); err != nil {
		t.Fatalf("Commit after reservations were written meanwhile: %v", err)
	}
	wantSnapshot(t, s, "v1", entries)
	wantReserved(t, s, "a1", 2)
}

func testPingClose(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping after Close succeeded")
	}
}
