package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

// BenchmarkCatalogPut writes one snapshot of b.N entries (one product, three
// variants, about 2.5 kB of JSON each) over a committed snapshot of the same
// size, and reports the throughput of the whole sync, Commit included. For
// the 1M-variant case:
//
//	go test -run '^$' -bench CatalogPut -benchtime 333334x ./storage/sqlite
func BenchmarkCatalogPut(b *testing.B) {
	db := openTemp(b)
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
	// A real sync replaces a snapshot; deleting the old rows is part of it.
	write(b.N)
	b.ResetTimer()
	commit := write(b.N)
	b.StopTimer()
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/s, "entries/s")
	b.ReportMetric(float64(3*b.N)/s, "variants/s")
	b.ReportMetric(commit.Seconds(), "commit-s")
}

// snapshot commits n storagetest entries to a fresh database.
func snapshot(b *testing.B, n int) *DB {
	b.Helper()
	db := openTemp(b)
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
	return db
}

// BenchmarkEachCatalogEntry is the read side of a feed export: one pass over
// a 20k-entry snapshot per iteration.
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

// BenchmarkCatalogEntryByVariant is the lookup every checkout line makes.
func BenchmarkCatalogEntryByVariant(b *testing.B) {
	const n = 20000
	db := snapshot(b, n)
	ctx := b.Context()
	i := 0
	for b.Loop() {
		if _, err := db.CatalogEntryByVariant(ctx, fmt.Sprintf("p%d-v1", i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7919 // a prime stride: lookups hop around the file like real ones
	}
}
