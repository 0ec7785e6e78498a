package csv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fsx"
)

type orderEnv struct {
	a    *Adapter
	path string
	res  *fakeReservations
	log  *syncbuf.Buffer
}

func newOrderEnv(t *testing.T, path string) *orderEnv {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "orders.jsonl")
	}
	env := &orderEnv{path: path, res: newFakeReservations(), log: &syncbuf.Buffer{}}
	a, err := New(Options{
		Path:       "testdata/grouping.csv",
		OrdersPath: path,
		Logger:     slog.New(slog.NewTextHandler(env.log, nil)),
	}, &fakeCatalog{}, env.res)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.FixedZone("CET", 3600)) }
	env.a = a
	return env
}

func testOrder(id string, lines ...bridge.OrderLine) bridge.Order {
	if len(lines) == 0 {
		lines = []bridge.OrderLine{{VariantID: "tee-s", ProductID: "tee", Title: "T-Shirt", Quantity: 2,
			UnitPrice: bridge.Money{Amount: 1999, Currency: "USD"}, Total: bridge.Money{Amount: 3998, Currency: "USD"}}}
	}
	return bridge.Order{
		ID:        id,
		CreatedAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
		Currency:  "USD",
		Lines:     lines,
		Total:     bridge.Money{Amount: 3998, Currency: "USD"},
		Buyer:     bridge.Buyer{Name: "Ada Buyer", Email: "ada@example.com"},
	}
}

// fileLines returns the lines of the orders file, checking each is a
// complete JSON object.
func fileLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("orders file does not end with a newline: %q", data[max(0, len(data)-40):])
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v: %q", n, err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestWriteOrder(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	so, err := env.a.WriteOrder(ctx, testOrder("ord_1"))
	if err != nil {
		t.Fatal(err)
	}
	if so != (bridge.StoreOrder{StoreID: "ord_1"}) {
		t.Errorf("StoreOrder = %+v", so)
	}
	lines := fileLines(t, env.path)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	got := lines[0]
	if got["id"] != "ord_1" || got["written_at"] != "2026-11-27T09:00:00Z" || got["currency"] != "USD" {
		t.Errorf("line = %v", got)
	}
	// The line decodes back into the order it was made from.
	var back orderRecord
	data, _ := os.ReadFile(env.path)
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	want := testOrder("ord_1")
	gotJSON, _ := json.Marshal(back.Order)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("order round trip:\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(env.path)
		if st.Mode().Perm() != 0o600 {
			t.Errorf("orders file mode %v, want 0600: it holds buyers' addresses", st.Mode().Perm())
		}
	}
	if res := env.res.byOrder["ord_1"]; len(res) != 1 || res[0] != (bridge.Reservation{VariantID: "tee-s", Quantity: 2}) {
		t.Errorf("reservations = %v", env.res.byOrder)
	}
	if so, err := env.a.FindOrder(ctx, "ord_1"); err != nil || so.StoreID != "ord_1" {
		t.Errorf("FindOrder = %+v, %v", so, err)
	}
	if _, err := env.a.FindOrder(ctx, "ord_2"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("FindOrder(unknown) err = %v, want ErrNotFound", err)
	}
}

func TestWriteOrderIdempotent(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	for range 3 {
		so, err := env.a.WriteOrder(ctx, testOrder("ord_1"))
		if err != nil || so.StoreID != "ord_1" {
			t.Fatalf("WriteOrder = %+v, %v", so, err)
		}
	}
	if n := len(fileLines(t, env.path)); n != 1 {
		t.Errorf("%d lines after rewriting one order, want 1", n)
	}
	if env.res.calls != 1 {
		t.Errorf("Reserve added %d times", env.res.calls)
	}
	// After a release (order canceled) a retried write must not hold stock
	// again.
	_ = env.res.Release(ctx, "ord_1")
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	if len(env.res.byOrder) != 0 {
		t.Errorf("rewrite re-reserved: %v", env.res.byOrder)
	}

	// A restarted process learns the ids from the file.
	env2 := newOrderEnv(t, env.path)
	if _, err := env2.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	if _, err := env2.a.FindOrder(ctx, "ord_1"); err != nil {
		t.Errorf("FindOrder after restart: %v", err)
	}
	if n := len(fileLines(t, env.path)); n != 1 {
		t.Errorf("%d lines after a restarted rewrite, want 1", n)
	}
	if env2.res.calls != 0 {
		t.Errorf("restarted rewrite reserved again")
	}
}

func TestWriteOrderRepairsPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.jsonl")
	good, _ := json.Marshal(orderRecord{Order: testOrder("ord_1")})
	partial := `{"id":"ord_2","buyer":{"name":"Secret Person","email":"sec`
	if err := os.WriteFile(path, append(append(good, '\n'), partial...), 0o600); err != nil {
		t.Fatal(err)
	}
	env := newOrderEnv(t, path)
	ctx := context.Background()
	// Reading leaves the partial line alone: it may be a write in progress.
	if _, err := env.a.FindOrder(ctx, "ord_2"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("FindOrder(partial) err = %v, want ErrNotFound", err)
	}
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_3")); err != nil {
		t.Fatal(err)
	}
	lines := fileLines(t, path)
	if len(lines) != 2 || lines[0]["id"] != "ord_1" || lines[1]["id"] != "ord_3" {
		t.Fatalf("lines = %v", lines)
	}
	logs := env.log.String()
	if !strings.Contains(logs, "incomplete line") || !strings.Contains(logs, "line=2") {
		t.Errorf("repair not logged with its line: %s", logs)
	}
	if strings.Contains(logs, "Secret") {
		t.Errorf("log shows order content: %s", logs)
	}
	// The order whose write was cut off was never acknowledged; its retry
	// writes it whole.
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_2")); err != nil {
		t.Fatal(err)
	}
	if lines := fileLines(t, path); len(lines) != 3 || lines[2]["id"] != "ord_2" {
		t.Fatalf("lines = %v", lines)
	}
}

func TestOrdersFileCorruptLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.jsonl")
	good, _ := json.Marshal(orderRecord{Order: testOrder("ord_1")})
	content := "garbage from an editor\n" + string(good) + "\n\n{\"no_id\":1}\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := newOrderEnv(t, path)
	ctx := context.Background()
	if _, err := env.a.FindOrder(ctx, "ord_1"); err != nil {
		t.Fatalf("FindOrder past a corrupt line: %v", err)
	}
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_2")); err != nil {
		t.Fatal(err)
	}
	logs := env.log.String()
	for _, w := range []string{"line=1 reason=\"not a JSON object\"", "line=4 reason=\"no order id\""} {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, "garbage") {
		t.Errorf("log shows line content: %s", logs)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), content) {
		t.Error("existing lines were changed")
	}
}

func TestWriteOrderValidation(t *testing.T) {
	env := newOrderEnv(t, "")
	line := func(v string, q int64) bridge.OrderLine { return bridge.OrderLine{VariantID: v, Quantity: q} }
	tests := []struct {
		name string
		o    bridge.Order
		want string
	}{
		{"no id", testOrder(""), "order has no id"},
		{"blank id", testOrder("  "), "order has no id"},
		{"no lines", bridge.Order{ID: "o"}, `order "o" has no lines`},
		{"zero quantity", testOrder("o", line("a", 1), line("b", 0)), `order "o" line 2 (variant "b"): quantity is 0, want 1 or more`},
		{"negative quantity", testOrder("o", line("a", -1)), "quantity is -1"},
		{"no variant", testOrder("o", line("", 1)), `order "o" line 1 has no variant id`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.a.WriteOrder(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(env.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("invalid orders touched the file: %v", err)
	}
	if env.res.calls != 0 {
		t.Error("invalid orders reserved stock")
	}
}

func TestWriteOrderFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("reservation fails", func(t *testing.T) {
		env := newOrderEnv(t, "")
		env.res.err = errors.New("database is locked")
		_, err := env.a.WriteOrder(ctx, testOrder("ord_1"))
		if err == nil || !strings.Contains(err.Error(), "reserve stock: database is locked") {
			t.Fatalf("err = %v", err)
		}
		if lines := fileLines(t, env.path); len(lines) != 0 {
			t.Errorf("order appended without its reservation: %v", lines)
		}
		env.res.err = nil
		if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
			t.Fatal(err)
		}
		if lines := fileLines(t, env.path); len(lines) != 1 {
			t.Errorf("%d lines after retry", len(lines))
		}
	})
	t.Run("canceled", func(t *testing.T) {
		env := newOrderEnv(t, "")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := env.a.WriteOrder(cctx, testOrder("ord_1")); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if env.res.calls != 0 {
			t.Error("canceled write reserved stock")
		}
	})
	t.Run("no orders path", func(t *testing.T) {
		a, err := New(Options{Path: "c.csv"}, &fakeCatalog{}, newFakeReservations())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.WriteOrder(ctx, testOrder("ord_1")); err == nil || !strings.Contains(err.Error(), "no orders file") {
			t.Errorf("WriteOrder err = %v", err)
		}
		if _, err := a.FindOrder(ctx, "ord_1"); err == nil || !strings.Contains(err.Error(), "no orders file") {
			t.Errorf("FindOrder err = %v", err)
		}
	})
	t.Run("directory missing", func(t *testing.T) {
		env := newOrderEnv(t, filepath.Join(t.TempDir(), "missing", "orders.jsonl"))
		if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err == nil || !strings.Contains(err.Error(), "open orders file") {
			t.Fatalf("err = %v", err)
		}
		if _, err := env.a.FindOrder(ctx, "ord_1"); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("FindOrder err = %v, want ErrNotFound", err)
		}
	})
}

func TestWriteOrderSyncs(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	var mu sync.Mutex
	var fileSyncs, dirSyncs []string
	failFile := false
	env.a.syncFile = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if failFile {
			return errors.New("input/output error")
		}
		// What is synced must already hold the line.
		data, _ := os.ReadFile(f.Name())
		fileSyncs = append(fileSyncs, string(data))
		return f.Sync()
	}
	env.a.syncDir = func(dir string) error {
		mu.Lock()
		defer mu.Unlock()
		dirSyncs = append(dirSyncs, dir)
		return fsx.SyncDir(dir)
	}
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	if len(dirSyncs) != 1 || dirSyncs[0] != filepath.Dir(env.path) {
		t.Errorf("dir syncs = %v, want the parent once on create", dirSyncs)
	}
	if len(fileSyncs) != 1 || !strings.Contains(fileSyncs[0], `"id":"ord_1"`) {
		t.Errorf("file syncs = %q", fileSyncs)
	}
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_2")); err != nil {
		t.Fatal(err)
	}
	if len(dirSyncs) != 1 || len(fileSyncs) != 2 {
		t.Errorf("after a second order: %d dir syncs, %d file syncs; want 1, 2", len(dirSyncs), len(fileSyncs))
	}

	// A failed fsync is a failed write: the line comes out again, and the
	// retry writes it once.
	failFile = true
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_3")); err == nil || !strings.Contains(err.Error(), "sync orders file") {
		t.Fatalf("err = %v", err)
	}
	if lines := fileLines(t, env.path); len(lines) != 2 {
		t.Errorf("%d lines after a failed sync, want 2", len(lines))
	}
	if _, err := env.a.FindOrder(ctx, "ord_3"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("FindOrder after failed sync: %v", err)
	}
	failFile = false
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_3")); err != nil {
		t.Fatal(err)
	}
	if lines := fileLines(t, env.path); len(lines) != 3 || lines[2]["id"] != "ord_3" {
		t.Errorf("lines = %v", lines)
	}

	// A failed directory sync keeps the order unacknowledged too.
	env2 := newOrderEnv(t, "")
	env2.a.syncDir = func(string) error { return errors.New("no space left on device") }
	if _, err := env2.a.WriteOrder(ctx, testOrder("ord_1")); err == nil || !strings.Contains(err.Error(), "sync orders directory") {
		t.Fatalf("err = %v", err)
	}
	if env2.res.calls != 0 {
		t.Error("reserved before the file was durable")
	}
}

func TestWriteOrderConcurrent(t *testing.T) {
	env := newOrderEnv(t, "")
	// A second adapter on the same file stands in for a second process: it
	// has its own mutex and cache, so only the file lock keeps them apart.
	other := newOrderEnv(t, env.path)
	ctx := context.Background()
	const workers, orders = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*orders)
	for w := range workers {
		a := env.a
		if w%2 == 1 {
			a = other.a
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range orders {
				// Every order is written by two workers, one per adapter.
				id := fmt.Sprintf("ord_%d_%d", w/2, i)
				if _, err := a.WriteOrder(ctx, testOrder(id)); err != nil {
					errs <- err
				}
				if _, err := a.FindOrder(ctx, id); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	lines := fileLines(t, env.path)
	seen := map[string]bool{}
	for _, l := range lines {
		id := l["id"].(string)
		if seen[id] {
			t.Errorf("order %s written twice", id)
		}
		seen[id] = true
	}
	if len(seen) != workers/2*orders {
		t.Errorf("%d orders in the file, want %d", len(seen), workers/2*orders)
	}
}

// TestWriteOrderProcesses runs real processes against one file: the lines must
// never interleave and no order may appear twice.
func TestWriteOrderProcesses(t *testing.T) {
	if runtime.GOOS == "windows" || testing.Short() {
		t.Skip("needs flock and subprocesses")
	}
	path := filepath.Join(t.TempDir(), "orders.jsonl")
	const procs, orders = 3, 40
	var cmds []*exec.Cmd
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriteOrders$")
		cmd.Env = append(os.Environ(), "CSV_HELPER_ORDERS="+path, "CSV_HELPER_N="+strconv.Itoa(orders))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("helper output:\n%s", out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	lines := fileLines(t, path)
	if len(lines) != orders {
		t.Errorf("%d lines, want %d (each order once)", len(lines), orders)
	}
}

// TestHelperWriteOrders is the body of TestWriteOrderProcesses' children.
func TestHelperWriteOrders(t *testing.T) {
	path := os.Getenv("CSV_HELPER_ORDERS")
	if path == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("CSV_HELPER_N"))
	a, err := New(Options{Path: "c.csv", OrdersPath: path}, &fakeCatalog{}, newFakeReservations())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := a.WriteOrder(context.Background(), testOrder(fmt.Sprintf("ord_%d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOrdersFileRotated(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	// A script takes the file away for processing.
	if err := os.Rename(env.path, env.path+".taken"); err != nil {
		t.Fatal(err)
	}
	// A retry of an order already handed over is not written again …
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(env.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("retry of a taken order created a new file: %v", err)
	}
	// … and new orders start a new file.
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_2")); err != nil {
		t.Fatal(err)
	}
	if lines := fileLines(t, env.path); len(lines) != 1 || lines[0]["id"] != "ord_2" {
		t.Errorf("new file lines = %v", lines)
	}
	// Replaced by a different file of the same size or larger: re-read.
	good, _ := json.Marshal(orderRecord{Order: testOrder("ord_9")})
	repl := env.path + ".new"
	if err := os.WriteFile(repl, append(append(good, '\n'), append(good, '\n')...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repl, env.path); err != nil {
		t.Fatal(err)
	}
	if _, err := env.a.FindOrder(ctx, "ord_9"); err != nil {
		t.Errorf("FindOrder in the replaced file: %v", err)
	}
}

func TestOrdersFileLongLine(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	// Longer than the scan buffer: an order with a very long title.
	long := testOrder("ord_long")
	long.Lines[0].Title = strings.Repeat("é", 100_000)
	for _, o := range []bridge.Order{testOrder("ord_1"), long, testOrder("ord_2")} {
		if _, err := env.a.WriteOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	restarted := newOrderEnv(t, env.path)
	for _, id := range []string{"ord_1", "ord_long", "ord_2"} {
		if _, err := restarted.a.FindOrder(ctx, id); err != nil {
			t.Errorf("FindOrder(%s) after restart: %v", id, err)
		}
	}
	if logs := restarted.log.String(); logs != "" {
		t.Errorf("unexpected warnings: %s", logs)
	}
}

// TestWriteOrderFollowsARenamedFile: a script takes the orders file away the
// documented way (lock, rename, unlock) while WriteOrder waits for the lock.
// The order must land in a new file at the path, not in the taken one.
func TestWriteOrderFollowsARenamedFile(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	script, err := os.OpenFile(env.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer script.Close()
	unlock, err := lockFile(ctx, script, true)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := env.a.WriteOrder(ctx, testOrder("ord_2"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // WriteOrder is now waiting for the lock
	taken := env.path + ".processing"
	if err := os.Rename(env.path, taken); err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	takenData, _ := os.ReadFile(taken)
	newData, err := os.ReadFile(env.path)
	if err != nil {
		t.Fatalf("no new orders file: %v", err)
	}
	if strings.Contains(string(takenData), "ord_2") || !strings.Contains(string(newData), `"id":"ord_2"`) {
		t.Fatalf("ord_2 went to the taken file:\ntaken: %s\nnew: %s", takenData, newData)
	}
}

// TestWriteOrderSyncsLinesItDidNotWrite: a complete line an earlier attempt
// wrote but never fsynced (killed in between) is synced before the order
// counts as written.
func TestWriteOrderSyncsLinesItDidNotWrite(t *testing.T) {
	env := newOrderEnv(t, "")
	ctx := context.Background()
	line, err := json.Marshal(orderRecord{Order: testOrder("ord_1"), WrittenAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.path, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	syncs := 0
	env.a.syncFile = func(f *os.File) error { syncs++; return f.Sync() }
	// FindOrder reads the line first; WriteOrder must still sync it.
	if _, err := env.a.FindOrder(ctx, "ord_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.a.WriteOrder(ctx, testOrder("ord_1")); err != nil {
		t.Fatal(err)
	}
	if syncs == 0 {
		t.Error("the order's line was trusted without an fsync")
	}
	data, _ := os.ReadFile(env.path)
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("%d lines, want the one already there", n)
	}
}

// A line this process did not fsync (a writer killed between write and
// fsync left it in the page cache) is made durable before FindOrder calls
// the order written: the orders service captures money on that answer.
func TestFindOrderSyncsLinesItDidNotWrite(t *testing.T) {
	env := newOrderEnv(t, "")
	line, err := json.Marshal(orderRecord{Order: testOrder("ord_other")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.path, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var syncs atomic.Int32
	env.a.syncFile = func(f *os.File) error { syncs.Add(1); return f.Sync() }
	if _, err := env.a.FindOrder(t.Context(), "ord_other"); err != nil {
		t.Fatal(err)
	}
	if syncs.Load() != 1 {
		t.Fatalf("%d fsyncs before answering found, want 1", syncs.Load())
	}
	if _, err := env.a.FindOrder(t.Context(), "ord_other"); err != nil || syncs.Load() != 1 {
		t.Fatalf("second lookup: %v, %d fsyncs; want found without another fsync", err, syncs.Load())
	}
	env.a.syncFile = func(*os.File) error { return errors.New("input/output error") }
	other := newOrderEnv(t, env.path)
	other.a.syncFile = env.a.syncFile
	if _, err := other.a.FindOrder(t.Context(), "ord_other"); err == nil || errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("lookup when the fsync fails: %v, want an error that is not not-found", err)
	}
}
