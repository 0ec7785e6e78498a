package feedpush_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feedpush"
)

// target counts pushes; the first fails pushes fail.
type target struct {
	mu    sync.Mutex
	n     int
	fails int
	at    []time.Time
}

func (t *target) Push(context.Context) (bridge.FeedPushState, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	t.at = append(t.at, time.Now())
	if t.n <= t.fails {
		return bridge.FeedPushState{Error: "agent down"}, errors.New("agent down")
	}
	now := time.Now()
	return bridge.FeedPushState{LastSuccess: now, Items: 2, Bytes: 100}, nil
}

func (t *target) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// states is a StateStore with fixed answers.
type states map[string]bridge.FeedPushState

func (s states) FeedPushState(_ context.Context, name string) (bridge.FeedPushState, error) {
	st, ok := s[name]
	if !ok {
		return bridge.FeedPushState{}, bridge.ErrNotFound
	}
	return st, nil
}

func start(t *testing.T, r *feedpush.Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// TestChangesAreBatched: a target pushes at start, then once per window
// after snapshots, however many arrive in the window.
func TestChangesAreBatched(t *testing.T) {
	tg := &target{}
	r := &feedpush.Runner{Store: states{}, Targets: []feedpush.Schedule{{Name: "feed_api", Target: tg, AfterChange: 150 * time.Millisecond}}}
	start(t, r)
	eventually(t, "push at start", func() bool { return tg.count() == 1 })
	changed := time.Now()
	for range 5 {
		r.Changed()
		time.Sleep(10 * time.Millisecond)
	}
	eventually(t, "push after the changes", func() bool { return tg.count() == 2 })
	tg.mu.Lock()
	waited := tg.at[1].Sub(changed)
	tg.mu.Unlock()
	if waited < 150*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("pushed %s after the first change, want the 150ms window", waited)
	}
	time.Sleep(300 * time.Millisecond)
	if n := tg.count(); n != 2 {
		t.Fatalf("%d pushes for one window of changes, want 2 in all", n)
	}
}

// TestRetryAfterFailure: a failed push is tried again with backoff, well
// before the schedule.
func TestRetryAfterFailure(t *testing.T) {
	tg := &target{fails: 2}
	reg := prometheus.NewRegistry()
	r := &feedpush.Runner{Store: states{}, Metrics: feedpush.NewMetrics(reg), RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Targets: []feedpush.Schedule{{Name: "sftp", Target: tg, Every: time.Hour}}}
	start(t, r)
	eventually(t, "two failures and a success", func() bool { return tg.count() == 3 })
	time.Sleep(100 * time.Millisecond)
	if n := tg.count(); n != 3 {
		t.Fatalf("%d pushes, want no more after the success (next one in an hour)", n)
	}
	if got := counter(t, reg, "bridge_feed_push_runs_total", "error", "sftp"); got != 2 {
		t.Fatalf("error runs metric = %v, want 2", got)
	}
}

// counter reads the counter name whose label values, in the order of
// the label names, are labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels) || lp.GetValue() != labels[i] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

// TestFirstPush: at start a target pushes when it never succeeded, when
// its last push failed, or when its schedule is due; else it waits.
func TestFirstPush(t *testing.T) {
	recent := bridge.FeedPushState{LastSuccess: time.Now().Add(-time.Minute)}
	for _, tc := range []struct {
		name  string
		state states
		want  int
	}{
		{"never pushed", states{}, 1},
		{"last push failed", states{"sftp": {LastSuccess: time.Now(), Error: "down"}}, 1},
		{"due", states{"sftp": {LastSuccess: time.Now().Add(-2 * time.Hour)}}, 1},
		{"not due", states{"sftp": recent}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &target{}
			r := &feedpush.Runner{Store: tc.state, Targets: []feedpush.Schedule{{Name: "sftp", Target: tg, Every: time.Hour}}}
			start(t, r)
			if tc.want > 0 {
				eventually(t, "first push", func() bool { return tg.count() == tc.want })
			}
			time.Sleep(50 * time.Millisecond)
			if n := tg.count(); n != tc.want {
				t.Fatalf("%d pushes at start, want %d", n, tc.want)
			}
		})
	}
}

func TestPushNowAndStatus(t *testing.T) {
	tg := &target{}
	r := &feedpush.Runner{Store: states{"feed_api": {Items: 7}}, Targets: []feedpush.Schedule{
		{Name: "feed_api", Target: tg}, {Name: "sftp", Target: tg}}}
	if _, err := r.PushNow(t.Context(), "ftp"); err == nil || !strings.Contains(err.Error(), `no target "ftp"`) {
		t.Fatalf("unknown target: %v", err)
	}
	st, err := r.PushNow(t.Context(), "sftp")
	if err != nil || st.Target != "sftp" || tg.count() != 1 {
		t.Fatalf("push now: %+v, %v", st, err)
	}
	all, err := r.Status(t.Context())
	if err != nil || len(all) != 2 || all[0].Target != "feed_api" || all[0].Items != 7 || all[1].Target != "sftp" {
		t.Fatalf("status: %+v, %v", all, err)
	}
}

// TestScheduledTargetAfterChange: a target on a schedule alone ignores new
// snapshots once it has pushed, but one without a successful push (its
// first push found no snapshot, or failed) pushes on the next snapshot.
func TestScheduledTargetAfterChange(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state bridge.FeedPushState
		want  int
	}{
		{"pushed before", bridge.FeedPushState{LastSuccess: time.Now()}, 0},
		{"last push failed", bridge.FeedPushState{LastSuccess: time.Now(), Error: "no catalog snapshot yet"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &target{}
			st := tc.state
			r := &feedpush.Runner{Store: states{"sftp": st}, Targets: []feedpush.Schedule{{Name: "sftp", Target: tg, Every: time.Hour}}}
			start(t, r)
			time.Sleep(50 * time.Millisecond)
			base := tg.count() // the start push of a failing target
			r.Changed()
			if tc.want > 0 {
				eventually(t, "push on the snapshot", func() bool { return tg.count() == base+tc.want })
			}
			time.Sleep(50 * time.Millisecond)
			if n := tg.count() - base; n != tc.want {
				t.Fatalf("%d pushes on a new snapshot, want %d", n, tc.want)
			}
		})
	}
}

// locks is a Locker whose named locks another process may hold.
type locks struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *locks) TryLock(_ context.Context, name string) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return nil, false, nil
	}
	l.held[name] = true
	return func() { l.mu.Lock(); delete(l.held, name); l.mu.Unlock() }, true, nil
}

// TestBusy: while another process pushes a target this one does not, and
// tries again later; the lock is let go after each push.
func TestBusy(t *testing.T) {
	tg := &target{}
	l := &locks{held: map[string]bool{"feed_push_sftp": true}} // another process
	r := &feedpush.Runner{Store: states{}, Lock: l, RetryMin: 20 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Targets: []feedpush.Schedule{{Name: "sftp", Target: tg, Every: time.Hour}}}
	if _, err := r.PushNow(t.Context(), "sftp"); !errors.Is(err, feedpush.ErrBusy) || tg.count() != 0 {
		t.Fatalf("push while busy: %v, %d pushes", err, tg.count())
	}
	start(t, r)
	time.Sleep(60 * time.Millisecond)
	if tg.count() != 0 {
		t.Fatal("pushed while another process held the lock")
	}
	l.mu.Lock()
	delete(l.held, "feed_push_sftp") // the other process is done
	l.mu.Unlock()
	eventually(t, "push once the lock is free", func() bool { return tg.count() == 1 })
	eventually(t, "lock let go", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return !l.held["feed_push_sftp"]
	})
}

// TestScheduleFollowsSharedState: when the timer fires but another
// process pushed meanwhile (the state is shared), this one waits for the
// next due time instead of pushing again.
func TestScheduleFollowsSharedState(t *testing.T) {
	tg := &target{}
	st := &sharedState{}
	r := &feedpush.Runner{Store: st, RetryMin: 30 * time.Millisecond, RetryMax: 30 * time.Millisecond,
		Targets: []feedpush.Schedule{{Name: "sftp", Target: failOnce{tg}, Every: time.Hour}}}
	start(t, r)
	eventually(t, "first push (fails)", func() bool { return tg.count() == 1 })
	st.set(bridge.FeedPushState{LastSuccess: time.Now()}) // another replica succeeded
	time.Sleep(150 * time.Millisecond)
	if n := tg.count(); n != 1 {
		t.Fatalf("%d pushes; the retry should have seen the other replica's success", n)
	}
}

// failOnce fails its first push (and records nothing: the test sets the
// shared state itself).
type failOnce struct{ t *target }

func (f failOnce) Push(ctx context.Context) (bridge.FeedPushState, error) {
	f.t.mu.Lock()
	first := f.t.n == 0
	f.t.mu.Unlock()
	_, _ = f.t.Push(ctx)
	if first {
		return bridge.FeedPushState{}, errors.New("agent down")
	}
	return bridge.FeedPushState{LastSuccess: time.Now()}, nil
}

// sharedState is a StateStore another process writes.
type sharedState struct {
	mu sync.Mutex
	st *bridge.FeedPushState
}

func (s *sharedState) set(st bridge.FeedPushState) { s.mu.Lock(); s.st = &st; s.mu.Unlock() }

func (s *sharedState) FeedPushState(context.Context, string) (bridge.FeedPushState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return bridge.FeedPushState{Error: "agent down"}, nil
	}
	return *s.st, nil
}

// panicky panics on every push.
type panicky struct{}

func (panicky) Push(context.Context) (bridge.FeedPushState, error) {
	var names []string
	_ = names[len(names)-1] // an index out of range, like a bad remote name
	return bridge.FeedPushState{}, nil
}

// savingStates is a StateStore that records saves.
type savingStates struct {
	mu sync.Mutex
	m  map[string]bridge.FeedPushState
}

func (s *savingStates) FeedPushState(_ context.Context, name string) (bridge.FeedPushState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[name]
	if !ok {
		return bridge.FeedPushState{}, bridge.ErrNotFound
	}
	return st, nil
}

func (s *savingStates) SaveFeedPushState(_ context.Context, st bridge.FeedPushState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[st.Target] = st
	return nil
}

// TestPushPanic: a target that panics fails its push instead of the
// process: the error is returned and recorded (the earlier success kept),
// the stack is logged, the metrics count an error, and the loop retries.
func TestPushPanic(t *testing.T) {
	lastOK := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		store feedpush.StateStore
	}{
		{"store saves", &savingStates{m: map[string]bridge.FeedPushState{"sftp": {Target: "sftp", LastSuccess: lastOK, Version: "v1"}}}},
		{"read-only store", states{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			var mu sync.Mutex
			log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))
			reg := prometheus.NewRegistry()
			r := &feedpush.Runner{Store: tc.store, Log: log, Metrics: feedpush.NewMetrics(reg),
				Targets: []feedpush.Schedule{{Name: "sftp", Target: panicky{}, Every: time.Hour}}}
			st, err := r.PushNow(t.Context(), "sftp")
			if err == nil || !strings.Contains(err.Error(), "panic") || !strings.Contains(st.Error, "panic") {
				t.Fatalf("push: err %v, state %+v", err, st)
			}
			mu.Lock()
			got := logs.String()
			mu.Unlock()
			if !strings.Contains(got, "feed push panicked") || !strings.Contains(got, "feedpush_test.panicky.Push") {
				t.Fatalf("log without the panic's stack:\n%s", got)
			}
			if n := counter(t, reg, "bridge_feed_push_runs_total", "error", "sftp"); n != 1 {
				t.Fatalf("error runs = %v, want 1", n)
			}
			if s, ok := tc.store.(*savingStates); ok {
				rec, _ := s.FeedPushState(t.Context(), "sftp")
				if !strings.Contains(rec.Error, "panic") || !rec.LastSuccess.Equal(lastOK) || rec.Version != "v1" || rec.LastAttempt.IsZero() {
					t.Fatalf("recorded state %+v", rec)
				}
			}
			// The loop survives and retries with backoff.
			r.RetryMin, r.RetryMax = 5*time.Millisecond, 10*time.Millisecond
			start(t, r)
			eventually(t, "retries after panics", func() bool {
				return counter(t, reg, "bridge_feed_push_runs_total", "error", "sftp") >= 3
			})
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestChangedRespectsBackoff: while a target fails, snapshots do not
// trigger pushes of their own: the backoff retry, which pushes the latest
// snapshot, is the next push.
func TestChangedRespectsBackoff(t *testing.T) {
	for _, tc := range []struct {
		name        string
		afterChange time.Duration
	}{
		{"follows changes", 10 * time.Millisecond},
		{"schedule only", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &target{fails: 1 << 30}
			r := &feedpush.Runner{Store: states{}, RetryMin: 300 * time.Millisecond, RetryMax: time.Hour,
				Targets: []feedpush.Schedule{{Name: "feed_api", Target: tg, AfterChange: tc.afterChange, Every: time.Hour}}}
			start(t, r)
			eventually(t, "push at start", func() bool { return tg.count() == 1 })
			for range 10 {
				r.Changed()
				time.Sleep(15 * time.Millisecond)
			}
			if n := tg.count(); n != 1 {
				t.Fatalf("%d pushes within the backoff after snapshots, want only the first", n)
			}
			eventually(t, "the backoff retry", func() bool { return tg.count() == 2 })
		})
	}
}

// noSnapshot fails with ErrNotFound until ready.
type noSnapshot struct {
	target
	ready chan struct{}
}

func (n *noSnapshot) Push(ctx context.Context) (bridge.FeedPushState, error) {
	select {
	case <-n.ready:
		return n.target.Push(ctx)
	default:
		n.mu.Lock()
		n.n++
		n.mu.Unlock()
		return bridge.FeedPushState{}, fmt.Errorf("no catalog snapshot yet (%w)", bridge.ErrNotFound)
	}
}

// TestFirstSnapshotNotBackedOff: a push that failed for want of a
// snapshot is no reason to wait: the first snapshot pushes at once.
func TestFirstSnapshotNotBackedOff(t *testing.T) {
	tg := &noSnapshot{ready: make(chan struct{})}
	r := &feedpush.Runner{Store: states{}, RetryMin: time.Hour,
		Targets: []feedpush.Schedule{{Name: "sftp", Target: tg, Every: 24 * time.Hour}}}
	start(t, r)
	eventually(t, "push at start", func() bool { return tg.count() == 1 })
	close(tg.ready)
	r.Changed()
	eventually(t, "push after the first snapshot", func() bool { return tg.count() == 2 })
}
