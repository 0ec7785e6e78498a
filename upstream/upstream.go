// Package upstream is the one resilient HTTP client every store adapter and
// push target uses: retries (hashicorp/go-retryablehttp) within a time
// budget, and one circuit breaker per upstream (sony/gobreaker), with state
// changes logged and exported as Prometheus metrics.
//
// # Retries
//
// A call is retried on connection errors, 5xx answers other than 501, and
// 429, with exponential backoff and jitter between RetryWaitMin and
// RetryWaitMax, or after the delay a 429/503 names in Retry-After (seconds
// or an HTTP date). Retries stop after RetryMax retries, or as soon as the
// next wait would not fit in the call's Budget (ErrBudget).
//
// # Non-idempotent requests: the ErrAmbiguous contract
//
// Do(req, false) marks a request that must not run twice (POST creating an
// order). Such a request is retried only when the failure proves the server
// did not process it:
//
//   - the connection could not be opened (connection refused, DNS failure):
//     no byte of the request left the bridge;
//   - 429 Too Many Requests (with or without Retry-After: the server refused
//     the request without processing it, RFC 6585), or 503 with a
//     Retry-After header (the server says it is not processing requests).
//
// Any other failure after the request may have reached the server — a
// timeout or a reset after sending, the server closing the connection, 500,
// 502, 504, 503 without Retry-After, the caller's context ending mid-flight —
// returns an error wrapping ErrAmbiguous. The request may or may not have
// taken effect: the caller MUST look the resource up (e.g. the order by the
// bridge's order id) before trying again, and must never simply resend it.
//
// Do(req, true) (GET, PUT, DELETE, or a POST the upstream deduplicates, e.g.
// with an idempotency key) retries every retryable failure.
//
// # Circuit breaker
//
// Each Client has one breaker. Every attempt (not every call) counts:
// 5xx other than 501, connection errors and timeouts are failures; 2xx, 3xx,
// 4xx and 501 are successes (the upstream is up and answering). 429 is
// throttling, not a fault: it is neither a success nor a failure, so a rate
// limit neither trips the breaker nor hides real failures. A caller's own
// cancellation is not counted either. The breaker opens when, within
// Interval, at least MinRequests counted attempts were made and the share of
// failures reaches FailureRatio; after OpenTimeout it lets HalfOpenRequests
// probes through, which close it again on success. While it is open (or its
// half-open probes are taken), Do returns an error wrapping ErrOpen at once
// without calling the upstream; if it opens between two attempts of one
// call, the call stops retrying with ErrOpen.
//
// # Metrics
//
// With a Registerer: gauge bridge_upstream_breaker_state{upstream} (0
// closed, 1 half-open, 2 open) and counter
// bridge_upstream_requests_total{upstream,outcome}: each call ends in
// exactly one of ok (a response was returned, whatever its status),
// failure, ambiguous or open, and each retry adds one "retry". Several
// clients may share one Registerer (the vectors are shared, labelled by
// Config.Name); two clients with the same Name share their series.
//
// # Bodies and secrets
//
// Request bodies are made replayable: GetBody is used when set, otherwise
// the body is read once into memory (at most MaxBodyBytes). On success the
// response is returned with its body unread; the budget covers getting the
// response headers, reading the body is bounded by the request's own
// context only. On failure every response body is drained and closed.
// Logs and returned errors never contain URL query strings, user info or
// any header (Authorization included).
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Errors returned by Do (wrapped; test with errors.Is).
var (
	// ErrAmbiguous: a non-idempotent request failed after it may have been
	// processed. Look the resource up before trying again.
	ErrAmbiguous = errors.New("upstream: outcome unknown, request may have been processed")
	// ErrOpen: the circuit breaker is open; the upstream was not called.
	ErrOpen = errors.New("upstream: circuit breaker open")
	// ErrBudget: the call's time budget ran out (or the next retry would not
	// fit in it).
	ErrBudget = errors.New("upstream: time budget exhausted")
	// ErrRetriesExhausted: every attempt failed with a retryable failure.
	ErrRetriesExhausted = errors.New("upstream: retries exhausted")
	// ErrBodyTooLarge: the request body has no GetBody and exceeds
	// MaxBodyBytes, so it cannot be replayed. Nothing was sent.
	ErrBodyTooLarge = errors.New("upstream: request body too large to buffer for retries")
	// ErrInsecureRedirect: an https upstream redirected to plain http. The
	// redirect is not followed (it would carry the credentials in clear
	// text: net/http forwards Authorization to the same host, and keys in
	// the query string travel with the URL) nor retried.
	ErrInsecureRedirect = errors.New("upstream: refused a redirect from https to plain http (credentials would travel in clear text); use the URL the server redirects to, over https")
)

// StatusError is the last HTTP answer of a failed call (wrapped in the
// error Do returns; get it with errors.As).
type StatusError struct {
	StatusCode int
	// RetryAfter is the parsed Retry-After header, 0 when absent.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	s := "upstream answered " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.RetryAfter > 0 {
		s += " (Retry-After " + e.RetryAfter.String() + ")"
	}
	return s
}

// Config configures one upstream's client. Zero values take the defaults.
type Config struct {
	// Name of the upstream, e.g. "shopify": breaker name and metric label.
	Name string

	RetryMax     int           // retries after the first attempt; default 4 (negative: no retries)
	RetryWaitMin time.Duration // default 250ms
	RetryWaitMax time.Duration // default 10s
	// Budget is the total time for one call, retries and waits included,
	// until the response headers arrive. Default 20s.
	Budget time.Duration

	FailureRatio     float64       // breaker opens at this failure share; default 0.5
	MinRequests      uint32        // ... once this many attempts were counted; default 10
	OpenTimeout      time.Duration // open → half-open after; default 30s
	Interval         time.Duration // closed-state counting window; default 60s
	HalfOpenRequests uint32        // probes let through when half-open; default 1

	// MaxBodyBytes bounds a request body buffered for replay (when the
	// request has no GetBody). Default 10 MiB.
	MaxBodyBytes int64

	Logger     *slog.Logger          // default slog.Default()
	Registerer prometheus.Registerer // optional
	Transport  http.RoundTripper     // default a pooled transport (go-cleanhttp)
}

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = "upstream"
	}
	if c.RetryMax == 0 {
		c.RetryMax = 4
	} else if c.RetryMax < 0 {
		c.RetryMax = 0
	}
	if c.RetryWaitMin <= 0 {
		c.RetryWaitMin = 250 * time.Millisecond
	}
	if c.RetryWaitMax <= 0 {
		c.RetryWaitMax = 10 * time.Second
	}
	if c.RetryWaitMax < c.RetryWaitMin {
		c.RetryWaitMax = c.RetryWaitMin
	}
	if c.Budget <= 0 {
		c.Budget = 20 * time.Second
	}
	if c.FailureRatio <= 0 {
		c.FailureRatio = 0.5
	}
	if c.MinRequests == 0 {
		c.MinRequests = 10
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 30 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = 60 * time.Second
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = 1
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 10 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Transport == nil {
		c.Transport = cleanhttp.DefaultPooledTransport()
	}
}

// Client is safe for concurrent use. Create one per upstream and keep it.
type Client struct {
	cfg     Config
	log     *slog.Logger
	http    *http.Client
	cb      *gobreaker.CircuitBreaker[*http.Response]
	state   prometheus.Gauge
	outcome *prometheus.CounterVec
}

// Outcome label values of bridge_upstream_requests_total.
const (
	outcomeOK        = "ok"
	outcomeRetry     = "retry"
	outcomeFailure   = "failure"
	outcomeAmbiguous = "ambiguous"
	outcomeOpen      = "open"
)

// New returns the client for one upstream.
func New(cfg Config) *Client {
	cfg.defaults()
	c := &Client{cfg: cfg, log: cfg.Logger.With("upstream", cfg.Name)}

	stateVec := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bridge_upstream_breaker_state",
		Help: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
	}, []string{"upstream"})
	reqVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bridge_upstream_requests_total",
		Help: "Upstream calls by final outcome (ok, failure, ambiguous, open), plus one retry per retried attempt.",
	}, []string{"upstream", "outcome"})
	if cfg.Registerer != nil {
		stateVec = register(cfg.Registerer, stateVec, c.log)
		reqVec = register(cfg.Registerer, reqVec, c.log)
	}
	c.state = stateVec.WithLabelValues(cfg.Name)
	c.state.Set(0)
	c.outcome = reqVec
	for _, o := range []string{outcomeOK, outcomeRetry, outcomeFailure, outcomeAmbiguous, outcomeOpen} {
		reqVec.WithLabelValues(cfg.Name, o)
	}

	c.cb = gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: cfg.HalfOpenRequests,
		Interval:    cfg.Interval,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			counted := n.TotalSuccesses + n.TotalFailures
			return counted >= cfg.MinRequests &&
				float64(n.TotalFailures)/float64(counted) >= cfg.FailureRatio
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.state.Set(float64(to))
			lvl := slog.LevelWarn
			if to == gobreaker.StateClosed {
				lvl = slog.LevelInfo
			}
			c.log.Log(context.Background(), lvl, "upstream circuit breaker state changed",
				"name", name, "from", from.String(), "to", to.String())
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded: func(err error) bool {
			var v *verdict
			return errors.As(err, &v) && v.excluded
		},
	})
	c.http = &http.Client{Transport: &breakerTransport{c: c, base: cfg.Transport}, CheckRedirect: keepMethod}
	return c
}

// keepMethod follows redirects of GET and HEAD only: net/http would turn a
// redirected POST into a GET without its body, and a store API that
// redirects a write (http → https, a moved shop) must be fixed in the
// config, not silently half-followed. The 3xx comes back to the caller.
// A redirect from https to plain http is refused for every method
// (ErrInsecureRedirect): the request would carry the credentials in clear.
func keepMethod(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme != "https" {
		for _, v := range via {
			if v.URL.Scheme == "https" {
				return ErrInsecureRedirect
			}
		}
	}
	if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
		return http.ErrUseLastResponse
	}
	return nil
}

// register registers col, or returns the collector already registered under
// the same descriptor (several clients share one registry).
func register[T prometheus.Collector](reg prometheus.Registerer, col T, log *slog.Logger) T {
	if err := reg.Register(col); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(T); ok {
				return ex
			}
		}
		log.Error("upstream metrics not registered", "err", err)
	}
	return col
}

// Name is the upstream's name.
func (c *Client) Name() string { return c.cfg.Name }

// BreakerState is the breaker's current state: "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.cb.State().String() }

// Do sends req with retries within the budget, through the breaker. See the
// package documentation for which failures are retried and the ErrAmbiguous
// contract of idempotent=false. Like http.Client.Do it closes req.Body.
// On success the response body is unread and the caller must close it; on
// error no response is returned.
func (c *Client) Do(req *http.Request, idempotent bool) (*http.Response, error) {
	target := redactURL(req.URL)
	fail := func(outcome string, err error) (*http.Response, error) {
		c.outcome.WithLabelValues(c.cfg.Name, outcome).Inc()
		lvl := slog.LevelWarn
		if outcome == outcomeOpen {
			lvl = slog.LevelDebug // the state change itself is logged once
		}
		c.log.Log(req.Context(), lvl, "upstream request failed", "method", req.Method, "url", target,
			"outcome", outcome, "err", err)
		return nil, err
	}

	if c.cb.State() == gobreaker.StateOpen {
		closeBody(req.Body)
		return fail(outcomeOpen, fmt.Errorf("%s %s: %w (upstream %s)", req.Method, target, ErrOpen, c.cfg.Name))
	}

	body, err := c.replayableBody(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, target, err)
	}

	// The budget cancels the context only while Do runs: once the headers
	// are in, the timer is stopped and the body stays readable.
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(c.cfg.Budget, func() { cancel(errBudgetTimer) })
	s := &call{
		c:          c,
		method:     req.Method,
		target:     target,
		idempotent: idempotent,
		deadline:   time.Now().Add(c.cfg.Budget),
	}

	out := req.Clone(ctx)
	out.Body = nil
	rr, err := retryablehttp.FromRequest(out)
	if err == nil && body != nil {
		err = rr.SetBody(body)
		if _, buffered := body.([]byte); !buffered {
			rr.ContentLength = req.ContentLength // GetBody: keep the caller's length
		}
	}
	if err != nil {
		timer.Stop()
		cancel(nil)
		return nil, fmt.Errorf("%s %s: %w", req.Method, target, err)
	}

	rc := &retryablehttp.Client{
		HTTPClient:   c.http,
		RetryMax:     c.cfg.RetryMax,
		RetryWaitMin: c.cfg.RetryWaitMin,
		RetryWaitMax: c.cfg.RetryWaitMax,
		CheckRetry:   s.checkRetry,
		Backoff:      s.backoff,
		ErrorHandler: s.errorHandler,
	}
	resp, err := rc.Do(rr)
	if err == nil {
		if timer.Stop() {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			c.outcome.WithLabelValues(c.cfg.Name, outcomeOK).Inc()
			return resp, nil
		}
		// The budget fired just as the headers arrived: the body is cut off.
		drain(resp.Body)
		s.lastErr = &StatusError{StatusCode: resp.StatusCode}
		err = context.Cause(ctx)
	}
	timer.Stop()
	cause := context.Cause(ctx)
	cancel(nil)

	if s.final == nil {
		// Retryablehttp returned the context's error while waiting to
		// retry, or the budget fired as the answer came in.
		switch {
		case errors.Is(cause, errBudgetTimer):
			s.final = fmt.Errorf("%s %s: %w after %d attempt(s): %w", s.method, s.target, ErrBudget, s.attempts, s.last())
		default:
			s.final = fmt.Errorf("%s %s: canceled after %d attempt(s): %w", s.method, s.target, s.attempts, redactErr(err))
		}
	}
	switch {
	case errors.Is(s.final, ErrAmbiguous):
		return fail(outcomeAmbiguous, s.final)
	case errors.Is(s.final, ErrOpen):
		return fail(outcomeOpen, s.final)
	default:
		return fail(outcomeFailure, s.final)
	}
}

var errBudgetTimer = errors.New("upstream budget timer")

// replayableBody returns what retryablehttp needs to resend the body, and
// closes the caller's body.
func (c *Client) replayableBody(req *http.Request) (any, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.GetBody != nil {
		closeBody(req.Body)
		return func() (io.Reader, error) { return req.GetBody() }, nil
	}
	defer closeBody(req.Body)
	buf, err := io.ReadAll(io.LimitReader(req.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if int64(len(buf)) > c.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("%w (limit %d bytes; set GetBody)", ErrBodyTooLarge, c.cfg.MaxBodyBytes)
	}
	return buf, nil
}

// call is the state of one Do.
type call struct {
	c          *Client
	method     string
	target     string
	idempotent bool
	deadline   time.Time

	attempts int
	wait     time.Duration // decided by checkRetry, returned by backoff
	lastErr  error         // last attempt's failure (redacted)
	final    error         // set when checkRetry gives up
}

func (s *call) last() error {
	if s.lastErr == nil {
		return errors.New("no attempt completed")
	}
	return s.lastErr
}

// checkRetry classifies each attempt: success (false, nil), retry
// (true, nil), or a final error (false, err).
func (s *call) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	s.attempts++
	var retryAfter time.Duration
	var hasRetryAfter bool
	if err != nil {
		err = redactErr(err)
		s.lastErr = err
		if errors.Is(err, ErrOpen) {
			return s.giveUp(fmt.Errorf("%s %s: attempt %d: %w", s.method, s.target, s.attempts, err))
		}
		if errors.Is(err, ErrInsecureRedirect) {
			// A setup problem: every attempt would be redirected the same.
			return s.giveUp(fmt.Errorf("%s %s: %w", s.method, s.target, err))
		}
		sent := !isNotSent(err)
		if ctx.Err() != nil {
			var e error
			if errors.Is(context.Cause(ctx), errBudgetTimer) {
				e = fmt.Errorf("%s %s: %w after %d attempt(s): %w", s.method, s.target, ErrBudget, s.attempts, err)
			} else {
				e = fmt.Errorf("%s %s: canceled after %d attempt(s): %w", s.method, s.target, s.attempts, err)
			}
			if !s.idempotent && sent {
				e = fmt.Errorf("%w: %w", ErrAmbiguous, e)
			}
			return s.giveUp(e)
		}
		if ok, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err); !ok {
			// Not worth retrying (TLS certificate, bad scheme, redirects).
			e := fmt.Errorf("%s %s: %w", s.method, s.target, err)
			if !s.idempotent && sent {
				e = fmt.Errorf("%w: %w", ErrAmbiguous, e)
			}
			return s.giveUp(e)
		}
		if !s.idempotent && sent {
			return s.giveUp(fmt.Errorf("%s %s: %w: %w", s.method, s.target, ErrAmbiguous, err))
		}
	} else {
		code := resp.StatusCode
		retryAfter, hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		if !retryableStatus(code) {
			return false, nil
		}
		se := &StatusError{StatusCode: code, RetryAfter: retryAfter}
		s.lastErr = se
		notProcessed := code == http.StatusTooManyRequests ||
			(code == http.StatusServiceUnavailable && hasRetryAfter)
		if !s.idempotent && !notProcessed {
			return s.giveUp(fmt.Errorf("%s %s: %w: %w", s.method, s.target, ErrAmbiguous, se))
		}
		if code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
			hasRetryAfter = false
		}
	}

	if s.attempts > s.c.cfg.RetryMax {
		// Retryablehttp stops here and calls errorHandler.
		return true, nil
	}
	wait := backoff(s.c.cfg.RetryWaitMin, s.c.cfg.RetryWaitMax, s.attempts-1)
	if hasRetryAfter {
		wait = retryAfter
	}
	if left := time.Until(s.deadline); wait >= left {
		return s.giveUp(fmt.Errorf("%s %s: %w after %d attempt(s) (next retry in %s, %s left): %w",
			s.method, s.target, ErrBudget, s.attempts, wait.Round(time.Millisecond),
			max(left, 0).Round(time.Millisecond), s.lastErr))
	}
	s.wait = wait
	s.c.outcome.WithLabelValues(s.c.cfg.Name, outcomeRetry).Inc()
	s.c.log.Info("upstream request retry", "method", s.method, "url", s.target,
		"attempt", s.attempts, "wait", wait, "err", s.lastErr)
	return true, nil
}

func (s *call) giveUp(err error) (bool, error) {
	s.final = err
	return false, err
}

func (s *call) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return s.wait
}

func (s *call) errorHandler(resp *http.Response, _ error, _ int) (*http.Response, error) {
	if resp != nil {
		drain(resp.Body)
	}
	if s.final == nil {
		s.final = fmt.Errorf("%s %s: %w after %d attempt(s): %w",
			s.method, s.target, ErrRetriesExhausted, s.attempts, s.last())
	}
	return nil, s.final
}

// retryableStatus: 429 and 5xx other than 501.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests ||
		(code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

// backoff is exponential with "equal jitter": half the exponential step
// plus a random part of the other half, capped at max.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	step := hi
	if attempt < 32 {
		if d := lo << attempt; d > 0 && d < hi {
			step = d
		}
	}
	half := step / 2
	return half + rand.N(step-half+1)
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(time.Until(t), 0), true
}

// verdict carries an attempt's meaning for the breaker through
// CircuitBreaker.Execute.
type verdict struct {
	excluded bool
	err      error // the transport's error, nil for a status verdict
}

func (v *verdict) Error() string {
	if v.err != nil {
		return v.err.Error()
	}
	return "status verdict"
}
func (v *verdict) Unwrap() error { return v.err }

// notSentError marks a transport error raised before any byte of the
// request was written (dial or DNS failure).
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

func isNotSent(err error) bool {
	var ns *notSentError
	return errors.As(err, &ns)
}

// breakerTransport runs each attempt through the breaker and records
// whether the request was written.
type breakerTransport struct {
	c    *Client
	base http.RoundTripper
}

func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { wrote.Store(true) },
		WroteHeaders:     func() { wrote.Store(true) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))

	resp, err := t.c.cb.Execute(func() (*http.Response, error) {
		resp, err := t.base.RoundTrip(req)
		if err != nil {
			if !wrote.Load() && isDialError(err) {
				err = &notSentError{err: err}
			}
			ctx := req.Context()
			callerCanceled := ctx.Err() != nil && !errors.Is(context.Cause(ctx), errBudgetTimer)
			return nil, &verdict{excluded: callerCanceled, err: err}
		}
		switch code := resp.StatusCode; {
		case code == http.StatusTooManyRequests:
			return resp, &verdict{excluded: true}
		case retryableStatus(code):
			return resp, &verdict{}
		}
		return resp, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%w (upstream %s): %w", ErrOpen, t.c.cfg.Name, err)
	}
	var v *verdict
	if errors.As(err, &v) {
		if v.err != nil {
			return nil, v.err
		}
		return resp, nil
	}
	return resp, err
}

func isDialError(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// redactURL keeps scheme, host and path: no user info, query or fragment.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// redactErr strips the query from the URL net/http puts in its errors.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = redactURL(u)
		} else {
			ue.URL = "(url redacted)"
		}
	}
	return err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// Drain reads a little of a response body the caller does not need, so
// the connection can be reused, and closes it. Callers defer it on every
// response Do returns.
func Drain(b io.ReadCloser) { drain(b) }

// Excerpt makes text an upstream sent (an error message) fit for logs and
// errors: one line, at most n bytes, cut on a rune boundary and marked
// with "…".
func Excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// drain reads a little of a discarded body so the connection can be
// reused, then closes it.
func drain(b io.ReadCloser) {
	if b == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 4096))
	_ = b.Close()
}
