package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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
	"github.com/acp-bridge/bridge/internal/pgtest"
	"github.com/acp-bridge/bridge/storage/postgres"
)

// The Postgres issue's replica test: two bridge processes share one
// PostgreSQL schema behind a "load balancer" (every request attempt goes
// to one of them at random). 200 checkouts run across both; a third of
// the requests are sent twice at once, with the same Idempotency-Key, to
// the two bridges; most checkouts want the same few socks, so the two
// bridges race for the last units; one bridge is SIGKILLed mid-run and
// restarted. Afterwards: exactly one order and one charge per completed
// session, no charge for a session told the socks sold out, no more socks
// sold than there were, every order in the store once, and every outbox
// job done (both webhooks of every order at the agent).
//
// Leases are short (acp.claim_lease and orders.job_lease 10s), so the work
// the killed bridge held is taken over within seconds.
func TestReplicasShareOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (about 20 s): two bridge processes, 200 checkouts, one SIGKILL; run without -short")
	}
	dsn := pgtest.Schema(t, pgtest.DSN(t), "bridge_replicas_")
	const (
		sessions  = 200
		agents    = 8
		sockStock = 40 // SOCK-M on hand: far fewer than the checkouts want
		// The rush: rushers sessions, ready to pay, complete at the same
		// instant on both bridges for the rushStock beanies left.
		rushers   = 20
		rushStock = 6
	)
	seed := chaosSeed(t)
	began := time.Now()

	fake, agent, stripeAndAgent := chaosWorld(t, seed, sessions+rushers)
	t.Setenv("REPLICAS_PG_DSN", dsn)
	cfg := writeConfig(t, stripeAndAgent, func(s string) string {
		s = mustReplace(t, s, "  driver: sqlite ", "  driver: postgres ")
		s = mustReplace(t, s, "  dsn: data/bridge.db\n", "  dsn: ${REPLICAS_PG_DSN}\n  max_conns: 8\n")
		s = mustReplace(t, s, "  dir: data/feeds ", "  dir: ${REPLICA_FEED_DIR} ")
		s = mustReplace(t, s, "  claim_lease: 1m\n", "  claim_lease: 10s\n")
		return mustReplace(t, s, "  job_lease: 2m ", "  job_lease: 10s ")
	})
	dir := filepath.Dir(cfg)
	setStock(t, filepath.Join(dir, "examples", "catalog.csv"), map[string]string{"SOCK-M": strconv.Itoa(sockStock), "SOCK-L": "100000", "BEANIE-CHAR": strconv.Itoa(rushStock)})

	replicas := make([]*bridgeProc, 2)
	var bases []string
	for i := range replicas {
		replicas[i] = &bridgeProc{cfg: cfg, addr: freePort(t), env: []string{"REPLICA_FEED_DIR=" + filepath.Join(dir, fmt.Sprintf("feeds-%d", i))}}
		t.Cleanup(replicas[i].cleanup)
		bases = append(bases, "http://"+replicas[i].addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, b := range replicas {
		if err := b.start(ctx); err != nil {
			t.Fatalf("start bridge %d: %v\n%s", i, err, b.logs())
		}
	}
	// A third bridge on bridge 0's feed folder is refused: its renders
	// would clear the other's builds.
	third := &bridgeProc{cfg: cfg, addr: freePort(t), env: replicas[0].env}
	t.Cleanup(third.cleanup)
	if err := third.start(ctx); err == nil || !strings.Contains(third.logs(), "in use by another bridge process") {
		t.Fatalf("a bridge on another's feed.dir: start %v; want refused, saying why\n%s", err, third.logs())
	}
	allLogs := func() string {
		var sb strings.Builder
		for i, b := range replicas {
			fmt.Fprintf(&sb, "######## bridge %d\n%s", i, b.logs())
		}
		return sb.String()
	}

	// The agents. A checkout wants SOCK-M (1 or 2) three times in five,
	// else SOCK-L or an untracked item.
	var (
		next, finished atomic.Int64
		mu             sync.Mutex
		outcomes       = make([]replicaOutcome, sessions)
		problems       []string
		stats          chaosStats
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	checkoutsDone := make(chan struct{})
	var wg sync.WaitGroup
	for i := range agents {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i+1)))
			c := &chaosClient{bases: bases, http: &http.Client{Timeout: 15 * time.Second}, stats: &stats, rng: rng}
			for {
				n := int(next.Add(1) - 1)
				if n >= sessions || ctx.Err() != nil {
					return
				}
				sku := []string{"SOCK-M", "SOCK-M", "SOCK-M", "SOCK-L", "TOTE-NAT"}[rng.IntN(5)]
				out, err := replicaCheckout(ctx, c, n, sku, 1+rng.IntN(2))
				if err != nil {
					fail("checkout %d: %v", n, err)
					continue
				}
				mu.Lock()
				outcomes[n] = out
				mu.Unlock()
				finished.Add(1)
			}
		})
	}
	go func() { wg.Wait(); close(checkoutsDone) }()

	// The killer: bridge 1 dies once, 1–5 s in (the checkouts take about
	// 12 s), and comes back a second later (a crash and its supervisor's
	// restart).
	krng := rand.New(rand.NewPCG(seed, 0))
	killAfter := time.Duration(1000+krng.IntN(4001)) * time.Millisecond
	killerErr := make(chan error, 1)
	var killLog string
	go func() {
		defer close(killerErr)
		select {
		case <-time.After(killAfter):
		case <-ctx.Done():
			return
		}
		state := fmt.Sprintf("bridge 1 killed %v in, with %d/%d checkouts finished", killAfter, finished.Load(), sessions)
		if err := replicas[1].kill(); err != nil {
			killerErr <- fmt.Errorf("%s: %w", state, err)
			return
		}
		time.Sleep(time.Second)
		start := time.Now()
		if err := replicas[1].start(ctx); err != nil {
			killerErr <- fmt.Errorf("%s: restart: %w", state, err)
			return
		}
		killLog = fmt.Sprintf("%s; restarted after 1s, ready %v later", state, time.Since(start).Round(time.Millisecond))
	}()
	select {
	case <-checkoutsDone:
	case <-ctx.Done():
	}
	if err := <-killerErr; err != nil {
		t.Fatalf("killer: %v\n%s", err, allLogs())
	}
	<-checkoutsDone
	t.Log(killLog)
	t.Logf("%d checkouts finished in %v; %s", finished.Load(), time.Since(began).Round(time.Millisecond), stats.String())
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Fatalf("%d checkouts failed (seed %d):\n%s\n%s", len(problems), seed, strings.Join(problems, "\n"), allLogs())
	}

	want := map[string]int{} // order id → session
	soldOut, socksSold, socksWanted := 0, 0, 0
	for n, o := range outcomes {
		if o.sku == "SOCK-M" {
			socksWanted += o.qty
		}
		if o.orderID == "" {
			soldOut++
			continue
		}
		if prev, dup := want[o.orderID]; dup {
			t.Fatalf("sessions %d and %d got the same order %s", prev, n, o.orderID)
		}
		want[o.orderID] = n
		if o.sku == "SOCK-M" {
			socksSold += o.qty
		}
	}
	t.Logf("%d orders, %d checkouts told the socks sold out; %d of %d socks sold (%d wanted)", len(want), soldOut, socksSold, sockStock, socksWanted)
	// Never more than there were; and since a buyer is told "sold out"
	// only when the rest cannot serve the quantity, at most one sock (a
	// pair wanted, one left) stays unsold.
	if socksSold > sockStock || socksSold < sockStock-1 {
		t.Errorf("%d SOCK-M sold of %d on hand (%d wanted): want %d, or %d with a pair refused for the last one", socksSold, sockStock, socksWanted, sockStock, sockStock-1)
	}
	if soldOut == 0 {
		t.Errorf("no checkout was told the socks sold out: the test did not make the bridges race for the last units")
	}

	// The rush: exactly as many beanies sold as there were, whichever
	// bridge each complete went to; the others told, and not charged.
	rushed := rush(ctx, t, bases, &stats, seed, sessions, rushers)
	beanies := 0
	for i, o := range rushed {
		if o.orderID == "" {
			continue
		}
		if prev, dup := want[o.orderID]; dup {
			t.Fatalf("sessions %d and %d got the same order %s", prev, sessions+i, o.orderID)
		}
		want[o.orderID] = sessions + i
		beanies++
	}
	t.Logf("rush: %d completes at once for %d beanies: %d orders", rushers, rushStock, beanies)
	if beanies != rushStock {
		t.Errorf("rush: %d beanies sold of %d on hand (%d wanted at once)", beanies, rushStock, rushers)
	}

	// Drain: every order in the store and both of its events at the agent.
	ordersPath := filepath.Join(dir, "data", "orders.jsonl")
	drainStart := time.Now()
	var lines []string
	var byOrder map[string][]fakeagent.Event
	for {
		lines = readLines(t, ordersPath)
		byOrder = eventsByOrder(agent.Events())
		if len(lines) >= len(want) && delivered(want, byOrder) {
			break
		}
		if time.Since(drainStart) > 30*time.Second {
			t.Fatalf("outbox not drained after 30s (seed %d): %d lines in orders.jsonl for %d orders, %d fully notified\n%s",
				seed, len(lines), len(want), countDelivered(want, byOrder), allLogs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("outbox drained %v after the last checkout", time.Since(drainStart).Round(time.Millisecond))

	checkOnce(t, want, lines, fake, agent, byOrder)

	// Both bridges serve the catalog (one synced it, or each in turn).
	for i, b := range bases {
		resp, err := http.Get(b + "/readyz")
		if err != nil {
			t.Errorf("bridge %d /readyz: %v", i, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("bridge %d /readyz: %d %s", i, resp.StatusCode, body)
		}
	}

	// Stopped cleanly, the database holds every job done: none pending,
	// dead or canceled.
	for i, b := range replicas {
		if err := b.stop(); err != nil {
			t.Errorf("bridge %d: %v", i, err)
		}
	}
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rerun := 0
	done, err := db.Jobs(context.Background(), bridge.JobFilter{Status: bridge.JobDone, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range done {
		if j.Attempts > 1 {
			rerun++
		}
	}
	if want := 3 * len(want); len(done) != want {
		t.Errorf("%d jobs done, want %d (a store write and two webhooks per order)", len(done), want)
	}
	checkJobsSettled(t, db)
	t.Logf("%d jobs done, %d of them after more than one attempt (retries, or a run of the killed bridge taken over)", len(done), rerun)
	if t.Failed() {
		t.Logf("seed %d\n%s", seed, allLogs())
	}
	t.Logf("total %v", time.Since(began).Round(time.Millisecond))
}

// rush brings sessions first … first+count−1 to ready_for_payment, each
// for one BEANIE-CHAR, then completes them all at the same instant, the
// even ones on bridge 0 and the odd ones on bridge 1.
func rush(ctx context.Context, t *testing.T, bases []string, stats *chaosStats, seed uint64, first, count int) []replicaOutcome {
	t.Helper()
	ids := make([]string, count)
	for i := range count {
		c := &chaosClient{bases: bases, http: &http.Client{Timeout: 15 * time.Second}, stats: stats, rng: rand.New(rand.NewPCG(seed, uint64(first+i)))}
		n := first + i
		status, s, err := c.post(ctx, "/checkout_sessions", fmt.Sprintf("rush-%d-create", n), `{"line_items":[{"id":"BEANIE-CHAR","quantity":1}],"currency":"usd","capabilities":{}}`)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("rush %d: create: HTTP %d %v %v", n, status, s, err)
		}
		ids[i], _ = s["id"].(string)
		status, s, err = c.post(ctx, "/checkout_sessions/"+ids[i], fmt.Sprintf("rush-%d-update", n), chaosAddress)
		if err != nil || status != http.StatusOK || s["status"] != "ready_for_payment" {
			t.Fatalf("rush %d: update: HTTP %d %v %v", n, status, s, err)
		}
	}
	out := make([]replicaOutcome, count)
	errs := make([]error, count)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range count {
		n := first + i
		c := &chaosClient{bases: bases, first: 1 + i%len(bases), http: &http.Client{Timeout: 15 * time.Second}, stats: stats,
			rng: rand.New(rand.NewPCG(seed, uint64(n)+1000))}
		wg.Go(func() {
			<-start
			// No think time: the same instant is the point.
			status, raw, _, err := c.once(ctx, c.bases[c.first-1]+"/checkout_sessions/"+ids[i]+"/complete", fmt.Sprintf("rush-%d-complete", n),
				`{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"`+chaosToken(n)+`"}}}}`)
			var s map[string]any
			if err == nil {
				err = json.Unmarshal(raw, &s)
			}
			switch {
			case err != nil:
				errs[i] = err
			case status == http.StatusOK && s["status"] == "completed" && orderID(s) != "":
				out[i].orderID = orderID(s)
			case status == http.StatusOK && s["status"] == "not_ready_for_payment" && hasMessageCode(s, "out_of_stock", "quantity_exceeded"):
			default:
				errs[i] = fmt.Errorf("HTTP %d %s", status, raw)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rush %d: complete: %v", first+i, err)
		}
	}
	return out
}

// replicaOutcome is how one checkout ended: an order, or sold out.
type replicaOutcome struct {
	sku     string
	qty     int
	orderID string // "" when the socks sold out
}

// replicaCheckout runs checkout n to its order, or to "sold out". Every
// third request is sent twice at once, with the same key, to the two
// bridges; both must give the same answer.
func replicaCheckout(ctx context.Context, c *chaosClient, n int, sku string, qty int) (replicaOutcome, error) {
	out := replicaOutcome{sku: sku, qty: qty}
	post := func(step, path, body string) (int, map[string]any, error) {
		key := fmt.Sprintf("replicas-%d-%s", n, step)
		if c.rng.IntN(3) > 0 {
			return c.post(ctx, path, key, body)
		}
		type answer struct {
			status int
			body   map[string]any
			err    error
		}
		answers := make([]answer, 2)
		var wg sync.WaitGroup
		for i := range answers {
			dup := *c
			dup.first, dup.rng = i+1, rand.New(rand.NewPCG(c.rng.Uint64(), uint64(i)))
			wg.Go(func() {
				a := &answers[i]
				a.status, a.body, a.err = dup.post(ctx, path, key, body)
			})
		}
		wg.Wait()
		a, b := answers[0], answers[1]
		if a.err != nil || b.err != nil {
			return 0, nil, fmt.Errorf("%s: %v / %v", step, a.err, b.err)
		}
		if a.status != b.status || a.body["id"] != b.body["id"] || a.body["status"] != b.body["status"] || orderID(a.body) != orderID(b.body) {
			return 0, nil, fmt.Errorf("%s sent to both bridges: different answers: HTTP %d %v %v order %q / HTTP %d %v %v order %q", step,
				a.status, a.body["id"], a.body["status"], orderID(a.body), b.status, b.body["id"], b.body["status"], orderID(b.body))
		}
		return a.status, a.body, nil
	}
	status, s, err := post("create", "/checkout_sessions", fmt.Sprintf(`{"line_items":[{"id":%q,"quantity":%d}],"currency":"usd","capabilities":{}}`, sku, qty))
	if err != nil {
		return out, fmt.Errorf("create: %w", err)
	}
	id, _ := s["id"].(string)
	if status != http.StatusCreated || id == "" {
		return out, fmt.Errorf("create: HTTP %d %v", status, s)
	}
	status, s, err = post("update", "/checkout_sessions/"+id, chaosAddress)
	if err != nil {
		return out, fmt.Errorf("update %s: %w", id, err)
	}
	if status == http.StatusOK && s["status"] == "not_ready_for_payment" && hasMessageCode(s, "out_of_stock", "quantity_exceeded") {
		return out, nil // sold out before the buyer got to pay
	}
	if status != http.StatusOK || s["status"] != "ready_for_payment" {
		return out, fmt.Errorf("update %s: HTTP %d %v", id, status, s)
	}
	status, s, err = post("complete", "/checkout_sessions/"+id+"/complete",
		`{"payment_data":{"handler_id":"card","instrument":{"type":"card","credential":{"type":"spt","token":"`+chaosToken(n)+`"}}}}`)
	if err != nil {
		return out, fmt.Errorf("complete %s: %w", id, err)
	}
	if status == http.StatusOK && s["status"] == "not_ready_for_payment" && hasMessageCode(s, "out_of_stock", "quantity_exceeded") {
		return out, nil // sold out (re-priced at complete, or while paying): nothing charged
	}
	out.orderID = orderID(s)
	if status != http.StatusOK || s["status"] != "completed" || out.orderID == "" {
		return out, fmt.Errorf("complete %s: HTTP %d %v", id, status, s)
	}
	return out, nil
}

func orderID(s map[string]any) string {
	o, _ := s["order"].(map[string]any)
	id, _ := o["id"].(string)
	return id
}

// hasMessageCode reports whether a session carries an error message with
// one of codes.
func hasMessageCode(s map[string]any, codes ...string) bool {
	msgs, _ := s["messages"].([]any)
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		for _, c := range codes {
			if mm["type"] == "error" && mm["code"] == c {
				return true
			}
		}
	}
	return false
}
