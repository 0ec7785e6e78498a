package upstream

import (
	"bytes"
	"context"
	"errors"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// step is one scripted answer of the fake upstream.
type step struct {
	code       int
	retryAfter string
	// retryAfterIn, when set, sends Retry-After as an HTTP date this far
	// from the moment the request is answered (dates have whole seconds).
	retryAfterIn time.Duration
}

// fake is an upstream answering with a script (the last step repeats) and
// recording when each request came and what body it carried.
type fake struct {
	mu     sync.Mutex
	script []step
	times  []time.Time
	bodies []string
	srv    *httptest.Server
}

func newFake(t *testing.T, script ...step) *fake {
	f := &fake{script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		n := len(f.times)
		f.times = append(f.times, time.Now())
		f.bodies = append(f.bodies, string(b))
		st := f.script[min(n, len(f.script)-1)]
		f.mu.Unlock()
		if st.retryAfterIn > 0 {
			w.Header().Set("Retry-After", time.Now().Add(st.retryAfterIn).UTC().Format(http.TimeFormat))
		}
		if st.retryAfter != "" {
			w.Header().Set("Retry-After", st.retryAfter)
		}
		w.WriteHeader(st.code)
		_, _ = io.WriteString(w, "answer")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.times)
}

func (f *fake) setScript(s ...step) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script, f.times, f.bodies = s, nil, nil
}

func fastConfig(name string) Config {
	return Config{
		Name:         name,
		RetryMax:     4,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		Budget:       5 * time.Second,
		MinRequests:  1000, // breaker out of the way unless a test wants it
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func mustReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		idempotent bool
		script     []step
		wantCode   int   // 0: an error is expected
		wantErr    error // errors.Is target
		wantCalls  int
		minGap     time.Duration // least time between the last two requests
	}{
		{"500 then ok", "GET", true, []step{{code: 500}, {code: 500}, {code: 200}}, 200, nil, 3, 0},
		{"502 504 then ok", "PUT", true, []step{{code: 502}, {code: 504}, {code: 200}}, 200, nil, 3, 0},
		{"503 then ok", "DELETE", true, []step{{code: 503}, {code: 200}}, 200, nil, 2, 0},
		{"429 Retry-After seconds", "GET", true, []step{{code: 429, retryAfter: "1"}, {code: 200}}, 200, nil, 2, 900 * time.Millisecond},
		{"429 Retry-After date", "GET", true, []step{{code: 429, retryAfterIn: 3 * time.Second}, {code: 200}}, 200, nil, 2, 1500 * time.Millisecond},
		{"503 Retry-After 1", "GET", true, []step{{code: 503, retryAfter: "1"}, {code: 200}}, 200, nil, 2, 900 * time.Millisecond},
		{"501 not retried", "GET", true, []step{{code: 501}}, 501, nil, 1, 0},
		{"404 not retried", "GET", true, []step{{code: 404}}, 404, nil, 1, 0},
		{"400 not retried", "POST", false, []step{{code: 400}}, 400, nil, 1, 0},
		{"idempotent POST retried on 500", "POST", true, []step{{code: 500}, {code: 201}}, 201, nil, 2, 0},
		{"retries exhausted", "GET", true, []step{{code: 500}}, 0, ErrRetriesExhausted, 5, 0},
		{"POST 503+Retry-After retried", "POST", false, []step{{code: 503, retryAfter: "0"}, {code: 201}}, 201, nil, 2, 0},
		{"POST 429 retried", "POST", false, []step{{code: 429}, {code: 201}}, 201, nil, 2, 0},
		{"POST 500 ambiguous", "POST", false, []step{{code: 500}, {code: 201}}, 0, ErrAmbiguous, 1, 0},
		{"POST 502 ambiguous", "POST", false, []step{{code: 502}, {code: 201}}, 0, ErrAmbiguous, 1, 0},
		{"POST 504 ambiguous", "POST", false, []step{{code: 504}, {code: 201}}, 0, ErrAmbiguous, 1, 0},
		{"POST 503 without Retry-After ambiguous", "POST", false, []step{{code: 503}, {code: 201}}, 0, ErrAmbiguous, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.script...)
			c := New(fastConfig("t"))
			body := ""
			if tc.method == "POST" || tc.method == "PUT" {
				body = `{"order":"ord_1"}`
			}
			resp, err := c.Do(mustReq(t, tc.method, f.srv.URL+"/x", body), tc.idempotent)
			if tc.wantCode != 0 {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.wantCode || string(b) != "answer" {
					t.Fatalf("got %d %q, want %d answer", resp.StatusCode, b, tc.wantCode)
				}
			} else {
				if resp != nil {
					t.Fatalf("response returned with error")
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tc.script[0].code {
					t.Fatalf("err %v carries no StatusError %d", err, tc.script[0].code)
				}
			}
			if got := f.count(); got != tc.wantCalls {
				t.Fatalf("server saw %d requests, want %d", got, tc.wantCalls)
			}
			for i, b := range f.bodies {
				if b != body {
					t.Fatalf("request %d body %q, want %q (body not replayed)", i, b, body)
				}
			}
			if tc.minGap > 0 {
				gap := f.times[len(f.times)-1].Sub(f.times[len(f.times)-2])
				if gap < tc.minGap {
					t.Fatalf("Retry-After not honoured: gap %s < %s", gap, tc.minGap)
				}
			}
		})
	}
}

func TestBudget(t *testing.T) {
	t.Run("Retry-After beyond budget", func(t *testing.T) {
		f := newFake(t, step{code: 503, retryAfter: "5"})
		cfg := fastConfig("t")
		cfg.Budget = time.Second
		start := time.Now()
		_, err := New(cfg).Do(mustReq(t, "GET", f.srv.URL, ""), true)
		if !errors.Is(err, ErrBudget) || time.Since(start) > 900*time.Millisecond {
			t.Fatalf("err = %v after %s, want ErrBudget at once", err, time.Since(start))
		}
		if f.count() != 1 {
			t.Fatalf("server saw %d", f.count())
		}
	})
	t.Run("retries use up budget", func(t *testing.T) {
		f := newFake(t, step{code: 500})
		cfg := fastConfig("t")
		cfg.RetryMax = 1000
		cfg.RetryWaitMin, cfg.RetryWaitMax = 20*time.Millisecond, 40*time.Millisecond
		cfg.Budget = 300 * time.Millisecond
		start := time.Now()
		_, err := New(cfg).Do(mustReq(t, "GET", f.srv.URL, ""), true)
		if !errors.Is(err, ErrBudget) || errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("took %s", d)
		}
		if f.count() < 3 {
			t.Fatalf("only %d attempts", f.count())
		}
	})
	slow := func(t *testing.T) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	t.Run("slow GET", func(t *testing.T) {
		cfg := fastConfig("t")
		cfg.Budget = 200 * time.Millisecond
		_, err := New(cfg).Do(mustReq(t, "GET", slow(t), ""), true)
		if !errors.Is(err, ErrBudget) || errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("slow POST is ambiguous", func(t *testing.T) {
		cfg := fastConfig("t")
		cfg.Budget = 200 * time.Millisecond
		_, err := New(cfg).Do(mustReq(t, "POST", slow(t), "x"), false)
		if !errors.Is(err, ErrBudget) || !errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("body readable after budget", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "late body")
		}))
		defer srv.Close()
		cfg := fastConfig("t")
		cfg.Budget = 100 * time.Millisecond
		resp, err := New(cfg).Do(mustReq(t, "GET", srv.URL, ""), true)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "late body" {
			t.Fatalf("body %q, %v", b, err)
		}
	})
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNonIdempotentConnectionFailures(t *testing.T) {
	t.Run("connection refused is retried", func(t *testing.T) {
		f := newFake(t, step{code: 201})
		dead := closedAddr(t)
		var dials atomic.Int32
		var d net.Dialer
		cfg := fastConfig("t")
		cfg.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return d.DialContext(ctx, network, dead) // a real ECONNREFUSED
			}
			return d.DialContext(ctx, network, addr)
		}}
		resp, err := New(cfg).Do(mustReq(t, "POST", f.srv.URL+"/orders", "order"), false)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 || f.count() != 1 || dials.Load() != 2 || f.bodies[0] != "order" {
			t.Fatalf("code %d, server saw %d, dials %d, body %q", resp.StatusCode, f.count(), dials.Load(), f.bodies)
		}
	})
	t.Run("connection refused throughout", func(t *testing.T) {
		_, err := New(fastConfig("t")).Do(mustReq(t, "POST", "http://"+closedAddr(t)+"/orders", "order"), false)
		if !errors.Is(err, ErrRetriesExhausted) || errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("dns failure is retried", func(t *testing.T) {
		_, err := New(fastConfig("t")).Do(mustReq(t, "POST", "http://no-such-host.invalid/orders", "order"), false)
		if !errors.Is(err, ErrRetriesExhausted) || errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v", err)
		}
	})

	// A server that reads the whole request and then drops the connection:
	// the order may exist.
	dropper := func(t *testing.T) (string, *atomic.Int32) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			n.Add(1)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL, &n
	}
	t.Run("drop after body is ambiguous", func(t *testing.T) {
		u, n := dropper(t)
		resp, err := New(fastConfig("t")).Do(mustReq(t, "POST", u+"/orders", "order"), false)
		if resp != nil || !errors.Is(err, ErrAmbiguous) {
			t.Fatalf("err = %v", err)
		}
		if n.Load() != 1 {
			t.Fatalf("server saw %d requests, want exactly 1", n.Load())
		}
	})
	t.Run("drop is retried when idempotent", func(t *testing.T) {
		u, n := dropper(t)
		_, err := New(fastConfig("t")).Do(mustReq(t, "PUT", u+"/orders/1", "order"), true)
		if !errors.Is(err, ErrRetriesExhausted) || n.Load() != 5 {
			t.Fatalf("err = %v, server saw %d", err, n.Load())
		}
	})
}

func TestBodies(t *testing.T) {
	t.Run("GetBody used", func(t *testing.T) {
		f := newFake(t, step{code: 500}, step{code: 200})
		req, _ := http.NewRequest("PUT", f.srv.URL, bytes.NewReader([]byte("payload")))
		resp, err := New(fastConfig("t")).Do(req, true)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if f.count() != 2 || f.bodies[0] != "payload" || f.bodies[1] != "payload" {
			t.Fatalf("bodies %q", f.bodies)
		}
	})
	t.Run("too large without GetBody", func(t *testing.T) {
		f := newFake(t, step{code: 200})
		cfg := fastConfig("t")
		cfg.MaxBodyBytes = 4
		req, _ := http.NewRequest("POST", f.srv.URL, io.NopCloser(strings.NewReader("12345")))
		_, err := New(cfg).Do(req, false)
		if !errors.Is(err, ErrBodyTooLarge) || f.count() != 0 {
			t.Fatalf("err = %v, server saw %d", err, f.count())
		}
	})
}

func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func value(m *dto.Metric) float64 {
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func TestBreaker(t *testing.T) {
	f := newFake(t, step{code: 500})
	reg := prometheus.NewRegistry()
	var logs syncbuf.Buffer
	cfg := fastConfig("shopify")
	cfg.RetryMax = -1
	cfg.MinRequests = 4
	cfg.OpenTimeout = 200 * time.Millisecond
	cfg.Registerer = reg
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	c := New(cfg)
	state := func() float64 {
		return gauge(t, reg, "bridge_upstream_breaker_state", map[string]string{"upstream": "shopify"})
	}

	for i := range 4 {
		_, err := c.Do(mustReq(t, "GET", f.srv.URL, ""), true)
		if !errors.Is(err, ErrRetriesExhausted) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if c.BreakerState() != "open" || state() != 2 {
		t.Fatalf("breaker %s, gauge %v", c.BreakerState(), state())
	}
	_, err := c.Do(mustReq(t, "POST", f.srv.URL, "order"), false)
	if !errors.Is(err, ErrOpen) || errors.Is(err, ErrAmbiguous) || f.count() != 4 {
		t.Fatalf("err = %v, server saw %d", err, f.count())
	}

	// Half-open: a failing probe opens it again.
	time.Sleep(250 * time.Millisecond)
	if _, err := c.Do(mustReq(t, "GET", f.srv.URL, ""), true); !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("probe: %v", err)
	}
	if c.BreakerState() != "open" {
		t.Fatalf("after failed probe: %s", c.BreakerState())
	}

	// Recovery: the upstream is back, the probe closes the breaker.
	f.setScript(step{code: 200})
	time.Sleep(250 * time.Millisecond)
	// BreakerState moves open → half-open once OpenTimeout passed; the gauge follows.
	if c.BreakerState() != "half-open" || state() != 1 {
		t.Fatalf("breaker %s, gauge %v", c.BreakerState(), state())
	}
	resp, err := c.Do(mustReq(t, "GET", f.srv.URL, ""), true)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c.BreakerState() != "closed" || state() != 0 {
		t.Fatalf("breaker %s, gauge %v", c.BreakerState(), state())
	}

	out := logs.String()
	for _, want := range []string{`"from":"closed","to":"open"`, `"from":"open","to":"half-open"`, `"from":"half-open","to":"open"`, `"from":"half-open","to":"closed"`, `"name":"shopify"`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	counter := func(outcome string) float64 {
		return gauge(t, reg, "bridge_upstream_requests_total", map[string]string{"upstream": "shopify", "outcome": outcome})
	}
	if counter("failure") != 5 || counter("open") != 1 || counter("ok") != 1 {
		t.Fatalf("failure %v open %v ok %v", counter("failure"), counter("open"), counter("ok"))
	}
}

func TestBreakerIgnores4xxAnd429(t *testing.T) {
	for _, code := range []int{400, 404, 409, 422, 429, 501} {
		f := newFake(t, step{code: code})
		cfg := fastConfig("t")
		cfg.RetryMax = -1
		cfg.MinRequests = 3
		c := New(cfg)
		for range 10 {
			resp, err := c.Do(mustReq(t, "GET", f.srv.URL, ""), true)
			if err == nil {
				resp.Body.Close()
			}
		}
		if c.BreakerState() != "closed" || f.count() != 10 {
			t.Fatalf("%d: breaker %s, server saw %d", code, c.BreakerState(), f.count())
		}
	}
}

func TestBreakerOpensMidRetries(t *testing.T) {
	f := newFake(t, step{code: 500})
	cfg := fastConfig("t")
	cfg.RetryMax = 10
	cfg.MinRequests = 3
	_, err := New(cfg).Do(mustReq(t, "GET", f.srv.URL, ""), true)
	if !errors.Is(err, ErrOpen) || f.count() != 3 {
		t.Fatalf("err = %v, server saw %d", err, f.count())
	}
}

func TestMetricsTwoClientsOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	ok := newFake(t, step{code: 200})
	flaky := newFake(t, step{code: 503}, step{code: 200})
	cfgA, cfgB := fastConfig("shopify"), fastConfig("woocommerce")
	cfgA.Registerer, cfgB.Registerer = reg, reg
	a, b := New(cfgA), New(cfgB)
	for _, call := range []struct {
		c   *Client
		url string
	}{{a, ok.srv.URL}, {a, ok.srv.URL}, {b, flaky.srv.URL}} {
		resp, err := call.c.Do(mustReq(t, "GET", call.url, ""), true)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	_, err := b.Do(mustReq(t, "POST", "http://"+closedAddr(t), "x"), false)
	if err == nil {
		t.Fatal("want error")
	}
	f, _ := a.Do(mustReq(t, "GET", ok.srv.URL, ""), true) // a third ok for a
	f.Body.Close()
	want := map[[2]string]float64{
		{"shopify", "ok"}: 3, {"shopify", "retry"}: 0, {"shopify", "failure"}: 0,
		{"woocommerce", "ok"}: 1, {"woocommerce", "retry"}: 5, {"woocommerce", "failure"}: 1,
		{"woocommerce", "ambiguous"}: 0, {"woocommerce", "open"}: 0,
	}
	for k, v := range want {
		if got := gauge(t, reg, "bridge_upstream_requests_total", map[string]string{"upstream": k[0], "outcome": k[1]}); got != v {
			t.Errorf("%v = %v, want %v", k, got, v)
		}
	}
	for _, n := range []string{"shopify", "woocommerce"} {
		if got := gauge(t, reg, "bridge_upstream_breaker_state", map[string]string{"upstream": n}); got != 0 {
			t.Errorf("state %s = %v", n, got)
		}
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	var logs syncbuf.Buffer
	f := newFake(t, step{code: 500})
	urls := []string{
		f.srv.URL + "/admin/orders.json?api_key=TOPSECRET&token=TOPSECRET",
		"http://user:TOPSECRET@" + closedAddr(t) + "/x?sig=TOPSECRET",
	}
	for _, idem := range []bool{true, false} {
		for _, u := range urls {
			cfg := fastConfig("t")
			cfg.MinRequests = 2
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := New(cfg)
			for range 2 {
				req := mustReq(t, "POST", u, "body")
				req.Header.Set("Authorization", "Bearer TOPSECRET")
				_, err := c.Do(req, idem)
				if err == nil {
					t.Fatal("want error")
				}
				if strings.Contains(err.Error(), "TOPSECRET") {
					t.Errorf("secret in error: %v", err)
				}
			}
		}
	}
	out := logs.String()
	if strings.Contains(out, "TOPSECRET") || strings.Contains(out, "api_key") || strings.Contains(out, "Bearer") {
		t.Fatalf("secret in logs:\n%s", out)
	}
	if !strings.Contains(out, "/admin/orders.json") {
		t.Fatalf("logs lack the redacted path:\n%s", out)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		low  time.Duration
		high time.Duration
	}{
		{"", false, 0, 0},
		{"3", true, 3 * time.Second, 3 * time.Second},
		{"-1", false, 0, 0},
		{"soon", false, 0, 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), true, 0, 0},
		{time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat), true, 8 * time.Second, 10 * time.Second},
	} {
		d, ok := parseRetryAfter(tc.in)
		if ok != tc.ok || d < tc.low || d > tc.high {
			t.Errorf("%q: %s %v", tc.in, d, ok)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := range 40 {
		d := backoff(100*time.Millisecond, time.Second, attempt)
		if d < 50*time.Millisecond || d > time.Second {
			t.Fatalf("attempt %d: %s", attempt, d)
		}
	}
}

// A redirected write comes back as the 3xx (never replayed as a GET); a
// redirected read is followed.
func TestRedirects(t *testing.T) {
	var posts, gets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old":
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		case "/new":
			if r.Method == http.MethodPost {
				posts++
			} else {
				gets++
			}
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	c := New(Config{Name: "redirects"})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/old", strings.NewReader(`{"a":1}`))
	resp, err := c.Do(req, false)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || posts != 0 || gets != 0 {
		t.Fatalf("POST: HTTP %d, %d posts and %d gets reached the new URL", resp.StatusCode, posts, gets)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/old", nil)
	if resp, err = c.Do(req, true); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || gets != 1 {
		t.Fatalf("GET: HTTP %d, %d gets", resp.StatusCode, gets)
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"two\nlines  and\tspaces", 40, "two lines and spaces"},
		{"abcdefghij", 4, "abcd…"},
		{"héllo", 2, "h…"}, // é is two bytes: never cut inside it
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := Excerpt(tt.in, tt.n); got != tt.want {
			t.Errorf("Excerpt(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// A redirect from https to plain http is refused for every method, before
// anything reaches the http URL: Go forwards Authorization on a redirect to
// the same host, and keys in the query string travel with the URL.
func TestInsecureRedirectRefused(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(plain.Close)
	var tlsHits atomic.Int32
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tlsHits.Add(1)
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/api?"+r.URL.RawQuery, http.StatusMovedPermanently)
		case "/to-https":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(secure.Close)
	tests := []struct {
		name, method, url string
		idempotent        bool
		refused           bool
		tlsHits           int32
	}{
		{"https to http, GET", http.MethodGet, secure.URL + "/to-http?consumer_secret=cs_secret", true, true, 1},
		{"https to http, POST", http.MethodPost, secure.URL + "/to-http?consumer_secret=cs_secret", false, true, 1},
		{"https to https", http.MethodGet, secure.URL + "/to-https", true, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plainHits.Store(0)
			tlsHits.Store(0)
			cfg := fastConfig("redirects")
			cfg.Transport = secure.Client().Transport
			c := New(cfg)
			req := mustReq(t, tt.method, tt.url, "")
			req.SetBasicAuth("ck_key", "cs_secret")
			resp, err := c.Do(req, tt.idempotent)
			if resp != nil {
				resp.Body.Close()
			}
			if got := errors.Is(err, ErrInsecureRedirect); got != tt.refused {
				t.Fatalf("refused %v, want %v: %v", got, tt.refused, err)
			}
			if tt.refused && (errors.Is(err, ErrAmbiguous) || strings.Contains(err.Error(), "cs_secret")) {
				t.Errorf("error: %v", err)
			}
			if n := plainHits.Load(); n != 0 {
				t.Errorf("%d requests reached the plain http URL", n)
			}
			if n := tlsHits.Load(); n != tt.tlsHits {
				t.Errorf("%d requests to the https server, want %d (no retries of a refused redirect)", n, tt.tlsHits)
			}
		})
	}
}
