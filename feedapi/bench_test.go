package feedapi_test

import (
	"context"
	"encoding/csv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/acp-bridge/bridge"
	csvstore "github.com/acp-bridge/bridge/adapters/csv"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/feedapi"
	"github.com/acp-bridge/bridge/internal/cataloggen"
	"github.com/acp-bridge/bridge/mapping"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/upstream"
)

// BenchmarkPush measures Feed API pushes of a generated catalog synced into
// SQLite through the real pipeline (cataloggen → CSV adapter → mapping →
// validation → snapshot): 100k products (~300k variants) by default,
// BRIDGE_BENCH_PRODUCTS to change it. Sub-benchmarks: full (every product
// sent to a new feed, in batches of 500), delta (1k products changed, their
// price, since the last push) and unchanged (nothing to send: the cost of
// reading and hashing the snapshot that every push pays).
//
//	go test -run '^$' -bench Push -benchtime 3x ./feedapi/
//
// The agent is a bare HTTP handler that reads each body and accepts it
// (the strict fake validates every product against the JSON Schema, which
// would measure the validator); it listens on loopback, so the time is the
// bridge's side: reading the snapshot, encoding, hashing, the HTTP calls
// and recording the hashes. sent-MB is the request bodies.
func BenchmarkPush(b *testing.B) {
	products := 100_000
	if v, err := strconv.Atoi(os.Getenv("BRIDGE_BENCH_PRODUCTS")); err == nil && v > 0 {
		products = v
	}
	ctx := context.Background()
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "catalog.csv")
	writeCatalog(b, csvPath, products*3)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "bridge.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	settings := feed.Settings{Merchant: merchant}
	syncer := newSyncer(b, csvPath, db, settings)
	start := time.Now()
	info, err := syncer.Sync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("synced %d products, %d variants in %s", info.Products, info.Variants, time.Since(start).Round(time.Millisecond))

	agent := &countingAgent{}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	p := &feedapi.Pusher{
		Client: &feedapi.Client{BaseURL: srv.URL, Token: token,
			HTTP: upstream.New(upstream.Config{Name: "bench", Budget: time.Minute, Logger: slog.New(slog.DiscardHandler)})},
		Store: db, Settings: settings, Country: "US", Log: slog.New(slog.DiscardHandler),
	}
	push := func(b *testing.B, wantSent int) {
		b.Helper()
		st, err := p.Push(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Items != wantSent {
			b.Fatalf("sent %d products, want %d", st.Items, wantSent)
		}
	}
	report := func(b *testing.B, sent int) {
		b.ReportMetric(float64(agent.bytes.Load())/float64(b.N)/1e6, "sent-MB/op")
		b.ReportMetric(float64(agent.requests.Load())/float64(b.N), "requests/op")
		b.ReportMetric(float64(sent)*float64(b.N)/b.Elapsed().Seconds(), "products/s")
	}

	b.Run("full", func(b *testing.B) {
		agent.reset()
		for b.Loop() {
			b.StopTimer()
			if err := db.ForgetPushedProducts(ctx, feedapi.Target); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			push(b, info.Products)
		}
		report(b, info.Products)
	})

	// The records of the original catalog, to go back to before each delta.
	var original []bridge.PushedProduct
	if err := db.EachPushedProduct(ctx, feedapi.Target, func(pp bridge.PushedProduct) error {
		original = append(original, pp)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if len(original) != info.Products {
		b.Fatalf("%d records after the full push, want %d", len(original), info.Products)
	}
	changed, err := changePrices(csvPath, info.Products/1000)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := syncer.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("delta", func(b *testing.B) {
		agent.reset()
		for b.Loop() {
			b.StopTimer()
			if err := db.SavePushedProducts(ctx, feedapi.Target, original); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			push(b, changed)
		}
		report(b, changed)
	})
	b.Run("unchanged", func(b *testing.B) {
		agent.reset()
		for b.Loop() {
			push(b, 0)
		}
		report(b, 0)
	})
}

// countingAgent accepts every Feed API request, counting bodies.
type countingAgent struct {
	bytes, requests atomic.Int64
}

func (a *countingAgent) reset() { a.bytes.Store(0); a.requests.Store(0) }

func (a *countingAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"feed_bench"}`)
		return
	}
	a.bytes.Add(n)
	a.requests.Add(1)
	_, _ = io.WriteString(w, `{"id":"feed_bench","accepted":true}`)
}

func writeCatalog(b *testing.B, path string, variants int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := cataloggen.Write(f, variants, 1); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func newSyncer(b *testing.B, csvPath string, db *sqlite.DB, settings feed.Settings) *catalog.Syncer {
	b.Helper()
	opts := csvstore.Options{Path: csvPath}
	src, err := csvstore.New(opts, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(csvstore.DefaultMapping(opts)), &node); err != nil {
		b.Fatal(err)
	}
	m, err := mapping.Compile(mapping.MerchantFields{Name: merchant.Name, URL: merchant.URL, Currency: "USD", Country: "US"},
		mapping.Source{File: "default", Node: &node})
	if err != nil {
		b.Fatal(err)
	}
	return &catalog.Syncer{Pipeline: &catalog.Pipeline{Source: src, Mapping: m, Settings: settings}, Store: db,
		Logger: slog.New(slog.DiscardHandler)}
}

// changePrices raises the price of every every-th product (all its rows)
// by one cent and returns how many products it changed.
func changePrices(path string, every int) (int, error) {
	raw, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	rows, err := csv.NewReader(raw).ReadAll()
	raw.Close()
	if err != nil {
		return 0, err
	}
	changed := map[string]bool{}
	for _, row := range rows[1:] {
		n, err := strconv.Atoi(row[0][1:]) // group ids are p1, p2, …
		if err != nil || n%every != 0 {
			continue
		}
		price, err := strconv.ParseFloat(row[10], 64)
		if err != nil {
			return 0, err
		}
		row[10] = strconv.FormatFloat(price+0.01, 'f', 2, 64)
		changed[row[0]] = true
	}
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := csv.NewWriter(out)
	if err := w.WriteAll(rows); err != nil {
		out.Close()
		return 0, err
	}
	return len(changed), out.Close()
}
