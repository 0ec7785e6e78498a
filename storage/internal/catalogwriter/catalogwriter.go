// Package catalogwriter is the life of a storage driver's
// bridge.CatalogWriter, the same for every driver: a writer is open from
// BeginCatalog until it commits or ends without committing (Rollback, an
// entry it refused — the snapshot would lack that entry —, its context
// ending, or the store closing), and once ended it only says why. A
// writer is used by one goroutine, but its context and the store's Close
// end it from others, so every step runs locked. The driver brings what
// the writer does (stage entries, swap the snapshot in) and how it lets
// go of its connection; Life runs them at the right moments.
package catalogwriter

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Life is a writer's state. The zero value is ready for Begin. Its lock
// also guards the driver's fields of the writer: the functions given to
// Begin, Do and Commit, and end, run with it held.
type Life struct {
	mu     sync.Mutex
	driver string // names the driver in errors ("sqlite")
	ctx    context.Context
	set    *Set
	end    func(committed bool)

	// err is why the writer ended without committing.
	err       error
	committed bool
	ended     bool
	stopAbort func() bool
}

// Begin starts the writer's life. It lives as long as ctx: when ctx is
// done before Commit, the writer ends, as if Rollback had been called. set
// is the store's open writers (refused once it closed); begin sets the
// writer up (its transaction); end is called once when the writer ends,
// committed or not, to give back what it holds. When Begin fails the
// writer has ended.
func (l *Life) Begin(ctx context.Context, driver string, set *Set, begin func() error, end func(committed bool)) error {
	l.driver, l.ctx, l.set, l.end = driver, ctx, set, end
	l.stopAbort = func() bool { return false }
	// Held until the writer is set up, so that Close or a done ctx, which
	// end the writer, find it whole.
	l.mu.Lock()
	defer l.mu.Unlock()
	if !set.track(l) {
		err := fmt.Errorf("%s: begin catalog: database closed", driver)
		l.finish(err)
		return err
	}
	if err := begin(); err != nil {
		err = fmt.Errorf("%s: begin catalog: %w", driver, err)
		l.finish(err)
		return err
	}
	l.stopAbort = context.AfterFunc(ctx, func() {
		l.abandon(fmt.Errorf("%s: catalog writer abandoned: %w", driver, context.Cause(ctx)))
	})
	return nil
}

// Do runs fn (a Put) if the writer is open; otherwise it returns why not.
// An error of fn ends the writer and is returned as it is.
func (l *Life) Do(fn func() error) error { return l.run(fn, false) }

// Commit is Do for the writer's Commit: when fn (which commits the
// snapshot) succeeds, the writer has committed and ends.
func (l *Life) Commit(fn func() error) error { return l.run(fn, true) }

func (l *Life) run(fn func() error, commit bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if err := fn(); err != nil {
		l.finish(err)
		return err
	}
	if commit {
		l.committed = true
		l.finish(nil)
	}
	return nil
}

// Rollback ends the writer. After Commit it does nothing, so
// `defer w.Rollback()` is safe.
func (l *Life) Rollback() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finish(fmt.Errorf("%s: catalog writer rolled back", l.driver))
}

// abandon ends the writer from outside its own calls (context done,
// store closed).
func (l *Life) abandon(reason error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finish(reason)
}

// usable says why the writer cannot be used, if it cannot. The context
// is checked here too: the abandon it triggers runs in a goroutine of its
// own, maybe after a call that follows the cancellation.
func (l *Life) usable() error {
	if l.ctx.Err() != nil && !l.committed {
		l.finish(fmt.Errorf("%s: catalog writer abandoned: %w", l.driver, context.Cause(l.ctx)))
	}
	switch {
	case l.committed:
		return fmt.Errorf("%s: catalog writer already committed", l.driver)
	case l.err != nil:
		return fmt.Errorf("%s: catalog writer is finished: %w", l.driver, l.err)
	}
	return nil
}

// finish ends the writer, once; reason is what later calls report.
// Called with l.mu held.
func (l *Life) finish(reason error) {
	if l.ended {
		return
	}
	l.ended = true
	if l.err == nil {
		l.err = reason
	}
	l.stopAbort()
	l.end(l.committed)
	l.set.forget(l)
}

// Set is a store's open writers, which Close ends. The zero value is
// ready to use.
type Set struct {
	mu     sync.Mutex
	open   map[*Life]struct{}
	closed bool
}

// track registers an open writer; false once the set is closed.
func (s *Set) track(l *Life) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.open == nil {
		s.open = map[*Life]struct{}{}
	}
	s.open[l] = struct{}{}
	return true
}

func (s *Set) forget(l *Life) {
	s.mu.Lock()
	delete(s.open, l)
	s.mu.Unlock()
}

// Close ends the open writers (their snapshots are never committed),
// telling them "<driver>: database closed", and refuses writers from now
// on. It does not wait for a writer's call in progress beyond its lock.
func (s *Set) Close(driver string) {
	s.mu.Lock()
	s.closed = true
	open := make([]*Life, 0, len(s.open))
	for l := range s.open {
		open = append(open, l)
	}
	s.mu.Unlock()
	for _, l := range open {
		l.abandon(errors.New(driver + ": database closed"))
	}
}
