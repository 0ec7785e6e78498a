package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
)

// Status is what the last sync did, for /readyz and logs.
type Status struct {
	LastAttempt time.Time
	LastSuccess time.Time
	LastError   string
	Running     bool
	// Following is true when the snapshot served was made by another
	// replica (Syncer.Lock): LastSuccess is then when that replica synced.
	Following bool
}

// Syncer refreshes the catalog snapshot in storage from the pipeline, on an
// interval and on demand. A failed sync rolls back and keeps the last good
// snapshot: a store outage must not empty the shop.
type Syncer struct {
	Pipeline *Pipeline
	Store    bridge.CatalogStore
	// Feeds, when set, are rendered in the same pass that writes the
	// snapshot, so a sync reads the store once and never re-reads storage.
	Feeds *Feeds
	// OnSnapshot runs after each committed snapshot (the server refreshes
	// what it serves there). Its error is logged and reported; the snapshot
	// stays.
	OnSnapshot func(ctx context.Context, info bridge.CatalogInfo) error
	// MaxShrinkPercent refuses a snapshot with that much fewer variants than
	// the current one (a truncated download, an export cut short, a wrong
	// file): 50 refuses losing more than half. 0 or 100 turns the guard
	// off. Snapshots of under 10 variants are not guarded.
	MaxShrinkPercent int
	Logger           *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Lock, when set, is taken around each sync by bridges that share
	// Store (replicas on one PostgreSQL database), so that one of them
	// reads the store at a time: ok is false when another holds it. A
	// replica that does not get it, or whose scheduled sync finds a
	// snapshot another replica made within the last half interval,
	// follows instead: it serves the shared snapshot, rendering its own
	// feed files from storage when the snapshot's version changed. Run
	// also follows every FollowEvery.
	Lock func(ctx context.Context) (release func(), ok bool, err error)
	// FollowEvery is how often Run looks for another replica's snapshot
	// (with Lock); 0 means DefaultFollowEvery, or the sync interval when
	// shorter.
	FollowEvery time.Duration

	mu        sync.Mutex // one sync (or follow) at a time
	published string     // the snapshot version last announced (OnSnapshot)
	// staleAfter flags a followed snapshot older than it (Run: twice its
	// interval); 0 never.
	staleAfter time.Duration
	smu        sync.Mutex
	status     Status
	trigger    chan struct{}
	once       sync.Once
}

// ErrSyncRunning is returned by Sync when another sync is in progress.
var ErrSyncRunning = errors.New("a catalog sync is already running")

// Status returns the last sync's outcome.
func (s *Syncer) Status() Status {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.status
}

func (s *Syncer) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// DefaultFollowEvery is how often a replica without the sync lock looks
// for a newer shared snapshot.
const DefaultFollowEvery = 30 * time.Second

// Sync reads the whole catalog into a new snapshot. It returns ErrSyncRunning
// rather than queueing behind a sync in progress. With Lock, when another
// replica is syncing, it follows instead (see Lock).
func (s *Syncer) Sync(ctx context.Context) (bridge.CatalogInfo, error) {
	info, _, err := s.syncOrFollow(ctx, 0)
	return info, err
}

// Published tells the syncer which snapshot version is served already
// (serve renders the stored snapshot at start), so a follow does not
// announce it again.
func (s *Syncer) Published(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = version
}

// syncOrFollow syncs, or follows another replica (Lock). fresh > 0 marks
// a scheduled sync, which another replica's snapshot younger than fresh
// makes unnecessary. deferred reports a sync left undone because another
// replica held the lock.
func (s *Syncer) syncOrFollow(ctx context.Context, fresh time.Duration) (info bridge.CatalogInfo, deferred bool, err error) {
	if !s.mu.TryLock() {
		return bridge.CatalogInfo{}, false, ErrSyncRunning
	}
	defer s.mu.Unlock()
	if s.Lock == nil {
		info, err := s.syncLocked(ctx)
		return info, false, err
	}
	if fresh > 0 {
		info, err := s.Store.CatalogInfo(ctx)
		if err == nil && s.now().Sub(info.SyncedAt) < fresh {
			info, err := s.follow(ctx)
			return info, false, err
		}
	}
	release, ok, err := s.Lock(ctx)
	if err != nil {
		s.setStatus(func(st *Status) { st.LastAttempt, st.LastError = s.now(), "sync lock: "+err.Error() })
		return bridge.CatalogInfo{}, false, fmt.Errorf("catalog sync lock: %w", err)
	}
	if !ok {
		s.logger().Info("another replica is syncing the catalog; following its snapshot", "component", "catalog")
		info, err := s.follow(ctx)
		return info, true, err
	}
	defer release()
	info, err = s.syncLocked(ctx)
	return info, false, err
}

// Follow serves the shared snapshot when another replica made a new one
// (see Lock): the feed files are rendered from storage and OnSnapshot
// runs. It does nothing while this replica syncs or when the snapshot is
// the one last announced.
func (s *Syncer) Follow(ctx context.Context) (bridge.CatalogInfo, error) {
	if !s.mu.TryLock() {
		return bridge.CatalogInfo{}, ErrSyncRunning
	}
	defer s.mu.Unlock()
	return s.follow(ctx)
}

func (s *Syncer) follow(ctx context.Context) (bridge.CatalogInfo, error) {
	info, err := s.Store.CatalogInfo(ctx)
	if errors.Is(err, bridge.ErrNotFound) {
		return bridge.CatalogInfo{}, nil // nobody has synced yet
	}
	if age := s.now().Sub(info.SyncedAt); err == nil && s.staleAfter > 0 && age > s.staleAfter {
		// Served all the same (the last good snapshot), but the replica
		// holding the lock may be stuck: say so where alerts look.
		msg := fmt.Sprintf("the shared catalog snapshot was synced %s ago, more than twice feed.refresh: the replica syncing it may be stuck", age.Round(time.Second))
		s.setStatus(func(st *Status) { st.LastAttempt, st.LastError, st.Following = s.now(), msg, true })
		s.logger().Error("shared catalog snapshot is stale", "component", "catalog", "version", info.Version, "synced_at", info.SyncedAt)
		if info.Version == s.published {
			return info, nil
		}
	}
	if err == nil && info.Version != s.published && s.Feeds != nil {
		info, _, err = s.Feeds.RenderStored(ctx, s.Store)
	}
	if err != nil {
		s.setStatus(func(st *Status) {
			st.LastAttempt, st.LastError = s.now(), "following the shared snapshot: "+err.Error()
		})
		s.logger().Error("serving the shared catalog snapshot failed", "component", "catalog", "err", err)
		return bridge.CatalogInfo{}, err
	}
	if info.Version == s.published {
		return info, nil
	}
	if s.OnSnapshot != nil {
		if err := s.OnSnapshot(ctx, info); err != nil {
			s.setStatus(func(st *Status) { st.LastError = err.Error() })
			return info, err
		}
	}
	s.published = info.Version
	if s.staleAfter <= 0 || s.now().Sub(info.SyncedAt) <= s.staleAfter {
		s.setStatus(func(st *Status) { st.LastError, st.LastSuccess, st.Following = "", info.SyncedAt, true })
	}
	s.logger().Info("serving the catalog snapshot another replica synced", "component", "catalog", "version", info.Version,
		"synced_at", info.SyncedAt, "products", info.Products, "variants", info.Variants)
	return info, nil
}

// syncLocked runs a sync; s.mu is held.
func (s *Syncer) syncLocked(ctx context.Context) (bridge.CatalogInfo, error) {
	start, began := s.now(), time.Now() // began times the run whatever the clock says
	s.setStatus(func(st *Status) { st.Running, st.LastAttempt = true, start })

	info, err := s.sync(ctx, start)
	if info.Version != "" {
		s.published = info.Version
	}
	if err != nil && info.Version != "" && s.OnSnapshot != nil {
		// Committed but not rendered: still announce the new snapshot.
		_ = s.OnSnapshot(ctx, info)
	}
	s.setStatus(func(st *Status) {
		st.Running, st.Following = false, false
		if err != nil {
			st.LastError = err.Error()
			return
		}
		st.LastError, st.LastSuccess = "", start
	})
	log := s.logger().With("component", "catalog")
	if err != nil {
		log.Error("catalog sync failed; keeping the last good snapshot", "err", err, "duration", time.Since(began).Round(time.Millisecond))
		return bridge.CatalogInfo{}, err
	}
	log.Info("catalog synced", "products", info.Products, "variants", info.Variants, "excluded", info.Excluded,
		"skipped_rows", info.ProblemCount, "duration", time.Since(began).Round(time.Millisecond))
	if s.OnSnapshot != nil {
		if err := s.OnSnapshot(ctx, info); err != nil {
			log.Error("after-sync step failed", "err", err)
			s.setStatus(func(st *Status) { st.LastError = err.Error() })
			return info, err
		}
	}
	return info, nil
}

func (s *Syncer) sync(ctx context.Context, start time.Time) (bridge.CatalogInfo, error) {
	w, err := s.Store.BeginCatalog(ctx)
	if err != nil {
		return bridge.CatalogInfo{}, fmt.Errorf("begin snapshot: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = w.Rollback()
		}
	}()
	prev, err := s.Store.CatalogInfo(ctx)
	if err != nil && !errors.Is(err, bridge.ErrNotFound) {
		return bridge.CatalogInfo{}, fmt.Errorf("read current snapshot: %w", err)
	}
	// Every run validates as of its own start ("is this preorder date in the
	// future?") and stamps that time into the feeds.
	p := *s.Pipeline
	p.Settings.GeneratedAt = start.UTC()
	var info bridge.CatalogInfo
	// write runs the pipeline into the snapshot, passing each entry on to
	// the feed writers, and commits: feed files are renamed into place only
	// after the commit, so they never show a catalog storage does not have.
	write := func(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
		res, err := p.Run(ctx, func(e bridge.CatalogEntry) error {
			if err := w.Put(ctx, e); err != nil {
				return err
			}
			return fn(e)
		})
		if err != nil {
			return err
		}
		// Guard what agents will see: a renamed price column leaves the
		// variants in place but every one of them invalid.
		before := prev.ValidVariants
		if before == 0 && prev.Variants > 0 {
			// A snapshot from before valid_variants was recorded.
			before = prev.Variants - prev.Excluded
		}
		if err := s.checkShrink(before, res.ValidVariants); err != nil {
			return err
		}
		info = bridge.CatalogInfo{
			Version:       strconv.FormatInt(start.UnixNano(), 36),
			SyncedAt:      start.UTC(),
			Products:      res.Products,
			Variants:      res.Variants,
			ValidVariants: res.ValidVariants,
			Excluded:      res.Excluded,
			Problems:      res.Problems,
			ProblemCount:  res.ProblemCount,
		}
		if ds, ok := s.Pipeline.Source.(bridge.DatedSource); ok {
			info.SourceTime = ds.SourceTime().UTC()
		}
		if err := w.Commit(ctx, info); err != nil {
			return fmt.Errorf("commit snapshot: %w", err)
		}
		committed = true
		return nil
	}
	if s.Feeds == nil {
		err = write(ctx, func(bridge.CatalogEntry) error { return nil })
	} else {
		err = s.Feeds.build(ctx, start.UTC(), func() string { return info.Version }, write)
	}
	switch {
	case err == nil:
		return info, nil
	case committed:
		// The snapshot is in; only the files failed. The next start (or
		// RenderStored) renders them from storage.
		return info, fmt.Errorf("snapshot committed, but rendering the feeds failed: %w", err)
	}
	// Nothing committed: the caller must not announce anything.
	return bridge.CatalogInfo{}, err
}

// ErrShrink refuses a snapshot much smaller than the current one.
var ErrShrink = errors.New("catalog shrank too much")

func (s *Syncer) checkShrink(before, after int) error {
	if s.MaxShrinkPercent <= 0 || s.MaxShrinkPercent >= 100 || before < 10 {
		return nil
	}
	if lost := before - after; lost*100 > before*s.MaxShrinkPercent {
		return fmt.Errorf("%w: %d publishable variants now, %d in the current snapshot (%d%% fewer; the limit is feed.max_shrink_percent: %d). "+
			"If the store really lost them, restart the bridge once with a higher limit (100 turns the guard off)", ErrShrink, after, before, lost*100/before, s.MaxShrinkPercent)
	}
	return nil
}

func (s *Syncer) setStatus(f func(*Status)) {
	s.smu.Lock()
	defer s.smu.Unlock()
	f(&s.status)
}

// Trigger asks Run for a sync soon; it never blocks.
func (s *Syncer) Trigger() {
	s.init()
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

func (s *Syncer) init() { s.once.Do(func() { s.trigger = make(chan struct{}, 1) }) }

// Run syncs at start, then every interval and on Trigger, until ctx ends.
// With Lock it also follows other replicas' snapshots every FollowEvery,
// a scheduled sync gives way to a snapshot younger than half the interval
// (so replicas together sync about once per interval), and a sync asked
// for (the first, or Trigger) that another replica's sync kept from
// running is tried again at each follow until it runs or a sync that
// started after the request has committed. A followed snapshot older than
// twice the interval is reported in Status as an error.
func (s *Syncer) Run(ctx context.Context, interval time.Duration) {
	s.init()
	t := time.NewTicker(interval)
	defer t.Stop()
	var follow <-chan time.Time
	if s.Lock != nil {
		every := s.FollowEvery
		if every <= 0 {
			every = min(DefaultFollowEvery, interval)
		}
		ft := time.NewTicker(every)
		defer ft.Stop()
		follow = ft.C
		s.mu.Lock()
		s.staleAfter = 2 * interval
		s.mu.Unlock()
	}
	// The first sync runs whatever the snapshot's age: a replica starts
	// with the config it was given (a changed mapping, say).
	var fresh time.Duration
	var asked time.Time // a sync asked for and deferred to another replica's
	for {
		at := s.now()
		_, deferred, err := s.syncOrFollow(ctx, fresh)
		if err != nil && ctx.Err() != nil {
			return
		}
		if fresh == 0 {
			switch {
			case deferred && asked.IsZero():
				asked = at
			case !deferred && !errors.Is(err, ErrSyncRunning):
				asked = time.Time{}
			}
		}
		fresh = interval / 2
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				waiting = false
			case <-s.trigger:
				fresh, waiting = 0, false // asked for: sync even if fresh
			case <-follow:
				if !asked.IsZero() {
					if info, err := s.Store.CatalogInfo(ctx); err != nil || info.SyncedAt.Before(asked) {
						fresh, waiting = 0, false // the sync asked for, again
						continue
					}
					asked = time.Time{} // another replica's sync began after the request
				}
				_, _ = s.Follow(ctx)
			}
		}
	}
}
