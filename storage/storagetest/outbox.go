package storagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// The orders-and-outbox half of the suite: order revisions, order lookups
// and bridge.Outbox. What it pins down beyond the interfaces' comments:
//
//   - Order.Rev: 0 replaces whatever is stored and the stored revision
//     becomes the old one + 1 (1 for a new order); 1 inserts and never
//     overwrites; n > 1 writes only over n − 1. Every read fills Rev. A
//     stale order fails its whole Change with ErrStale: its session, jobs,
//     hold and idempotency record are not written either.
//   - Orders lists by CreatedAt, newest first, 0 meaning 100.
//     OrderByPaymentRef finds an order by the provider's id of its charge.
//   - Change.Jobs are queued with the change; an id that exists already
//     changes nothing. A job needs an id and a kind; its status defaults to
//     pending, a zero NextRunAt to the store's now.
//   - ClaimJobs takes its time as an argument (the tests pass times rather
//     than sleep): a job is due when pending, NextRunAt ≤ now and not
//     claimed or its lease ended; oldest due first; each claim gets a new
//     token, LeaseUntil = now + lease and one more attempt. Concurrent
//     claimers never get the same job while its lease holds.
//   - FinishJob works for the holder of the claim's token, even after its
//     lease, until another claim or SetJob took the job; otherwise
//     ErrLeaseLost and nothing of its Change is applied. Its Change
//     follows Commit's rules (ErrStale included) and is all or nothing
//     together with the job's end: a stale change leaves the job claimed
//     as it was.
//   - SetJob drops the claim; pending resets the attempts and keeps the
//     last error.
//   - NextDue is the earliest time a ClaimJobs would find a job: a pending
//     job's NextRunAt, or for a claimed one the end of its lease.
//   - PurgeExpired deletes done and canceled jobs last updated more than
//     keep ago, never pending or dead ones, and counts them.

func runOutbox(t *testing.T, open func(t *testing.T) bridge.Storage) {
	t.Run("OrderRevisions", func(t *testing.T) { testOrderRevisions(t, open(t)) })
	t.Run("OrderStaleChangeAtomic", func(t *testing.T) { testOrderStaleChangeAtomic(t, open) })
	t.Run("ConcurrentOrderUpdate", func(t *testing.T) { testConcurrentOrderUpdate(t, open(t)) })
	t.Run("OrdersList", func(t *testing.T) { testOrdersList(t, open(t)) })
	t.Run("OrderByPaymentRef", func(t *testing.T) { testOrderByPaymentRef(t, open(t)) })
	t.Run("ClaimJobByID", func(t *testing.T) { testClaimJobByID(t, open(t)) })
	t.Run("JobsQueued", func(t *testing.T) { testJobsQueued(t, open(t)) })
	t.Run("JobsInvalid", func(t *testing.T) { testJobsInvalid(t, open(t)) })
	t.Run("ClaimLease", func(t *testing.T) { testClaimLease(t, open(t)) })
	t.Run("FinishJob", func(t *testing.T) { testFinishJob(t, open) })
	t.Run("FinishJobChange", func(t *testing.T) { testFinishJobChange(t, open(t)) })
	t.Run("ConcurrentClaim", func(t *testing.T) { testConcurrentClaim(t, []bridge.Storage{open(t)}) })
	t.Run("JobsFilter", func(t *testing.T) { testJobsFilter(t, open(t)) })
	t.Run("SetJob", func(t *testing.T) { testSetJob(t, open) })
	t.Run("NextDue", func(t *testing.T) { testNextDue(t, open(t)) })
	t.Run("PurgeJobs", func(t *testing.T) { testPurgeJobs(t, open(t)) })
}

// t0 is the outbox tests' clock: ClaimJobs takes now as an argument, so
// leases run out by passing a later time, never by sleeping. Jobs get
// explicit NextRunAt times around it. Only updated_at and defaults come
// from the store's own clock (the wall clock, as in the rest of the suite).
var t0 = time.Date(2026, 6, 5, 9, 0, 0, 0, time.UTC)

// job returns a pending job of kind for orderID, due at next.
func job(id, kind, orderID string, next time.Time) bridge.Job {
	return bridge.Job{ID: id, Kind: kind, OrderID: orderID, NextRunAt: next}
}

// queue commits jobs as one change.
func queue(t *testing.T, s bridge.Storage, jobs ...bridge.Job) {
	t.Helper()
	commitOK(t, s, bridge.Change{Jobs: jobs})
}

// claimJobs claims at now and fails the test on an error.
func claimJobs(t *testing.T, s bridge.Storage, now time.Time, lease time.Duration, limit int) []bridge.Job {
	t.Helper()
	jobs, err := s.ClaimJobs(t.Context(), now, lease, limit)
	if err != nil {
		t.Fatalf("ClaimJobs(%v, %v, %d): %v", now, lease, limit, err)
	}
	return jobs
}

func jobIDs(jobs []bridge.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// wantClaimed checks that claimed is the jobs ids, in order, each claimed
// at now for lease with its attempt count in attempts.
func wantClaimed(t *testing.T, what string, claimed []bridge.Job, now time.Time, lease time.Duration, ids []string, attempts ...int) {
	t.Helper()
	if got := jobIDs(claimed); !slices.Equal(got, ids) {
		t.Fatalf("%s: claimed %v, want %v", what, got, ids)
	}
	for i, j := range claimed {
		if j.Token == "" {
			t.Errorf("%s: job %s claimed without a token", what, j.ID)
		}
		if !j.LeaseUntil.Equal(now.Add(lease)) {
			t.Errorf("%s: job %s LeaseUntil = %v, want %v", what, j.ID, j.LeaseUntil, now.Add(lease))
		}
		if j.Status != bridge.JobPending {
			t.Errorf("%s: job %s claimed with status %q", what, j.ID, j.Status)
		}
		if i < len(attempts) && j.Attempts != attempts[i] {
			t.Errorf("%s: job %s Attempts = %d, want %d", what, j.ID, j.Attempts, attempts[i])
		}
		wantUTC(t, what+" "+j.ID, j.NextRunAt, j.LeaseUntil, j.CreatedAt, j.UpdatedAt)
	}
}

// jobState is what wantJob checks of a stored job; a zero next is not
// checked.
type jobState struct {
	status    bridge.JobStatus
	attempts  int
	next      time.Time
	lastError string
	// token is the claim's token that must hold the job; "" means not
	// claimed (no token, no lease).
	token string
}

func wantJob(t *testing.T, s bridge.Storage, id string, want jobState) bridge.Job {
	t.Helper()
	j, err := s.Job(t.Context(), id)
	if err != nil {
		t.Fatalf("Job(%q): %v", id, err)
	}
	if j.ID != id || j.Status != want.status || j.Attempts != want.attempts || j.LastError != want.lastError {
		t.Errorf("Job(%q) = status %q, %d attempts, last error %q; want %q, %d, %q",
			id, j.Status, j.Attempts, j.LastError, want.status, want.attempts, want.lastError)
	}
	if !want.next.IsZero() && !j.NextRunAt.Equal(want.next) {
		t.Errorf("Job(%q).NextRunAt = %v, want %v", id, j.NextRunAt, want.next)
	}
	switch {
	case want.token == "" && (j.Token != "" || !j.LeaseUntil.IsZero()):
		t.Errorf("Job(%q) is still claimed (token %q, lease until %v)", id, j.Token, j.LeaseUntil)
	case want.token != "" && (j.Token != want.token || j.LeaseUntil.IsZero()):
		t.Errorf("Job(%q) claim = token %q until %v; want token %q", id, j.Token, j.LeaseUntil, want.token)
	}
	wantUTC(t, "Job "+id, j.NextRunAt, j.LeaseUntil, j.CreatedAt, j.UpdatedAt)
	return j
}

func wantNoJob(t *testing.T, s bridge.Storage, id string) {
	t.Helper()
	_, err := s.Job(t.Context(), id)
	wantNotFound(t, fmt.Sprintf("Job(%q)", id), err)
}

// finishOK records j's end as status with c.
func finishOK(t *testing.T, s bridge.Storage, j bridge.Job, status bridge.JobStatus, c bridge.Change) {
	t.Helper()
	j.Status = status
	if err := s.FinishJob(t.Context(), j, c); err != nil {
		t.Fatalf("FinishJob(%s, %s): %v", j.ID, status, err)
	}
}

// between checks that tm is within [from, to], the wall-clock span of the
// call that set it.
func between(t *testing.T, what string, tm, from, to time.Time) {
	t.Helper()
	// Drivers may keep microseconds only.
	if tm.Before(from.Truncate(time.Microsecond)) || tm.After(to) {
		t.Errorf("%s = %v, want the store's clock during the call, within [%v, %v]", what, tm, from, to)
	}
}

func testOrderRevisions(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	steps := []struct {
		name    string
		rev     int64
		status  string
		wantErr error // nil or bridge.ErrStale
		// stored is the revision and status stored afterwards; rev 0 means
		// no order.
		storedRev    int64
		storedStatus string
	}{
		{"rev 2 of a missing order is stale, not an insert", 2, "x", bridge.ErrStale, 0, ""},
		{"rev 1 inserts", 1, "pending_payment", nil, 1, "pending_payment"},
		{"rev 1 over an existing order is stale", 1, "other", bridge.ErrStale, 1, "pending_payment"},
		{"rev 0 replaces and moves the revision on", 0, bridge.OrderCreated, nil, 2, bridge.OrderCreated},
		{"rev 0 again", 0, bridge.OrderConfirmed, nil, 3, bridge.OrderConfirmed},
		{"rev 3 over 3 is stale", 3, "x", bridge.ErrStale, 3, bridge.OrderConfirmed},
		{"rev 5 over 3 is stale", 5, "x", bridge.ErrStale, 3, bridge.OrderConfirmed},
		{"rev 4 over 3", 4, bridge.OrderShipped, nil, 4, bridge.OrderShipped},
		{"rev 4 again (a writer that read 3 too) is stale", 4, bridge.OrderCanceled, bridge.ErrStale, 4, bridge.OrderShipped},
		{"rev 0 over any revision", 0, bridge.OrderCompleted, nil, 5, bridge.OrderCompleted},
	}
	for _, st := range steps {
		o := fullOrder("o1", "s1", "alice")
		o.Rev, o.Status = st.rev, st.status
		err := s.Commit(ctx, bridge.Change{Order: &o})
		switch {
		case st.wantErr == nil && err != nil:
			t.Fatalf("%s: Commit: %v", st.name, err)
		case st.wantErr != nil:
			wantErr(t, st.name, err, st.wantErr)
		}
		got, err := s.Order(ctx, "o1")
		if st.storedRev == 0 {
			wantNotFound(t, st.name+": Order", err)
			continue
		}
		if err != nil {
			t.Fatalf("%s: Order: %v", st.name, err)
		}
		if got.Rev != st.storedRev || got.Status != st.storedStatus {
			t.Errorf("%s: stored order is rev %d %q, want rev %d %q", st.name, got.Rev, got.Status, st.storedRev, st.storedStatus)
		}
	}
	// The body comes back whole at its revision; a new order written with
	// rev 0 starts at 1.
	last := fullOrder("o1", "s1", "alice")
	last.Status = bridge.OrderCompleted
	wantOrder(t, s, last, 5)
	fresh := fullOrder("o2", "s2", "alice")
	commitOK(t, s, bridge.Change{Order: &fresh})
	wantOrder(t, s, fresh, 1)

	// A negative revision is a mistake, not a concurrent change.
	bad := fullOrder("o3", "s3", "alice")
	bad.Rev = -1
	if err := s.Commit(ctx, bridge.Change{Order: &bad}); err == nil {
		t.Error("an order at revision -1 was committed")
	} else if errors.Is(err, bridge.ErrStale) {
		t.Errorf("revision -1: err = %v; an invalid order is not a concurrent change", err)
	}
	_, err := s.Order(ctx, "o3")
	wantNotFound(t, "Order of revision -1", err)
}

// A stale order fails its whole change: nothing else of it is written.
func testOrderStaleChangeAtomic(t *testing.T, open func(t *testing.T) bridge.Storage) {
	const scope = "alice POST /checkout_sessions/s1/complete"
	for _, tt := range []struct {
		name string
		rev  int64 // of the change's order; o1 is stored at revision 2
	}{
		{"update over another revision", 4},
		{"the same revision again", 2},
		{"insert over an existing order", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			base := fullOrder("o1", "s1", "alice")
			commitOK(t, s, bridge.Change{Order: &base})
			commitOK(t, s, bridge.Change{Order: &base}) // rev 2
			stale := fullOrder("o1", "s1", "alice")
			stale.Rev, stale.Status = tt.rev, bridge.OrderCanceled
			sess := session("s1", "alice")
			r := claim(scope, "k1", "tok-1", time.Minute)
			err := s.Commit(t.Context(), bridge.Change{
				Session: &sess, Order: &stale,
				Jobs:        []bridge.Job{job("j1", "store_write", "o1", t0), job("j2", "notice", "o1", t0)},
				HoldOrderID: "o1", Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}},
				IdemOp: bridge.IdemInsert, Idempotency: &r,
			})
			wantErr(t, "Commit", err, bridge.ErrStale)
			wantOrder(t, s, base, 2)
			wantNothingOf(t, s, "alice", "s1", "", "v1", scope, "k1")
			wantNoJob(t, s, "j1")
			wantNoJob(t, s, "j2")
			if claimed := claimJobs(t, s, t0.Add(time.Hour), time.Minute, 10); len(claimed) != 0 {
				t.Errorf("jobs of the failed change were claimed: %v", jobIDs(claimed))
			}
		})
	}
}

// Writers that read the same revision of an order race: exactly one wins.
func testConcurrentOrderUpdate(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	base := fullOrder("o1", "s1", "alice")
	base.Rev = 1
	commitOK(t, s, bridge.Change{Order: &base})
	const writers = 10
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			next := base
			next.Rev = 2
			next.StoreID = fmt.Sprintf("writer-%d", i)
			<-start
			errs[i] = s.Commit(ctx, bridge.Change{Order: &next, Jobs: []bridge.Job{job(fmt.Sprintf("j%d", i), "notice", "o1", t0)}})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both committed revision 2", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, bridge.ErrStale):
			t.Errorf("writer %d: err = %v, want ErrStale", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer committed revision 2")
	}
	got, err := s.Order(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != 2 || got.StoreID != fmt.Sprintf("writer-%d", winner) {
		t.Errorf("stored order is rev %d by %q, want rev 2 by writer-%d", got.Rev, got.StoreID, winner)
	}
	// Only the winner's job was queued.
	jobs, err := s.Jobs(ctx, bridge.JobFilter{OrderID: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := jobIDs(jobs); !slices.Equal(ids, []string{fmt.Sprintf("j%d", winner)}) {
		t.Errorf("jobs of o1 = %v, want only the winner's j%d", ids, winner)
	}
}

func testOrdersList(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	// Written out of creation order, so the list must sort.
	orders := []struct {
		id, status string
		created    time.Time
	}{
		{"o-mid", bridge.OrderCreated, t0.Add(2 * time.Hour)},
		{"o-old", bridge.OrderShipped, t0},
		{"o-new", bridge.OrderCreated, t0.Add(5 * time.Hour)},
		{"o-pending", "pending_payment", t0.Add(3 * time.Hour)},
		{"o-older", bridge.OrderCreated, t0.Add(-time.Hour)},
	}
	for _, oo := range orders {
		o := fullOrder(oo.id, "s-"+oo.id, "alice")
		o.Status, o.CreatedAt = oo.status, oo.created.In(cest)
		commitOK(t, s, bridge.Change{Order: &o})
	}
	// A second write moves the revision on; the list shows it.
	again := fullOrder("o-mid", "s-o-mid", "alice")
	again.CreatedAt = t0.Add(2 * time.Hour)
	commitOK(t, s, bridge.Change{Order: &again})

	for _, tt := range []struct {
		status string
		limit  int
		want   []string
	}{
		{"", 0, []string{"o-new", "o-pending", "o-mid", "o-old", "o-older"}},
		{"", 2, []string{"o-new", "o-pending"}},
		{bridge.OrderCreated, 0, []string{"o-new", "o-mid", "o-older"}},
		{bridge.OrderCreated, 1, []string{"o-new"}},
		{"pending_payment", 0, []string{"o-pending"}},
		{bridge.OrderCanceled, 0, nil},
	} {
		got, err := s.Orders(ctx, tt.status, tt.limit)
		if err != nil {
			t.Fatalf("Orders(%q, %d): %v", tt.status, tt.limit, err)
		}
		for _, o := range got {
			wantRev := int64(1)
			if o.ID == "o-mid" {
				wantRev = 2
			}
			if o.Rev != wantRev {
				t.Errorf("Orders(%q, %d): %s at rev %d, want %d", tt.status, tt.limit, o.ID, o.Rev, wantRev)
			}
			wantUTC(t, "Orders "+o.ID, o.CreatedAt, o.UpdatedAt)
		}
		if ids := orderIDs(got); !slices.Equal(ids, tt.want) {
			t.Errorf("Orders(%q, %d) = %v, want %v", tt.status, tt.limit, ids, tt.want)
		}
	}
	got, err := s.Orders(ctx, "", 0)
	if err == nil && len(got) > 0 {
		want := fullOrder("o-new", "s-o-new", "alice")
		want.CreatedAt = t0.Add(5 * time.Hour)
		same(t, "Orders[0]", got[0], orderAt(want, 1))
	}

	// Limit 0 is 100.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			o := fullOrder(fmt.Sprintf("bulk-%03d", i), "s", "alice")
			o.CreatedAt = t0.Add(time.Duration(i+10) * time.Hour)
			if err := s.Commit(ctx, bridge.Change{Order: &o}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.Orders(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 100 || all[0].ID != "bulk-099" || all[99].ID != "bulk-000" {
		t.Errorf("Orders with limit 0 gave %d orders from %v; want 100 from bulk-099 to bulk-000", len(all), orderIDs(all[:min(3, len(all))]))
	}
}

func orderIDs(orders []bridge.Order) []string {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	return ids
}

func testOrderByPaymentRef(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	byRef := s
	a := fullOrder("o1", "s1", "alice")
	a.PaymentRef = "pi_1"
	b := fullOrder("o2", "s2", "alice")
	b.PaymentRef = ""
	c := fullOrder("o3", "s3", "bob")
	c.PaymentRef = "pi_3"
	for _, o := range []*bridge.Order{&a, &b, &c} {
		commitOK(t, s, bridge.Change{Order: o})
	}
	got, err := byRef.OrderByPaymentRef(ctx, "pi_1")
	if err != nil {
		t.Fatalf("OrderByPaymentRef(pi_1): %v", err)
	}
	same(t, "OrderByPaymentRef(pi_1)", got, orderAt(a, 1))
	for _, ref := range []string{"", "pi_2", "PI_1"} {
		_, err := byRef.OrderByPaymentRef(ctx, ref)
		wantNotFound(t, fmt.Sprintf("OrderByPaymentRef(%q)", ref), err)
	}
	// The reference follows the order's writes: a new charge replaces it.
	a.Rev, a.PaymentRef = 2, "pi_9"
	commitOK(t, s, bridge.Change{Order: &a})
	_, err = byRef.OrderByPaymentRef(ctx, "pi_1")
	wantNotFound(t, "OrderByPaymentRef of the replaced ref", err)
	if got, err := byRef.OrderByPaymentRef(ctx, "pi_9"); err != nil || got.ID != "o1" || got.Rev != 2 {
		t.Errorf("OrderByPaymentRef(pi_9) = %s rev %d, %v; want o1 rev 2", got.ID, got.Rev, err)
	}
	// An order that gets its reference later is found by it.
	b.Rev, b.PaymentRef = 0, "pi_2"
	commitOK(t, s, bridge.Change{Order: &b})
	if got, err := byRef.OrderByPaymentRef(ctx, "pi_2"); err != nil || got.ID != "o2" || got.Rev != 2 {
		t.Errorf("OrderByPaymentRef(pi_2) = %s rev %d, %v; want o2 rev 2", got.ID, got.Rev, err)
	}
}

// sameJSON fails unless got and want are the same JSON value (drivers may
// store payloads as JSON and give back another spelling of it).
func sameJSON(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	if want == nil {
		if len(got) != 0 {
			t.Errorf("%s = %s, want none", what, got)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s = %q: %v", what, got, err)
		return
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func testJobsQueued(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	_, err := s.Job(ctx, "j1")
	wantNotFound(t, "Job before any", err)
	if jobs, err := s.Jobs(ctx, bridge.JobFilter{}); err != nil || len(jobs) != 0 {
		t.Errorf("Jobs of an empty store = %v, %v", jobIDs(jobs), err)
	}

	payload := json.RawMessage(`{"event":{"id":"evt_1","type":"order_create"},"n":[1,2.5,"ü"]}`)
	order := fullOrder("o1", "s1", "alice")
	sess := session("s1", "alice")
	withPayload := job("j1", "notice", "o1", t0.Add(time.Minute).In(cest))
	withPayload.Payload = payload
	now := job("j2", "store_write", "o1", time.Time{}) // due at once
	noOrder := bridge.Job{ID: "j3", Kind: "sweep", Status: bridge.JobPending, NextRunAt: t0}
	before := time.Now()
	commitOK(t, s, bridge.Change{Session: &sess, Order: &order, Jobs: []bridge.Job{withPayload, now, noOrder}})
	after := time.Now()
	wantOrder(t, s, order, 1)

	j1 := wantJob(t, s, "j1", jobState{status: bridge.JobPending, next: t0.Add(time.Minute)})
	if j1.Kind != "notice" || j1.OrderID != "o1" {
		t.Errorf("Job(j1) = kind %q order %q", j1.Kind, j1.OrderID)
	}
	sameJSON(t, "Job(j1).Payload", j1.Payload, payload)
	between(t, "Job(j1).CreatedAt", j1.CreatedAt, before, after)
	between(t, "Job(j1).UpdatedAt", j1.UpdatedAt, before, after)
	j2 := wantJob(t, s, "j2", jobState{status: bridge.JobPending})
	between(t, "Job(j2).NextRunAt (queued with none)", j2.NextRunAt, before, after)
	sameJSON(t, "Job(j2).Payload", j2.Payload, nil)
	if j3 := wantJob(t, s, "j3", jobState{status: bridge.JobPending, next: t0}); j3.OrderID != "" || j3.Kind != "sweep" {
		t.Errorf("Job(j3) = kind %q order %q", j3.Kind, j3.OrderID)
	}

	// Queued again (a change retried after a crash, another change naming
	// the same job): nothing changes, and the rest of the change commits.
	again := withPayload
	again.Kind, again.Payload, again.NextRunAt, again.Status = "other", json.RawMessage(`{"x":1}`), t0.Add(time.Hour), bridge.JobDead
	o2 := fullOrder("o2", "s2", "alice")
	commitOK(t, s, bridge.Change{Order: &o2, Jobs: []bridge.Job{again, job("j4", "notice", "o2", t0.Add(time.Second))}})
	wantOrder(t, s, o2, 1)
	j1again := wantJob(t, s, "j1", jobState{status: bridge.JobPending, next: t0.Add(time.Minute)})
	if j1again.Kind != "notice" || !j1again.UpdatedAt.Equal(j1.UpdatedAt) {
		t.Errorf("re-queued j1 changed: kind %q, updated %v (was %v)", j1again.Kind, j1again.UpdatedAt, j1.UpdatedAt)
	}
	sameJSON(t, "re-queued Job(j1).Payload", j1again.Payload, payload)
	wantJob(t, s, "j4", jobState{status: bridge.JobPending, next: t0.Add(time.Second)})

	// A job claimed and re-queued keeps its claim.
	claimed := claimJobs(t, s, t0, time.Minute, 1)
	wantClaimed(t, "claim", claimed, t0, time.Minute, []string{"j3"}, 1)
	queue(t, s, noOrder)
	wantJob(t, s, "j3", jobState{status: bridge.JobPending, attempts: 1, next: t0, token: claimed[0].Token})

	// Queued in another status: kept as given.
	queue(t, s, bridge.Job{ID: "j5", Kind: "notice", Status: bridge.JobCanceled, NextRunAt: t0})
	wantJob(t, s, "j5", jobState{status: bridge.JobCanceled, next: t0})
}

func testJobsInvalid(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	good := job("j-good", "notice", "o1", t0)
	for _, tt := range []struct {
		name string
		bad  bridge.Job
	}{
		{"empty id", job("", "notice", "o1", t0)},
		{"empty kind", job("j1", "", "o1", t0)},
		{"unknown status", bridge.Job{ID: "j1", Kind: "notice", Status: "running", NextRunAt: t0}},
		{"payload that is not JSON", bridge.Job{ID: "j1", Kind: "notice", Payload: json.RawMessage(`{"a":`), NextRunAt: t0}},
	} {
		sess := session("s-"+tt.name, "alice")
		order := fullOrder("o-"+tt.name, sess.ID, "alice")
		err := s.Commit(ctx, bridge.Change{Session: &sess, Order: &order, Jobs: []bridge.Job{good, tt.bad}})
		if err == nil {
			t.Errorf("%s: Commit succeeded", tt.name)
		} else if errors.Is(err, bridge.ErrStale) {
			t.Errorf("%s: err = %v; an invalid job is not a concurrent change", tt.name, err)
		}
		wantNoSession(t, s, "alice", sess.ID)
		_, err = s.Order(ctx, order.ID)
		wantNotFound(t, tt.name+": Order", err)
		wantNoJob(t, s, "j-good")
		wantNoJob(t, s, "j1")
	}
}

func testClaimLease(t *testing.T, s bridge.Storage) {
	const lease = time.Minute
	queue(t, s,
		job("j-1m", "notice", "o1", t0.Add(-time.Minute)),
		job("j-3m", "notice", "o1", t0.Add(-3*time.Minute)),
		job("j-later", "notice", "o1", t0.Add(time.Hour)),
		bridge.Job{ID: "j-done", Kind: "notice", Status: bridge.JobDone, NextRunAt: t0.Add(-time.Hour)},
		bridge.Job{ID: "j-dead", Kind: "notice", Status: bridge.JobDead, NextRunAt: t0.Add(-time.Hour)},
	)
	queue(t, s, job("j-2m", "notice", "o2", t0.Add(-2*time.Minute)))
	queue(t, s, job("j-now", "notice", "o2", t0)) // due at now exactly

	// Oldest due first, at most limit.
	first := claimJobs(t, s, t0, lease, 2)
	wantClaimed(t, "first claim", first, t0, lease, []string{"j-3m", "j-2m"}, 1, 1)
	second := claimJobs(t, s, t0, lease, 10)
	wantClaimed(t, "second claim", second, t0, lease, []string{"j-1m", "j-now"}, 1, 1)
	// What the claim returned is what is stored.
	for _, j := range append(slices.Clone(first), second...) {
		got := wantJob(t, s, j.ID, jobState{status: bridge.JobPending, attempts: 1, token: j.Token})
		if !got.LeaseUntil.Equal(t0.Add(lease)) {
			t.Errorf("Job(%s).LeaseUntil = %v, want %v", j.ID, got.LeaseUntil, t0.Add(lease))
		}
	}
	// Everything due is leased; later, not done, not dead.
	if got := claimJobs(t, s, t0.Add(30*time.Second), lease, 10); len(got) != 0 {
		t.Errorf("claim while the leases hold got %v", jobIDs(got))
	}

	// The workers holding j-3m and j-1m died: past the lease, they are
	// claimed again, with new tokens and one more attempt. j-2m's holder
	// finishes in time; j-now's holder finishes late but nobody took it.
	finishOK(t, s, first[1], bridge.JobDone, bridge.Change{})
	later := t0.Add(2 * time.Minute)
	third := claimJobs(t, s, later, lease, 2)
	wantClaimed(t, "claim after the leases ended", third, later, lease, []string{"j-3m", "j-1m"}, 2, 2)
	old := map[string]string{first[0].ID: first[0].Token, second[0].ID: second[0].Token}
	for _, j := range third {
		if j.Token == old[j.ID] {
			t.Errorf("job %s claimed again with the same token %q", j.ID, j.Token)
		}
	}
	finishOK(t, s, second[1], bridge.JobDone, bridge.Change{})
	wantJob(t, s, "j-now", jobState{status: bridge.JobDone, attempts: 1})

	// The old holders wake up: their claims are lost, the new ones stand.
	for _, j := range []bridge.Job{first[0], second[0]} {
		j.Status = bridge.JobDone
		wantErr(t, "FinishJob by the first holder of "+j.ID, s.FinishJob(t.Context(), j, bridge.Change{}), bridge.ErrLeaseLost)
	}
	for _, j := range third {
		wantJob(t, s, j.ID, jobState{status: bridge.JobPending, attempts: 2, token: j.Token})
		finishOK(t, s, j, bridge.JobDone, bridge.Change{})
		wantJob(t, s, j.ID, jobState{status: bridge.JobDone, attempts: 2})
	}
	// A finished claim is spent: its token finishes nothing again.
	j := third[0]
	j.Status = bridge.JobPending
	wantErr(t, "second FinishJob with a spent token", s.FinishJob(t.Context(), j, bridge.Change{}), bridge.ErrLeaseLost)
	wantJob(t, s, j.ID, jobState{status: bridge.JobDone, attempts: 2})

	if got := claimJobs(t, s, t0.Add(30*time.Minute), lease, 10); len(got) != 0 {
		t.Errorf("claim with nothing due got %v", jobIDs(got))
	}
	later2 := t0.Add(time.Hour)
	wantClaimed(t, "claim of the later job", claimJobs(t, s, later2, lease, 10), later2, lease, []string{"j-later"}, 1)
	if got := claimJobs(t, s, t0.Add(48*time.Hour), lease, 0); len(got) != 0 {
		t.Errorf("claim with limit 0 got %v", jobIDs(got))
	}
}

func testFinishJob(t *testing.T, open func(t *testing.T) bridge.Storage) {
	const lease = time.Minute
	t.Run("outcomes", func(t *testing.T) {
		s := open(t)
		queue(t, s, job("done", "notice", "o1", t0), job("retry", "notice", "o1", t0),
			job("dead", "notice", "o1", t0), job("later", "notice", "o1", t0))
		claimed := claimJobs(t, s, t0, lease, 10)
		if len(claimed) != 4 {
			t.Fatalf("claimed %v, want 4 jobs", jobIDs(claimed))
		}
		byID := map[string]bridge.Job{}
		for _, j := range claimed {
			byID[j.ID] = j
		}
		for _, tt := range []struct {
			id        string
			status    bridge.JobStatus
			attempts  int
			next      time.Time
			lastError string
		}{
			{"done", bridge.JobDone, 1, t0, ""},
			{"retry", bridge.JobPending, 1, t0.Add(10 * time.Minute), "store answered 503"},
			{"dead", bridge.JobDead, 1, t0, "refused: product deleted"},
			// Postponed without counting the attempt.
			{"later", bridge.JobPending, 0, t0.Add(5 * time.Minute), ""},
		} {
			j := byID[tt.id]
			j.Attempts, j.NextRunAt, j.LastError = tt.attempts, tt.next, tt.lastError
			finishOK(t, s, j, tt.status, bridge.Change{})
			wantJob(t, s, tt.id, jobState{status: tt.status, attempts: tt.attempts, next: tt.next, lastError: tt.lastError})
		}
		// (Claimed for an hour: still held when "retry" falls due.)
		if got := claimJobs(t, s, t0.Add(9*time.Minute), time.Hour, 10); !slices.Equal(jobIDs(got), []string{"later"}) {
			t.Errorf("claim at +9m = %v, want [later]", jobIDs(got))
		}
		got := claimJobs(t, s, t0.Add(10*time.Minute), lease, 10)
		wantClaimed(t, "retry", got, t0.Add(10*time.Minute), lease, []string{"retry"}, 2)
		if len(got) == 1 && got[0].LastError != "store answered 503" {
			t.Errorf("the retried job's LastError = %q, want the last run's", got[0].LastError)
		}
		// Days later only the two pending ones are claimed again: never
		// the done or the dead one.
		if got := claimJobs(t, s, t0.Add(48*time.Hour), lease, 10); !slices.Equal(jobIDs(got), []string{"later", "retry"}) {
			t.Errorf("claim two days later = %v, want [later retry]", jobIDs(got))
		}
	})
	t.Run("lease lost: nothing of the change applied", func(t *testing.T) {
		s := open(t)
		order := fullOrder("o1", "s1", "alice")
		order.Rev = 1
		commitOK(t, s, bridge.Change{Order: &order, Jobs: []bridge.Job{job("j1", "store_write", "o1", t0)}})
		mine := claimJobs(t, s, t0, lease, 1)
		theirs := claimJobs(t, s, t0.Add(2*lease), lease, 1)
		if len(mine) != 1 || len(theirs) != 1 {
			t.Fatalf("claims = %v, %v; want j1 twice", jobIDs(mine), jobIDs(theirs))
		}
		next := order
		next.Rev, next.StoreID, next.Status = 2, "store-1", bridge.OrderConfirmed
		sess := session("s9", "alice")
		j := mine[0]
		j.Status = bridge.JobDone
		err := s.FinishJob(t.Context(), j, bridge.Change{Order: &next, Session: &sess,
			Jobs:        []bridge.Job{job("j2", "notice", "o1", t0)},
			HoldOrderID: "o1", Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}})
		wantErr(t, "FinishJob after a takeover", err, bridge.ErrLeaseLost)
		if errors.Is(err, bridge.ErrStale) {
			t.Errorf("err = %v also wraps ErrStale", err)
		}
		wantOrder(t, s, order, 1)
		wantNoSession(t, s, "alice", "s9")
		wantNoJob(t, s, "j2")
		wantReserved(t, s, "v1", 0)
		wantJob(t, s, "j1", jobState{status: bridge.JobPending, attempts: 2, token: theirs[0].Token})
		// The new holder's change goes through.
		j = theirs[0]
		finishOK(t, s, j, bridge.JobDone, bridge.Change{Order: &next})
		wantOrder(t, s, next, 2)
	})
	t.Run("finished late, nobody took over", func(t *testing.T) {
		s := open(t)
		queue(t, s, job("j1", "notice", "o1", t0))
		claimed := claimJobs(t, s, t0, lease, 1)
		if len(claimed) != 1 {
			t.Fatalf("claimed %v", jobIDs(claimed))
		}
		// Long past its lease; the job would be claimable, but nobody did.
		finishOK(t, s, claimed[0], bridge.JobDone, bridge.Change{})
		wantJob(t, s, "j1", jobState{status: bridge.JobDone, attempts: 1})
	})
	t.Run("invalid", func(t *testing.T) {
		s := open(t)
		queue(t, s, job("j1", "notice", "o1", t0))
		claimed := claimJobs(t, s, t0, lease, 1)
		if len(claimed) != 1 {
			t.Fatalf("claimed %v", jobIDs(claimed))
		}
		for _, tt := range []struct {
			name string
			mod  func(*bridge.Job)
		}{
			{"no token", func(j *bridge.Job) { j.Token = "" }},
			{"no id", func(j *bridge.Job) { j.ID = "" }},
			{"unknown status", func(j *bridge.Job) { j.Status = "running" }},
		} {
			j := claimed[0]
			j.Status = bridge.JobDone
			tt.mod(&j)
			if err := s.FinishJob(t.Context(), j, bridge.Change{}); err == nil {
				t.Errorf("%s: FinishJob succeeded", tt.name)
			}
		}
		// An invalid change fails the finish: the job stays claimed.
		j := claimed[0]
		j.Status = bridge.JobDone
		if err := s.FinishJob(t.Context(), j, bridge.Change{Order: &bridge.Order{}}); err == nil {
			t.Error("FinishJob with an order without id succeeded")
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobPending, attempts: 1, token: claimed[0].Token})
		// A job never claimed has no token to finish it with.
		queue(t, s, job("j2", "notice", "o1", t0.Add(time.Hour)))
		stranger := bridge.Job{ID: "j2", Token: "guess", Status: bridge.JobDone}
		wantErr(t, "FinishJob of an unclaimed job", s.FinishJob(t.Context(), stranger, bridge.Change{}), bridge.ErrLeaseLost)
		wantErr(t, "FinishJob of a missing job", s.FinishJob(t.Context(),
			bridge.Job{ID: "nope", Token: "guess", Status: bridge.JobDone}, bridge.Change{}), bridge.ErrLeaseLost)
		wantJob(t, s, "j2", jobState{status: bridge.JobPending})
	})
}

// What a job does to its order commits with the job's end, or neither does.
func testFinishJobChange(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const lease = time.Minute
	order := fullOrder("o1", "s1", "alice")
	order.StoreID, order.StoreURL = "", ""
	commitOK(t, s, bridge.Change{Order: &order, Jobs: []bridge.Job{job("write", "store_write", "o1", t0)}})
	claimed := claimJobs(t, s, t0, lease, 10)
	if len(claimed) != 1 {
		t.Fatalf("claimed %v, want [write]", jobIDs(claimed))
	}

	// The store write succeeded: the order learns its store id and the
	// agent's notice is queued, together with the job's end.
	o, err := s.Order(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	o.Rev++
	o.StoreID = "store-1"
	notice := job("notice-1", "notice", "o1", t0.Add(time.Hour))
	notice.Payload = json.RawMessage(`{"type":"order_update"}`)
	finishOK(t, s, claimed[0], bridge.JobDone, bridge.Change{Order: &o, Jobs: []bridge.Job{notice}})
	want := order
	want.StoreID = "store-1"
	wantOrder(t, s, want, 2)
	wantJob(t, s, "write", jobState{status: bridge.JobDone, attempts: 1})
	wantJob(t, s, "notice-1", jobState{status: bridge.JobPending, next: t0.Add(time.Hour)})

	// A capture job reads the order at rev 2; meanwhile the checkout
	// replaces it (rev 0 → 3). The job's write is stale: the order keeps
	// the checkout's, the follow-up job is not queued, and the job is
	// still claimed as it was, so its holder can record a rerun.
	queue(t, s, job("capture", "capture", "o1", t0))
	claimed = claimJobs(t, s, t0, lease, 1)
	if len(claimed) != 1 || claimed[0].ID != "capture" {
		t.Fatalf("claimed %v, want [capture]", jobIDs(claimed))
	}
	read, err := s.Order(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	checkout := want
	checkout.Status = bridge.OrderCanceled
	commitOK(t, s, bridge.Change{Order: &checkout})
	read.Rev++
	read.Payment = bridge.PaymentStateCaptured
	j := claimed[0]
	j.Status = bridge.JobDone
	err = s.FinishJob(ctx, j, bridge.Change{Order: &read, Jobs: []bridge.Job{job("notice-2", "notice", "o1", t0)}})
	wantErr(t, "FinishJob with a stale order", err, bridge.ErrStale)
	if errors.Is(err, bridge.ErrLeaseLost) {
		t.Errorf("err = %v also wraps ErrLeaseLost", err)
	}
	wantOrder(t, s, checkout, 3)
	wantNoJob(t, s, "notice-2")
	wantJob(t, s, "capture", jobState{status: bridge.JobPending, attempts: 1, token: j.Token})
	rerun := j
	rerun.NextRunAt, rerun.LastError = t0, "order changed while the job ran; rerun"
	finishOK(t, s, rerun, bridge.JobPending, bridge.Change{})
	wantJob(t, s, "capture", jobState{status: bridge.JobPending, attempts: 1, next: t0, lastError: rerun.LastError})

	// The rerun reads rev 3 and writes rev 4 with a session of the same
	// change: all of it lands.
	claimed = claimJobs(t, s, t0.Add(time.Second), lease, 1)
	if len(claimed) != 1 {
		t.Fatalf("claimed %v, want [capture]", jobIDs(claimed))
	}
	read, err = s.Order(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	read.Rev++
	read.Payment = bridge.PaymentStateReleased
	sess := session("s1", "alice")
	finishOK(t, s, claimed[0], bridge.JobDone, bridge.Change{Order: &read, Session: &sess})
	want = checkout
	want.Payment = bridge.PaymentStateReleased
	wantOrder(t, s, want, 4)
	wantSession(t, s, "alice", "s1", sess)
	// LastError is recorded as given: here the claim's, as it was read.
	wantJob(t, s, "capture", jobState{status: bridge.JobDone, attempts: 2, lastError: rerun.LastError})
}

// Eight workers claim from 200 due jobs at the same instant: every job is
// claimed exactly once while the leases hold, and each finish succeeds.
// Worker w uses stores[w % len(stores)].
func testConcurrentClaim(t *testing.T, stores []bridge.Storage) {
	ctx := t.Context()
	s := stores[0]
	const jobs, workers, batch = 200, 8, 7
	all := make([]bridge.Job, jobs)
	for i := range all {
		// Due times spread over the last minutes, several at the same one.
		all[i] = job(fmt.Sprintf("j%03d", i), "notice", fmt.Sprintf("o%d", i%13), t0.Add(-time.Duration(i%17)*time.Second))
	}
	queue(t, s, all...)
	var (
		mu  sync.Mutex
		got = map[string]int{}
		wg  sync.WaitGroup
	)
	errs := make(chan error, workers*jobs)
	start := make(chan struct{})
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			<-start
			for {
				claimed, err := s.ClaimJobs(ctx, t0, time.Hour, batch)
				if err != nil {
					errs <- fmt.Errorf("worker %d: ClaimJobs: %w", w, err)
					return
				}
				if len(claimed) == 0 {
					return
				}
				mu.Lock()
				for _, j := range claimed {
					got[j.ID]++
				}
				mu.Unlock()
				for _, j := range claimed {
					j.Status = bridge.JobDone
					if err := s.FinishJob(ctx, j, bridge.Change{}); err != nil {
						errs <- fmt.Errorf("worker %d: FinishJob(%s): %w", w, j.ID, err)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(got) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(got), jobs)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
	done, err := stores[len(stores)-1].Jobs(ctx, bridge.JobFilter{Status: bridge.JobDone, Limit: 2 * jobs})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != jobs {
		t.Errorf("%d jobs done, want %d", len(done), jobs)
	}
	for _, j := range done {
		if j.Attempts != 1 {
			t.Errorf("job %s done after %d attempts, want 1", j.ID, j.Attempts)
		}
	}
}

func testJobsFilter(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	// One change each, in this order: updated_at rises with each.
	for _, j := range []bridge.Job{
		job("a", "store_write", "o1", t0),
		job("b", "notice", "o1", t0),
		job("c", "notice", "o2", t0),
		job("d", "capture", "o2", t0),
		job("e", "notice", "", t0),
	} {
		queue(t, s, j)
	}
	// Updated later: a canceled, c dead (by hand).
	if err := s.SetJob(ctx, "a", bridge.JobCanceled, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJob(ctx, "c", bridge.JobDead, t0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    bridge.JobFilter
		want []string
	}{
		{"all", bridge.JobFilter{}, []string{"c", "a", "e", "d", "b"}},
		{"pending", bridge.JobFilter{Status: bridge.JobPending}, []string{"e", "d", "b"}},
		{"dead", bridge.JobFilter{Status: bridge.JobDead}, []string{"c"}},
		{"done", bridge.JobFilter{Status: bridge.JobDone}, nil},
		{"order o1", bridge.JobFilter{OrderID: "o1"}, []string{"a", "b"}},
		{"kind notice", bridge.JobFilter{Kind: "notice"}, []string{"c", "e", "b"}},
		{"pending notices of o2", bridge.JobFilter{Status: bridge.JobPending, OrderID: "o2", Kind: "notice"}, nil},
		{"notices of o2", bridge.JobFilter{OrderID: "o2", Kind: "notice"}, []string{"c"}},
		{"limit 2", bridge.JobFilter{Limit: 2}, []string{"c", "a"}},
		{"pending, limit 1", bridge.JobFilter{Status: bridge.JobPending, Limit: 1}, []string{"e"}},
	} {
		got, err := s.Jobs(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: Jobs: %v", tt.name, err)
		}
		if ids := jobIDs(got); !slices.Equal(ids, tt.want) {
			t.Errorf("%s: Jobs(%+v) = %v, want %v", tt.name, tt.f, ids, tt.want)
		}
	}
	// Limit 0 is 100.
	many := make([]bridge.Job, 101)
	for i := range many {
		many[i] = job(fmt.Sprintf("m%03d", i), "bulk", "", t0)
	}
	queue(t, s, many...)
	if got, err := s.Jobs(ctx, bridge.JobFilter{Kind: "bulk"}); err != nil || len(got) != 100 {
		t.Errorf("Jobs with limit 0 = %d jobs, %v; want 100", len(got), err)
	}
}

func testSetJob(t *testing.T, open func(t *testing.T) bridge.Storage) {
	const lease = time.Minute
	// dead returns a store with job j1 dead after three attempts.
	dead := func(t *testing.T) bridge.Storage {
		t.Helper()
		s := open(t)
		queue(t, s, job("j1", "store_write", "o1", t0))
		claimed := claimJobs(t, s, t0, lease, 1)
		if len(claimed) != 1 {
			t.Fatalf("claimed %v", jobIDs(claimed))
		}
		j := claimed[0]
		j.Attempts, j.LastError = 3, "store refused the order"
		finishOK(t, s, j, bridge.JobDead, bridge.Change{})
		return s
	}
	t.Run("retry a dead job", func(t *testing.T) {
		s := dead(t)
		at := t0.Add(time.Hour)
		if err := s.SetJob(t.Context(), "j1", bridge.JobPending, at); err != nil {
			t.Fatal(err)
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobPending, attempts: 0, next: at, lastError: "store refused the order"})
		if got := claimJobs(t, s, at.Add(-time.Second), lease, 1); len(got) != 0 {
			t.Errorf("claimed %v before the retry's time", jobIDs(got))
		}
		wantClaimed(t, "retry", claimJobs(t, s, at, lease, 1), at, lease, []string{"j1"}, 1)
	})
	t.Run("retry now", func(t *testing.T) {
		s := dead(t)
		before := time.Now()
		if err := s.SetJob(t.Context(), "j1", bridge.JobPending, time.Time{}); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		j := wantJob(t, s, "j1", jobState{status: bridge.JobPending, lastError: "store refused the order"})
		between(t, "NextRunAt of a retry with no time", j.NextRunAt, before, after)
		between(t, "UpdatedAt of a retry", j.UpdatedAt, before, after)
	})
	t.Run("finished jobs stay finished", func(t *testing.T) {
		s := open(t)
		queue(t, s, job("j1", "notice", "o1", t0))
		claimed := claimJobs(t, s, t0, lease, 1)
		finishOK(t, s, claimed[0], bridge.JobDone, bridge.Change{})
		for _, st := range []bridge.JobStatus{bridge.JobPending, bridge.JobCanceled} {
			wantErr(t, "SetJob of a done job", s.SetJob(t.Context(), "j1", st, t0), bridge.ErrJobBusy)
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobDone, attempts: 1})
	})
	t.Run("retry after a run that recorded nothing", func(t *testing.T) {
		// The worker died mid-run (lease long passed): the retry must not
		// look like a first run.
		s := open(t)
		queue(t, s, job("j1", "store_write", "o1", t0))
		claimJobs(t, s, t0, lease, 1)
		if err := s.SetJob(t.Context(), "j1", bridge.JobPending, t0); err != nil {
			t.Fatal(err)
		}
		j, err := s.Job(t.Context(), "j1")
		if err != nil || j.Attempts != 0 || j.LastError == "" {
			t.Fatalf("retried job %+v, %v; want 0 attempts and a note in last_error", j, err)
		}
	})
	t.Run("cancel a pending job", func(t *testing.T) {
		s := open(t)
		queue(t, s, job("j1", "notice", "o1", t0))
		if err := s.SetJob(t.Context(), "j1", bridge.JobCanceled, t0); err != nil {
			t.Fatal(err)
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobCanceled})
		if got := claimJobs(t, s, t0.Add(time.Hour), lease, 1); len(got) != 0 {
			t.Errorf("a canceled job was claimed: %v", jobIDs(got))
		}
	})
	t.Run("a running job is left alone", func(t *testing.T) {
		s := open(t)
		now := time.Now()
		queue(t, s, job("j1", "capture", "o1", now))
		claimed := claimJobs(t, s, now, time.Hour, 1)
		if len(claimed) != 1 {
			t.Fatalf("claimed %v", jobIDs(claimed))
		}
		for _, st := range []bridge.JobStatus{bridge.JobCanceled, bridge.JobPending} {
			wantErr(t, "SetJob of a running job", s.SetJob(t.Context(), "j1", st, now), bridge.ErrJobBusy)
		}
		j := claimed[0]
		j.Status = bridge.JobDone
		if err := s.FinishJob(t.Context(), j, bridge.Change{}); err != nil {
			t.Fatalf("the running worker's finish: %v", err)
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobDone, attempts: 1})
	})
	t.Run("cancel a job whose worker died", func(t *testing.T) {
		s := open(t)
		queue(t, s, job("j1", "capture", "o1", t0))
		claimed := claimJobs(t, s, t0, lease, 1) // its lease ended long ago
		if len(claimed) != 1 {
			t.Fatalf("claimed %v", jobIDs(claimed))
		}
		if err := s.SetJob(t.Context(), "j1", bridge.JobCanceled, t0); err != nil {
			t.Fatal(err)
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobCanceled, attempts: 1})
		// The worker finishes: its claim is gone, and so is its change.
		order := fullOrder("o1", "s1", "alice")
		j := claimed[0]
		j.Status = bridge.JobDone
		wantErr(t, "FinishJob after a cancel", s.FinishJob(t.Context(), j, bridge.Change{Order: &order}), bridge.ErrLeaseLost)
		_, err := s.Order(t.Context(), "o1")
		wantNotFound(t, "Order of a lost finish", err)
		wantJob(t, s, "j1", jobState{status: bridge.JobCanceled, attempts: 1})
	})
	t.Run("missing and invalid", func(t *testing.T) {
		s := open(t)
		wantNotFound(t, "SetJob of a missing job", s.SetJob(t.Context(), "nope", bridge.JobPending, t0))
		wantNoJob(t, s, "nope")
		queue(t, s, job("j1", "notice", "o1", t0))
		if err := s.SetJob(t.Context(), "j1", "running", t0); err == nil {
			t.Error("SetJob to an unknown status succeeded")
		}
		wantJob(t, s, "j1", jobState{status: bridge.JobPending, next: t0})
	})
}

func testNextDue(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	next := func() time.Time {
		t.Helper()
		n, err := s.NextDue(ctx)
		if err != nil {
			t.Fatalf("NextDue: %v", err)
		}
		wantUTC(t, "NextDue", n)
		return n
	}
	if n := next(); !n.IsZero() {
		t.Errorf("NextDue of an empty store = %v, want zero", n)
	}
	queue(t, s,
		bridge.Job{ID: "done", Kind: "notice", Status: bridge.JobDone, NextRunAt: t0.Add(-time.Hour)},
		bridge.Job{ID: "dead", Kind: "notice", Status: bridge.JobDead, NextRunAt: t0.Add(-time.Hour)},
		bridge.Job{ID: "canceled", Kind: "notice", Status: bridge.JobCanceled, NextRunAt: t0.Add(-time.Hour)},
	)
	if n := next(); !n.IsZero() {
		t.Errorf("NextDue with no pending job = %v, want zero", n)
	}
	queue(t, s, job("in5", "notice", "o1", t0.Add(5*time.Minute)), job("in1", "notice", "o1", t0.Add(time.Minute)))
	if n := next(); !n.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextDue = %v, want %v (the earliest pending job)", n, t0.Add(time.Minute))
	}
	// A claimed job is not due while its lease holds: the next is in5.
	claimed := claimJobs(t, s, t0.Add(2*time.Minute), 10*time.Minute, 1)
	if !slices.Equal(jobIDs(claimed), []string{"in1"}) {
		t.Fatalf("claimed %v, want [in1]", jobIDs(claimed))
	}
	if n := next(); !n.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("NextDue with in1 claimed = %v, want %v", n, t0.Add(5*time.Minute))
	}
	// Both claimed: the first lease to end (in1's, at +12m) is next.
	in5 := claimJobs(t, s, t0.Add(6*time.Minute), 10*time.Minute, 1)
	if !slices.Equal(jobIDs(in5), []string{"in5"}) {
		t.Fatalf("claimed %v, want [in5]", jobIDs(in5))
	}
	// (Drivers keeping microseconds may say a microsecond after the lease.)
	wantAfterLease := func(what string, n, leaseEnd time.Time) {
		t.Helper()
		if n.Before(leaseEnd) || n.After(leaseEnd.Add(time.Millisecond)) {
			t.Errorf("NextDue %s = %v, want the end of the lease, %v", what, n, leaseEnd)
		}
	}
	wantAfterLease("with both claimed", next(), t0.Add(12*time.Minute))
	// Its worker died: claimed at NextDue, in1 is there for the taking.
	at := next()
	again := claimJobs(t, s, at, time.Minute, 1)
	if !slices.Equal(jobIDs(again), []string{"in1"}) {
		t.Fatalf("claim at NextDue got %v, want [in1]", jobIDs(again))
	}
	// in1 fails and is retried in an hour: in5's lease ends first.
	j := again[0]
	j.NextRunAt = t0.Add(time.Hour)
	finishOK(t, s, j, bridge.JobPending, bridge.Change{})
	wantAfterLease("with in5 claimed and in1 retrying", next(), t0.Add(16*time.Minute))
	finishOK(t, s, in5[0], bridge.JobDone, bridge.Change{})
	if n := next(); !n.Equal(t0.Add(time.Hour)) {
		t.Errorf("NextDue with only the retry left = %v, want %v", n, t0.Add(time.Hour))
	}
}

func testPurgeJobs(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const lease = time.Minute
	queue(t, s,
		job("done", "notice", "o1", t0), job("canceled", "notice", "o1", t0),
		job("dead", "notice", "o1", t0), job("pending", "notice", "o1", t0.Add(time.Hour)),
		job("running", "notice", "o1", t0), job("retrying", "notice", "o1", t0),
	)
	claimed := claimJobs(t, s, t0, lease, 10)
	byID := map[string]bridge.Job{}
	for _, j := range claimed {
		byID[j.ID] = j
	}
	finishOK(t, s, byID["done"], bridge.JobDone, bridge.Change{})
	finishOK(t, s, byID["dead"], bridge.JobDead, bridge.Change{})
	r := byID["retrying"]
	r.NextRunAt = t0.Add(time.Hour)
	finishOK(t, s, r, bridge.JobPending, bridge.Change{})
	if err := s.SetJob(ctx, "canceled", bridge.JobCanceled, time.Time{}); err != nil {
		t.Fatal(err)
	}
	updated := time.Now()
	const keep = 24 * time.Hour
	// Within keep of their last update: kept.
	if n, err := s.PurgeExpired(ctx, updated.Add(keep-time.Minute), keep); err != nil || n != 0 {
		t.Errorf("PurgeExpired within keep = %d, %v; want 0", n, err)
	}
	n, err := s.PurgeExpired(ctx, updated.Add(keep+time.Minute), keep)
	if err != nil || n != 2 {
		t.Errorf("PurgeExpired past keep = %d, %v; want 2 (done, canceled)", n, err)
	}
	wantNoJob(t, s, "done")
	wantNoJob(t, s, "canceled")
	wantJob(t, s, "dead", jobState{status: bridge.JobDead, attempts: 1})
	wantJob(t, s, "pending", jobState{status: bridge.JobPending})
	wantJob(t, s, "running", jobState{status: bridge.JobPending, attempts: 1, token: byID["running"].Token})
	wantJob(t, s, "retrying", jobState{status: bridge.JobPending, attempts: 1})
	// Purged ids are free again: a job queued under one is new.
	queue(t, s, job("done", "notice", "o1", t0))
	wantJob(t, s, "done", jobState{status: bridge.JobPending, next: t0})
}

// testClaimJobByID: ClaimJob takes one due job by id, once; a job that is
// not due, already claimed, done or unknown is ErrNotFound.
func testClaimJobByID(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	jobs := []bridge.Job{
		{ID: "due", Kind: "k", NextRunAt: now, CreatedAt: now},
		{ID: "later", Kind: "k", NextRunAt: now.Add(time.Hour), CreatedAt: now},
	}
	if err := s.Commit(ctx, bridge.Change{Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	j, err := s.ClaimJob(ctx, "due", now, time.Minute)
	if err != nil || j.ID != "due" || j.Token == "" || j.Attempts != 1 {
		t.Fatalf("ClaimJob(due) = %+v, %v; want it claimed with a token and 1 attempt", j, err)
	}
	for _, tc := range []struct {
		id  string
		now time.Time
	}{
		{"due", now.Add(30 * time.Second)}, // its lease holds
		{"later", now},                     // not due
		{"missing", now},
	} {
		if _, err := s.ClaimJob(ctx, tc.id, tc.now, time.Minute); !errors.Is(err, bridge.ErrNotFound) {
			t.Errorf("ClaimJob(%s) at %v: %v, want ErrNotFound", tc.id, tc.now, err)
		}
	}
	if got, err := s.ClaimJobs(ctx, now.Add(30*time.Second), time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("ClaimJobs while ClaimJob's lease holds: %v, %v; want none", got, err)
	}
	j.Status = bridge.JobDone
	if err := s.FinishJob(ctx, j, bridge.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJob(ctx, "due", now.Add(time.Hour), time.Minute); !errors.Is(err, bridge.ErrNotFound) {
		t.Fatalf("ClaimJob of a done job: %v, want ErrNotFound", err)
	}
}
