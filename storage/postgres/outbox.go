package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
	"github.com/jackc/pgx/v5"
)

var _ bridge.Outbox = (*DB)(nil)

// The outbox (migrations/0005_outbox.sql): jobs are rows of outbox_jobs,
// queued by a Change in the transaction of the change that needs them.
//
// Workers on every replica claim from the same table. A claim is one
// UPDATE whose subquery picks the due jobs with FOR UPDATE SKIP LOCKED:
// rows another claim (or a finish) is writing are skipped, not waited
// for, and a row another claim leased after this statement's snapshot was
// taken is re-checked against its latest version (READ COMMITTED's rule
// for locked rows) and dropped, its lease now holding. So two claims never
// return the same job while its lease holds, and never wait for each
// other. The lease (lease_until) and the claim's token are what a dead
// worker leaves behind: its jobs are claimed again once the lease passes,
// and its late FinishJob fails (ErrLeaseLost) if someone did.

// insertJobsSQL queues jobs unclaimed, in the order given (seq); an id
// that exists changes nothing, so a change retried after a crash does not
// queue its jobs twice.
const insertJobsSQL = `INSERT INTO outbox_jobs
	(id, kind, order_id, status, payload, attempts, next_run_at, lease_until, token, last_error, created_at, updated_at)
	SELECT id, kind, order_id, status, payload, attempts, next_run_at, 0, '', last_error, created_at, $10
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[])
	  WITH ORDINALITY AS j(id, kind, order_id, status, payload, attempts, next_run_at, last_error, created_at, n)
	ORDER BY n
	ON CONFLICT (id) DO NOTHING`

// queueJobs queues the insert of jobs: one statement, however many.
func queueJobs(b *pgx.Batch, jobs []rowcodec.JobRow, now int64) {
	n := len(jobs)
	ids, kinds, orders, statuses, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads := make([][]byte, n)
	attempts, next, created := make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range jobs {
		r := &jobs[i]
		ids[i], kinds[i], orders[i], statuses[i], errs[i] = r.ID, r.Kind, r.OrderID, r.Status, r.LastError
		payloads[i] = r.Payload // nil is NULL: no payload
		attempts[i] = r.Attempts
		next[i], created[i] = r.Times(now)
	}
	b.Queue(insertJobsSQL, ids, kinds, orders, statuses, payloads, attempts, next, errs, created, now)
}

// claimJobsSQL leases up to $4 due jobs at once. A job is due when it is
// pending, its next_run_at has come and it is not leased (lease_until 0)
// or its lease passed (its worker died or hangs). Oldest due first, in the
// order they were queued when due at the same time. Each job's token is
// the claim's random part and its id, so tokens differ between jobs as
// well as between claims.
var claimJobsSQL = `UPDATE outbox_jobs j
	SET token = $1 || '.' || j.id, lease_until = $2, attempts = j.attempts + 1, updated_at = $3
	FROM (SELECT id FROM outbox_jobs
		WHERE status = 'pending' AND next_run_at <= $3 AND lease_until < $3
		ORDER BY next_run_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED) due
	WHERE j.id = due.id
	RETURNING j.seq, ` + rowcodec.JobColumns("j")

// claimJobByIDSQL is claimJobsSQL for one job, by id ($4). It waits for a
// transaction writing the job rather than skip it: the caller asks for this
// job, and the answer must say whether it is claimable.
var claimJobByIDSQL = `UPDATE outbox_jobs
	SET token = $1 || '.' || id, lease_until = $2, attempts = attempts + 1, updated_at = $3
	WHERE id = $4 AND status = 'pending' AND next_run_at <= $3 AND lease_until < $3
	RETURNING seq, ` + jobColumns

// ClaimJobs claims up to limit jobs due at now, oldest due first, for
// lease: each gets a new token, lease_until = now + lease and one more
// attempt, and is returned with them. A job is due when it is pending, its
// NextRunAt is at or before now, and it is not claimed or its claim's
// lease ended before now. A zero now is the store's clock (SetClock).
// limit 0 claims nothing. Concurrent claims, from any replica, never get
// the same job while its lease holds.
func (d *DB) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]bridge.Job, error) {
	return d.claim(ctx, "", now, lease, limit)
}

// ClaimJob claims the job id like ClaimJobs would if it were due; it
// fails with ErrNotFound when there is no such job or it is not claimable
// now (not pending, not due, or another claim's lease holds). The checkout
// uses it to run an order's store write at once, in the request.
func (d *DB) ClaimJob(ctx context.Context, id string, now time.Time, lease time.Duration) (bridge.Job, error) {
	if id == "" {
		return bridge.Job{}, fmt.Errorf("postgres: claim job: empty id: %w", bridge.ErrNotFound)
	}
	jobs, err := d.claim(ctx, id, now, lease, 1)
	if err != nil {
		return bridge.Job{}, err
	}
	if len(jobs) == 0 {
		return bridge.Job{}, fmt.Errorf("postgres: claim job %q: none claimable: %w", id, bridge.ErrNotFound)
	}
	return jobs[0], nil
}

func (d *DB) claim(ctx context.Context, id string, now time.Time, lease time.Duration, limit int) ([]bridge.Job, error) {
	cl, err := rowcodec.NewClaim(now, lease, limit, d.now)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cl == nil {
		return nil, nil
	}
	var got []rowcodec.Claimed
	err = d.send(ctx, func(b *pgx.Batch, _ time.Time) {
		if id != "" {
			b.Queue(claimJobByIDSQL, cl.Token, cl.Until, cl.At, id)
		} else {
			b.Queue(claimJobsSQL, cl.Token, cl.Until, cl.At, cl.Limit)
		}
	}, func(_ int, br pgx.BatchResults) (bool, error) {
		rows, err := br.Query()
		if err != nil {
			return true, err
		}
		got, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (rowcodec.Claimed, error) {
			var c rowcodec.Claimed
			err := row.Scan(c.Dest()...)
			return c, err
		})
		return true, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim jobs: %w", err)
	}
	return rowcodec.ClaimedJobs(got), nil
}

// finishJobSQL records a run's end over the caller's own claim. The token
// is what proves the claim: a claim taken over (lease passed, another
// worker claimed the job) has another token, and a job canceled or retried
// by hand has none. A holder whose lease passed but whom nobody replaced
// still finishes, like an idempotency claim's holder.
const finishJobSQL = `UPDATE outbox_jobs SET status = $1, attempts = $2, next_run_at = $3, last_error = $4,
	  lease_until = 0, token = '', updated_at = $5
	WHERE id = $6 AND token = $7 RETURNING 1`

// FinishJob records the end of a run of a job claimed by ClaimJobs: its
// Status, Attempts, NextRunAt (a zero NextRunAt of a pending job is now)
// and LastError as given, the claim released. It fails with ErrLeaseLost
// when j.Token no longer holds the job's claim (the claim was taken over,
// or the job was set by hand meanwhile). c is applied exactly like Commit
// applies it, ErrStale included, in the same transaction: the job's end
// and what the run did to its order land together, or neither does. The
// job's row comes first: a run whose claim was lost changes nothing,
// whatever its change would have said (the run that took over decides).
func (d *DB) FinishJob(ctx context.Context, j bridge.Job, c bridge.Change) error {
	f, err := rowcodec.EncodeFinish(j)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	w, err := rowcodec.EncodeChange(c)
	if err != nil {
		return fmt.Errorf("postgres: finish job %q: %w", j.ID, err)
	}
	err = d.send(ctx, func(b *pgx.Batch, now time.Time) {
		n := rowcodec.ClampNano(now)
		queueExpect(b, finishJobSQL, codeLeaseLost, fmt.Sprintf("job %q", f.ID),
			f.Status, f.Attempts, f.NextAt(n), f.LastError, n, f.ID, f.Token)
		if !w.Empty() {
			queueChange(b, w, now)
		}
	}, nil)
	if err != nil {
		return fmt.Errorf("postgres: finish job %q: %w", j.ID, err)
	}
	return nil
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
// order up before writing it. The second column tells a job that is busy
// or finished from one that does not exist.
const setJobSQL = `WITH u AS (
	UPDATE outbox_jobs SET status = $1, next_run_at = $2, lease_until = 0, token = '', updated_at = $3,
	  last_error = CASE WHEN $1 = 'pending' AND attempts > 0 AND last_error = ''
	                    THEN 'requeued by hand after a run that recorded no outcome' ELSE last_error END,
	  attempts = CASE WHEN $1 = 'pending' THEN 0 ELSE attempts END,
	  created_at = CASE WHEN $1 = 'pending' THEN $3 ELSE created_at END
	WHERE id = $4 AND status IN ('pending', 'dead') AND NOT (status = 'pending' AND lease_until >= $3)
	RETURNING 1)
	SELECT EXISTS (SELECT FROM u), EXISTS (SELECT FROM outbox_jobs WHERE id = $4)`

// SetJob sets a pending or dead job's status and next run by hand (a zero
// next is now). Setting it pending (a retry) resets its attempts and its
// retry horizon. ErrNotFound if there is no such job; bridge.ErrJobBusy
// while a worker runs it (its claim's lease holds) or once it is done or
// canceled.
func (d *DB) SetJob(ctx context.Context, id string, status bridge.JobStatus, next time.Time) error {
	sj, err := rowcodec.EncodeSetJob(id, status, next)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var set, exists bool
	err = d.send(ctx, func(b *pgx.Batch, now time.Time) {
		n := rowcodec.ClampNano(now)
		b.Queue(setJobSQL, sj.Status, sj.NextAt(n), n, sj.ID)
	}, func(_ int, br pgx.BatchResults) (bool, error) {
		return true, br.QueryRow().Scan(&set, &exists)
	})
	switch {
	case err != nil:
		return fmt.Errorf("postgres: set job %q: %w", id, err)
	case set:
		return nil
	case exists:
		return fmt.Errorf("postgres: set job %q: %w", id, bridge.ErrJobBusy)
	}
	return fmt.Errorf("postgres: set job %q: %w", id, bridge.ErrNotFound)
}

// Job returns the job id as stored, its claim included; ErrNotFound if
// none.
func (d *DB) Job(ctx context.Context, id string) (bridge.Job, error) {
	var js rowcodec.JobScanner
	err := d.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM outbox_jobs WHERE id = $1`, id).Scan(js.Dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.Job{}, fmt.Errorf("postgres: job %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Job{}, fmt.Errorf("postgres: job %q: %w", id, err)
	}
	return js.Job(), nil
}

// Jobs lists the jobs matching f, most recently updated first (then the
// newest queued first), at most f.Limit (0: rowcodec.DefaultListLimit).
// The list is for people (the CLI), not for the worker.
func (d *DB) Jobs(ctx context.Context, f bridge.JobFilter) ([]bridge.Job, error) {
	limit, err := rowcodec.ListLimit(f.Limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	cols, args := rowcodec.JobFilter(f)
	where := make([]string, len(cols))
	for i, c := range cols {
		where[i] = c + " = $" + strconv.Itoa(i+1)
	}
	query := `SELECT ` + jobColumns + ` FROM outbox_jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	query += ` ORDER BY updated_at DESC, seq DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (bridge.Job, error) {
		var js rowcodec.JobScanner
		err := row.Scan(js.Dest()...)
		return js.Job(), err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: jobs: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
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
	var next *int64
	if err := d.pool.QueryRow(ctx, nextDueSQL).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("postgres: next due job: %w", err)
	}
	if next == nil {
		return time.Time{}, nil
	}
	return rowcodec.FromNano(*next), nil
}

// nextDueSQL: see NextDue. lease_until never reaches the largest BIGINT
// (claim refuses such a lease), so the + 1 cannot overflow.
const nextDueSQL = `SELECT min(greatest(next_run_at, CASE WHEN lease_until = 0 THEN 0 ELSE lease_until + 1 END))
	FROM outbox_jobs WHERE status = 'pending'`

// jobColumns is the job columns' list, built once.
var jobColumns = rowcodec.JobColumns("")
