package shopify

import (
	"fmt"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeshopify"
)

// BenchmarkFullSync reads a whole catalog of 10k and 100k variants (10
// per product) from the fake shop, by bulk operation and by pages, and
// reports per read: the API calls made, the cost points Shopify charges,
// and the seconds a Standard plan (100 points/s restored) needs at least
// for those points. The fake's bucket is made unlimited so the wall time
// measures the adapter and the fake, not waiting; a real bulk operation
// also spends Shopify's own run time, which no fake can tell.
//
//	go test -run XXX -bench FullSync -benchtime 1x ./adapters/shopify/
func BenchmarkFullSync(b *testing.B) {
	for _, variants := range []int{10_000, 100_000} {
		s := fakeshopify.NewServer(fakeshopify.Config{BucketSize: 1e12, RestoreRate: 1e12})
		s.Generate(variants/10, 10)
		for _, mode := range []string{BulkAlways, BulkNever} {
			b.Run(fmt.Sprintf("%dk/%s", variants/1000, map[string]string{BulkAlways: "bulk", BulkNever: "paged"}[mode]), func(b *testing.B) {
				calls0, points0 := s.Requests()
				downloads0 := s.Calls()["download"]
				for b.Loop() {
					a, _ := newAdapter(b, s, func(o *Options) { o.Bulk = mode })
					n := 0
					recs, _ := readAllCount(b, a, &n)
					if n != variants {
						b.Fatalf("read %d variants in %d products, want %d", n, recs, variants)
					}
				}
				calls, points := s.Requests()
				b.Logf("calls by root field: %v", s.Calls())
				downloads := s.Calls()["download"]
				per := float64(b.N)
				b.ReportMetric(float64(calls-calls0+downloads-downloads0)/per, "api_calls/op")
				b.ReportMetric(float64(points-points0)/per, "cost_points/op")
				b.ReportMetric(float64(points-points0)/per/100, "standard_plan_s/op")
			})
		}
		s.Close()
	}
}

// readAllCount reads the catalog counting products and variants only (a
// map of 100k records would measure the test, not the read).
func readAllCount(b *testing.B, a *Adapter, variants *int) (int, error) {
	b.Helper()
	products := 0
	err := a.ReadCatalog(b.Context(), func(r bridge.Record) error {
		products++
		*variants += len(r.Variants)
		return nil
	}, func(p bridge.Problem) { b.Errorf("problem: %v", p) })
	if err != nil {
		b.Fatal(err)
	}
	return products, nil
}

// BenchmarkPagedSyncThrottled checks the Standard-plan estimate against a
// real wait: 10k variants read page by page from a fake whose bucket is a
// Standard plan's (2000 points) restored 100× faster (10 000 a second),
// starting empty. The time should come to about cost points / restore
// rate, and pacing should leave almost no query THROTTLED.
//
//	go test -run XXX -bench PagedSyncThrottled -benchtime 1x ./adapters/shopify/
func BenchmarkPagedSyncThrottled(b *testing.B) {
	for b.Loop() {
		s := fakeshopify.NewServer(fakeshopify.Config{BucketSize: 2000, RestoreRate: 10_000})
		s.Generate(1000, 10)
		s.DrainBucket()
		a, _ := newAdapter(b, s, func(o *Options) { o.Bulk = BulkNever })
		n := 0
		if _, err := readAllCount(b, a, &n); err != nil || n != 10_000 {
			b.Fatalf("read %d variants: %v", n, err)
		}
		calls, points := s.Requests()
		b.ReportMetric(float64(calls), "api_calls/op")
		b.ReportMetric(float64(s.Throttled()), "throttled/op")
		b.ReportMetric(float64(points)/10_000, "estimate_s/op")
		s.Close()
	}
}
