package storagetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// StockHolder is implemented by drivers that check the stock left and
// hold it in one step, for bridges that share a database: the checkout
// engine checks and holds the last units under a mutex of its process,
// which other processes do not see. It is optional (the suite skips its
// tests for drivers without it) until the engine uses it.
//
// HoldIfAvailable holds lines for orderID unless that would hold more of a
// variant than onHand allows: for each variant in onHand (the store's own
// figure, before the bridge's holds), what orders hold of it since since
// (as Reserved counts) plus what lines hold must not exceed it. Variants
// missing from onHand are held without a check. When a variant lacks
// stock, nothing is held and short names it (the first in id order);
// otherwise short is "" and the hold is made, as Reserve makes it (two
// lines of a variant add up). An order that holds stock already changes
// nothing and is not checked again. Concurrent calls, from any process,
// behave as if made one at a time, holds made by Reserve and Commit
// included.
type StockHolder interface {
	HoldIfAvailable(ctx context.Context, orderID string, lines []bridge.Reservation, onHand map[string]int64, since time.Time) (short string, err error)
}

func runStock(t *testing.T, open func(t *testing.T) bridge.Storage) {
	holder := func(t *testing.T) (bridge.Storage, StockHolder) {
		t.Helper()
		s := open(t)
		h, ok := s.(StockHolder)
		if !ok {
			t.Skip("the driver has no HoldIfAvailable (optional)")
		}
		return s, h
	}
	for _, tc := range []struct {
		name string
		test func(*testing.T, bridge.Storage, StockHolder)
	}{
		{"HoldIfAvailable", testHoldIfAvailable},
		{"HoldIfAvailableSince", testHoldIfAvailableSince},
		{"HoldIfAvailableInvalid", testHoldIfAvailableInvalid},
		{"ConcurrentHoldIfAvailable", func(t *testing.T, s bridge.Storage, _ StockHolder) {
			testConcurrentHoldIfAvailable(t, []bridge.Storage{s})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h := holder(t)
			tc.test(t, s, h)
		})
	}
}

// hold calls HoldIfAvailable and fails the test on an error.
func hold(t *testing.T, h StockHolder, orderID string, onHand map[string]int64, lines ...bridge.Reservation) string {
	t.Helper()
	short, err := h.HoldIfAvailable(t.Context(), orderID, lines, onHand, time.Time{})
	if err != nil {
		t.Fatalf("HoldIfAvailable(%s): %v", orderID, err)
	}
	return short
}

func wantShort(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: short = %q, want %q", what, got, want)
	}
}

func testHoldIfAvailable(t *testing.T, s bridge.Storage, h StockHolder) {
	ctx := t.Context()
	line := func(v string, q int64) bridge.Reservation { return bridge.Reservation{VariantID: v, Quantity: q} }
	stock := map[string]int64{"a": 5, "b": 2, "zero": 0}

	// Within stock: held, like Reserve would.
	wantShort(t, "3 of 5", hold(t, h, "o1", stock, line("a", 3), line("untracked", 9)), "")
	wantReserved(t, s, "a", 3)
	wantReserved(t, s, "untracked", 9)
	// Two lines of one variant count together: 2 + 1 > 5 − 3.
	wantShort(t, "two lines of a", hold(t, h, "o2", stock, line("a", 2), line("a", 1)), "a")
	wantReserved(t, s, "a", 3)
	// Exactly what is left.
	wantShort(t, "the last 2 of a", hold(t, h, "o2", stock, line("a", 1), line("a", 1)), "")
	wantReserved(t, s, "a", 5)

	// A short variant holds nothing of the order, not even its other
	// lines; the first short variant in id order is named.
	wantShort(t, "b and a short", hold(t, h, "o3", stock, line("zero", 1), line("b", 3), line("a", 1), line("c", 1)), "a")
	wantShort(t, "b short", hold(t, h, "o3", stock, line("b", 3), line("c", 1)), "b")
	wantShort(t, "zero on hand", hold(t, h, "o3", stock, line("zero", 1)), "zero")
	wantReserved(t, s, "b", 0)
	wantReserved(t, s, "c", 0)
	// The refused order id is still free.
	wantShort(t, "b within stock", hold(t, h, "o3", stock, line("b", 2), line("c", 1)), "")
	wantReserved(t, s, "b", 2)
	wantReserved(t, s, "c", 1)

	// An order that holds already: nothing changes, nothing is checked.
	wantShort(t, "o1 again", hold(t, h, "o1", stock, line("a", 50)), "")
	wantReserved(t, s, "a", 5)

	// Holds made by Reserve and by a Change count; a release frees stock.
	if err := s.Reserve(ctx, "r1", []bridge.Reservation{line("d", 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, bridge.Change{HoldOrderID: "c1", Hold: []bridge.Reservation{line("d", 1)}}); err != nil {
		t.Fatal(err)
	}
	wantShort(t, "d after Reserve and Commit", hold(t, h, "o4", map[string]int64{"d": 3}, line("d", 1)), "d")
	if err := s.Release(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	wantShort(t, "d after a release", hold(t, h, "o4", map[string]int64{"d": 3}, line("d", 2)), "")
	wantReserved(t, s, "d", 3)
	// A negative figure (the store oversold) holds nothing checked.
	wantShort(t, "negative on hand", hold(t, h, "o5", map[string]int64{"e": -1}, line("e", 1)), "e")
}

// Holds count from since on, like Reserved(variant, since): the store's
// figure already reflects older orders.
func testHoldIfAvailableSince(t *testing.T, s bridge.Storage, h StockHolder) {
	ctx := t.Context()
	line := []bridge.Reservation{{VariantID: "v1", Quantity: 2}}
	if err := s.Reserve(ctx, "old", line); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	export := time.Now()
	time.Sleep(5 * time.Millisecond)
	if err := s.Reserve(ctx, "new", line); err != nil {
		t.Fatal(err)
	}
	onHand := map[string]int64{"v1": 4}
	// Counting from the export: 2 held since, 2 more fit.
	short, err := h.HoldIfAvailable(ctx, "o1", line, onHand, export)
	if err != nil || short != "" {
		t.Fatalf("HoldIfAvailable since the export = %q, %v; want held", short, err)
	}
	// Counting every hold (zero since): 6 held, nothing fits.
	short, err = h.HoldIfAvailable(ctx, "o2", []bridge.Reservation{{VariantID: "v1", Quantity: 1}}, map[string]int64{"v1": 6}, time.Time{})
	if err != nil || short != "v1" {
		t.Fatalf("HoldIfAvailable counting all = %q, %v; want short of v1", short, err)
	}
	wantReserved(t, s, "v1", 6)
}

func testHoldIfAvailableInvalid(t *testing.T, s bridge.Storage, h StockHolder) {
	good := bridge.Reservation{VariantID: "v1", Quantity: 1}
	for _, tt := range []struct {
		name  string
		order string
		lines []bridge.Reservation
	}{
		{"empty order id", "", []bridge.Reservation{good}},
		{"no lines", "o1", nil},
		{"zero quantity", "o1", []bridge.Reservation{good, {VariantID: "v2"}}},
		{"empty variant id", "o1", []bridge.Reservation{good, {Quantity: 1}}},
	} {
		if short, err := h.HoldIfAvailable(t.Context(), tt.order, tt.lines, map[string]int64{"v1": 9}, time.Time{}); err == nil {
			t.Errorf("%s: HoldIfAvailable = %q, nil; want an error", tt.name, short)
		}
	}
	wantReserved(t, s, "v1", 0)
}

// The last units wanted by many orders at once, 2 of them held already by
// an older order: exactly as many orders as the stock left allows hold
// them, with their untracked lines, and every other order is told which
// variant is short. Order i asks stores[i % len(stores)] (RunShared:
// replicas of one database), each of which must be a StockHolder.
func testConcurrentHoldIfAvailable(t *testing.T, stores []bridge.Storage) {
	const orders, free, before = 40, 7, 2
	holders := make([]StockHolder, len(stores))
	for i, s := range stores {
		h, ok := s.(StockHolder)
		if !ok {
			t.Skip("the driver has no HoldIfAvailable (optional)")
		}
		holders[i] = h
	}
	if err := stores[0].Reserve(t.Context(), "old", []bridge.Reservation{{VariantID: "hot", Quantity: before}}); err != nil {
		t.Fatal(err)
	}
	shorts := make([]string, orders)
	errs := make([]error, orders)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range orders {
		wg.Go(func() {
			<-start
			// Two checked variants each, in either order, so holds that
			// lock variants one by one would deadlock if they did not
			// sort; and one not checked (missing from onHand).
			lines := []bridge.Reservation{{VariantID: "hot", Quantity: 1}, {VariantID: "warm", Quantity: 1}, {VariantID: "untracked", Quantity: 1}}
			if i%2 == 1 {
				slices.Reverse(lines)
			}
			shorts[i], errs[i] = holders[i%len(holders)].HoldIfAvailable(t.Context(), fmt.Sprintf("o%d", i), lines,
				map[string]int64{"hot": free + before, "warm": 100}, time.Time{})
		})
	}
	close(start)
	wg.Wait()
	held := 0
	for i := range orders {
		switch {
		case errs[i] != nil:
			t.Errorf("order %d: %v", i, errs[i])
		case shorts[i] == "":
			held++
		case shorts[i] != "hot":
			t.Errorf("order %d: short of %q, want hot", i, shorts[i])
		}
	}
	if held != free {
		t.Errorf("%d orders held, want %d (%d on hand, %d held before)", held, free, free+before, before)
	}
	s := stores[len(stores)-1]
	wantReserved(t, s, "hot", free+before)
	wantReserved(t, s, "warm", free)
	wantReserved(t, s, "untracked", free)
}
