package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
)

// testLock is the advisory lock replicas share (storage's TryLock), held
// by one syncer at a time; hold takes it from outside, as a replica whose
// sync is running would.
type testLock struct {
	mu   sync.Mutex
	held bool
	err  error
}

func (l *testLock) try(context.Context) (func(), bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, false, l.err
	}
	if l.held {
		return nil, false, nil
	}
	l.held = true
	return func() { l.mu.Lock(); l.held = false; l.mu.Unlock() }, true, nil
}

// replica is one bridge's syncer over the shared store, with feed files
// and announcements of its own.
type replica struct {
	syncer    *Syncer
	src       *fakeSource
	dir       string
	announced []string // versions OnSnapshot saw
}

func newReplica(t *testing.T, db bridge.CatalogStore, lock *testLock, recs []bridge.Record) *replica {
	t.Helper()
	r := &replica{src: &fakeSource{recs: recs}, dir: t.TempDir()}
	p := newPipeline(t, r.src)
	r.syncer = &Syncer{Pipeline: p, Store: db, Lock: lock.try,
		Feeds: &Feeds{Dir: r.dir, Formats: []feed.Format{feed.FormatOpenAIJSONL}, Settings: p.Settings},
		OnSnapshot: func(_ context.Context, info bridge.CatalogInfo) error {
			r.announced = append(r.announced, info.Version)
			return nil
		}}
	return r
}

func (r *replica) feedRows(t *testing.T) int {
	t.Helper()
	return countLines(t, filepath.Join(r.dir, "openai.jsonl.gz"))
}

// Replicas on one database: the one that gets the lock reads the store;
// the others serve its snapshot, with feed files rendered from storage,
// and never read the store themselves.
func TestReplicasSyncOnceAndFollow(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	lock := &testLock{}
	a := newReplica(t, db, lock, records(10))
	b := newReplica(t, db, lock, records(10))

	// a syncs (the lock is free); b, whose lock attempt finds it taken,
	// follows: same version, its own files, no read of the store.
	first, err := a.syncer.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock.held = true
	got, err := b.syncer.Sync(ctx)
	if err != nil || got.Version != first.Version {
		t.Fatalf("b's sync while a holds the lock: %v, %v; want to follow %s", got.Version, err, first.Version)
	}
	lock.held = false
	if n := b.src.reads.Load(); n != 0 {
		t.Errorf("b read the store %d times while following", n)
	}
	if rows := b.feedRows(t); rows != 20 {
		t.Errorf("b's feed has %d rows, want 20", rows)
	}
	if st := b.syncer.Status(); !st.Following || st.LastError != "" || !st.LastSuccess.Equal(first.SyncedAt) {
		t.Errorf("b's status %+v; want following a's snapshot of %v", st, first.SyncedAt)
	}
	if want := []string{first.Version}; !slices.Equal(b.announced, want) {
		t.Errorf("b announced %v, want %v", b.announced, want)
	}

	// Following again changes nothing and announces nothing.
	if _, err := b.syncer.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if len(b.announced) != 1 {
		t.Errorf("b announced %v after a follow with no new snapshot", b.announced)
	}

	// a syncs a bigger catalog: b's next follow serves it.
	a.src.recs = records(15)
	time.Sleep(2 * time.Millisecond) // a new version (start time) for the snapshot
	second, err := a.syncer.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.syncer.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := b.feedRows(t); rows != 30 {
		t.Errorf("b's feed after a's second sync has %d rows, want 30", rows)
	}
	if want := []string{first.Version, second.Version}; !slices.Equal(b.announced, want) {
		t.Errorf("b announced %v, want %v", b.announced, want)
	}

	// A scheduled sync gives way to a snapshot younger than its freshness
	// bound; an older one, or a sync asked for (fresh 0), reads the store.
	if _, _, err := b.syncer.syncOrFollow(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := b.src.reads.Load(); n != 0 {
		t.Errorf("b's scheduled sync read the store (%d) despite a's fresh snapshot", n)
	}
	if _, _, err := b.syncer.syncOrFollow(ctx, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if n := b.src.reads.Load(); n != 1 {
		t.Errorf("b's scheduled sync over an old snapshot read the store %d times, want 1", n)
	}
	if st := b.syncer.Status(); st.Following {
		t.Errorf("b's status after its own sync says following: %+v", st)
	}

	// A lock that cannot be asked fails the sync, and says so.
	lock.err = errors.New("database unreachable")
	if _, err := a.syncer.Sync(ctx); err == nil {
		t.Fatal("sync without the lock's answer succeeded")
	}
	if st := a.syncer.Status(); st.LastError == "" {
		t.Errorf("status after a lock failure: %+v", st)
	}
	if n := a.src.reads.Load(); n != 2 {
		t.Errorf("a read the store %d times, want 2 (the lock failure reads nothing)", n)
	}
}

// Run on a follower picks up another replica's snapshot within
// FollowEvery, without a sync of its own.
func TestRunFollows(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	db := openDB(t)
	lock := &testLock{held: true} // another replica syncs for good
	leader := newReplica(t, db, &testLock{}, records(4))
	b := newReplica(t, db, lock, records(4))
	b.syncer.FollowEvery = 10 * time.Millisecond
	done := make(chan struct{})
	go func() { defer close(done); b.syncer.Run(ctx, time.Hour) }()
	defer func() { cancel(); <-done }()

	info, err := leader.syncer.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(b.dir, versionMarker))
		return err == nil && b.syncer.Status().LastSuccess.Equal(info.SyncedAt)
	})
	if n := b.src.reads.Load(); n != 0 {
		t.Errorf("the follower read the store %d times", n)
	}
}

// A sync asked for (here the first, at start) while another replica holds
// the lock is not dropped: Run tries again at each follow until it gets
// the lock, or until a sync that began after the request has committed.
func TestRunRetriesAnAskedSync(t *testing.T) {
	t.Run("until it gets the lock", func(t *testing.T) {
		db := openDB(t)
		lock := &testLock{held: true}
		b := newReplica(t, db, lock, records(3))
		b.syncer.FollowEvery = 5 * time.Millisecond
		stop := runSyncer(t, b.syncer)
		defer stop()
		time.Sleep(30 * time.Millisecond) // several follows while the lock is taken
		if n := b.src.reads.Load(); n != 0 {
			t.Fatalf("read the store %d times while another replica held the lock", n)
		}
		lock.mu.Lock()
		lock.held = false
		lock.mu.Unlock()
		waitFor(t, func() bool { return b.src.reads.Load() == 1 })
	})
	t.Run("until a later sync elsewhere", func(t *testing.T) {
		db := openDB(t)
		lock := &testLock{held: true}
		b := newReplica(t, db, lock, records(3))
		b.syncer.FollowEvery = 5 * time.Millisecond
		stop := runSyncer(t, b.syncer)
		defer stop()
		time.Sleep(20 * time.Millisecond)
		leader := newReplica(t, db, &testLock{}, records(5))
		info, err := leader.syncer.Sync(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return b.syncer.Status().LastSuccess.Equal(info.SyncedAt) })
		time.Sleep(20 * time.Millisecond) // more follows: no sync of its own now
		if n := b.src.reads.Load(); n != 0 {
			t.Errorf("read the store %d times although a sync that began after the request committed", n)
		}
	})
}

// runSyncer runs s with a long interval until the returned stop is called.
func runSyncer(t *testing.T, s *Syncer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, time.Hour) }()
	return func() { cancel(); <-done }
}

// A follower keeps serving a snapshot the lock holder stopped renewing,
// but says so in its status (the failed-sync gauge and /readyz read it).
func TestFollowerReportsAStaleSnapshot(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	lock := &testLock{}
	leader := newReplica(t, db, lock, records(3))
	if _, err := leader.syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b := newReplica(t, db, lock, records(3))
	b.syncer.staleAfter = time.Hour
	if _, err := b.syncer.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.syncer.Status(); st.LastError != "" || !st.Following {
		t.Fatalf("fresh snapshot: status %+v", st)
	}
	b.syncer.staleAfter = time.Millisecond
	time.Sleep(5 * time.Millisecond)
	if _, err := b.syncer.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if st := b.syncer.Status(); !strings.Contains(st.LastError, "may be stuck") {
		t.Errorf("stale snapshot: status %+v; want an error saying the syncing replica may be stuck", st)
	}
	if rows := b.feedRows(t); rows != 6 {
		t.Errorf("the stale snapshot's feed has %d rows, want it served (6)", rows)
	}
}

// Published keeps a follow from announcing the snapshot serve announced
// at start.
func TestPublishedIsNotAnnouncedAgain(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	lock := &testLock{}
	leader := newReplica(t, db, lock, records(3))
	info, err := leader.syncer.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := newReplica(t, db, lock, records(3))
	b.syncer.Published(info.Version)
	if _, err := b.syncer.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if len(b.announced) != 0 {
		t.Errorf("announced %v again", b.announced)
	}
}
