package csv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

func qty(n int64) *int64 { return &n }

func TestStock(t *testing.T) {
	catalog := &fakeCatalog{entries: []bridge.CatalogEntry{{
		Product: bridge.Product{ID: "tee", Variants: []bridge.Variant{
			{ID: "tee-s", Quantity: qty(10)},
			{ID: "tee-m"}, // not tracked
		}},
	}}}
	env := newOrderEnv(t, "")
	env.a.catalog = catalog
	a := env.a
	ctx := context.Background()

	check := func(variant string, wantAvail int64, wantTracked bool) {
		t.Helper()
		level, err := a.Stock(ctx, variant)
		if err != nil {
			t.Fatalf("Stock(%s): %v", variant, err)
		}
		got, err := level.Available(ctx, env.res, variant)
		if err != nil || got != wantAvail || level.Tracked != wantTracked {
			t.Errorf("Stock(%s) = %+v, available %d, %v; want %d, tracked %v", variant, level, got, err, wantAvail, wantTracked)
		}
	}
	check("tee-s", 10, true)
	check("tee-m", 0, false)

	// Written orders hold their units until the next export shows them gone.
	line := func(v string, q int64) bridge.OrderLine { return bridge.OrderLine{VariantID: v, Quantity: q} }
	if _, err := a.WriteOrder(ctx, testOrder("ord_1", line("tee-s", 3), line("tee-m", 1))); err != nil {
		t.Fatal(err)
	}
	check("tee-s", 7, true)
	check("tee-m", 0, false)
	if _, err := a.WriteOrder(ctx, testOrder("ord_1", line("tee-s", 3))); err != nil {
		t.Fatal(err)
	}
	check("tee-s", 7, true) // a rewrite holds nothing more
	// Oversold: the true, negative number, not a comforting zero.
	if _, err := a.WriteOrder(ctx, testOrder("ord_2", line("tee-s", 8))); err != nil {
		t.Fatal(err)
	}
	check("tee-s", -1, true)
	// A canceled order gives its units back.
	if err := env.res.Release(ctx, "ord_2"); err != nil {
		t.Fatal(err)
	}
	check("tee-s", 7, true)

	if _, err := a.Stock(ctx, "nope"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("Stock(unknown) err = %v, want ErrNotFound", err)
	}
	env.res.readErr = errors.New("database is closed")
	level, err := a.Stock(ctx, "tee-s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := level.Available(ctx, env.res, "tee-s"); err == nil || !strings.Contains(err.Error(), "database is closed") {
		t.Errorf("Available with a failing store: %v", err)
	}
}

// inconsistentCatalog answers every variant lookup with an entry that does not
// list the variant.
type inconsistentCatalog struct{ fakeCatalog }

func (inconsistentCatalog) CatalogEntryByVariant(context.Context, string) (bridge.CatalogEntry, error) {
	return bridge.CatalogEntry{Product: bridge.Product{ID: "other"}}, nil
}

func TestStockEdgeCases(t *testing.T) {
	ctx := context.Background()
	a, err := New(Options{Path: "c.csv"}, &inconsistentCatalog{}, newFakeReservations())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stock(ctx, "tee-s"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("variant missing from its entry: err = %v, want ErrNotFound", err)
	}
	a, err = New(Options{Path: "c.csv"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stock(ctx, "tee-s"); err == nil {
		t.Error("Stock without a catalog store succeeded")
	}
}

// syncingCatalog commits a new snapshot (a new version, a later export)
// before each of its CatalogInfo calls 2 … syncs+1, as a sync running
// beside Stock would.
type syncingCatalog struct {
	fakeCatalog
	calls, syncs int
}

func (c *syncingCatalog) CatalogInfo(context.Context) (bridge.CatalogInfo, error) {
	c.calls++
	if c.calls >= 2 && c.calls <= c.syncs+1 {
		c.info.Version = fmt.Sprint("v", c.calls)
		c.info.SourceTime = time.Date(2026, 11, 27, c.calls, 0, 0, 0, time.UTC)
	}
	return c.info, nil
}

// With holds released by newer exports, the quantity and the export's time
// come from one snapshot: a sync between the reads makes Stock read again,
// and a catalog that never stops changing is an error, not a guess.
func TestStockReadsOneSnapshot(t *testing.T) {
	entries := []bridge.CatalogEntry{{Product: bridge.Product{ID: "tee", Variants: []bridge.Variant{{ID: "tee-s", Quantity: qty(4)}}}}}
	for _, tc := range []struct {
		name    string
		syncs   int
		wantErr bool
	}{
		{"no sync meanwhile", 0, false},
		{"one sync between the reads", 1, false},
		{"syncs all along", 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := &syncingCatalog{fakeCatalog: fakeCatalog{entries: entries, info: bridge.CatalogInfo{Version: "v0"}}, syncs: tc.syncs}
			a, err := New(Options{Path: "c.csv", ReleaseHoldsOnNewerExport: true}, cat, newFakeReservations())
			if err != nil {
				t.Fatal(err)
			}
			level, err := a.Stock(context.Background(), "tee-s")
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "keeps changing") {
					t.Fatalf("Stock = %+v, %v; want an error", level, err)
				}
				return
			}
			if err != nil || !level.Tracked || level.OnHand != 4 || !level.HoldsSince.Equal(cat.info.SourceTime) {
				t.Fatalf("Stock = %+v, %v; want 4 on hand with holds since %v", level, err, cat.info.SourceTime)
			}
			if want := 2 + 2*min(tc.syncs, 1); cat.calls != want {
				t.Errorf("%d snapshot reads, want %d", cat.calls, want)
			}
		})
	}
}
