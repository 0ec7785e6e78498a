package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// The stock checks of a hold (Change.StockChecks): the checkout engine
// reads the store's figure and commits its hold with a check of it, and
// storage makes the check and the hold one step, for every process that
// shares the database.

func runStock(t *testing.T, open func(t *testing.T) bridge.Storage) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, bridge.Storage)
	}{
		{"StockChecks", testStockChecks},
		{"StockChecksSince", testStockChecksSince},
		{"StockChecksInvalid", testStockChecksInvalid},
		{"StockChecksWithChange", testStockChecksWithChange},
		{"ConcurrentStockChecks", func(t *testing.T, s bridge.Storage) {
			testConcurrentStockChecks(t, []bridge.Storage{s})
		}},
		{"SharedStock", testSharedStock},
		{"ConcurrentSharedStock", func(t *testing.T, s bridge.Storage) {
			testConcurrentSharedStock(t, []bridge.Storage{s})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t)) })
	}
}

// holdChecked commits a hold of lines for orderID, each variant in onHand
// checked against its figure (counting every hold), and returns the
// variant a *bridge.ShortStockError names ("" when held).
func holdChecked(ctx context.Context, s bridge.Storage, orderID string, onHand map[string]int64, lines ...bridge.Reservation) (string, error) {
	var checks []bridge.StockCheck
	for _, l := range lines {
		n, ok := onHand[l.VariantID]
		if ok && !slices.ContainsFunc(checks, func(c bridge.StockCheck) bool { return c.VariantID == l.VariantID }) {
			checks = append(checks, bridge.StockCheck{VariantID: l.VariantID, OnHand: n})
		}
	}
	err := s.Commit(ctx, bridge.Change{HoldOrderID: orderID, Hold: lines, StockChecks: checks})
	var se *bridge.ShortStockError
	if errors.As(err, &se) {
		if !errors.Is(err, bridge.ErrShortStock) {
			return "", fmt.Errorf("short stock error %v does not match bridge.ErrShortStock", err)
		}
		return se.VariantID, nil
	}
	return "", err
}

// hold is holdChecked failing the test on an error.
func hold(t *testing.T, s bridge.Storage, orderID string, onHand map[string]int64, lines ...bridge.Reservation) string {
	t.Helper()
	short, err := holdChecked(t.Context(), s, orderID, onHand, lines...)
	if err != nil {
		t.Fatalf("hold of %s: %v", orderID, err)
	}
	return short
}

func wantShort(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: short = %q, want %q", what, got, want)
	}
}

func testStockChecks(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	line := func(v string, q int64) bridge.Reservation { return bridge.Reservation{VariantID: v, Quantity: q} }
	stock := map[string]int64{"a": 5, "b": 2, "zero": 0}

	// Within stock: held, like Reserve would.
	wantShort(t, "3 of 5", hold(t, s, "o1", stock, line("a", 3), line("untracked", 9)), "")
	wantReserved(t, s, "a", 3)
	wantReserved(t, s, "untracked", 9)
	// Two lines of one variant count together: 2 + 1 > 5 − 3.
	wantShort(t, "two lines of a", hold(t, s, "o2", stock, line("a", 2), line("a", 1)), "a")
	wantReserved(t, s, "a", 3)
	// Exactly what is left.
	wantShort(t, "the last 2 of a", hold(t, s, "o2", stock, line("a", 1), line("a", 1)), "")
	wantReserved(t, s, "a", 5)

	// A short variant holds nothing of the order, not even its other
	// lines; the first short variant in id order is named.
	wantShort(t, "b and a short", hold(t, s, "o3", stock, line("zero", 1), line("b", 3), line("a", 1), line("c", 1)), "a")
	wantShort(t, "b short", hold(t, s, "o3", stock, line("b", 3), line("c", 1)), "b")
	wantShort(t, "zero on hand", hold(t, s, "o3", stock, line("zero", 1)), "zero")
	wantReserved(t, s, "b", 0)
	wantReserved(t, s, "c", 0)
	// The refused order id is still free.
	wantShort(t, "b within stock", hold(t, s, "o3", stock, line("b", 2), line("c", 1)), "")
	wantReserved(t, s, "b", 2)
	wantReserved(t, s, "c", 1)

	// An order that holds already: nothing changes, nothing is checked.
	wantShort(t, "o1 again", hold(t, s, "o1", stock, line("a", 50)), "")
	wantReserved(t, s, "a", 5)

	// Holds made by Reserve and by a Change count; a release frees stock.
	if err := s.Reserve(ctx, "r1", []bridge.Reservation{line("d", 2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, bridge.Change{HoldOrderID: "c1", Hold: []bridge.Reservation{line("d", 1)}}); err != nil {
		t.Fatal(err)
	}
	wantShort(t, "d after Reserve and Commit", hold(t, s, "o4", map[string]int64{"d": 3}, line("d", 1)), "d")
	if err := s.Release(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	wantShort(t, "d after a release", hold(t, s, "o4", map[string]int64{"d": 3}, line("d", 2)), "")
	wantReserved(t, s, "d", 3)
	// A negative figure (the store oversold) holds nothing checked.
	wantShort(t, "negative on hand", hold(t, s, "o5", map[string]int64{"e": -1}, line("e", 1)), "e")
}

// Holds count from a check's Since on, like Reserved(variant, since): the
// store's figure already reflects older orders.
func testStockChecksSince(t *testing.T, s bridge.Storage) {
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
	// Counting from the export: 2 held since, 2 more fit.
	err := s.Commit(ctx, bridge.Change{HoldOrderID: "o1", Hold: line, StockChecks: []bridge.StockCheck{{VariantID: "v1", OnHand: 4, Since: export}}})
	if err != nil {
		t.Fatalf("hold checked since the export: %v; want held", err)
	}
	// Counting every hold (zero Since): 6 held, nothing fits.
	err = s.Commit(ctx, bridge.Change{HoldOrderID: "o2", Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}},
		StockChecks: []bridge.StockCheck{{VariantID: "v1", OnHand: 6}}})
	if !errors.Is(err, bridge.ErrShortStock) {
		t.Fatalf("hold checked counting all: %v; want short of v1", err)
	}
	wantReserved(t, s, "v1", 6)
}

func testStockChecksInvalid(t *testing.T, s bridge.Storage) {
	good := bridge.Reservation{VariantID: "v1", Quantity: 1}
	check := []bridge.StockCheck{{VariantID: "v1", OnHand: 9}}
	for _, tt := range []struct {
		name string
		c    bridge.Change
	}{
		{"empty order id", bridge.Change{Hold: []bridge.Reservation{good}, StockChecks: check}},
		{"checks without a hold", bridge.Change{HoldOrderID: "o1", StockChecks: check}},
		{"zero quantity", bridge.Change{HoldOrderID: "o1", Hold: []bridge.Reservation{good, {VariantID: "v2"}}, StockChecks: check}},
		{"empty variant id", bridge.Change{HoldOrderID: "o1", Hold: []bridge.Reservation{good, {Quantity: 1}}, StockChecks: check}},
		{"a variant checked but not held", bridge.Change{HoldOrderID: "o1", Hold: []bridge.Reservation{good},
			StockChecks: []bridge.StockCheck{{VariantID: "v1", OnHand: 9}, {VariantID: "v2", OnHand: 9}}}},
		{"a variant checked twice", bridge.Change{HoldOrderID: "o1", Hold: []bridge.Reservation{good},
			StockChecks: []bridge.StockCheck{{VariantID: "v1", OnHand: 9}, {VariantID: "v1", OnHand: 1}}}},
	} {
		if err := s.Commit(t.Context(), tt.c); err == nil || errors.Is(err, bridge.ErrShortStock) {
			t.Errorf("%s: Commit = %v; want an error saying what is wrong", tt.name, err)
		}
	}
	wantReserved(t, s, "v1", 0)
}

// A short hold fails the whole change it travels in: the session, the
// order, the idempotency claim and the release of the order's old hold
// are not written either; and the order's own old hold, released in the
// same change, does not count against it.
func testStockChecksWithChange(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	line := func(q int64) []bridge.Reservation { return []bridge.Reservation{{VariantID: "v1", Quantity: q}} }
	if err := s.Reserve(ctx, "other", line(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve(ctx, "o1", line(1)); err != nil {
		t.Fatal(err)
	}
	sess := fullSession("s1", "owner")
	order := fullOrder("o1", "s1", "owner")
	short := bridge.Change{Session: &sess, Order: &order, ReleaseOrderID: "o1", HoldOrderID: "o1", Hold: line(3),
		StockChecks: []bridge.StockCheck{{VariantID: "v1", OnHand: 5}}}
	if err := s.Commit(ctx, short); !errors.Is(err, bridge.ErrShortStock) {
		t.Fatalf("3 more over 3 held of 5: %v; want short", err)
	}
	if _, err := s.Session(ctx, "owner", "s1"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("session of the short change: %v; want not found", err)
	}
	if _, err := s.Order(ctx, "o1"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("order of the short change: %v; want not found", err)
	}
	wantReserved(t, s, "v1", 4) // o1's old hold stays
	short.Hold = line(2)
	if err := s.Commit(ctx, short); err != nil {
		t.Fatalf("2 over 3 held of 5, o1's own hold released: %v", err)
	}
	wantReserved(t, s, "v1", 5)
	if _, err := s.Order(ctx, "o1"); err != nil {
		t.Errorf("order of the held change: %v", err)
	}
}

// The last units wanted by many orders at once, 2 of them held already by
// an older order: exactly as many orders as the stock left allows hold
// them, with their untracked lines, and every other order is told which
// variant is short. Order i asks stores[i % len(stores)] (RunShared:
// replicas of one database).
func testConcurrentStockChecks(t *testing.T, stores []bridge.Storage) {
	const orders, free, before = 40, 7, 2
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
			shorts[i], errs[i] = holdChecked(t.Context(), stores[i%len(stores)], fmt.Sprintf("o%d", i),
				map[string]int64{"hot": free + before, "warm": 100}, lines...)
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

// Variants that sell from one figure (variations on their parent's stock)
// count each other's holds: a check of one counts the holds of those it
// shares the figure with, and what the change holds of any of them.
func testSharedStock(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	line := func(v string, q int64) bridge.Reservation { return bridge.Reservation{VariantID: v, Quantity: q} }
	commit := func(order string, lines []bridge.Reservation, checks ...bridge.StockCheck) error {
		return s.Commit(ctx, bridge.Change{HoldOrderID: order, Hold: lines, StockChecks: checks})
	}
	blue := func(onHand int64) bridge.StockCheck {
		return bridge.StockCheck{VariantID: "blue", Shared: []string{"white", "red"}, OnHand: onHand}
	}
	white := func(onHand int64) bridge.StockCheck {
		return bridge.StockCheck{VariantID: "white", Shared: []string{"blue", "red"}, OnHand: onHand}
	}
	if err := commit("o1", []bridge.Reservation{line("blue", 3)}, blue(5)); err != nil {
		t.Fatalf("3 blue of 5: %v", err)
	}
	// 3 white would fit white alone; with blue's 3 it does not.
	if err := commit("o2", []bridge.Reservation{line("white", 3)}, white(5)); !errors.Is(err, bridge.ErrShortStock) {
		t.Fatalf("3 white beside 3 blue of 5 shared: %v; want short", err)
	}
	var se *bridge.ShortStockError
	if err := commit("o2", []bridge.Reservation{line("white", 3)}, white(5)); !errors.As(err, &se) || se.VariantID != "white" {
		t.Errorf("the short variant: %v; want white", err)
	}
	// Two siblings in one order count together: 1 + 1 fit beside 3, 2 + 1 do not.
	if err := commit("o3", []bridge.Reservation{line("white", 2), line("red", 1)}, white(5), bridge.StockCheck{VariantID: "red", Shared: []string{"blue", "white"}, OnHand: 5}); !errors.Is(err, bridge.ErrShortStock) {
		t.Fatalf("2 white + 1 red beside 3 blue of 5: %v; want short", err)
	}
	if err := commit("o3", []bridge.Reservation{line("white", 1), line("red", 1)}, white(5), bridge.StockCheck{VariantID: "red", Shared: []string{"blue", "white"}, OnHand: 5}); err != nil {
		t.Fatalf("1 white + 1 red beside 3 blue of 5: %v", err)
	}
	wantReserved(t, s, "blue", 3)
	wantReserved(t, s, "white", 1)
	wantReserved(t, s, "red", 1)
	// A variant with a figure of its own is not limited by the group.
	if err := commit("o4", []bridge.Reservation{line("green", 4)}, bridge.StockCheck{VariantID: "green", OnHand: 4}); err != nil {
		t.Fatalf("4 green of its own 4: %v", err)
	}
	// Available counts the shared holds the same way.
	level := bridge.StockLevel{Tracked: true, OnHand: 5, Shared: []string{"blue", "red"}}
	if n, err := level.Available(ctx, s, "white"); err != nil || n != 0 {
		t.Errorf("white available: %d, %v; want 0 (5 − 3 blue − 1 white − 1 red)", n, err)
	}
}

// Orders for sibling variants of one shared figure, on every store at
// once: exactly as many units are held as the figure has, in all.
func testConcurrentSharedStock(t *testing.T, stores []bridge.Storage) {
	const orders, onHand = 30, 8
	siblings := []string{"s-blue", "s-white", "s-red"}
	errs := make([]error, orders)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range orders {
		wg.Go(func() {
			<-start
			v := siblings[i%len(siblings)]
			var shared []string
			for _, o := range siblings {
				if o != v {
					shared = append(shared, o)
				}
			}
			errs[i] = stores[i%len(stores)].Commit(t.Context(), bridge.Change{HoldOrderID: fmt.Sprintf("o%d", i),
				Hold: []bridge.Reservation{{VariantID: v, Quantity: 1}}, StockChecks: []bridge.StockCheck{{VariantID: v, Shared: shared, OnHand: onHand}}})
		})
	}
	close(start)
	wg.Wait()
	held := 0
	for i, err := range errs {
		switch {
		case err == nil:
			held++
		case !errors.Is(err, bridge.ErrShortStock):
			t.Errorf("order %d: %v", i, err)
		}
	}
	if held != onHand {
		t.Errorf("%d orders held a unit of the shared %d", held, onHand)
	}
	var total int64
	for _, v := range siblings {
		n, err := stores[0].Reserved(t.Context(), v, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != onHand {
		t.Errorf("%d held across the siblings, want %d", total, onHand)
	}
}
