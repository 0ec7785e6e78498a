// Command loadtest measures the checkout's throughput and latency under load,
// in one process and one run: a bare net/http JSON handler as the baseline,
// then the bridge's GET, create, update and complete of checkout sessions,
// each driven by vegeta at its maximum rate over a fixed number of
// connections (64 by default).
//
//	go run ./cmd/loadtest                          # 10 s per scenario
//	go run ./cmd/loadtest -quick                   # 2 s smoke run
//	go run ./cmd/loadtest -scenarios create,complete -cpuprofile /tmp/lt
//	go run ./cmd/loadtest -dir /dev/shm            # database on tmpfs (no fsync cost)
//	go run ./cmd/loadtest -postgres 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// With -postgres (or BRIDGE_TEST_POSTGRES_DSN) the scenarios run twice in
// one run, first on SQLite, then on PostgreSQL (a fresh schema of the
// database the DSN names, created for the run and dropped at its end), and
// the report has a table for each and a comparison.
//
// The bridge runs in-process (internal/checkouttest: SQLite with
// synchronous=FULL in a temporary directory, removed at the end; the catalog
// fixture; the engine; the REST front door on an httptest server), with rate
// limiting off and logs discarded. There is no -url flag: the tool measures
// this build only, and the load generator shares the machine's cores with the
// server, the bare baseline included, so the ratios compare like with like.
//
// Every session a scenario touches is created before its timer starts: ~100
// for get, 1000 for update (addresses alternate, so each update changes the
// session; 1000 sessions keep two in-flight updates of one session, which
// may answer 409 concurrent_update, rare), and for complete one ready
// e-book session per request (completed once each), as many as the create
// rate says the phase can use. Nothing is validated in the hot path: the
// report counts status codes, the error code of non-2xx answers, and, for
// complete, 200 answers whose session is not "completed".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/acp-bridge/bridge/acp"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
)

const version = acp.V20260417

// The request bodies, in 2026-04-17's shape.
var (
	createBody = []byte(`{"line_items":[{"id":"shirt-m","quantity":1}],"currency":"usd","capabilities":{}}`)
	ebookBody  = `{"line_items":[{"id":"ebook","quantity":1}],"currency":"usd","capabilities":{}}`
	bodies     = ct.Bodies{V: version}
)

var allScenarios = []string{"bare", "get", "create", "update", "complete"}

type config struct {
	duration         time.Duration
	conns            int
	scenarios        []string
	getSessions      int
	updateSessions   int
	completeSessions int
	dir              string
	cpuProfile       string
	blockProfile     string
	postgres         string
}

// dsnEnv names the PostgreSQL server when -postgres is not given (the
// variable the storage tests use).
const dsnEnv = "BRIDGE_TEST_POSTGRES_DSN"

func main() {
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long each scenario runs")
	quick := flag.Bool("quick", false, "smoke run: 2s per scenario (overrides -duration)")
	flag.IntVar(&cfg.conns, "conns", 64, "concurrent connections (= vegeta workers)")
	scen := flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run, of "+strings.Join(allScenarios, ","))
	flag.IntVar(&cfg.getSessions, "get-sessions", 100, "sessions the get scenario cycles over")
	flag.IntVar(&cfg.updateSessions, "update-sessions", 1000, "sessions the update scenario cycles over")
	flag.IntVar(&cfg.completeSessions, "complete-sessions", 0, "ready sessions created for complete (0 = estimate from the create rate)")
	flag.StringVar(&cfg.dir, "dir", "", "parent of the temporary database directory (default: the system temp dir)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of each scenario's timed part to `prefix`.<scenario>.pprof (.postgres.<scenario>.pprof on PostgreSQL)")
	flag.StringVar(&cfg.blockProfile, "blockprofile", "", "write a blocking profile of the timed parts, summed over the scenarios run, to `file` (use -scenarios to isolate one)")
	flag.StringVar(&cfg.postgres, "postgres", os.Getenv(dsnEnv), "also run the scenarios on PostgreSQL, in a new schema of the database this `DSN` names (default $"+dsnEnv+")")
	flag.Parse()
	if *quick {
		cfg.duration = 2 * time.Second
	}
	for s := range strings.SplitSeq(*scen, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fmt.Fprintf(os.Stderr, "loadtest: unknown scenario %q (have %s)\n", s, strings.Join(allScenarios, ","))
			os.Exit(2)
		}
		cfg.scenarios = append(cfg.scenarios, s)
	}
	if cfg.duration <= 0 || cfg.conns <= 0 || cfg.getSessions <= 0 || cfg.updateSessions <= 0 || cfg.completeSessions < 0 || len(cfg.scenarios) == 0 {
		fmt.Fprintln(os.Stderr, "loadtest: -duration, -conns, -get-sessions, -update-sessions must be positive and -scenarios not empty")
		os.Exit(2)
	}

	t := &runTB{base: cfg.dir}
	defer t.cleanup()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // the first ^C ends the run with a report, a second kills it
	if err := run(ctx, t, cfg); err != nil {
		t.Fatalf("%v", err)
	}
}

// runTB is the stand-in for testing.TB that checkouttest.New needs.
type runTB struct {
	base     string
	mu       sync.Mutex
	cleanups []func()
}

func (t *runTB) Helper() {}

func (t *runTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
	t.cleanup()
	os.Exit(1)
}

func (t *runTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *runTB) TempDir() string {
	d, err := os.MkdirTemp(t.base, "bridge-loadtest-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// cleanup runs the cleanups, last registered first, once.
func (t *runTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// outcome is one scenario's measurement.
type outcome struct {
	name      string
	m         vegeta.Metrics
	reqPerSec float64
	detail    map[string]int // non-2xx answers by status and error code, transport errors, anomalies
	exhausted bool           // the targets ran out before the duration
	prepared  string         // what was created beforehand
	elapsed   time.Duration
	cpu       cpuUse
}

// backend is one database's run of the scenarios.
type backend struct {
	name    string // "SQLite", "Postgres"
	desc    string // for the report's header
	opts    ct.Options
	results []*outcome
}

func run(ctx context.Context, t *runTB, cfg config) error {
	loadStart := loadavg()

	bare := httptest.NewServer(http.HandlerFunc(bareHandler))
	t.Cleanup(bare.Close)
	log := slog.New(slog.DiscardHandler)
	backends := []*backend{{name: "SQLite", desc: "SQLite (WAL, synchronous=FULL) under " + dirOr(cfg.dir), opts: ct.Options{Log: log}}}
	if cfg.postgres != "" {
		backends = append(backends, &backend{name: "Postgres", desc: "PostgreSQL at " + redact(cfg.postgres) + " (a new schema, default pool)",
			opts: ct.Options{Log: log, PostgresDSN: cfg.postgres}})
	}
	for _, b := range backends {
		if ctx.Err() != nil {
			break
		}
		if len(backends) > 1 {
			fmt.Fprintf(os.Stderr, "== %s\n", b.name)
		}
		st := ct.New(t, b.opts)
		var err error
		tag := "" // the SQLite run's profiles keep their names
		if b.opts.PostgresDSN != "" {
			tag = "postgres."
		}
		b.results, err = runScenarios(ctx, st, bare, cfg, tag)
		if err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
	}
	if cfg.blockProfile != "" {
		if err := writeProfile("block", cfg.blockProfile); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "interrupted: the last scenario's numbers cover only the time it ran")
	}
	report(os.Stdout, cfg, backends, loadStart, loadavg())
	return nil
}

// redact drops the password from a URL DSN; a key=value DSN is not shown.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Redacted()
	}
	return "(key=value DSN)"
}

// runScenarios runs cfg's scenarios on st (bare on the bare server).
// A CPU profile's file name has tag before the scenario's name.
func runScenarios(ctx context.Context, st *ct.Stack, bare *httptest.Server, cfg config, tag string) ([]*outcome, error) {
	h := newHeaders()
	atk := &runner{ctx: ctx, cfg: cfg, tag: tag}

	var results []*outcome
	var createRate float64
	for _, name := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		var (
			tr    vegeta.Targeter
			check func(*vegeta.Result) string
			note  string
			err   error
		)
		switch name {
		case "bare":
			tr = getTargeter(h, []string{bare.URL + "/"})
		case "get":
			var ids []string
			var d time.Duration
			if ids, d, err = prepare(st, cfg.conns, cfg.getSessions, string(createBody), ""); err != nil {
				return nil, err
			}
			note = prepared(len(ids), d)
			urls := make([]string, len(ids))
			for i, id := range ids {
				urls[i] = st.URL + ct.Path(id)
			}
			tr = getTargeter(h, urls)
		case "create":
			tr = postTargeter(h, "create", func(uint64) (string, []byte) { return st.URL + ct.Path(), createBody })
		case "update":
			var ids []string
			var d time.Duration
			if ids, d, err = prepare(st, cfg.conns, cfg.updateSessions, string(createBody), ""); err != nil {
				return nil, err
			}
			note = prepared(len(ids), d)
			urls := make([]string, len(ids))
			for i, id := range ids {
				urls[i] = st.URL + ct.Path(id)
			}
			addr := [2][]byte{[]byte(bodies.Address("US", "CA")), []byte(bodies.Address("US", "NY"))}
			n := uint64(len(urls))
			// The i-th visit of a session sets the other address than the
			// one before, so every update changes the session.
			tr = postTargeter(h, "update", func(i uint64) (string, []byte) { return urls[i%n], addr[(i/n)%2] })
		case "complete":
			var ids []string
			if ids, note, err = prepareReady(st, cfg, createRate); err != nil {
				return nil, err
			}
			urls := make([]string, len(ids))
			for i, id := range ids {
				urls[i] = st.URL + ct.Path(id, "complete")
			}
			pay := []byte(bodies.Complete("spt_4242"))
			tr = postTargeter(h, "complete", func(i uint64) (string, []byte) {
				if i >= uint64(len(urls)) {
					return "", nil
				}
				return urls[i], pay
			})
			check = func(r *vegeta.Result) string {
				if r.Code == http.StatusOK && !bytes.Contains(r.Body, []byte(`"status":"completed"`)) {
					return "200 but not completed"
				}
				return ""
			}
		}
		if note != "" {
			fmt.Fprintf(os.Stderr, "%-8s prepared %s\n", name, note)
		}
		o, err := atk.attack(name, tr, check)
		if err != nil {
			return nil, err
		}
		o.prepared = note
		if name == "create" {
			createRate = o.reqPerSec
		}
		fmt.Fprintf(os.Stderr, "%-8s %.0f req/s, p99 %s, %d requests\n", name, o.reqPerSec, round(o.m.Latencies.P99), o.m.Requests)
		results = append(results, o)
	}
	return results, nil
}

// headers are the fixed request headers, shared read-only by every target
// (vegeta copies them into each request).
type headers struct {
	get   http.Header
	nonce string // makes this run's idempotency keys unique
}

func newHeaders() *headers {
	return &headers{
		get: http.Header{
			"Authorization": {"Bearer " + ct.AgentKey},
			"Api-Version":   {string(version)},
		},
		nonce: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
}

// getTargeter cycles over urls.
func getTargeter(h *headers, urls []string) vegeta.Targeter {
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		i := n.Add(1) - 1
		t.Method, t.URL, t.Body, t.Header = http.MethodGet, urls[i%uint64(len(urls))], nil, h.get
		return nil
	}
}

// postTargeter sends the i-th request to the URL and body next(i) gives,
// with a fresh Idempotency-Key; an empty URL ends the attack.
func postTargeter(h *headers, name string, next func(i uint64) (string, []byte)) vegeta.Targeter {
	var n atomic.Uint64
	prefix := "lt-" + h.nonce + "-" + name + "-"
	auth, ver, ctype := h.get["Authorization"], h.get["Api-Version"], []string{"application/json"}
	return func(t *vegeta.Target) error {
		i := n.Add(1) - 1
		url, body := next(i)
		if url == "" {
			return vegeta.ErrNoTargets
		}
		t.Method, t.URL, t.Body = http.MethodPost, url, body
		t.Header = http.Header{
			"Authorization":   auth,
			"Api-Version":     ver,
			"Content-Type":    ctype,
			"Idempotency-Key": {prefix + strconv.FormatUint(i, 10)},
		}
		return nil
	}
}

type runner struct {
	ctx context.Context
	cfg config
	tag string // CPU profile names: <prefix>.<tag><scenario>.pprof
}

// attack runs one scenario at the maximum rate for the configured duration.
func (r *runner) attack(name string, tr vegeta.Targeter, check func(*vegeta.Result) string) (*outcome, error) {
	c := r.cfg.conns
	atk := vegeta.NewAttacker(
		vegeta.Workers(uint64(c)), vegeta.MaxWorkers(uint64(c)),
		vegeta.Connections(c), vegeta.MaxConnections(c), vegeta.KeepAlive(true))
	runtime.GC() // start every scenario from a collected heap
	if r.cfg.cpuProfile != "" {
		f, err := os.Create(r.cfg.cpuProfile + "." + r.tag + name + ".pprof")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	if r.cfg.blockProfile != "" {
		runtime.SetBlockProfileRate(10_000) // one sample per ~10 µs spent blocked
		defer runtime.SetBlockProfileRate(0)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-r.ctx.Done():
			atk.Stop()
		case <-done:
		}
	}()

	o := &outcome{name: name, detail: map[string]int{}}
	start, cpu0 := time.Now(), readCPU()
	// Rate{Freq: 0} is "as fast as the workers go": a closed loop of c
	// workers, each with one request in flight.
	for res := range atk.Attack(tr, vegeta.Rate{Freq: 0, Per: time.Second}, r.cfg.duration, name) {
		if res.Code == 0 && res.Error == vegeta.ErrNoTargets.Error() {
			o.exhausted = true // not a request: the targeter ran dry
			continue
		}
		o.m.Add(res)
		switch {
		case res.Code == 0:
			o.detail["error: "+res.Error]++
		case res.Code < 200 || res.Code >= 300:
			o.detail[strconv.Itoa(int(res.Code))+" "+errorCode(res.Body)]++
		case check != nil:
			if s := check(res); s != "" {
				o.detail[s]++
			}
		}
	}
	o.elapsed, o.cpu = time.Since(start), readCPU().since(cpu0)
	o.m.Close()
	if span := (o.m.Duration + o.m.Wait).Seconds(); span > 0 {
		o.reqPerSec = float64(o.m.Requests) / span
	}
	return o, nil
}

// errorCode is the "code" of an ACP error body, found without decoding it.
func errorCode(body []byte) string {
	_, rest, ok := bytes.Cut(body, []byte(`"code":"`))
	if !ok {
		return "-"
	}
	code, _, ok := bytes.Cut(rest, []byte(`"`))
	if !ok || len(code) > 64 {
		return "-"
	}
	return string(code)
}

var barePayload = struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Total  int64  `json:"total"`
}{"cs_bare", "ready_for_payment", 2500}

// bareHandler is the baseline: a plain net/http handler encoding a small
// fixed JSON object.
func bareHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(barePayload)
}

// prepare creates n sessions with body on conns goroutines, untimed; every
// one must answer 201 (and have status want, when given).
func prepare(st *ct.Stack, conns, n int, body, want string) ([]string, time.Duration, error) {
	start := time.Now()
	ids := make([]string, n)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(conns, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				r, err := st.Send(ct.Request{Method: http.MethodPost, Path: ct.Path(), Version: version, Body: body, Idem: ct.NewIdem()})
				var s struct{ ID, Status string }
				if err == nil {
					if r.Status != http.StatusCreated {
						err = fmt.Errorf("HTTP %d: %s", r.Status, r.Body)
					} else if err = json.Unmarshal(r.Body, &s); err == nil && want != "" && s.Status != want {
						err = fmt.Errorf("new session is %q, want %q: %s", s.Status, want, r.Body)
					}
				}
				if err != nil {
					once.Do(func() { first = fmt.Errorf("preparing sessions: %w", err) })
					next.Store(int64(n))
					return
				}
				ids[i] = s.ID
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, 0, first
	}
	return ids, time.Since(start), nil
}

func prepared(n int, d time.Duration) string {
	return fmt.Sprintf("%d sessions in %s (%.0f/s)", n, round(d), float64(n)/d.Seconds())
}

// prepareReady creates the ready e-book sessions the complete scenario
// completes, one per request. Without -complete-sessions their number is
// 0.8 × what the create rate would do in the duration: a complete commits
// twice to a create's once and runs at ~55% of its rate (measured), so this
// leaves a margin; running dry ends the phase early (reported) without
// spoiling its numbers. The rate is the create scenario's, or measured on a
// first batch of 1000.
func prepareReady(st *ct.Stack, cfg config, createRate float64) ([]string, string, error) {
	need := cfg.completeSessions
	var ids []string
	var notes []string
	if need == 0 {
		if createRate == 0 {
			batch, d, err := prepare(st, cfg.conns, 1000, ebookBody, "ready_for_payment")
			if err != nil {
				return nil, "", err
			}
			ids, notes = batch, append(notes, prepared(len(batch), d)+" to calibrate")
			createRate = float64(len(batch)) / d.Seconds()
		}
		need = int(math.Ceil(createRate*cfg.duration.Seconds()*0.8)) + cfg.conns
	}
	if more := need - len(ids); more > 0 {
		batch, d, err := prepare(st, cfg.conns, more, ebookBody, "ready_for_payment")
		if err != nil {
			return nil, "", err
		}
		ids, notes = append(ids, batch...), append(notes, prepared(len(batch), d))
	}
	return ids, strings.Join(notes, " + ") + " ready (e-book)", nil
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func report(w *os.File, cfg config, backends []*backend, loadStart, loadEnd string) {
	fmt.Fprintf(w, "\nmachine: GOMAXPROCS=%d NumCPU=%d %s %s/%s, %s; load average %s at start, %s at end\n",
		runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, cpuModel(), loadStart, loadEnd)
	var fl []string
	flag.VisitAll(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "postgres" && v != "" {
			v = redact(v)
		}
		fl = append(fl, "-"+f.Name+"="+v)
	})
	fmt.Fprintf(w, "flags: %s\n", strings.Join(fl, " "))
	for _, b := range backends {
		fmt.Fprintf(w, "\n== %s: API-Version %s; %d connections, max rate; database: %s\n\n", b.name, version, cfg.conns, b.desc)
		reportResults(w, cfg, b.results)
	}
	if len(backends) > 1 {
		compare(w, backends)
	}
}

// compare prints each scenario's req/s and p99 on every backend, and the
// ratio of each to the first's.
func compare(w *os.File, backends []*backend) {
	first := backends[0]
	fmt.Fprintf(w, "\n== comparison (ratio = req/s vs %s)\n\n", first.name)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "scenario\t"
	for _, b := range backends {
		head += b.name + " req/s\t" + b.name + " p99 ms\t"
		if b != first {
			head += "ratio\t"
		}
	}
	fmt.Fprintln(tw, head)
	for _, base := range first.results {
		line := base.name + "\t"
		for _, b := range backends {
			var o *outcome
			for _, x := range b.results {
				if x.name == base.name {
					o = x
				}
			}
			if o == nil {
				line += "-\t-\t"
				if b != first {
					line += "-\t"
				}
				continue
			}
			line += fmt.Sprintf("%.0f\t%s\t", o.reqPerSec, ms(o.m.Latencies.P99))
			if b != first {
				ratio := "-"
				if base.reqPerSec > 0 {
					ratio = fmt.Sprintf("%.2f×", o.reqPerSec/base.reqPerSec)
				}
				line += ratio + "\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// reportResults prints one backend's table, CPU use, notes and targets.
func reportResults(w *os.File, cfg config, results []*outcome) {
	var bare float64
	for _, o := range results {
		if o.name == "bare" {
			bare = o.reqPerSec
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tp50 ms\tp99 ms\tmax ms\tsuccess %\tvs bare\trequests\tresp bytes\tstatus codes\t")
	for _, o := range results {
		vs := "-"
		if bare > 0 {
			vs = fmt.Sprintf("%.1f%%", 100*o.reqPerSec/bare)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%.2f\t%s\t%d\t%.0f\t%s\t\n", o.name, o.reqPerSec,
			ms(o.m.Latencies.P50), ms(o.m.Latencies.P99), ms(o.m.Latencies.Max), 100*o.m.Success, vs, o.m.Requests, o.m.BytesIn.Mean, counts(o.m.StatusCodes))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nCPU during each timed part, %% of one core (machine: %d%%; tick-based, ±10%%):\n", 100*runtime.NumCPU())
	for _, o := range results {
		fmt.Fprintf(w, "  %-8s %s\n", o.name, o.cpu)
	}
	for _, o := range results {
		if o.prepared != "" {
			fmt.Fprintf(w, "%s: prepared %s before the timer\n", o.name, o.prepared)
		}
		if len(o.detail) > 0 {
			fmt.Fprintf(w, "%s: %s\n", o.name, counts(o.detail))
		}
		if o.exhausted {
			fmt.Fprintf(w, "%s: ran out of prepared sessions after %s of %s (rerun with a larger -complete-sessions)\n", o.name, round(o.elapsed), cfg.duration)
		}
	}

	if bare == 0 {
		return
	}
	fmt.Fprintln(w, "\ntargets:")
	for _, o := range results {
		var share float64 // the least share of the bare handler's req/s
		switch o.name {
		case "bare":
			continue
		case "get":
			share = 0.50
		case "create", "update":
			share = 0.15
		}
		line := fmt.Sprintf("  %-8s p99 %s ms < 25: %s", o.name, ms(o.m.Latencies.P99), verdict(o.m.Latencies.P99 < 25*time.Millisecond))
		if share > 0 {
			line += fmt.Sprintf("; req/s %.1f%% of bare ≥ %.0f%%: %s", 100*o.reqPerSec/bare, 100*share, verdict(o.reqPerSec >= share*bare))
		}
		fmt.Fprintln(w, line)
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func dirOr(d string) string {
	if d == "" {
		return os.TempDir()
	}
	return d
}

// counts formats a histogram as "key:n" pairs, largest first.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.Itoa(m[k])
	}
	return strings.Join(parts, " ")
}

// cpuStat is a reading of /proc: this process's CPU time and the machine's,
// in clock ticks (USER_HZ, 100 on Linux).
type cpuStat struct {
	ok                                           bool
	self, user, system, idle, iowait, steal, irq uint64
}

// cpuUse is the difference of two readings.
type cpuUse struct {
	ok                                bool
	self, others, iowait, steal, idle float64 // % of one core
}

func (u cpuUse) String() string {
	if !u.ok {
		return "unavailable"
	}
	return fmt.Sprintf("this process %3.0f%%, other processes %3.0f%%, steal %2.0f%%, iowait %2.0f%%, idle %3.0f%%",
		u.self, u.others, u.steal, u.iowait, u.idle)
}

func readCPU() cpuStat {
	var c cpuStat
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return c
	}
	n := make([]uint64, 9)
	for i := 1; i < 9; i++ {
		n[i], _ = strconv.ParseUint(f[i], 10, 64)
	}
	c.user, c.system, c.idle, c.iowait, c.irq, c.steal = n[1]+n[2], n[3], n[4], n[5], n[6]+n[7], n[8]
	b, err = os.ReadFile("/proc/self/stat")
	if err != nil {
		return c
	}
	_, rest, ok := strings.Cut(string(b), ") ") // the command name may hold spaces
	g := strings.Fields(rest)
	if !ok || len(g) < 13 {
		return c
	}
	ut, _ := strconv.ParseUint(g[11], 10, 64) // utime, field 14 of stat(5)
	st, _ := strconv.ParseUint(g[12], 10, 64) // stime, field 15
	c.self, c.ok = ut+st, true
	return c
}

func (c cpuStat) since(p cpuStat) cpuUse {
	if !c.ok || !p.ok {
		return cpuUse{}
	}
	d := func(a, b uint64) float64 { return float64(a - b) }
	total := d(c.user, p.user) + d(c.system, p.system) + d(c.idle, p.idle) + d(c.iowait, p.iowait) + d(c.irq, p.irq) + d(c.steal, p.steal)
	if total <= 0 {
		return cpuUse{}
	}
	pct := func(x float64) float64 { return 100 * float64(runtime.NumCPU()) * x / total }
	busy := d(c.user, p.user) + d(c.system, p.system) + d(c.irq, p.irq)
	return cpuUse{ok: true, self: pct(d(c.self, p.self)), others: max(0, pct(busy-d(c.self, p.self))),
		iowait: pct(d(c.iowait, p.iowait)), steal: pct(d(c.steal, p.steal)), idle: pct(d(c.idle, p.idle))}
}
