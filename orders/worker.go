package orders

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
)

// outcome is how a run ended: done (with the change it made), to be
// retried (err says why), or dead at once (a refusal no retry changes; a
// person may retry it by hand).
type outcome struct {
	change bridge.Change
	err    error
	dead   bool
	// later postpones the job without counting the attempt (a notice
	// waiting for an earlier one of its order).
	later time.Duration
	// alert, when set, is the reason the order went to manual review:
	// counted and logged once the change is committed.
	alert string
}

func done(c bridge.Change) outcome     { return outcome{change: c} }
func retry(err error) outcome          { return outcome{err: err} }
func deadNow(err error) outcome        { return outcome{err: err, dead: true} }
func postpone(d time.Duration) outcome { return outcome{later: d} }

// shutdownGrace is how long Run's running jobs may go on after Run is
// stopped.
const shutdownGrace = 10 * time.Second

// wakeup is the channel that wakes the worker, made once: Place and the
// HTTP handlers poke it from other goroutines.
func (s *Service) wakeup() chan struct{} {
	s.wakeOnce.Do(func() { s.wake = make(chan struct{}, 1) })
	return s.wake
}

// Run works the outbox until ctx ends: it claims due jobs, runs up to
// Concurrency at once, and sleeps until the next is due, a slot frees, or
// it is poked. It returns once the jobs it started have recorded their
// outcome.
func (s *Service) Run(ctx context.Context) error {
	wake := s.wakeup()
	limit := s.Concurrency
	if limit <= 0 {
		limit = 8
	}
	sem := make(chan struct{}, limit)
	freed := make(chan struct{}, 1)
	// Jobs are not cut short when Run is stopped: a store write stopped
	// mid-request is the ambiguous case. They get a grace period to
	// finish and record their outcome, then their context ends.
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		grace := time.AfterFunc(shutdownGrace, stopJobs)
		wg.Wait()
		grace.Stop()
		stopJobs()
	}()
	failures := 0
	for {
		free := limit - len(sem)
		var jobs []bridge.Job
		var err error
		if free > 0 {
			jobs, err = s.Store.ClaimJobs(ctx, s.now(), s.lease(), free)
			if err != nil && ctx.Err() == nil {
				failures++
				s.log().Error("claiming outbox jobs", "error", err, "failures", failures)
			} else {
				failures = 0
			}
		}
		for _, j := range jobs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					<-sem
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
				s.run(jobsCtx, j)
			}()
		}
		if len(jobs) == free && free > 0 {
			continue // there may be more due
		}
		var wait time.Duration
		switch {
		case failures > 0:
			// Storage is failing: do not spin on it.
			wait = min(time.Duration(failures)*time.Second, 30*time.Second)
		case len(sem) == limit:
			wait = time.Minute // every slot is busy: a freed one wakes us
		default:
			wait = time.Second
			if next, err := s.Store.NextDue(ctx); err == nil && !next.IsZero() {
				wait = min(max(next.Sub(s.now()), 10*time.Millisecond), time.Second)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
			t.Stop()
		case <-freed:
			t.Stop()
		case <-t.C:
		}
	}
}

// Drain runs every job due now until none is left (tests and
// benchmarks); it returns how many ran.
func (s *Service) Drain(ctx context.Context) (int, error) {
	n := 0
	for {
		jobs, err := s.Store.ClaimJobs(ctx, s.now(), s.lease(), 16)
		if err != nil {
			return n, fmt.Errorf("claim jobs: %w", err)
		}
		if len(jobs) == 0 {
			return n, nil
		}
		for _, j := range jobs {
			s.run(ctx, j)
			n++
		}
	}
}

// run runs one claimed job and records how it ended.
func (s *Service) run(ctx context.Context, j bridge.Job) {
	rctx, cancel := context.WithTimeout(ctx, s.lease()/2)
	defer cancel()
	var out outcome
	switch j.Kind {
	case KindStoreWrite:
		out = s.storeWrite(rctx, j)
	case KindCapture, KindRelease, KindRefund:
		out = s.payment(rctx, j)
	case KindNotice:
		out = s.deliver(rctx, j)
	case KindHoldRelease:
		out = done(bridge.Change{ReleaseOrderID: j.OrderID})
	default:
		out = deadNow(fmt.Errorf("unknown job kind %q", j.Kind))
	}
	s.finish(ctx, j, out)
}

// finish records a run's end. A change that lost a race with another
// writer of its order (ErrStale) is not lost: the job is retried at once and
// redoes its decision on the fresh order.
func (s *Service) finish(ctx context.Context, j bridge.Job, out outcome) {
	now := s.now().UTC()
	ctx = context.WithoutCancel(ctx) // a result must be recorded even on shutdown
	j.LastError = ""
	result := "done"
	switch {
	case out.later > 0:
		j.Attempts--
		j.NextRunAt = now.Add(out.later)
		result = "later"
	case out.err == nil:
		j.Status = bridge.JobDone
	case out.dead || now.Sub(j.CreatedAt) >= s.horizon():
		j.Status, j.LastError = bridge.JobDead, out.err.Error()
		result = "dead"
		if out.change.Order == nil && out.change.Jobs == nil {
			c, alert, err := s.deadChange(ctx, j, out.err)
			if err != nil {
				s.log().Error("outbox job dead; its order could not be marked for review", "job", j.ID, "order", j.OrderID, "error", err)
			}
			out.change, out.alert = c, alert
		}
	default:
		j.LastError = out.err.Error()
		j.NextRunAt = now.Add(s.backoff(j.Attempts))
		result = "retry"
	}
	err := s.Store.FinishJob(ctx, j, out.change)
	switch {
	case errors.Is(err, bridge.ErrStale):
		// Someone changed the order meanwhile: run again on the fresh one.
		j.Status, j.NextRunAt, j.LastError = bridge.JobPending, now, "order changed while the job ran; rerun"
		err = s.Store.FinishJob(ctx, j, bridge.Change{})
		result = "rerun"
	case errors.Is(err, bridge.ErrLeaseLost):
		s.log().Warn("outbox job claim lost (its lease passed and another worker took it, or it was set by hand); its result is dropped and it runs again", "job", j.ID, "kind", j.Kind)
		s.Metrics.job(j.Kind, "lost")
		return
	}
	if err != nil {
		// The job stays claimed until its lease passes, then runs again;
		// every job is safe to repeat.
		s.log().Error("recording outbox job result", "job", j.ID, "kind", j.Kind, "error", err)
		return
	}
	s.Metrics.job(j.Kind, result)
	if out.alert != "" && result != "rerun" {
		s.Metrics.review(out.alert)
		s.log().Error("order needs manual review", "order", j.OrderID, "reason", out.alert, "job", j.ID)
	}
	switch result {
	case "retry":
		s.log().Warn("outbox job failed; will retry", "job", j.ID, "kind", j.Kind, "order", j.OrderID,
			"attempts", j.Attempts, "next_run_at", j.NextRunAt, "error", out.err)
	case "dead":
		s.log().Error("outbox job dead after its retry horizon or a final refusal", "job", j.ID, "kind", j.Kind,
			"order", j.OrderID, "attempts", j.Attempts, "error", out.err)
	}
	if len(out.change.Jobs) > 0 {
		s.poke()
	}
}

// backoff is the delay after n failed attempts: exponential from 2s to 30m,
// with full jitter so a store coming back is not hit by every job at once.
func (s *Service) backoff(n int) time.Duration {
	if s.Backoff != nil {
		return s.Backoff(n)
	}
	d := 2 * time.Second << min(max(n-1, 0), 10)
	d = min(d, 30*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// deadChange is what a dead job does to its order: a store write or a
// payment action that never happened needs a person (manual_review,
// alerted); a notice that could not be delivered changes nothing on the
// order (the dead job is the alert: bridge orders show lists it).
func (s *Service) deadChange(ctx context.Context, j bridge.Job, cause error) (bridge.Change, string, error) {
	if j.OrderID == "" || j.Kind == KindNotice {
		return bridge.Change{}, "", nil
	}
	o, err := s.Store.Order(ctx, j.OrderID)
	if err != nil {
		return bridge.Change{}, "", fmt.Errorf("order %s: %w", j.OrderID, err)
	}
	if o.Status == bridge.OrderCanceled && j.Kind == KindStoreWrite {
		return bridge.Change{}, "", nil
	}
	return s.review(o, fmt.Sprintf("%s failed for good: %v", j.Kind, cause)), j.Kind, nil
}

// review puts o in manual review with why; the caller's outcome carries
// the alert, raised once the change is committed. A canceled order stays
// canceled (the agent must not see it come back): the note and the alert
// are enough.
func (s *Service) review(o bridge.Order, note string) bridge.Change {
	if o.Status == bridge.OrderCanceled || !o.SetStatus(s.now(), bridge.OrderManualReview, note) {
		o.Note(s.now(), note)
	}
	return s.withNotice(o)
}

// withNotice is the change that writes o over the revision it was read at
// and tells the agent about it.
func (s *Service) withNotice(o bridge.Order) bridge.Change {
	o.Rev++
	c := bridge.Change{Order: &o}
	if n, ok := s.notice(o, bridge.NoticeOrderUpdate); ok {
		c.Jobs = append(c.Jobs, n)
	}
	return c
}
