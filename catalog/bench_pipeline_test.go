package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	csvstore "github.com/acp-bridge/bridge/adapters/csv"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/internal/cataloggen"
	"github.com/acp-bridge/bridge/mapping"
	"gopkg.in/yaml.v3"
)

// BenchmarkFeedBuildOpenAIJSONL measures the whole `bridge feed build` path
// on a generated CSV: read, map with the CSV adapter's default mapping,
// validate, dedupe, write openai.jsonl.gz. 100k variants by default;
// BRIDGE_BENCH_VARIANTS=1000000 for the 1M figure:
//
//	go test -run '^$' -bench FeedBuild -benchtime 3x ./catalog/
//	BRIDGE_BENCH_VARIANTS=1000000 go test -run '^$' -bench FeedBuild -benchtime 1x ./catalog/
//
// Peak RSS of the real command is measured with /usr/bin/time -v (see
// ARCHITECTURE.md); here the benchmark reports variants/s and the live heap.
func BenchmarkFeedBuildOpenAIJSONL(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BRIDGE_BENCH_VARIANTS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "catalog.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := cataloggen.Write(f, n, 1); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	opts := csvstore.Options{Path: path}
	src, err := csvstore.New(opts, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(csvstore.DefaultMapping(opts)), &node); err != nil {
		b.Fatal(err)
	}
	m, err := mapping.Compile(mapping.MerchantFields{Name: "Shop", Currency: "USD", Country: "US"}, mapping.Source{File: "default", Node: &node})
	if err != nil {
		b.Fatal(err)
	}
	settings := feed.Settings{GeneratedAt: time.Now(), Merchant: bridge.Merchant{Name: "Shop", URL: "https://shop.example",
		Currency: "USD", Country: "US", ReturnPolicyURL: "https://shop.example/returns"}}
	p := &catalog.Pipeline{Source: src, Mapping: m, Settings: settings}
	out := filepath.Join(dir, "feeds")
	var variants int
	var peak uint64
	b.ResetTimer()
	for b.Loop() {
		res, err := feed.Build(context.Background(), out, []feed.Format{feed.FormatOpenAIJSONL}, settings,
			func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
				r, err := p.Run(ctx, fn)
				variants = r.Variants
				return err
			})
		if err != nil {
			b.Fatal(err)
		}
		if fr, _ := res.File(feed.FormatOpenAIJSONL); fr.Variants != n {
			b.Fatalf("published %d variants, want %d", fr.Variants, n)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	b.ReportMetric(float64(variants)*float64(b.N)/b.Elapsed().Seconds(), "variants/s")
	b.ReportMetric(float64(peak)/(1<<20), "heap-MB")
}
