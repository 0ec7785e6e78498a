//go:build unix

package csv

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

// TestOrderUpdatesWaitsForTheShopsLock: a shop that locks the file while it
// rewrites it is never read half-way.
func TestOrderUpdatesWaitsForTheShopsLock(t *testing.T) {
	env := newStatusEnv(t, Options{})
	env.write(t, "order_id,status\nord_1,shipped\n", t0)
	shop, err := os.OpenFile(env.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	unlock, err := lockFile(context.Background(), shop, true)
	if err != nil {
		t.Fatal(err)
	}
	// While the lock is held, a poll waits, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := env.a.OrderUpdates(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	done := make(chan []bridge.OrderUpdate, 1)
	go func() {
		ups, err := env.a.OrderUpdates(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- ups
	}()
	time.Sleep(30 * time.Millisecond) // the poll is now waiting for the lock
	must(t, shop.Truncate(0))
	_, err = shop.WriteAt([]byte("order_id,status\nord_1,shipped\nord_2,delivered\n"), 0)
	must(t, err)
	must(t, os.Chtimes(env.path, t0.Add(time.Second), t0.Add(time.Second)))
	unlock()
	ups := <-done
	if len(ups) != 2 || ups[0].OrderID != "ord_1" || ups[1].OrderID != "ord_2" {
		t.Fatalf("updates after the rewrite: %s", dump(ups))
	}
}
