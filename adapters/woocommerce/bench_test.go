package woocommerce

import (
	"context"
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
	b.ReportMetric(float64(shop.TotalRequests()-calls0)/float64(b.N), "calls/op")
	b.ReportMetric(float64(products*variations*b.N)/elapsed.Seconds(), "variants/s")
}
