package woocommerce

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/internal/fakewoo"
	"github.com/acp-bridge/bridge/mapping"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/upstream"
	"gopkg.in/yaml.v3"
)

// benchFullSync times full catalog reads of products × variations from
// the fake shop over TLS on loopback, and reports the API calls each read
// makes. The fake answers in microseconds; a real shop's PHP takes
// 100–500 ms a call, so calls/op is the number to plan with:
// time ≈ product pages + variation calls / Concurrency, times the shop's
// latency.
func benchFullSync(b *testing.B, products, variations int, latency time.Duration) {
	shop := fakewoo.New(b)
	shop.AddCatalog(products, variations)
	shop.SetLatency(latency)
	a, err := New(Options{URL: shop.URL, ConsumerKey: fakewoo.DefaultKey, ConsumerSecret: fakewoo.DefaultSecret,
		FullSyncInterval: -1, Currency: "USD", Upstream: upstream.Config{Transport: shop.Client.Transport}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	start, calls0 := time.Now(), shop.TotalRequests()
	for range b.N {
		n := 0
		err := a.ReadCatalog(ctx, func(r bridge.Record) error { n += len(r.Variants); return nil }, func(bridge.Problem) {})
		if err != nil {
			b.Fatal(err)
		}
		if n != products*variations {
			b.Fatalf("%d variants, want %d", n, products*variations)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(shop.TotalRequests()-calls0)/float64(b.N), "calls/op")
	b.ReportMetric(float64(products*variations*b.N)/elapsed.Seconds(), "variants/s")
	// What the adapter keeps between reads (its last complete read), per
	// variant: the heap with it, less the heap without it.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	a.mu.Lock()
	a.last = nil
	a.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(int64(with.HeapAlloc)-int64(without.HeapAlloc))/float64(products*variations), "kept-B/variant")
}

// BenchmarkSnapshotSync is the bridge's whole catalog sync on this adapter:
// store reads, mapping, validation, the SQLite snapshot and every feed
// format, for 10k variants. "full" reads every product; "incremental" is
// the sync after one product changed (the syncs between full reads).
func BenchmarkSnapshotSync(b *testing.B) {
	shop := fakewoo.New(b)
	// The catalog was saved a day ago; each sync runs 5 minutes after the
	// last, on the shop's clock and the bridge's alike.
	var mu sync.Mutex
	clock := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	tick := func() { mu.Lock(); clock = clock.Add(5 * time.Minute); mu.Unlock() }
	shop.SetClock(now)
	ids := shop.AddCatalog(1000, 10)
	tick()
	a, err := New(Options{URL: shop.URL, ConsumerKey: fakewoo.DefaultKey, ConsumerSecret: fakewoo.DefaultSecret, Now: now,
		Currency: "USD", FullSyncInterval: 24 * time.Hour, Logger: quiet, Upstream: upstream.Config{Transport: shop.Client.Transport}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bridge.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(DefaultMapping), &node); err != nil {
		b.Fatal(err)
	}
	m, err := mapping.Compile(mapping.MerchantFields{Name: "Shop", URL: "https://shop.example", Currency: "USD", Country: "US"},
		mapping.Source{File: "default", Node: &node, Builtin: true})
	if err != nil {
		b.Fatal(err)
	}
	settings := feed.Settings{Merchant: bridge.Merchant{Name: "Shop", URL: "https://shop.example", Currency: "USD", Country: "US",
		ReturnPolicyURL: "https://shop.example/returns"}}
	syncer := &catalog.Syncer{Pipeline: &catalog.Pipeline{Source: a, Mapping: m, Settings: settings}, Store: db,
		Feeds: &catalog.Feeds{Dir: b.TempDir(), Formats: feed.Formats(), Settings: settings}, Logger: quiet}
	run := func(b *testing.B) {
		info, err := syncer.Sync(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if info.ValidVariants != 10000 {
			b.Fatalf("%d valid variants", info.ValidVariants)
		}
	}
	for _, mode := range []string{"full", "incremental"} {
		b.Run(mode, func(b *testing.B) {
			var calls int
			for range b.N {
				b.StopTimer()
				a.mu.Lock()
				if mode == "full" {
					a.last = nil
				}
				a.mu.Unlock()
				tick()
				shop.UpdateProduct(ids[0], func(*fakewoo.Product) {})
				tick()
				calls0 := shop.TotalRequests()
				b.StartTimer()
				run(b)
				calls += shop.TotalRequests() - calls0
			}
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
		})
	}
}
