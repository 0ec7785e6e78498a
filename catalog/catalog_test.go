package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/mapping"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"gopkg.in/yaml.v3"
)

// fakeSource emits records made by gen, reporting problems, or failing.
type fakeSource struct {
	recs     []bridge.Record
	problems []bridge.Problem
	err      error
	reads    atomic.Int32
}

func (f *fakeSource) ReadCatalog(ctx context.Context, emit func(bridge.Record) error, skip func(bridge.Problem)) error {
	f.reads.Add(1)
	for _, p := range f.problems {
		skip(p)
	}
	for _, r := range f.recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(r); err != nil {
			return err
		}
	}
	return f.err
}

var merchant = bridge.Merchant{Name: "Demo Shop", URL: "https://shop.example", Currency: "USD", Country: "US",
	PrivacyPolicyURL: "https://shop.example/privacy", TermsURL: "https://shop.example/terms", ReturnPolicyURL: "https://shop.example/returns", ReturnWindowDays: 30}

const testMapping = `product:
  id: product.group
  title: product.title
  description: product.title
  url: product.url
  brand: '"Acme"'
  image: product.image
variant:
  id: variant.sku
  price: variant.price
  quantity: variant.qty
  availability: variant.qty | availability
`

func newPipeline(t testing.TB, src bridge.CatalogSource) *Pipeline {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(testMapping), &n); err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Compile(mapping.MerchantFields{Name: merchant.Name, Currency: "USD"}, mapping.Source{File: "test", Node: &n})
	if err != nil {
		t.Fatal(err)
	}
	return &Pipeline{Source: src, Mapping: m, Settings: feed.Settings{Merchant: merchant, GeneratedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, Workers: 3}
}

func rec(group string, skus ...string) bridge.Record {
	r := bridge.Record{Key: group, Line: 2, Product: map[string]any{"group": group, "title": "Product " + group,
		"url": "https://shop.example/p/" + group, "image": "https://shop.example/i/" + group + ".jpg"}}
	for _, s := range skus {
		r.Variants = append(r.Variants, map[string]any{"sku": s, "price": "10.00", "qty": "3"})
	}
	return r
}

func records(n int) []bridge.Record {
	out := make([]bridge.Record, n)
	for i := range out {
		g := "g" + strconv.Itoa(i)
		out[i] = rec(g, g+"-a", g+"-b")
	}
	return out
}

func TestPipelineOrderAndCounts(t *testing.T) {
	src := &fakeSource{recs: records(2000), problems: []bridge.Problem{{Line: 7, Message: "bad row"}}}
	var got []string
	res, err := newPipeline(t, src).Run(context.Background(), func(e bridge.CatalogEntry) error {
		got = append(got, e.Product.ID)
		if len(e.Issues) != 0 {
			t.Errorf("%s: unexpected issues %v", e.Product.ID, e.Issues)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2000 || res.Products != 2000 || res.Variants != 4000 || res.ProblemCount != 1 || len(res.Problems) != 1 {
		t.Fatalf("got %d entries, result %+v", len(got), res)
	}
	for i, id := range got {
		if id != "g"+strconv.Itoa(i) {
			t.Fatalf("entry %d is %s: order lost", i, id)
		}
	}
}

func TestPipelineDuplicates(t *testing.T) {
	src := &fakeSource{recs: []bridge.Record{rec("a", "a1", "a2"), rec("b", "b1", "a1"), rec("a", "x1")}}
	var entries []bridge.CatalogEntry
	res, err := newPipeline(t, src).Run(context.Background(), func(e bridge.CatalogEntry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || res.ProblemCount != 1 || !strings.Contains(res.Problems[0].Message, `product id "a" is already used`) {
		t.Fatalf("entries %d, result %+v", len(entries), res)
	}
	b := entries[1]
	if len(b.Product.Variants) != 1 || b.Product.Variants[0].ID != "b1" {
		t.Errorf("duplicate variant a1 must be dropped from b: %+v", b.Product.Variants)
	}
	if len(b.Issues) != 1 || b.Issues[0].VariantID != "a1" || b.Issues[0].Severity != bridge.SeverityError {
		t.Errorf("issues of b: %+v", b.Issues)
	}
}

func TestPipelineInvalidProductsFlowWithIssues(t *testing.T) {
	bad := rec("bad", "bad-1")
	bad.Variants[0]["price"] = "12,50"
	src := &fakeSource{recs: []bridge.Record{bad, rec("ok", "ok-1")}}
	var entries []bridge.CatalogEntry
	res, err := newPipeline(t, src).Run(context.Background(), func(e bridge.CatalogEntry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Excluded != 1 || len(entries) != 2 || !entries[0].Excluded() || entries[1].Excluded() {
		t.Fatalf("result %+v", res)
	}
	if entries[0].Issues[0].Field != "price" {
		t.Errorf("issue %+v", entries[0].Issues[0])
	}
}

func TestPipelineErrors(t *testing.T) {
	boom := errors.New("store unreachable")
	_, err := newPipeline(t, &fakeSource{recs: records(10), err: boom}).Run(context.Background(), func(bridge.CatalogEntry) error { return nil })
	if !errors.Is(err, boom) {
		t.Errorf("source error not returned: %v", err)
	}
	stop := errors.New("disk full")
	n := 0
	_, err = newPipeline(t, &fakeSource{recs: records(5000)}).Run(context.Background(), func(bridge.CatalogEntry) error {
		n++
		if n == 300 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 300 {
		t.Errorf("sink error: err %v after %d entries", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newPipeline(t, &fakeSource{recs: records(5000)}).Run(ctx, func(bridge.CatalogEntry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled run: %v", err)
	}
}

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), t.TempDir()+"/bridge.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSyncerKeepsLastGoodSnapshot(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	src := &fakeSource{recs: records(50)}
	var snapshots atomic.Int32
	s := &Syncer{Pipeline: newPipeline(t, src), Store: db, OnSnapshot: func(context.Context, bridge.CatalogInfo) error {
		snapshots.Add(1)
		return nil
	}}
	info, err := s.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Products != 50 || info.Variants != 100 || snapshots.Load() != 1 {
		t.Fatalf("info %+v, snapshots %d", info, snapshots.Load())
	}
	// The store now fails midway: nothing of the half-read catalog may show.
	src.recs, src.err = records(10), errors.New("connection reset")
	if _, err := s.Sync(ctx); err == nil {
		t.Fatal("want the sync to fail")
	}
	st := s.Status()
	if !strings.Contains(st.LastError, "connection reset") || st.LastSuccess.IsZero() {
		t.Errorf("status %+v", st)
	}
	got, err := db.CatalogInfo(ctx)
	if err != nil || got.Version != info.Version || got.Products != 50 {
		t.Fatalf("snapshot after failed sync: %+v %v", got, err)
	}
	count := 0
	if err := db.EachCatalogEntry(ctx, func(bridge.CatalogEntry) error { count++; return nil }); err != nil || count != 50 {
		t.Fatalf("entries after failed sync: %d %v", count, err)
	}
	if snapshots.Load() != 1 {
		t.Errorf("OnSnapshot ran for a failed sync")
	}
	// Recovery clears the error.
	src.err = nil
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.LastError != "" {
		t.Errorf("error not cleared: %+v", st)
	}
	if e, err := db.CatalogEntryByVariant(ctx, "g3-b"); err != nil || e.Product.ID != "g3" {
		t.Errorf("variant lookup: %+v %v", e.Product.ID, err)
	}
}

// blockingSource holds the sync open until released.
type blockingSource struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingSource) ReadCatalog(ctx context.Context, emit func(bridge.Record) error, _ func(bridge.Problem)) error {
	close(b.started)
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return emit(rec("a", "a1"))
}

func TestSyncerOneAtATimeAndRun(t *testing.T) {
	db := openDB(t)
	bs := &blockingSource{started: make(chan struct{}), release: make(chan struct{})}
	s := &Syncer{Pipeline: newPipeline(t, bs), Store: db}
	done := make(chan error, 1)
	go func() { _, err := s.Sync(context.Background()); done <- err }()
	<-bs.started
	if _, err := s.Sync(context.Background()); !errors.Is(err, ErrSyncRunning) {
		t.Errorf("second sync: %v, want ErrSyncRunning", err)
	}
	if !s.Status().Running {
		t.Error("status must say running")
	}
	close(bs.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	src := &fakeSource{recs: records(3)}
	s2 := &Syncer{Pipeline: newPipeline(t, src), Store: db}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s2.Run(ctx, time.Hour); close(stopped) }()
	waitFor(t, func() bool { return src.reads.Load() == 1 })
	s2.Trigger()
	waitFor(t, func() bool { return src.reads.Load() == 2 })
	cancel()
	<-stopped
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached in 5s")
}

func BenchmarkPipeline(b *testing.B) {
	recs := records(1000)
	p := newPipeline(b, &fakeSource{recs: recs})
	p.Workers = 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(context.Background(), func(bridge.CatalogEntry) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/variant")
}

func TestIDSet(t *testing.T) {
	var s idSet
	for i := uint64(0); i < 100000; i++ {
		if !s.add(i * 7919) {
			t.Fatalf("%d reported as present before it was added", i)
		}
	}
	for i := uint64(0); i < 100000; i++ {
		if s.add(i * 7919) {
			t.Fatalf("%d reported as new twice", i)
		}
	}
	// 0 is stored as 1, so the two collide by design: a documented 2^-64 case.
	if s.add(1) {
		t.Error("1 must collide with 0")
	}
	if s.n != 100000 || len(s.slots) < 100000*4/3 {
		t.Errorf("n %d, slots %d", s.n, len(s.slots))
	}
}

func TestPipelineEmptyProductIDIsSkippedNotFatal(t *testing.T) {
	blank := rec("", "x1")
	blank.Key, blank.Line = "row-without-group", 9
	db := openDB(t)
	s := &Syncer{Pipeline: newPipeline(t, &fakeSource{recs: []bridge.Record{rec("a", "a1"), blank, rec("b", "b1")}}), Store: db}
	info, err := s.Sync(context.Background())
	if err != nil {
		t.Fatalf("one record without id must not fail the sync: %v", err)
	}
	if info.Products != 2 || info.ProblemCount != 1 || info.Problems[0].Line != 9 || !strings.Contains(info.Problems[0].Message, "product id is empty") {
		t.Fatalf("info %+v", info)
	}
}

// slowSink lets the source finish, then the caller cancels while the sink
// still drains: the run must not report success for a partial catalog.
func TestPipelineCanceledAfterSourceFinished(t *testing.T) {
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		_, err := newPipeline(t, &fakeSource{recs: records(2000)}).Run(ctx, func(bridge.CatalogEntry) error {
			n++
			if n == 100 {
				cancel()
				time.Sleep(time.Millisecond) // let the reader finish too
			}
			return nil
		})
		cancel()
		if n < 2000 && err == nil {
			t.Fatalf("run delivered %d of 2000 entries and reported success", n)
		}
	}
}

// panicSource yields a record whose value makes a template call panic-prone
// code; the pipeline must turn any panic into an issue.
func TestPipelineRecoversFromPanics(t *testing.T) {
	p := newPipeline(t, &fakeSource{recs: []bridge.Record{rec("a", "a1")}})
	p.Mapping = nil // Apply on a nil mapping panics: a stand-in for a bug
	var got []bridge.CatalogEntry
	if _, err := p.Run(context.Background(), func(e bridge.CatalogEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Excluded() || !strings.Contains(got[0].Issues[0].Message, "internal error") {
		t.Fatalf("got %+v", got)
	}
}

func TestSyncerValidatesAsOfItsOwnStart(t *testing.T) {
	var n yaml.Node
	src := strings.Replace(testMapping, "availability: variant.qty | availability", "availability: variant.avail\n  availability_date: variant.date", 1)
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Compile(mapping.MerchantFields{Name: merchant.Name, Currency: "USD"}, mapping.Source{File: "test", Node: &n})
	if err != nil {
		t.Fatal(err)
	}
	pre := func(group, date string) bridge.Record {
		r := rec(group, group+"-1")
		r.Variants[0]["avail"], r.Variants[0]["date"] = "preorder", date
		return r
	}
	// The pipeline's own GeneratedAt is zero: the Syncer must set the clock,
	// or 2029-06-01 would count as "in the future".
	p := &Pipeline{Source: &fakeSource{recs: []bridge.Record{pre("past", "2029-06-01"), pre("future", "2031-01-01")}},
		Mapping: m, Settings: feed.Settings{Merchant: merchant}}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	db := openDB(t)
	s := &Syncer{Pipeline: p, Store: db, Now: func() time.Time { return now },
		Feeds: &Feeds{Dir: dir, Formats: []feed.Format{feed.FormatACP}, Settings: p.Settings}}
	info, err := s.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Excluded != 1 {
		t.Errorf("the preorder dated before the sync must be excluded, the other kept: %+v", info)
	}
	if e, err := db.CatalogEntry(context.Background(), "future"); err != nil || e.Excluded() {
		t.Errorf("future preorder: %+v %v", e.Issues, err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "acp", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(meta), `"updated_at":"2030-01-02T03:04:05Z"`) {
		t.Errorf("metadata not stamped with the sync time: %s", meta)
	}
}

func TestSyncerRefusesAShrunkCatalog(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	src := &fakeSource{recs: records(100)}
	s := &Syncer{Pipeline: newPipeline(t, src), Store: db, MaxShrinkPercent: 50}
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	src.recs = records(60) // 40% fewer: allowed
	if _, err := s.Sync(ctx); err != nil {
		t.Fatalf("a 40%% shrink is within the limit: %v", err)
	}
	src.recs = records(20) // 120 → 40 variants, 66% fewer: refused
	_, err := s.Sync(ctx)
	if !errors.Is(err, ErrShrink) || !strings.Contains(err.Error(), "40 publishable variants now, 120 in the current snapshot") {
		t.Fatalf("want ErrShrink, got %v", err)
	}
	if info, _ := db.CatalogInfo(ctx); info.Variants != 120 {
		t.Errorf("refused sync changed the snapshot: %d variants", info.Variants)
	}
	s.MaxShrinkPercent = 100
	if _, err := s.Sync(ctx); err != nil {
		t.Fatalf("guard off: %v", err)
	}
}

// A renamed price column keeps every row but makes every variant invalid:
// the feeds would go empty, so the guard counts publishable variants.
func TestSyncerShrinkGuardCountsPublishableVariants(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	src := &fakeSource{recs: records(30)}
	var announced []string
	s := &Syncer{Pipeline: newPipeline(t, src), Store: db, MaxShrinkPercent: 50,
		OnSnapshot: func(_ context.Context, info bridge.CatalogInfo) error {
			announced = append(announced, info.Version)
			return nil
		}}
	if _, err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	broken := records(30)
	for _, r := range broken {
		for _, v := range r.Variants {
			v["Price"], v["price"] = v["price"], nil
		}
	}
	src.recs = broken
	if _, err := s.Sync(ctx); !errors.Is(err, ErrShrink) || !strings.Contains(err.Error(), "0 publishable variants now, 60") {
		t.Fatalf("want the guard to refuse a catalog with no valid variant, got %v", err)
	}
	if len(announced) != 1 {
		t.Errorf("a refused snapshot must not be announced: %v", announced)
	}
	if info, _ := db.CatalogInfo(ctx); info.ValidVariants != 60 {
		t.Errorf("snapshot changed: %+v", info)
	}
}

// failingCommit is a store whose commits fail, to check that nothing is
// announced for a snapshot storage does not have.
type failingCommit struct{ bridge.CatalogStore }

func (f failingCommit) BeginCatalog(ctx context.Context) (bridge.CatalogWriter, error) {
	w, err := f.CatalogStore.BeginCatalog(ctx)
	return failingWriter{w}, err
}

type failingWriter struct{ bridge.CatalogWriter }

func (failingWriter) Commit(context.Context, bridge.CatalogInfo) error {
	return errors.New("disk full")
}

func TestSyncerAnnouncesOnlyCommittedSnapshots(t *testing.T) {
	called := false
	s := &Syncer{Pipeline: newPipeline(t, &fakeSource{recs: records(3)}), Store: failingCommit{openDB(t)},
		OnSnapshot: func(context.Context, bridge.CatalogInfo) error { called = true; return nil }}
	if _, err := s.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want the commit error, got %v", err)
	}
	if called {
		t.Error("OnSnapshot ran for a snapshot that was never committed")
	}
}

func TestPipelineReportsAMappingErrorOnce(t *testing.T) {
	bad := rec("bad", "bad-1")
	bad.Variants[0]["price"] = "19,99"
	var got bridge.CatalogEntry
	if _, err := newPipeline(t, &fakeSource{recs: []bridge.Record{bad}}).Run(context.Background(), func(e bridge.CatalogEntry) error { got = e; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got.Issues) != 1 || got.Issues[0].Field != "price" || !strings.Contains(got.Issues[0].Message, "19,99") {
		t.Fatalf("want one price issue naming the value, got %+v", got.Issues)
	}
}

// A snapshot written before valid_variants was recorded still guards the
// first sync after an upgrade.
func TestShrinkGuardOnASnapshotWithoutValidCount(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := newPipeline(t, &fakeSource{recs: records(1)})
	var e bridge.CatalogEntry
	if _, err := p.Run(ctx, func(x bridge.CatalogEntry) error { e = x; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "old", SyncedAt: time.Now(), Products: 60, Variants: 120}); err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Pipeline: newPipeline(t, &fakeSource{recs: records(10)}), Store: db, MaxShrinkPercent: 50}
	if _, err := s.Sync(ctx); !errors.Is(err, ErrShrink) {
		t.Fatalf("want ErrShrink against the old snapshot's 120 variants, got %v", err)
	}
}
