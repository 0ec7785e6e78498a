package csv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

var errNotImplemented = errors.New("not implemented in fake")

// fakeCatalog is a snapshot of fixed entries; only the lookups Stock needs
// work.
type fakeCatalog struct {
	entries []bridge.CatalogEntry
	info    bridge.CatalogInfo
}

func (c *fakeCatalog) BeginCatalog(context.Context) (bridge.CatalogWriter, error) {
	return nil, errNotImplemented
}

func (c *fakeCatalog) CatalogInfo(context.Context) (bridge.CatalogInfo, error) {
	return c.info, nil
}

func (c *fakeCatalog) EachCatalogEntry(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
	for _, e := range c.entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (c *fakeCatalog) CatalogEntry(_ context.Context, id string) (bridge.CatalogEntry, error) {
	for _, e := range c.entries {
		if e.Product.ID == id {
			return e, nil
		}
	}
	return bridge.CatalogEntry{}, fmt.Errorf("product %q: %w", id, bridge.ErrNotFound)
}

func (c *fakeCatalog) CatalogEntryByVariant(_ context.Context, id string) (bridge.CatalogEntry, error) {
	for _, e := range c.entries {
		for _, v := range e.Product.Variants {
			if v.ID == id {
				return e, nil
			}
		}
	}
	return bridge.CatalogEntry{}, fmt.Errorf("variant %q: %w", id, bridge.ErrNotFound)
}

// fakeReservations keeps reservations in memory with the store's semantics:
// Reserve is idempotent by order id.
type fakeReservations struct {
	mu       sync.Mutex
	byOrder  map[string][]bridge.Reservation
	at       map[string]time.Time // when each order was reserved
	calls    int                  // Reserve calls that added something
	err      error                // returned by Reserve when set
	failIDs  map[string]error     // returned by Reserve for these orders
	readErr  error                // returned by Reserved when set
	reserved []string
}

func newFakeReservations() *fakeReservations {
	return &fakeReservations{byOrder: map[string][]bridge.Reservation{}, at: map[string]time.Time{}}
}

func (r *fakeReservations) Reserve(ctx context.Context, orderID string, lines []bridge.Reservation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if err := r.failIDs[orderID]; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, ok := r.byOrder[orderID]; ok {
		return nil
	}
	r.byOrder[orderID] = append([]bridge.Reservation(nil), lines...)
	r.at[orderID] = time.Now()
	r.calls++
	r.reserved = append(r.reserved, orderID)
	return nil
}

func (r *fakeReservations) Reserved(_ context.Context, variantID string, since time.Time) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.readErr != nil {
		return 0, r.readErr
	}
	var n int64
	for order, lines := range r.byOrder {
		if r.at[order].Before(since) {
			continue
		}
		for _, l := range lines {
			if l.VariantID == variantID {
				n += l.Quantity
			}
		}
	}
	return n, nil
}

func (r *fakeReservations) Release(_ context.Context, orderID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byOrder, orderID)
	return nil
}

var (
	_ bridge.CatalogStore     = (*fakeCatalog)(nil)
	_ bridge.ReservationStore = (*fakeReservations)(nil)
)
