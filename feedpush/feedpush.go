// Package feedpush runs the feed push targets (the agent's Feed API, an
// SFTP drop): when each pushes — on a schedule, soon after the catalog
// changed, again after a failure — and what the last push of each did, for
// /readyz, metrics and `bridge feed status`. What a push does is the
// target's business (packages feedapi and sftppush); agents do not pull
// feeds, so a target is how the catalog reaches them.
package feedpush

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acp-bridge/bridge"
)

// Target is one push destination.
type Target interface {
	// Push delivers the current snapshot and returns the state it
	// recorded (bridge.FeedPushStore), also when it fails.
	Push(ctx context.Context) (bridge.FeedPushState, error)
}

// Schedule says when a target pushes.
type Schedule struct {
	// Name is the target's name ("feed_api", "sftp"), as in its state.
	Name   string
	Target Target
	// Every pushes when the last success is this old (0: never by time).
	Every time.Duration
	// AfterChange pushes this long after a new snapshot was announced
	// (Changed), collecting the changes of that window into one push.
	// 0: a snapshot triggers this target only while it has no successful
	// push (the first snapshot after start, or one after a failure).
	AfterChange time.Duration
}

// StateStore reads the targets' recorded states.
type StateStore interface {
	FeedPushState(ctx context.Context, target string) (bridge.FeedPushState, error)
}

// Locker keeps two processes (replicas sharing a Postgres database, or
// `serve` and `bridge feed push` on one SQLite file) from pushing the same
// target at once. Both storage drivers implement it.
type Locker interface {
	// TryLock takes the named lock unless another process holds it.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
}

// ErrBusy: another process is pushing the target; this push did not run.
var ErrBusy = errors.New("another bridge process is pushing this target")

// Retry delays after a failed push: the first retry after RetryMin, then
// doubling up to RetryMax (and never later than the schedule).
const (
	RetryMin = time.Minute
	RetryMax = 30 * time.Minute
)

// Runner pushes its targets in the background. Set the fields, then call
// Run once; Changed, PushNow and Status are safe from any goroutine.
type Runner struct {
	Targets []Schedule
	Store   StateStore
	// Lock, when set, makes a push run only where no other process is
	// pushing the same target (ErrBusy otherwise, retried like a failure).
	Lock Locker
	Log  *slog.Logger
	// Metrics records every push (nil: none).
	Metrics *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetryMin and RetryMax bound the backoff after a failed push
	// (defaults the package's RetryMin and RetryMax).
	RetryMin, RetryMax time.Duration

	once    sync.Once
	changed map[string]chan struct{}
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.changed = make(map[string]chan struct{}, len(r.Targets))
		for _, t := range r.Targets {
			r.changed[t.Name] = make(chan struct{}, 1)
		}
	})
}

// Changed announces a new catalog snapshot; it never blocks. Targets with
// AfterChange push within that delay, however many snapshots arrive in
// the meantime; the others only when they have not pushed successfully.
// A target whose last push failed in this process waits for its backoff
// retry instead, which pushes the latest snapshot — unless it failed for
// want of a snapshot (bridge.ErrNotFound), which this one ends.
func (r *Runner) Changed() {
	r.init()
	for _, t := range r.Targets {
		select {
		case r.changed[t.Name] <- struct{}{}:
		default: // a push is already due
		}
	}
}

// PushNow pushes the named target at once (`bridge feed push`, tests).
func (r *Runner) PushNow(ctx context.Context, name string) (bridge.FeedPushState, error) {
	for _, t := range r.Targets {
		if t.Name == name {
			return r.push(ctx, t)
		}
	}
	return bridge.FeedPushState{}, fmt.Errorf("feed push: no target %q is configured", name)
}

// Status returns the recorded state of every target, in configuration
// order; a target that never pushed has only its name.
func (r *Runner) Status(ctx context.Context) ([]bridge.FeedPushState, error) {
	out := make([]bridge.FeedPushState, 0, len(r.Targets))
	for _, t := range r.Targets {
		st, err := r.Store.FeedPushState(ctx, t.Name)
		if err != nil && !errors.Is(err, bridge.ErrNotFound) {
			return nil, fmt.Errorf("feed push status %s: %w", t.Name, err)
		}
		st.Target = t.Name
		out = append(out, st)
	}
	return out, nil
}

// Run pushes each target when due until ctx ends: at start when its last
// success is older than Every (or it has AfterChange and the snapshot
// moved on since), every Every after that, AfterChange after each
// announced snapshot, and after a failure again with backoff.
func (r *Runner) Run(ctx context.Context) {
	r.init()
	var wg sync.WaitGroup
	for _, t := range r.Targets {
		wg.Go(func() { r.loop(ctx, t) })
	}
	wg.Wait()
}

func (r *Runner) loop(ctx context.Context, t Schedule) {
	timer := time.NewTimer(r.firstDelay(ctx, t))
	defer timer.Stop()
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.changed[t.Name]:
			if retry > 0 {
				// The last push failed and its retry is on the timer:
				// that push reads the latest snapshot and covers this
				// change. Pushing now would skip the backoff, and with
				// the agent down every sync would cost a walk of the
				// whole catalog and a failing request.
				continue
			}
			if t.AfterChange <= 0 {
				if !r.failing(ctx, t) {
					continue // its schedule stands
				}
				break
			}
			// Collect the changes of the window into one push.
			if !sleep(ctx, t.AfterChange) {
				return
			}
			// The push reads the latest snapshot: it covers the
			// snapshots announced while waiting too.
			select {
			case <-r.changed[t.Name]:
			default:
			}
		case <-timer.C:
			// The state is shared by every process on the database:
			// another may have pushed since the timer was set.
			if d := r.firstDelay(ctx, t); d > 0 {
				timer.Reset(d)
				continue
			}
		}
		_, err := r.push(ctx, t)
		if ctx.Err() != nil {
			return
		}
		next := t.Every
		switch {
		case errors.Is(err, bridge.ErrNotFound):
			// No snapshot yet: the first one ends that (Changed pushes at
			// once); until then the timer looks again every RetryMin.
			retry = 0
			if lo, _ := r.retryBounds(); next <= 0 || lo < next {
				next = lo
			}
		case err != nil:
			lo, hi := r.retryBounds()
			retry = min(max(2*retry, lo), hi)
			if next <= 0 || retry < next {
				next = retry
			}
		default:
			retry = 0
		}
		if next <= 0 {
			next = 1<<63 - 1 // only snapshots trigger it
		}
		timer.Reset(next)
	}
}

// failing reports whether t has no successful last push on record.
func (r *Runner) failing(ctx context.Context, t Schedule) bool {
	st, err := r.Store.FeedPushState(ctx, t.Name)
	return err != nil || st.Error != "" || st.LastSuccess.IsZero()
}

// firstDelay is how long from now a target's next push is due by its
// recorded state: at once when it never succeeded or its last push failed
// (or it follows changes, which is cheap when nothing changed), else when
// its last success is Every old.
func (r *Runner) firstDelay(ctx context.Context, t Schedule) time.Duration {
	st, err := r.Store.FeedPushState(ctx, t.Name)
	switch {
	case err != nil, st.Error != "", st.LastSuccess.IsZero():
		return 0
	case t.AfterChange > 0:
		return 0 // cheap when nothing changed: only what changed is sent
	case t.Every <= 0:
		return 1<<63 - 1
	}
	return max(0, st.LastSuccess.Add(t.Every).Sub(r.now()))
}

func (r *Runner) push(ctx context.Context, t Schedule) (bridge.FeedPushState, error) {
	if r.Lock != nil {
		release, ok, err := r.Lock.TryLock(ctx, "feed_push_"+t.Name)
		if err != nil {
			return bridge.FeedPushState{Target: t.Name}, fmt.Errorf("feed push %s: %w", t.Name, err)
		}
		if !ok {
			r.logger().Info("feed push skipped: another process is pushing this target", "target", t.Name)
			return bridge.FeedPushState{Target: t.Name}, fmt.Errorf("feed push %s: %w", t.Name, ErrBusy)
		}
		defer release()
	}
	start := time.Now()
	st, err := r.guard(ctx, t)
	st.Target = t.Name
	r.Metrics.observe(st, err, time.Since(start))
	return st, err
}

// StateSaver is implemented by a StateStore that can also record a state
// (both storage drivers): the runner records a push that panicked, since
// the target did not get to.
type StateSaver interface {
	SaveFeedPushState(ctx context.Context, s bridge.FeedPushState) error
}

// guard runs t's push and turns a panic into a failed push: recorded as
// the target's state (when the store can save), logged with its stack,
// and retried with backoff like any failure. A push runs on whatever the
// remote side holds (file names in an SFTP folder, an agent's answers),
// so one unexpected input must not take `serve` down on every schedule.
func (r *Runner) guard(ctx context.Context, t Schedule) (st bridge.FeedPushState, err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		r.logger().Error("feed push panicked", "target", t.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		err = fmt.Errorf("feed push %s: internal error (panic: %v); the stack is in the log", t.Name, v)
		st = r.recordFailure(ctx, t.Name, err)
	}()
	return t.Target.Push(ctx)
}

// recordFailure records err as the outcome of a push of target that could
// not record it itself, keeping the rest of the state.
func (r *Runner) recordFailure(ctx context.Context, target string, err error) bridge.FeedPushState {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	st, rerr := r.Store.FeedPushState(sctx, target)
	if rerr != nil && !errors.Is(rerr, bridge.ErrNotFound) {
		r.logger().Error("feed push: read the state to record a failure", "target", target, "err", rerr)
	}
	st.Target, st.LastAttempt, st.Error = target, r.now().UTC(), err.Error()
	if s, ok := r.Store.(StateSaver); ok {
		if serr := s.SaveFeedPushState(sctx, st); serr != nil {
			r.logger().Error("feed push: record a failure", "target", target, "err", serr)
		}
	}
	return st
}

func (r *Runner) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *Runner) retryBounds() (lo, hi time.Duration) {
	lo, hi = r.RetryMin, r.RetryMax
	if lo <= 0 {
		lo = RetryMin
	}
	if hi < lo {
		hi = max(RetryMax, lo)
	}
	return lo, hi
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Metrics are the push series, labelled by target.
type Metrics struct {
	runs        *prometheus.CounterVec
	items       *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	rejected    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
}

// NewMetrics registers the push series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_feed_push_runs_total", Help: "Feed pushes by target and result (ok, error).",
		}, []string{"target", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_feed_push_items_total", Help: "Products (Feed API) or variants (files) pushed.",
		}, []string{"target"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_feed_push_bytes_total", Help: "Request or file bytes pushed.",
		}, []string{"target"}),
		rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bridge_feed_push_rejected_products", Help: "Products of the catalog the agent refused (as of the last push).",
		}, []string{"target"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bridge_feed_push_last_success_timestamp_seconds", Help: "Unix time of the last successful push.",
		}, []string{"target"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bridge_feed_push_last_duration_seconds", Help: "How long the last push took.",
		}, []string{"target"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.items, m.bytes, m.rejected, m.lastSuccess, m.duration)
	}
	return m
}

func (m *Metrics) observe(st bridge.FeedPushState, err error, d time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.runs.WithLabelValues(st.Target, result).Inc()
	m.items.WithLabelValues(st.Target).Add(float64(st.Items))
	m.bytes.WithLabelValues(st.Target).Add(float64(st.Bytes))
	m.rejected.WithLabelValues(st.Target).Set(float64(st.Rejected))
	m.duration.WithLabelValues(st.Target).Set(d.Seconds())
	if !st.LastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(st.Target).Set(float64(st.LastSuccess.Unix()))
	}
}
