package woocommerce

import (
	"context"
	"errors"
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
	}{
		{"own stock", "12", nil, 2, true, false},
		{"parent stock", "11", nil, 7, true, false},
		{"parent stock less holds", "11", func(_ *fakewoo.Server, h *memHolds) { h.hold("o1", "11", 3) }, 4, true, false},
		{"negative after an oversell", "12", func(s *fakewoo.Server, _ *memHolds) {
			s.UpdateProduct(12, func(p *fakewoo.Product) { p.StockQuantity = i64(-2) })
		}, -2, true, false},
		{"untracked", "20", nil, 0, false, false},
		{"backorders allowed", "30", nil, 0, false, false},
		{"simple tracked", "70", nil, 3, true, false},
		{"unpublished", "70", func(s *fakewoo.Server, _ *memHolds) {
			s.UpdateProduct(70, func(p *fakewoo.Product) { p.Status = "draft" })
		}, 0, true, false},
		{"deleted", "70", func(s *fakewoo.Server, _ *memHolds) { s.DeleteProduct(70) }, 0, false, true},
		{"unknown to the snapshot", "999", nil, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			recs, _, _ := readAll(t, newAdapter(t, shop, nil))
			holds := &memHolds{}
			if tt.setup != nil {
				tt.setup(shop, holds)
			}
			a := newAdapter(t, shop, catalogOf(recs))
			level, err := a.Stock(context.Background(), tt.variant)
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
