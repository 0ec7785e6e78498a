package csv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

// queued counts the WriteOrder calls waiting to be taken into a batch.
func (l *orderLog) queued() int {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return len(l.queue)
}

// idle tells whether no batch is being written or waiting to be.
func (l *orderLog) idle() bool {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return !l.committing
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// idCounts counts the lines of the orders file by order id.
func idCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, l := range fileLines(t, path) {
		n[l["id"].(string)]++
	}
	return n
}

// writeAll calls WriteOrder for every id at once and returns each call's
// error. With gate, every call is queued before any batch may start (the
// test holds the orders mutex until then), so the batches are exactly the
// queue cut into pieces of maxOrderBatch. acked, when set, is told of every
// success as the caller hears it.
func writeAll(t *testing.T, env *orderEnv, ids []string, gate bool, acked func(id string)) []error {
	t.Helper()
	l := &env.a.orders
	if gate {
		l.mu.Lock()
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			_, errs[i] = env.a.WriteOrder(context.Background(), testOrder(id))
			if errs[i] == nil && acked != nil {
				acked(id)
			}
		})
	}
	if gate {
		waitFor(t, "every call to queue", func() bool { return l.queued() == len(ids) })
		l.mu.Unlock()
	}
	wg.Wait()
	return errs
}

func orderIDs(n int, id func(i int) string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = id(i)
	}
	return ids
}

func TestWriteOrderGroupCommit(t *testing.T) {
	seq := func(i int) string { return fmt.Sprintf("ord_%d", i) }
	tests := []struct {
		name   string
		ids    []string // one concurrent WriteOrder each
		before []string // written one by one first
		gate   bool     // queue every call before the first batch starts
		// slowSync delays each fsync, as a real disk does, so that calls
		// queue behind it by themselves.
		slowSync    time.Duration
		failSync    bool             // the first fsync of the batch fails
		failReserve map[string]error // Reserve fails for these orders
		wantErrs    int              // calls answered with an error
		wantSyncs   int              // file fsyncs in all (0: at most len(ids)/4)
	}{
		{name: "200 writers queued at once: two batches",
			ids: orderIDs(200, seq), gate: true, wantSyncs: 2}, // 128 + 72
		{name: "200 writers running free",
			ids: orderIDs(200, seq), slowSync: time.Millisecond},
		{name: "duplicates in one batch make one line each",
			ids: orderIDs(200, func(i int) string { return seq(i % 20) }), gate: true, wantSyncs: 1},
		{name: "orders already in the file are not written again",
			ids: orderIDs(50, seq), before: orderIDs(10, seq), gate: true, wantSyncs: 1},
		{name: "a failed fsync fails the whole batch",
			ids: orderIDs(100, seq), before: []string{"ord_old"}, gate: true, failSync: true,
			wantErrs: 100, wantSyncs: 2}, // the failed one and undoAppend's
		{name: "a failed reservation fails only its order",
			ids: orderIDs(50, seq), gate: true, failReserve: map[string]error{"ord_7": errors.New("database is locked")},
			wantErrs: 1, wantSyncs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newOrderEnv(t, "")
			ctx := context.Background()
			var (
				mu     sync.Mutex
				synced string // the file as of the last successful fsync
				syncs  atomic.Int64
				fail   atomic.Bool
			)
			env.a.syncFile = func(f *os.File) error {
				syncs.Add(1)
				time.Sleep(tc.slowSync)
				if fail.CompareAndSwap(true, false) {
					return errors.New("input/output error")
				}
				if err := f.Sync(); err != nil {
					return err
				}
				data, err := os.ReadFile(f.Name())
				mu.Lock()
				defer mu.Unlock()
				synced = string(data)
				return err
			}
			// Nobody hears success before the fsync that made its line
			// durable.
			acked := func(id string) {
				mu.Lock()
				defer mu.Unlock()
				if !strings.Contains(synced, `"id":"`+id+`"`) {
					t.Errorf("order %s acknowledged before an fsync covered its line", id)
				}
			}
			for _, id := range tc.before {
				if _, err := env.a.WriteOrder(ctx, testOrder(id)); err != nil {
					t.Fatal(err)
				}
			}
			syncs.Store(0)
			fail.Store(tc.failSync)
			env.res.mu.Lock()
			env.res.failIDs = tc.failReserve
			env.res.mu.Unlock()

			errs := writeAll(t, env, tc.ids, tc.gate, acked)
			var failed []string
			for i, err := range errs {
				if err != nil {
					failed = append(failed, tc.ids[i])
					if tc.failSync && !strings.Contains(err.Error(), "sync orders file: input/output error") {
						t.Errorf("err = %v", err)
					}
				}
			}
			if len(failed) != tc.wantErrs {
				t.Fatalf("%d calls failed, want %d: %v", len(failed), tc.wantErrs, errs)
			}
			n := syncs.Load()
			if tc.wantSyncs > 0 && n != int64(tc.wantSyncs) || tc.wantSyncs == 0 && n > int64(len(tc.ids)/4) {
				t.Errorf("%d fsyncs for %d writers, want %d (0: at most a quarter)", n, len(tc.ids), tc.wantSyncs)
			}
			// A failed order leaves no line, and only its own.
			counts := idCounts(t, env.path)
			for _, id := range failed {
				if counts[id] != 0 {
					t.Errorf("failed order %s has %d lines", id, counts[id])
				}
				if _, err := env.a.FindOrder(ctx, id); !errors.Is(err, bridge.ErrNotFound) {
					t.Errorf("FindOrder(%s) after its failed write: %v", id, err)
				}
			}
			if len(failed) > 0 && len(counts) != len(uniq(tc.before, tc.ids))-len(uniq(failed)) {
				t.Errorf("%d orders in the file after the failed batch, want %d",
					len(counts), len(uniq(tc.before, tc.ids))-len(uniq(failed)))
			}

			// The retries, a batch of their own, succeed; then every order
			// is in the file exactly once and reserved exactly once.
			env.res.mu.Lock()
			env.res.failIDs = nil
			env.res.mu.Unlock()
			syncs.Store(0)
			for i, err := range writeAll(t, env, failed, true, acked) {
				if err != nil {
					t.Errorf("retry of %s: %v", failed[i], err)
				}
			}
			if len(failed) > 0 && syncs.Load() != 1 {
				t.Errorf("retries took %d fsyncs, want 1", syncs.Load())
			}
			counts = idCounts(t, env.path)
			want := uniq(tc.before, tc.ids)
			for _, id := range want {
				if counts[id] != 1 {
					t.Errorf("order %s has %d lines, want 1", id, counts[id])
				}
			}
			if len(counts) != len(want) {
				t.Errorf("%d orders in the file, want %d", len(counts), len(want))
			}
			env.res.mu.Lock()
			defer env.res.mu.Unlock()
			if env.res.calls != len(want) {
				t.Errorf("%d reservations for %d orders", env.res.calls, len(want))
			}
		})
	}
}

// uniq returns the distinct strings of lists, in order.
func uniq(lists ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lists {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// TestWriteOrderCanceledWhileWaiting: a caller whose ctx ends while its
// order waits hears ctx's error at once. Its order is then either not
// written at all or written whole with its batch; either way the retry
// returns success with one line and one reservation.
func TestWriteOrderCanceledWhileWaiting(t *testing.T) {
	tests := []struct {
		name string
		// hold stops the batch of the canceled call at one point: ready
		// returns once the call is held there, release lets it go on.
		hold func(t *testing.T, env *orderEnv) (ready, release func())
		// other, when set, is a second caller (with a live ctx) of the
		// same batch, writing that order.
		other   string
		written bool // the canceled call's order is in the file afterwards
		// gaveUp: the batch stops waiting (for the file lock) once its
		// only caller has left, before release.
		gaveUp bool
	}{
		{name: "waiting for the file lock, alone: the batch gives up, nothing is written",
			hold: holdFileLock, gaveUp: true},
		{name: "queued, with another order: nothing of it is written",
			hold: holdMutex(2), other: "ord_B"},
		{name: "queued, the same order asked by a caller that stays: written",
			hold: holdMutex(2), other: "ord_A", written: true},
		{name: "while its line is synced: written",
			hold: holdSync, written: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newOrderEnv(t, "")
			bg := context.Background()
			if _, err := env.a.WriteOrder(bg, testOrder("ord_0")); err != nil {
				t.Fatal(err)
			}
			ready, release := tc.hold(t, env)
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			canceled := make(chan error, 1)
			go func() {
				_, err := env.a.WriteOrder(ctx, testOrder("ord_A"))
				canceled <- err
			}()
			other := make(chan error, 1)
			if tc.other != "" {
				waitFor(t, "the first call to queue", func() bool { return env.a.orders.queued() == 1 })
				go func() {
					_, err := env.a.WriteOrder(bg, testOrder(tc.other))
					other <- err
				}()
			}
			ready()
			cancel()
			select {
			case err := <-canceled:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("canceled call: err = %v, want context.Canceled", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the canceled call is still waiting")
			}
			if tc.gaveUp {
				waitFor(t, "the batch to give up", env.a.orders.idle)
			}
			release()
			if tc.other != "" {
				if err := <-other; err != nil {
					t.Errorf("the other caller: %v", err)
				}
			}
			waitFor(t, "the batch to end", env.a.orders.idle)
			counts := idCounts(t, env.path)
			if got := counts["ord_A"]; got != map[bool]int{false: 0, true: 1}[tc.written] {
				t.Errorf("canceled order has %d lines before its retry; written = %v", got, tc.written)
			}
			if tc.other != "" && counts[tc.other] != 1 {
				t.Errorf("the other order has %d lines", counts[tc.other])
			}

			// The retry: success, one line, one reservation.
			if _, err := env.a.WriteOrder(bg, testOrder("ord_A")); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if _, err := env.a.FindOrder(bg, "ord_A"); err != nil {
				t.Errorf("FindOrder after the retry: %v", err)
			}
			if got := idCounts(t, env.path)["ord_A"]; got != 1 {
				t.Errorf("%d lines of the order after its retry, want 1", got)
			}
			env.res.mu.Lock()
			defer env.res.mu.Unlock()
			reserved := 0
			for _, id := range env.res.reserved {
				if id == "ord_A" {
					reserved++
				}
			}
			if reserved != 1 {
				t.Errorf("order reserved %d times, want 1", reserved)
			}
		})
	}
}

// holdFileLock holds the orders file's lock as a script would.
func holdFileLock(t *testing.T, env *orderEnv) (ready, release func()) {
	script, err := os.OpenFile(env.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), script, true)
	if err != nil {
		t.Fatal(err)
	}
	ready = func() {
		waitFor(t, "the call to be taken", func() bool { return env.a.orders.queued() == 0 })
		time.Sleep(20 * time.Millisecond) // the batch now polls for the lock
	}
	return ready, func() { unlock(); script.Close() }
}

// holdMutex keeps the committer from taking the queue until calls calls
// wait in it.
func holdMutex(calls int) func(t *testing.T, env *orderEnv) (ready, release func()) {
	return func(t *testing.T, env *orderEnv) (ready, release func()) {
		l := &env.a.orders
		l.mu.Lock()
		ready = func() { waitFor(t, "the calls to queue", func() bool { return l.queued() == calls }) }
		return ready, l.mu.Unlock
	}
}

// holdSync stops the batch in its fsync, after its line was written.
func holdSync(t *testing.T, env *orderEnv) (ready, release func()) {
	started, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	env.a.syncFile = func(f *os.File) error {
		once.Do(func() {
			close(started)
			<-proceed
		})
		return f.Sync()
	}
	return func() { <-started }, func() { close(proceed) }
}
