package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

// Orders written before 0006_outbox get a revision (1), their payment
// reference from the body (so the Stripe webhooks find them) and an
// update time (their creation); after it they read as any other.
func TestMigrationOutboxBackfillsOrders(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	dsn, err := buildDSN(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	// The schema as the previous bridge left it: migrations up to 0005.
	old := fstest.MapFS{}
	ms, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.Compare(filepath.Base(m), "0006") < 0 {
			b, _ := fs.ReadFile(migrationFiles, m)
			old[m] = &fstest.MapFile{Data: b}
		}
	}
	if len(old) != 5 { // 0007 (queue paid orders) runs after 0006 in openPath
		t.Fatalf("%d migrations before 0006, want 5", len(old))
	}
	if err := migrateFS(ctx, raw, old); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, o := range []struct{ id, status, body string }{
		// The bodies the previous bridge wrote (no rev, no updated_at).
		{"o-paid", "created", `{"id":"o-paid","session_id":"s1","owner":"alice","status":"created","created_at":"2026-05-01T10:00:00Z","currency":"USD","lines":null,"subtotal":{"amount":0,"currency":""},"shipping":{"amount":0,"currency":""},"tax":{"amount":0,"currency":""},"total":{"amount":0,"currency":""},"buyer":{},"payment_ref":"pi_old"}`},
		{"o-pending", "pending_payment", `{"id":"o-pending","session_id":"s2","owner":"alice","status":"pending_payment","created_at":"2026-05-01T10:00:00Z","currency":"USD","lines":null,"subtotal":{"amount":0,"currency":""},"shipping":{"amount":0,"currency":""},"tax":{"amount":0,"currency":""},"total":{"amount":0,"currency":""},"buyer":{}}`},
	} {
		if _, err := raw.ExecContext(ctx, `INSERT INTO orders (id, session_id, owner, status, created_at, body) VALUES (?, 's', 'alice', ?, ?, ?)`,
			o.id, o.status, created.UnixNano(), o.body); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db := openPath(t, path)
	// 0007: the paid order, never written to the store, has its store write
	// queued and due; the unpaid one has none.
	if j, err := db.Job(ctx, "store_write:o-paid"); err != nil || j.Status != bridge.JobPending || j.Kind != "store_write" || j.OrderID != "o-paid" || j.NextRunAt.After(time.Now()) {
		t.Errorf("store write of the order paid before the outbox: %+v, %v; want pending and due", j, err)
	}
	if _, err := db.Job(ctx, "store_write:o-pending"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("store write of an unpaid order: %v, want none", err)
	}
	// It was charged in full (the bridge could not hold money then), so a
	// cancel must refund it.
	if o, err := db.Order(ctx, "o-paid"); err != nil || o.Payment != bridge.PaymentStateCaptured {
		t.Errorf("payment of the order paid before the outbox: %q, %v; want captured", o.Payment, err)
	}
	for _, tt := range []struct{ id, ref string }{{"o-paid", "pi_old"}, {"o-pending", ""}} {
		var rev, updated int64
		var ref string
		if err := db.db.QueryRowContext(ctx, `SELECT rev, payment_ref, updated_at FROM orders WHERE id = ?`, tt.id).
			Scan(&rev, &ref, &updated); err != nil {
			t.Fatal(err)
		}
		if rev != 1 || ref != tt.ref || updated != created.UnixNano() {
			t.Errorf("%s after the migration: rev %d, payment_ref %q, updated_at %d; want 1, %q, %d",
				tt.id, rev, ref, updated, tt.ref, created.UnixNano())
		}
		o, err := db.Order(ctx, tt.id)
		if err != nil || o.Rev != 1 {
			t.Errorf("Order(%s) = rev %d, %v; want rev 1", tt.id, o.Rev, err)
		}
	}
	if o, err := db.OrderByPaymentRef(ctx, "pi_old"); err != nil || o.ID != "o-paid" {
		t.Errorf("OrderByPaymentRef(pi_old) = %q, %v; want o-paid", o.ID, err)
	}
	// The next write by revision goes over 1.
	o, _ := db.Order(ctx, "o-paid")
	o.Rev = 2
	if err := db.Commit(ctx, bridge.Change{Order: &o}); err != nil {
		t.Errorf("rev 2 over a migrated order: %v", err)
	}
}

// The columns beside an order's body are what the lookups, the list and
// the revision guard read; they follow every kind of write.
func TestOrderColumns(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	cest := time.FixedZone("CEST", 7200)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, cest)
	o := bridge.Order{ID: "o1", SessionID: "s1", Owner: "alice", Status: "pending_payment", CreatedAt: created}
	check := func(step string, rev int64, status, ref string, updated time.Time) {
		t.Helper()
		var gotRev, gotCreated, gotUpdated int64
		var gotStatus, gotRef string
		if err := db.db.QueryRowContext(ctx, `SELECT rev, status, payment_ref, created_at, updated_at FROM orders WHERE id = 'o1'`).
			Scan(&gotRev, &gotStatus, &gotRef, &gotCreated, &gotUpdated); err != nil {
			t.Fatal(err)
		}
		wantUpdated := int64(0)
		if !updated.IsZero() {
			wantUpdated = updated.UnixNano()
		}
		if gotRev != rev || gotStatus != status || gotRef != ref || gotCreated != created.UnixNano() || gotUpdated != wantUpdated {
			t.Errorf("%s: columns rev=%d status=%q payment_ref=%q created_at=%d updated_at=%d; want %d %q %q %d %d",
				step, gotRev, gotStatus, gotRef, gotCreated, gotUpdated, rev, status, ref, created.UnixNano(), wantUpdated)
		}
	}
	steps := []struct {
		name     string
		rev      int64
		status   string
		ref      string
		updated  time.Time
		wantRev  int64
		wantFail bool
	}{
		{"insert (rev 1)", 1, "pending_payment", "", time.Time{}, 1, false},
		{"checkout replaces (rev 0)", 0, bridge.OrderCreated, "pi_1", created.Add(time.Minute), 2, false},
		{"job writes rev 3", 3, bridge.OrderConfirmed, "pi_1", created.Add(time.Hour), 3, false},
		{"stale rev 3", 3, bridge.OrderCanceled, "pi_x", created.Add(2 * time.Hour), 3, true},
		{"refund under a new charge", 4, bridge.OrderConfirmed, "pi_2", created.Add(3 * time.Hour), 4, false},
	}
	last := steps[0]
	for _, st := range steps {
		o.Rev, o.Status, o.PaymentRef, o.UpdatedAt = st.rev, st.status, st.ref, st.updated
		err := db.Commit(ctx, bridge.Change{Order: &o})
		if st.wantFail {
			if !errors.Is(err, bridge.ErrStale) {
				t.Errorf("%s: err = %v, want ErrStale", st.name, err)
			}
			check(st.name, last.wantRev, last.status, last.ref, last.updated)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		check(st.name, st.wantRev, st.status, st.ref, st.updated)
		last = st
	}
}

// With SetClock the outbox's own times (a queued job's default due time,
// created_at, updated_at, a claim at the zero time) follow the clock.
func TestOutboxClock(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	now := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC) // long before the wall clock
	db.SetClock(func() time.Time { return now })
	if err := db.Commit(ctx, bridge.Change{Jobs: []bridge.Job{{ID: "j1", Kind: "notice"}}}); err != nil {
		t.Fatal(err)
	}
	j, err := db.Job(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if !j.NextRunAt.Equal(now) || !j.CreatedAt.Equal(now) || !j.UpdatedAt.Equal(now) {
		t.Errorf("queued job: next %v, created %v, updated %v; want all %v", j.NextRunAt, j.CreatedAt, j.UpdatedAt, now)
	}
	if n, err := db.NextDue(ctx); err != nil || !n.Equal(now) {
		t.Errorf("NextDue = %v, %v; want %v", n, err, now)
	}
	// A zero now is the clock's: due at it, not after.
	claimed, err := db.ClaimJobs(ctx, time.Time{}, time.Minute, 10)
	if err != nil || len(claimed) != 1 || !claimed[0].LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("ClaimJobs at the zero time = %+v, %v; want j1 leased until %v", claimed, err, now.Add(time.Minute))
	}
	// The lease ends 1 ns before a claim could take the job over.
	if n, err := db.NextDue(ctx); err != nil || !n.Equal(now.Add(time.Minute+time.Nanosecond)) {
		t.Errorf("NextDue of a claimed job = %v, %v; want %v", n, err, now.Add(time.Minute+time.Nanosecond))
	}
	if got, _ := db.ClaimJobs(ctx, now.Add(time.Minute), time.Minute, 10); len(got) != 0 {
		t.Errorf("claimed at the lease's end: %v (the lease holds until it)", got)
	}
	now = now.Add(time.Second)
	j = claimed[0]
	j.Status = bridge.JobPending
	j.NextRunAt = time.Time{} // again, now
	if err := db.FinishJob(ctx, j, bridge.Change{}); err != nil {
		t.Fatal(err)
	}
	if j, _ = db.Job(ctx, "j1"); !j.NextRunAt.Equal(now) || !j.UpdatedAt.Equal(now) {
		t.Errorf("finished for a retry now: next %v, updated %v; want %v", j.NextRunAt, j.UpdatedAt, now)
	}
	now = now.Add(time.Second)
	if err := db.SetJob(ctx, "j1", bridge.JobCanceled, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if j, _ = db.Job(ctx, "j1"); !j.NextRunAt.Equal(now) || !j.UpdatedAt.Equal(now) {
		t.Errorf("canceled by hand: next %v, updated %v; want %v", j.NextRunAt, j.UpdatedAt, now)
	}
}

// Every claimed job gets a token of its own, different from any earlier
// claim's.
func TestClaimTokensDistinct(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	t0 := time.Date(2026, 6, 5, 9, 0, 0, 0, time.UTC)
	var jobs []bridge.Job
	for i := range 20 {
		jobs = append(jobs, bridge.Job{ID: fmt.Sprintf("j%d", i), Kind: "notice", NextRunAt: t0})
	}
	if err := db.Commit(ctx, bridge.Change{Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for round := range 3 {
		claimed, err := db.ClaimJobs(ctx, t0.Add(time.Duration(round)*time.Hour), time.Minute, 20)
		if err != nil || len(claimed) != 20 {
			t.Fatalf("round %d: claimed %d, %v", round, len(claimed), err)
		}
		for _, j := range claimed {
			if seen[j.Token] {
				t.Errorf("round %d: token %q given twice", round, j.Token)
			}
			seen[j.Token] = true
		}
	}
}

// Outbox writes share the committer's batches with checkout changes: each
// gets its own outcome, two claims in one transaction never share a job,
// and a finish whose lease was lost rolls back alone.
func TestOutboxInGroupCommit(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	t0 := time.Date(2026, 6, 5, 9, 0, 0, 0, time.UTC)
	var jobs []bridge.Job
	for i := range 6 {
		jobs = append(jobs, bridge.Job{ID: fmt.Sprintf("j%d", i), Kind: "notice", OrderID: "o1", NextRunAt: t0.Add(time.Duration(i) * time.Second)})
	}
	order := bridge.Order{ID: "o1", Rev: 1, Status: "created"}
	if err := db.Commit(ctx, bridge.Change{Order: &order, Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	first, err := db.ClaimJobs(ctx, t0.Add(time.Minute), time.Minute, 1) // j0
	if err != nil || len(first) != 1 {
		t.Fatalf("claim: %v, %v", first, err)
	}
	retaken, err := db.ClaimJobs(ctx, t0.Add(3*time.Minute), time.Hour, 1) // j0 again, lease lost by first
	if err != nil || len(retaken) != 1 || retaken[0].ID != "j0" {
		t.Fatalf("re-claim: %v, %v", retaken, err)
	}

	release := holdWrites(t, db)
	batches := db.commits.batches.Load()
	type claimResult struct {
		jobs []bridge.Job
		err  error
	}
	claim := func() <-chan claimResult {
		ch := make(chan claimResult, 1)
		n := db.commits.queued()
		go func() {
			js, err := db.ClaimJobs(ctx, t0.Add(3*time.Minute), time.Hour, 3)
			ch <- claimResult{js, err}
		}()
		waitQueued(t, db, n+1)
		return ch
	}
	c1 := claim()
	c2 := claim()
	next := order
	next.Rev, next.Status = 2, bridge.OrderConfirmed
	lost := first[0]
	lost.Status = bridge.JobDone
	l := queue(t, db, func() error {
		return db.FinishJob(ctx, lost, bridge.Change{Order: &next, Jobs: []bridge.Job{{ID: "from-lost", Kind: "notice"}}})
	})
	won := retaken[0]
	won.Status = bridge.JobDone
	w := queue(t, db, func() error {
		return db.FinishJob(ctx, won, bridge.Change{Order: &next, Jobs: []bridge.Job{{ID: "from-won", Kind: "notice", NextRunAt: t0.Add(time.Hour)}}})
	})
	s := queue(t, db, func() error { return db.Commit(ctx, bridge.Change{Session: testSession("s1", 1, "")}) })
	missing := queue(t, db, func() error { return db.SetJob(ctx, "nope", bridge.JobPending, t0) })
	release()

	r1, r2 := <-c1, <-c2
	if r1.err != nil || r2.err != nil {
		t.Fatalf("claims: %v, %v", r1.err, r2.err)
	}
	if ids1, ids2 := jobIDsOf(r1.jobs), jobIDsOf(r2.jobs); strings.Join(ids1, ",") != "j1,j2,j3" || strings.Join(ids2, ",") != "j4,j5" {
		t.Errorf("claims in one batch got %v and %v, want [j1 j2 j3] and [j4 j5]", ids1, ids2)
	}
	if err := result(t, l); !errors.Is(err, bridge.ErrLeaseLost) {
		t.Errorf("finish by the lost claim: err = %v, want ErrLeaseLost", err)
	}
	if err := result(t, w); err != nil {
		t.Errorf("finish by the claim that took over: %v", err)
	}
	if err := result(t, s); err != nil {
		t.Errorf("commit in the same batch: %v", err)
	}
	if err := result(t, missing); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("SetJob of a missing job: err = %v, want ErrNotFound", err)
	}
	if n := db.commits.batches.Load() - batches; n != 1 {
		t.Errorf("%d transactions, want 1", n)
	}
	if o, err := db.Order(ctx, "o1"); err != nil || o.Rev != 2 {
		t.Errorf("order after the batch: rev %d, %v; want 2 (the winner's write)", o.Rev, err)
	}
	if _, err := db.Job(ctx, "from-lost"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("the lost finish's job was queued: %v", err)
	}
	if _, err := db.Job(ctx, "from-won"); err != nil {
		t.Errorf("the winning finish's job: %v", err)
	}
}

func jobIDsOf(jobs []bridge.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

func TestOutboxArguments(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	now := time.Now()
	for _, tt := range []struct {
		name  string
		lease time.Duration
		limit int
	}{
		{"zero lease", 0, 1},
		{"negative lease", -time.Second, 1},
		{"negative limit", time.Minute, -1},
		{"limit above the cap", time.Minute, rowcodec.MaxClaim + 1},
	} {
		if _, err := db.ClaimJobs(ctx, now, tt.lease, tt.limit); err == nil {
			t.Errorf("ClaimJobs with %s succeeded", tt.name)
		}
	}
	if _, err := db.ClaimJobs(ctx, time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC), time.Hour, 1); err == nil {
		t.Error("ClaimJobs with a lease beyond 2262 succeeded")
	}
	if _, err := db.Jobs(ctx, bridge.JobFilter{Limit: -1}); err == nil {
		t.Error("Jobs with a negative limit succeeded")
	}
	if _, err := db.Orders(ctx, "", -1); err == nil {
		t.Error("Orders with a negative limit succeeded")
	}
	far := bridge.Job{ID: "j1", Kind: "notice", NextRunAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := db.Commit(ctx, bridge.Change{Jobs: []bridge.Job{far}}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("a job due in 3000: err = %v, want out of range", err)
	}
}
