package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

var _ bridge.Outbox = (*DB)(nil)

// The outbox (migrations/0006_outbox.sql): jobs are rows of outbox_jobs,
// queued by a Change in the transaction of the change that needs them.
//
// Every write here (claims, finishes, hand-made changes) goes through the
// group committer like a checkout Commit, for the same reasons: SQLite has
// one writer, a claim shares its transaction and fsync with whatever else
// is being committed, and a FinishJob's job update and its Change are one
// savepoint of one transaction, so they land together or not at all. The
// committer applies one request at a time, which is also what makes a claim
// safe against concurrent claimers: a second ClaimJobs runs after the
// first's UPDATE and no longer sees the jobs it leased.

// jobColumns are the columns rowcodec.JobScanner reads, in its order.
var jobColumns = rowcodec.JobColumns("")

// insertJobSQL queues a job unclaimed; an id that exists changes nothing,
// so a change retried after a crash does not queue its jobs twice.
const insertJobSQL = `INSERT INTO outbox_jobs
	(id, kind, order_id, status, payload, attempts, next_run_at, lease_until, token, last_error, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, 0, '', ?, ?, ?)
	ON CONFLICT (id) DO NOTHING`

func insertJob(st *writeStmts, r *rowcodec.JobRow, now time.Time) error {
	n := rowcodec.ClampNano(now)
	next, created := r.Times(n)
	var payload any // nil is NULL: no payload
	if r.Payload != nil {
		payload = r.Payload
	}
	if _, err := st.insertJob.Exec(r.ID, r.Kind, r.OrderID, r.Status, payload, r.Attempts, next,
		r.LastError, created, n); err != nil {
		return fmt.Errorf("job %q: %w", r.ID, err)
	}
	return nil
}

// claimJobsSQL leases up to ?4 due jobs at once. A job is due when it is
// pending, its next_run_at has come and it is not leased (lease_until 0) or
// its lease passed (its worker died or hangs). Oldest due first, in the
// order they were queued when due at the same time: the walk follows
// outbox_jobs_due, whose entries end in the rowid. Each job's token is the
// claim's random part and its id, so tokens differ between jobs as well as
// between claims.
var claimJobsSQL = `UPDATE outbox_jobs
	SET token = ?1 || '.' || id, lease_until = ?2, attempts = attempts + 1, updated_at = ?3
	WHERE rowid IN (SELECT rowid FROM outbox_jobs
		WHERE status = 'pending' AND next_run_at <= ?3 AND lease_until < ?3
		ORDER BY next_run_at, rowid LIMIT ?4)
	RETURNING rowid, ` + jobColumns

// claimJobByIDSQL is claimJobsSQL for one job, by id (?4).
var claimJobByIDSQL = `UPDATE outbox_jobs
	SET token = ?1 || '.' || id, lease_until = ?2, attempts = attempts + 1, updated_at = ?3
	WHERE id = ?4 AND status = 'pending' AND next_run_at <= ?3 AND lease_until < ?3
	RETURNING rowid, ` + jobColumns

// ClaimJobs claims up to limit jobs due at now, oldest due first, for
// lease: each gets a new token, lease_until = now + lease and one more
// attempt, and is returned with them. A job is due when it is pending, its
// NextRunAt is at or before now, and it is not claimed or its claim's lease
// ended before now. A zero now is the store's clock (SetClock). limit 0
// claims nothing.
//
// Claims are applied one at a time by the committer (each in its own
// savepoint), so two concurrent ClaimJobs never get the same job while its
// lease holds.
func (d *DB) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]bridge.Job, error) {
	return d.claim(ctx, "", now, lease, limit)
}

// ClaimJob claims the job id like ClaimJobs would if it were due; it
// fails with ErrNotFound when there is no such job or it is not claimable
// now (not pending, not due, or another claim's lease holds). The checkout
// uses it to run an order's store write at once, in the request.
func (d *DB) ClaimJob(ctx context.Context, id string, now time.Time, lease time.Duration) (bridge.Job, error) {
	if id == "" {
		return bridge.Job{}, fmt.Errorf("sqlite: claim job: empty id: %w", bridge.ErrNotFound)
	}
	jobs, err := d.claim(ctx, id, now, lease, 1)
	if err != nil {
		return bridge.Job{}, err
	}
	if len(jobs) == 0 {
		return bridge.Job{}, fmt.Errorf("sqlite: claim job %q: none claimable: %w", id, bridge.ErrNotFound)
	}
	return jobs[0], nil
}

func (d *DB) claim(ctx context.Context, id string, now time.Time, lease time.Duration, limit int) ([]bridge.Job, error) {
	cl, err := rowcodec.NewClaim(now, lease, limit, d.now)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if cl == nil {
		return nil, nil
	}
	j := &claimJob{claim: cl, id: id}
	if err := d.commits.submit(ctx, j); err != nil {
		return nil, fmt.Errorf("sqlite: claim jobs: %w", err)
	}
	return j.jobs, nil
}

// claimJob is a ClaimJobs for the committer; jobs holds what it claimed
// once applied (read by the caller after the transaction committed).
type claimJob struct {
	claim *rowcodec.Claim
	id    string // one job by id, when set
	jobs  []bridge.Job
}

func (c *claimJob) apply(st *writeStmts, _ time.Time) error {
	c.jobs = nil
	var rows *sql.Rows
	var err error
	if c.id != "" {
		rows, err = st.claimJobByID.Query(c.claim.Token, c.claim.Until, c.claim.At, c.id)
	} else {
		rows, err = st.claimJobs.Query(c.claim.Token, c.claim.Until, c.claim.At, c.claim.Limit)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	var got []rowcodec.Claimed
	for rows.Next() {
		var cl rowcodec.Claimed
		if err := rows.Scan(cl.Dest()...); err != nil {
			return err
		}
		got = append(got, cl)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	c.jobs = rowcodec.ClaimedJobs(got)
	return nil
}

// finishJobSQL records a run's end over the caller's own claim. The token
// is what proves the claim: a claim taken over (lease passed, another
// worker claimed the job) has another token, and a job canceled or retried
// by hand has none. A holder whose lease passed but whom nobody replaced
// still finishes, like an idempotency claim's holder.
const finishJobSQL = `UPDATE outbox_jobs SET status = ?1, attempts = ?2, next_run_at = ?3, last_error = ?4,
	  lease_until = 0, token = '', updated_at = ?5
	WHERE id = ?6 AND token = ?7`

// FinishJob records the end of a run of a job claimed by ClaimJobs: its
// Status, Attempts, NextRunAt (a zero NextRunAt of a pending job is now)
// and LastError as given, the claim released. It fails with ErrLeaseLost
// when j.Token no longer holds the job's claim (the claim was taken over,
// or the job was set by hand meanwhile). c is applied exactly like Commit
// applies it, ErrStale included, in the same savepoint of the same
// transaction: the job's end and what the run did to its order land
// together, or neither does.
func (d *DB) FinishJob(ctx context.Context, j bridge.Job, c bridge.Change) error {
	f, err := rowcodec.EncodeFinish(j)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	w, err := encodeChange(c)
	if err != nil {
		return fmt.Errorf("sqlite: finish job %q: %w", j.ID, err)
	}
	if err := d.commits.submit(ctx, &finishJob{f, w}); err != nil {
		return fmt.Errorf("sqlite: finish job %q: %w", j.ID, err)
	}
	d.committed(w)
	return nil
}

type finishJob struct {
	rowcodec.Finish
	change *change
}

func (f *finishJob) apply(st *writeStmts, now time.Time) error {
	n := rowcodec.ClampNano(now)
	res, err := st.finishJob.Exec(f.Status, f.Attempts, f.NextAt(n), f.LastError, n, f.ID, f.Token)
	if err != nil {
		return err
	}
	if k, err := res.RowsAffected(); err != nil {
		return err
	} else if k == 0 {
		return bridge.ErrLeaseLost
	}
	// The job first: a run whose claim was lost changes nothing, whatever
	// its change would have said (the run that took over decides).
	if f.change.Empty() {
		return nil
	}
	return f.change.apply(st, now)
}

// setJobSQL is the CLI's retry and cancel. A retry (pending) starts the
// count of attempts and the retry horizon (created_at) afresh but keeps the
// last error, which says why the job was dead. A job a worker is running
// (claimed, lease not passed) is left alone: taking it away mid-run could
// make the run's effect (an order written to the store) unrecorded.
//
// Only pending and dead jobs are set: a job that finished (done, or
// canceled) between the caller's look and this write stays as it is, so a
// delivered notice is never sent again by a retry. A run that started and
// never recorded an outcome (attempts > 0, no error) leaves a note in
// last_error, so the next run knows it is not the first and looks the
// order up before writing it.
const setJobSQL = `UPDATE outbox_jobs SET status = ?1, next_run_at = ?2, lease_until = 0, token = '', updated_at = ?3,
	  last_error = CASE WHEN ?1 = 'pending' AND attempts > 0 AND last_error = ''
	                    THEN 'requeued by hand after a run that recorded no outcome' ELSE last_error END,
	  attempts = CASE WHEN ?1 = 'pending' THEN 0 ELSE attempts END,
	  created_at = CASE WHEN ?1 = 'pending' THEN ?3 ELSE created_at END
	WHERE id = ?4 AND status IN ('pending', 'dead') AND NOT (status = 'pending' AND lease_until >= ?3)`

// SetJob sets a pending or dead job's status and next run by hand (a zero
// next is now). Setting it pending (a retry) resets its attempts and its
// retry horizon. ErrNotFound if there is no such job; bridge.ErrJobBusy
// while a worker runs it (its claim's lease holds) or once it is done or
// canceled.
func (d *DB) SetJob(ctx context.Context, id string, status bridge.JobStatus, next time.Time) error {
	sj, err := rowcodec.EncodeSetJob(id, status, next)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := d.commits.submit(ctx, setJob{sj}); err != nil {
		return fmt.Errorf("sqlite: set job %q: %w", id, err)
	}
	return nil
}

type setJob struct{ rowcodec.SetJob }

func (s setJob) apply(st *writeStmts, now time.Time) error {
	n := rowcodec.ClampNano(now)
	res, err := st.setJob.Exec(s.Status, s.NextAt(n), n, s.ID)
	if err != nil {
		return err
	}
	if k, err := res.RowsAffected(); err != nil {
		return err
	} else if k == 0 {
		var one int
		if err := st.jobExists.QueryRow(s.ID).Scan(&one); err == nil {
			return bridge.ErrJobBusy
		}
		return bridge.ErrNotFound
	}
	return nil
}

// Job returns the job id as stored, its claim included; ErrNotFound if
// none.
func (d *DB) Job(ctx context.Context, id string) (bridge.Job, error) {
	var js rowcodec.JobScanner
	err := d.jobByID.QueryRowContext(pointCtx(ctx), id).Scan(js.Dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.Job{}, fmt.Errorf("sqlite: job %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Job{}, fmt.Errorf("sqlite: job %q: %w", id, err)
	}
	return js.Job(), nil
}

// Jobs lists the jobs matching f, most recently updated first (then the
// newest queued first), at most f.Limit (0: rowcodec.DefaultListLimit).
// Only a status or an order id narrows the scan by an index; the list is
// for people (the CLI), not for the worker.
func (d *DB) Jobs(ctx context.Context, f bridge.JobFilter) ([]bridge.Job, error) {
	limit, err := rowcodec.ListLimit(f.Limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", err)
	}
	cols, args := rowcodec.JobFilter(f)
	query := `SELECT ` + jobColumns + ` FROM outbox_jobs`
	if len(cols) > 0 {
		query += ` WHERE ` + strings.Join(cols, " = ? AND ") + " = ?"
	}
	query += ` ORDER BY updated_at DESC, rowid DESC LIMIT ?`
	args = append(args, limit)
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", err)
	}
	defer rows.Close()
	var out []bridge.Job
	for rows.Next() {
		var js rowcodec.JobScanner
		if err := rows.Scan(js.Dest()...); err != nil {
			return nil, fmt.Errorf("sqlite: jobs: %w", err)
		}
		out = append(out, js.Job())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: jobs: %w", err)
	}
	return out, nil
}

// NextDue returns the first instant at which ClaimJobs would find a job
// due: the earliest NextRunAt of the pending jobs, a claimed job counting
// from just after its lease ends (lease_until + 1 ns; before that it is
// not claimable, and a worker sleeping until its NextRunAt, which has
// passed, would wake to claim nothing, again and again). Zero when no job
// is pending.
func (d *DB) NextDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	if err := d.nextDue.QueryRowContext(pointCtx(ctx)).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("sqlite: next due job: %w", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return rowcodec.FromNano(next.Int64), nil
}

// nextDueSQL: see NextDue. lease_until never reaches MaxInt64 (ClaimJobs
// refuses such a lease), so the + 1 cannot overflow.
const nextDueSQL = `SELECT min(max(next_run_at, CASE WHEN lease_until = 0 THEN 0 ELSE lease_until + 1 END))
	FROM outbox_jobs WHERE status = 'pending'`
