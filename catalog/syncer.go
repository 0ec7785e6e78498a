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

	mu      sync.Mutex // one sync at a time
	smu     sync.Mutex
	status  Status
	trigger chan struct{}
	once    sync.Once
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

// Sync reads the whole catalog into a new snapshot. It returns ErrSyncRunning
// rather than queueing behind a sync in progress.
func (s *Syncer) Sync(ctx context.Context) (bridge.CatalogInfo, error) {
	if !s.mu.TryLock() {
		return bridge.CatalogInfo{}, ErrSyncRunning
	}
	defer s.mu.Unlock()
	start, began := s.now(), time.Now() // began times the run whatever the clock says
	s.setStatus(func(st *Status) { st.Running, st.LastAttempt = true, start })

	info, err := s.sync(ctx, start)
	if err != nil && info.Version != "" && s.OnSnapshot != nil {
		// Committed but not rendered: still announce the new snapshot.
		_ = s.OnSnapshot(ctx, info)
	}
	s.setStatus(func(st *Status) {
		st.Running = false
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
func (s *Syncer) Run(ctx context.Context, interval time.Duration) {
	s.init()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.trigger:
		}
	}
}
