package woocommerce

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakewoo"
	"github.com/acp-bridge/bridge/upstream"
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
		FullSyncInterval: -1, Currency: "USD", Upstream: upstream.Config{Transport: shop.Client.Transport}}, nil, nil)
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
