package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/payments/stripe/stripefake"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// The crash test: the bridge is killed (SIGKILL) at random points
// while 200 checkouts complete; after restart every paid order reaches the
// store once, nothing is charged twice, and every agent webhook is
// delivered.
//
// Eight agents run the checkouts (create → address → complete), each
// retrying a request with the same Idempotency-Key until it gets a final
// answer, across restarts; a killer SIGKILLs the bridge 3–5 times, 200–1500
// ms apart, and restarts it on the same config, database and port. Stripe
// answers through a proxy that delays every answer by 0–40 ms after the
// fake has acted, which widens the window in which money has moved but the
// bridge has not recorded it.
//
// BRIDGE_CRASH_SEED=N replays a run's random choices (kill times, carts,
// latencies); the seed is logged. Process scheduling still varies, so a
// seed reproduces the plan, not every interleaving.
func TestCrashChaos200Checkouts(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (about 10 s, more on a loaded machine): 200 checkouts while the bridge is SIGKILLed and restarted; run without -short")
	}
	const (
		sessions = 200
		agents   = 8
	)
	seed := chaosSeed(t)
	began := time.Now()

	fake, agent, stripeAndAgent := chaosWorld(t, seed, sessions)
	cfg := writeConfig(t, stripeAndAgent)
	dir := filepath.Dir(cfg)
	// Two tracked variants with plenty of stock (the stock check and holds
	// run on every complete), and untracked ones.
	setStock(t, filepath.Join(dir, "examples", "catalog.csv"), map[string]string{"SOCK-M": "100000", "SOCK-L": "100000"})
	items := []string{"SOCK-M", "SOCK-L", "TOTE-NAT", "NB-A5-BLK", "NB-A5-TERRA"}

	b := &bridgeProc{cfg: cfg, addr: freePort(t)}
	t.Cleanup(b.cleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := b.start(ctx); err != nil {
		t.Fatalf("first start: %v\n%s", err, b.logs())
	}
	base := "http://" + b.addr

	// The agents.
	var (
		next      atomic.Int64
		completed atomic.Int64
		mu        sync.Mutex
		orderOf   = make([]string, sessions) // by session number
		problems  []string
		stats     chaosStats
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	checkoutsDone := make(chan struct{})
	var wg sync.WaitGroup
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i+1)))
			c := &chaosClient{bases: []string{base}, http: &http.Client{Timeout: 15 * time.Second}, stats: &stats, rng: rng}
			for {
				n := int(next.Add(1) - 1)
				if n >= sessions || ctx.Err() != nil {
					return
				}
				id, err := c.checkout(ctx, n, items[rng.IntN(len(items))], 1+rng.IntN(2))
				if err != nil {
					fail("checkout %d: %v", n, err)
					continue
				}
				mu.Lock()
				orderOf[n] = id
				mu.Unlock()
				completed.Add(1)
			}
		}()
	}
	go func() { wg.Wait(); close(checkoutsDone) }()

	// The killer: every kill lands 200–1500 ms after the bridge became
	// ready; it restarts the bridge on the same port at once. Kills after
	// the last checkout hit the outbox (store writes, webhooks) instead.
	krng := rand.New(rand.NewPCG(seed, 0))
	kills := 3 + krng.IntN(3)
	var killLog []string
	killerErr := make(chan error, 1)
	go func() {
		defer close(killerErr)
		for k := range kills {
			wait := time.Duration(200+krng.IntN(1301)) * time.Millisecond
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			state := fmt.Sprintf("kill %d/%d after %v: %d/%d checkouts completed", k+1, kills, wait, completed.Load(), sessions)
			if err := b.kill(); err != nil {
				killerErr <- fmt.Errorf("%s: %w", state, err)
				cancel()
				return
			}
			start := time.Now()
			if err := b.start(ctx); err != nil {
				killerErr <- fmt.Errorf("%s: restart: %w", state, err)
				cancel()
				return
			}
			killLog = append(killLog, fmt.Sprintf("%s; ready again after %v", state, time.Since(start).Round(time.Millisecond)))
		}
	}()

	select {
	case <-checkoutsDone:
	case <-ctx.Done():
	}
	checkoutTime := time.Since(began)
	if err := <-killerErr; err != nil {
		t.Fatalf("killer: %v\nlogs:\n%s", err, b.logs())
	}
	<-checkoutsDone
	for _, l := range killLog {
		t.Log(l)
	}
	t.Logf("%d checkouts completed in %v; %s", completed.Load(), checkoutTime.Round(time.Millisecond), stats.String())
	t.Logf("restarts released %d claims of killed processes (requests and outbox jobs cut short)", b.releasedClaims())
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("%d checkouts failed (seed %d):\n%s\nlogs:\n%s", len(problems), seed, strings.Join(problems, "\n"), b.logs())
	}
	if ctx.Err() != nil {
		t.Fatalf("checkouts did not finish in time (seed %d)\nlogs:\n%s", seed, b.logs())
	}
	want := map[string]int{} // order id → session number
	for n, id := range orderOf {
		if prev, dup := want[id]; dup {
			t.Fatalf("sessions %d and %d got the same order %s", prev, n, id)
		}
		want[id] = n
	}

	// The last bridge runs until the outbox has drained: every order in the
	// store and both of its events at the agent.
	ordersPath := filepath.Join(dir, "data", "orders.jsonl")
	drainStart := time.Now()
	const drainBudget = 30 * time.Second
	var lines []string
	var byOrder map[string][]fakeagent.Event
	for {
		lines = readLines(t, ordersPath)
		byOrder = eventsByOrder(agent.Events())
		if len(lines) >= sessions && delivered(want, byOrder) {
			break
		}
		if time.Since(drainStart) > drainBudget {
			t.Fatalf("outbox not drained after %v (seed %d): %d lines in orders.jsonl, %d of %d orders fully notified\n%s\nlogs:\n%s",
				time.Since(drainStart).Round(time.Millisecond), seed, len(lines), countDelivered(want, byOrder), sessions,
				stuckOrders(t, cfg, want, lines, byOrder), b.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("outbox drained %v after the last checkout", time.Since(drainStart).Round(time.Millisecond))

	// The store has every order once.
	if len(lines) != sessions {
		t.Errorf("orders.jsonl has %d lines, want %d", len(lines), sessions)
	}
	checkOnce(t, want, lines, fake, agent, byOrder)
	replayed := 0
	for _, c := range fake.CallsTo(http.MethodPost, "/v1/payment_intents") {
		if c.Replayed {
			replayed++
		}
	}
	t.Logf("stripe: %d PaymentIntents, %d creates answered from Stripe's idempotency store (retries of a charge whose answer was lost)",
		len(fake.Intents()), replayed)

	// The CLI sees 200 confirmed orders.
	out, errOut, code := runBridge(t, "orders", "list", "--json", "--limit", "1000", "--config", cfg)
	if code != 0 {
		t.Fatalf("orders list: exit %d: %s", code, errOut)
	}
	var listed []struct {
		ID      string `json:"id"`
		Status  string `json:"status"`
		Payment string `json:"payment"`
		StoreID string `json:"store_id"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("orders list --json: %v\n%s", err, out)
	}
	if len(listed) != sessions {
		t.Errorf("orders list shows %d orders, want %d", len(listed), sessions)
	}
	for _, o := range listed {
		if _, ok := want[o.ID]; !ok || o.Status != bridge.OrderConfirmed || o.Payment != bridge.PaymentStateCaptured || o.StoreID != o.ID {
			t.Errorf("orders list: %+v; want a known order, confirmed, captured, in the store", o)
		}
	}

	// Stopped cleanly, the database holds no job still to run or dead.
	if err := b.stop(); err != nil {
		t.Errorf("last bridge: %v", err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "data", "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkJobsSettled(t, db)
	if t.Failed() {
		t.Logf("seed %d; logs:\n%s", seed, b.logs())
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// checkOnce checks a chaos run once its outbox drained: every order of
// want in the store (lines of orders.jsonl) once, and nothing else; one
// succeeded PaymentIntent per order, and no money taken for anything else;
// the agent refused no webhook and heard exactly order_create and
// order_update (confirmed) of every order, and of nothing else.
func checkOnce(t *testing.T, want map[string]int, lines []string, fake *stripefake.Server, agent *fakeagent.Agent, byOrder map[string][]fakeagent.Event) {
	t.Helper()
	inStore := map[string]int{}
	for i, ln := range lines {
		var rec struct{ ID string }
		if err := json.Unmarshal([]byte(ln), &rec); err != nil {
			t.Errorf("orders.jsonl line %d is not JSON: %v", i+1, err)
			continue
		}
		inStore[rec.ID]++
	}
	for id, n := range inStore {
		if _, ok := want[id]; !ok {
			t.Errorf("orders.jsonl has order %s no checkout completed", id)
		}
		if n != 1 {
			t.Errorf("orders.jsonl has order %s %d times", id, n)
		}
	}
	for id, n := range want {
		if inStore[id] == 0 {
			t.Errorf("order %s (session %d) never reached orders.jsonl", id, n)
		}
	}

	charged := map[string][]string{}
	for _, pi := range fake.Intents() {
		oid := pi.Metadata["order_id"]
		if pi.Status != "succeeded" {
			t.Errorf("PaymentIntent %s of order %q is %s (key %s): want only succeeded intents", pi.ID, oid, pi.Status, pi.IdempotencyKey)
			continue
		}
		charged[oid] = append(charged[oid], pi.ID+" (key "+pi.IdempotencyKey+", token "+pi.Token+")")
	}
	for oid, pis := range charged {
		if _, ok := want[oid]; !ok {
			t.Errorf("money taken for order %q that no checkout returned: %v", oid, pis)
		}
		if len(pis) != 1 {
			t.Errorf("order %s charged %d times: %v", oid, len(pis), pis)
		}
	}
	for id := range want {
		if len(charged[id]) == 0 {
			t.Errorf("order %s has no succeeded PaymentIntent", id)
		}
	}

	if f := agent.Failures(); len(f) > 0 {
		t.Errorf("the agent refused %d webhook requests: %+v", len(f), f)
	}
	for id, evs := range byOrder {
		if _, ok := want[id]; !ok {
			t.Errorf("webhook for unknown order %s: %d events", id, len(evs))
			continue
		}
		if len(evs) != 2 {
			kinds := []string{}
			for _, e := range evs {
				kinds = append(kinds, e.Type+"/"+e.Status+" "+e.RequestID)
			}
			t.Errorf("order %s: %d distinct events %v, want order_create and order_update (confirmed)", id, len(evs), kinds)
		}
	}
	t.Logf("agent: %d distinct events, %d duplicate deliveries (same Request-Id), %d requests", len(agent.Events()), agent.Duplicates(), agent.Requests())
}

// checkJobsSettled fails the test for every job still pending, or dead or
// canceled, after a drain.
func checkJobsSettled(t *testing.T, db interface {
	Jobs(ctx context.Context, f bridge.JobFilter) ([]bridge.Job, error)
}) {
	t.Helper()
	for _, st := range []bridge.JobStatus{bridge.JobPending, bridge.JobDead, bridge.JobCanceled} {
		jobs, err := db.Jobs(context.Background(), bridge.JobFilter{Status: st, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			t.Errorf("job %s of order %s is %s after the drain (attempts %d, last error %q)", j.ID, j.OrderID, j.Status, j.Attempts, j.LastError)
		}
	}
}

func chaosToken(n int) string { return fmt.Sprintf("spt_chaos_%03d", n) }

// chaosSeed is the run's random seed: BRIDGE_CRASH_SEED when set, so a run
// can be replayed, else the clock; it is logged.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BRIDGE_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BRIDGE_CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (rerun with BRIDGE_CRASH_SEED=%d)", seed, seed)
	return seed
}

// chaosWorld starts what the chaos tests' bridges talk to: Stripe (the
// fake, with tokens chaosToken(0 … tokens−1), behind a network that delays
// every answer by up to 40 ms after Stripe acted) and a strict agent for
// the order webhooks; edit points a config at both, with a 200 ms store
// budget and no rate limit (hundreds of requests from one key in seconds).
func chaosWorld(t *testing.T, seed uint64, tokens int) (fake *stripefake.Server, agent *fakeagent.Agent, edit func(string) string) {
	t.Helper()
	fake = stripefake.New()
	t.Cleanup(fake.Close)
	for n := range tokens {
		fake.AddToken(stripefake.Token{ID: chaosToken(n), Currency: "usd", MaxAmount: 1_000_000, ExpiresAt: time.Now().Add(time.Hour)})
	}
	stripeURL := slowProxy(t, fake.URL, rand.New(rand.NewPCG(seed, 1000)), 40*time.Millisecond)
	const hookSecret = "whsec_chaos_agent_0123456789abcdef"
	agent = fakeagent.New(t, hookSecret)
	t.Setenv("STRIPE_TEST_KEY", stripefake.DefaultSecretKey)
	t.Setenv("STRIPE_TEST_WEBHOOK", "whsec_e2e_chaos_test_secret")
	t.Setenv("CHAOS_AGENT_WEBHOOK_SECRET", hookSecret)
	return fake, agent, func(s string) string {
		s = mustReplace(t, s, "  provider: sandbox\n", "  provider: stripe\n  stripe:\n    secret_key: ${STRIPE_TEST_KEY}\n"+
			"    webhook_secret: ${STRIPE_TEST_WEBHOOK}\n    api_base: "+stripeURL+"\n")
		s = mustReplace(t, s, "\nacp:\n", "\nacp:\n  webhooks:\n    url: "+agent.URL()+"\n    secret: ${CHAOS_AGENT_WEBHOOK_SECRET}\n")
		s = mustReplace(t, s, "  sync_budget: 3s ", "  sync_budget: 200ms ")
		return mustReplace(t, s, "    per_second: 20\n", "    per_second: 0\n")
	}
}

// mustReplace replaces the first old in s, failing the test when s has none.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("config edit: %q not found", old)
	}
	return strings.Replace(s, old, new, 1)
}

// setStock rewrites the quantity column of the catalog for the given skus.
func setStock(t *testing.T, path string, qty map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	left := len(qty)
	for _, r := range recs[1:] {
		if q, ok := qty[r[col["sku"]]]; ok {
			r[col["quantity"]] = q
			left--
		}
	}
	if left != 0 {
		t.Fatalf("setStock: %d of the skus %v are not in %s", left, qty, path)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// slowProxy serves target behind a network that delays every answer by up
// to maxDelay once target has answered (the work is done, the answer is on
// its way).
func slowProxy(t *testing.T, target string, rng *rand.Rand, maxDelay time.Duration) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(*http.Response) error {
		mu.Lock()
		d := time.Duration(rng.Int64N(int64(maxDelay) + 1))
		mu.Unlock()
		time.Sleep(d)
		return nil
	}
	p.ErrorLog = nil
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// readLines returns the non-empty lines of a file (none if it is missing).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return nonEmptyLines(b)
}

func eventsByOrder(evs []fakeagent.Event) map[string][]fakeagent.Event {
	m := map[string][]fakeagent.Event{}
	for _, e := range evs {
		m[e.OrderID] = append(m[e.OrderID], e)
	}
	return m
}

// notified reports whether an order's events include order_create and
// order_update with status confirmed.
func notified(evs []fakeagent.Event) bool {
	var created, confirmed bool
	for _, e := range evs {
		switch {
		case e.Type == "order_create":
			created = true
		case e.Type == "order_update" && e.Status == bridge.OrderConfirmed:
			confirmed = true
		}
	}
	return created && confirmed
}

func countDelivered(want map[string]int, byOrder map[string][]fakeagent.Event) int {
	n := 0
	for id := range want {
		if notified(byOrder[id]) {
			n++
		}
	}
	return n
}

func delivered(want map[string]int, byOrder map[string][]fakeagent.Event) bool {
	return countDelivered(want, byOrder) == len(want)
}

// bridgeProc is `bridge serve` run, killed and restarted on one config
// and port.
type bridgeProc struct {
	cfg, addr string
	env       []string // more of the process's environment

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error // the running process's Wait
	runs []*syncbuf.Buffer
}

// start runs a new process and waits until /readyz answers 200.
func (b *bridgeProc) start(ctx context.Context) error {
	cmd := exec.Command(bridgeBin, "serve", "--config", b.cfg)
	cmd.Env = append(append(os.Environ(), "BRIDGE_LISTEN="+b.addr), b.env...)
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.runs = append(b.runs, logs)
	b.mu.Unlock()

	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get("http://" + b.addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("bridge exited before it was ready: %v", err)
		case <-deadline.C:
			return errors.New("bridge not ready within 30s")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill SIGKILLs the running process and waits for it.
func (b *bridgeProc) kill() error {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return errors.New("no bridge running")
	}
	if err := cmd.Process.Kill(); err != nil {
		return err
	}
	<-done
	return nil
}

// stop ends the running process with SIGINT and wants a clean exit.
func (b *bridgeProc) stop() error {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return errors.New("no bridge running")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("did not exit cleanly on SIGINT: %w", err)
		}
		return nil
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("did not stop within 20s of SIGINT")
	}
}

func (b *bridgeProc) cleanup() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// releasedClaims sums what the restarts reported as cut short.
func (b *bridgeProc) releasedClaims() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.runs {
		for _, ln := range strings.Split(l.String(), "\n") {
			if !strings.Contains(ln, "cut short") {
				continue
			}
			if _, v, ok := strings.Cut(ln, " claims="); ok {
				k, _ := strconv.Atoi(strings.Fields(v)[0])
				n += k
			}
		}
	}
	return n
}

// logs returns every run's output, each under a header.
func (b *bridgeProc) logs() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for i, l := range b.runs {
		fmt.Fprintf(&sb, "===== run %d =====\n%s", i+1, l.String())
	}
	return sb.String()
}

// chaosStats counts what the agents went through.
type chaosStats struct {
	requests, connErrors, status5xx, retried409, throttled atomic.Int64
}

func (s *chaosStats) String() string {
	return fmt.Sprintf("%d requests: %d connection errors, %d 5xx, %d 409 in flight/in progress, %d 429 (all retried with the same Idempotency-Key)",
		s.requests.Load(), s.connErrors.Load(), s.status5xx.Load(), s.retried409.Load(), s.throttled.Load())
}

// chaosClient is an agent that retries every request with the same
// Idempotency-Key until it gets a final answer, as real agents do.
type chaosClient struct {
	// bases are the bridges behind the load balancer: each attempt goes to
	// one at random, the first to bases[first-1] when first > 0 (so that
	// two copies of a request can be sent to different bridges).
	bases []string
	first int
	http  *http.Client
	stats *chaosStats
	rng   *rand.Rand // the agent's own: think times, bridges
}

const chaosAddress = `{"fulfillment_details":{"name":"Ada","email":"ada@example.com","address":{"name":"Ada","line_one":"1 Main St","city":"Albany","state":"NY","country":"US","postal_code":"12207"}}}`

// checkout runs session n to its order and returns the order id.
func (c *chaosClient) checkout(ctx context.Context, n int, sku string, qty int) (string, error) {
	status, s, err := c.post(ctx, "/checkout_sessions", fmt.Sprintf("chaos-%d-create", n),
		fmt.Sprintf(`{"line_items":[{"id":%q,"quantity":%d}],"currency":"usd","capabilities":{}}`, sku, qty))
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	id, _ := s["id"].(string)
	if status != http.StatusCreated || id == "" {
		return "", fmt.Errorf("create: HTTP %d %v", status, s)
	}
	status, s, err = c.post(ctx, "/checkout_sessions/"+id, fmt.Sprintf("chaos-%d-update", n), chaosAddress)
	if err != nil {
		return "", fmt.Errorf("update %s: %w", id, err)
	}
	if status != http.StatusOK || s["status"] != "ready_for_payment" {
		return "", fmt.Errorf("update %s: HTTP %d %v", id, status, s)
	}
	status, s, err = c.post(ctx, "/checkout_sessions/"+id+"/complete", fmt.Sprintf("chaos-%d-complete", n),
		`{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"`+chaosToken(n)+`"}}}}`)
	if err != nil {
		return "", fmt.Errorf("complete %s: %w", id, err)
	}
	order, _ := s["order"].(map[string]any)
	oid, _ := order["id"].(string)
	if status != http.StatusOK || s["status"] != "completed" || oid == "" {
		return "", fmt.Errorf("complete %s: HTTP %d %v", id, status, s)
	}
	return oid, nil
}

// post sends a request until it gets a final answer: connection errors,
// 5xx, 429 and 409 "in flight" / "in progress" are retried with the same
// key; anything else is final.
func (c *chaosClient) post(ctx context.Context, path, key, body string) (int, map[string]any, error) {
	// An agent thinks (a model call) before each request; this also spreads
	// the checkouts over the kills.
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(20+c.rng.IntN(131)) * time.Millisecond):
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, nil, fmt.Errorf("gave up: %w", err)
		}
		c.stats.requests.Add(1)
		base := c.bases[c.rng.IntN(len(c.bases))]
		if attempt == 0 && c.first > 0 {
			base = c.bases[c.first-1]
		}
		status, raw, retryAfter, err := c.once(ctx, base+path, key, body)
		var m map[string]any
		if err == nil {
			if jerr := json.Unmarshal(raw, &m); jerr != nil {
				return status, nil, fmt.Errorf("HTTP %d, body not JSON: %v: %s", status, jerr, raw)
			}
		}
		wait := 50 * time.Millisecond
		switch {
		case err != nil:
			c.stats.connErrors.Add(1)
		case status >= 500:
			c.stats.status5xx.Add(1)
			wait = max(wait, retryAfter)
		case status == http.StatusTooManyRequests:
			c.stats.throttled.Add(1)
			wait = max(wait, retryAfter)
		case status == http.StatusConflict && (m["code"] == "idempotency_in_flight" || m["code"] == "complete_in_progress"):
			c.stats.retried409.Add(1)
			wait = max(wait, min(retryAfter, time.Second))
		default:
			return status, m, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (c *chaosClient) once(ctx context.Context, target, key, body string) (status int, raw []byte, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+devKey)
	req.Header.Set("API-Version", "2026-04-17")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, 0, err
	}
	if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, raw, retryAfter, nil
}

// stuckOrders describes the orders not yet in the store or not yet fully
// notified, with `bridge orders show` of each (jobs and their claims).
func stuckOrders(t *testing.T, cfg string, want map[string]int, lines []string, byOrder map[string][]fakeagent.Event) string {
	t.Helper()
	stored := map[string]bool{}
	for _, ln := range lines {
		var rec struct{ ID string }
		if json.Unmarshal([]byte(ln), &rec) == nil {
			stored[rec.ID] = true
		}
	}
	var sb strings.Builder
	for id := range want {
		if stored[id] && notified(byOrder[id]) {
			continue
		}
		out, errOut, _ := runBridge(t, "orders", "show", "--json", "--id", id, "--config", cfg)
		fmt.Fprintf(&sb, "order %s: in store %v, events %d\n%s%s\n", id, stored[id], len(byOrder[id]), out, errOut)
	}
	return sb.String()
}
