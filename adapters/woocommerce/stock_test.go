package woocommerce

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakewoo"
)

func TestStock(t *testing.T) {
	tests := []struct {
		name      string
		variant   string
		setup     func(*fakewoo.Server, *memHolds)
		available int64
		tracked   bool
		notFound  bool
		// wantErr: an error that is not ErrNotFound (the shop's trouble).
		wantErr bool
		opts    func(*Options)
	}{
		{"own stock", "12", nil, 2, true, false, false, nil},
		{"parent stock", "11", nil, 7, true, false, false, nil},
		{"parent stock less holds", "11", func(_ *fakewoo.Server, h *memHolds) { h.hold("o1", "11", 3) }, 4, true, false, false, nil},
		{"negative after an oversell", "12", func(s *fakewoo.Server, _ *memHolds) {
			s.UpdateProduct(12, func(p *fakewoo.Product) { p.StockQuantity = i64(-2) })
		}, -2, true, false, false, nil},
		{"untracked", "20", nil, 0, false, false, false, nil},
		{"backorders allowed", "30", nil, 0, false, false, false, nil},
		{"simple tracked", "70", nil, 3, true, false, false, nil},
		{"unpublished", "70", func(s *fakewoo.Server, _ *memHolds) {
			s.UpdateProduct(70, func(p *fakewoo.Product) { p.Status = "draft" })
		}, 0, true, false, false, nil},
		{"deleted", "70", func(s *fakewoo.Server, _ *memHolds) { s.DeleteProduct(70) }, 0, false, true, false, nil},
		{name: "unknown to the snapshot", variant: "999", notFound: true},
		// A 404 of the whole API is an outage, not a product "no longer sold".
		{name: "API not at this URL", variant: "70", wantErr: true, opts: func(o *Options) { o.URL += "/shop" }},
		{name: "API not at this URL, variation", variant: "12", wantErr: true, opts: func(o *Options) { o.URL += "/shop" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			recs, _, _ := readAll(t, newAdapter(t, shop, nil))
			holds := &memHolds{}
			if tt.setup != nil {
				tt.setup(shop, holds)
			}
			var edit []func(*Options)
			if tt.opts != nil {
				edit = append(edit, tt.opts)
			}
			a := newAdapter(t, shop, catalogOf(recs), edit...)
			level, err := a.Stock(context.Background(), tt.variant)
			if tt.wantErr {
				if err == nil || errors.Is(err, bridge.ErrNotFound) {
					t.Fatalf("want an error other than ErrNotFound, got %+v %v", level, err)
				}
				return
			}
			if tt.notFound {
				if !errors.Is(err, bridge.ErrNotFound) {
					t.Fatalf("want ErrNotFound, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := level.Available(context.Background(), holds, tt.variant)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.available || level.Tracked != tt.tracked {
				t.Errorf("got %d tracked=%v (%+v), want %d tracked=%v", n, level.Tracked, level, tt.available, tt.tracked)
			}
		})
	}
}

func TestStockNeedsStorage(t *testing.T) {
	a := newAdapter(t, newShop(t), nil)
	if _, err := a.Stock(context.Background(), "12"); !errors.Is(err, errNoStorage) {
		t.Errorf("got %v", err)
	}
}

// A variation on its parent's stock names its siblings, whose holds count
// against the same figure; one with its own stock names none.
func TestStockSharedWithSiblings(t *testing.T) {
	shop := newShop(t)
	recs, _, _ := readAll(t, newAdapter(t, shop, nil))
	a := newAdapter(t, shop, catalogOf(recs))
	level, err := a.Stock(context.Background(), "11")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(level.Shared, ","); got != "12,13" || level.OnHand != 7 {
		t.Errorf("parent stock: %+v; want 7 on hand shared with 12,13", level)
	}
	holds := &memHolds{}
	holds.hold("o1", "12", 2)
	holds.hold("o2", "11", 1)
	if n, err := level.Available(context.Background(), holds, "11"); err != nil || n != 4 {
		t.Errorf("available: %d, %v; want 7 − 1 − 2", n, err)
	}
	own, err := a.Stock(context.Background(), "12")
	if err != nil || len(own.Shared) != 0 {
		t.Errorf("own stock: %+v, %v; want nothing shared", own, err)
	}
}
