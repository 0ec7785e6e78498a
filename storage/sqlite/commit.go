package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// Every checkout request that changes something ends in a Commit, and SQLite
// has one writer per file. Committed one at a time, each change paid for a
// BEGIN, its COMMIT (WAL frames for every page it touched, checksums) and an
// fsync (synchronous=FULL), and the other requests queued for the write lock
// meanwhile. The committer runs the queued changes as one transaction
// instead, each inside a SAVEPOINT of its own:
//
//   - Callers enqueue; one goroutine (run) takes the write lock, takes
//     whatever is queued (up to maxBatch, in arrival order, without waiting
//     for more: batches grow by themselves while a COMMIT's fsync runs),
//     and applies the changes one after the other. Two changes to the same
//     session in one batch therefore behave exactly as if committed one
//     after the other: the second sees the first's revision.
//   - A change that fails (ErrStale, ErrIdempotencyExists,
//     ErrIdempotencyLost, a constraint) is rolled back to its savepoint and
//     gets its own error; the others are not affected.
//   - Then one COMMIT, one fsync, and only then is any caller answered:
//     nobody hears "committed" before the change is durable. If the COMMIT
//     fails, every caller of the batch gets that error, including those
//     whose own change had failed (their error was judged against changes
//     of the batch that are now gone, so it would mislead).
//   - If anything around the savepoints fails (BEGIN, SAVEPOINT, ROLLBACK
//     TO, RELEASE), the transaction's state is unknown: it is rolled back,
//     the connection is replaced, and every caller of the batch gets the
//     error.
//   - Cancellation: a caller whose context is done before the committer
//     starts applying its change gets ctx.Err(), and the change is not
//     applied (it may leave the queue at once). Once the committer has
//     started applying a change, the caller waits for the batch's COMMIT
//     and gets its outcome, whatever its context says: a change that was
//     applied is committed with its batch, and its caller must learn so.
//     The statements of a batch run without the callers' contexts, because
//     SQLite's interrupt, which modernc.org/sqlite uses to cancel, rolls
//     back the whole transaction, the other callers' changes included.
//
// The committer owns one connection of the pool (its statements are
// prepared on it once) and takes the same write lock (lockWrites) as the
// catalog swap and the purge for each batch, so a catalog commit gets in
// between two batches.

// maxBatch bounds the changes of one transaction, so that the last caller
// of a batch does not wait for hundreds of others; at ~50 µs a change it is
// a few milliseconds of work.
const maxBatch = 128

// gather's settings: wait in steps of gatherStep, at most gatherSteps
// steps' worth of time, for gatherEnough changes, when the last commit
// ended within gatherAfter.
const (
	gatherStep   = 100 * time.Microsecond
	gatherSteps  = 6
	gatherEnough = 16
	gatherAfter  = 2 * time.Millisecond
)

// errClosed answers changes that Close found still queued, and Commits made
// after it.
var errClosed = errors.New("database closed")

// job is one caller's write: a checkout change, a reservation, a release,
// or one of the outbox's writes (outbox.go). (Not to be confused with the
// outbox's jobs, bridge.Job.)
type job interface {
	// apply writes the job with the committer's statements inside the
	// batch's transaction; now is the store's clock, read when the job is
	// applied (under the write lock).
	apply(st *writeStmts, now time.Time) error
}

// The states of a request: queued until the committer takes it (to apply
// it) or its caller cancels it; exactly one of the two wins.
const (
	reqQueued int32 = iota
	reqTaken
	reqCanceled
)

type commitReq struct {
	ctx   context.Context
	job   job
	state atomic.Int32
	// err is the answer, written before done is closed.
	err  error
	done chan struct{}
}

func (r *commitReq) answer(err error) {
	r.err = err
	close(r.done)
}

type committer struct {
	d *DB

	mu     sync.Mutex
	queue  []*commitReq
	closed bool

	wake   chan struct{} // capacity 1: "the queue may not be empty"
	quit   chan struct{}
	exited chan struct{}

	// Owned by run.
	conn  *sql.Conn // nil after a failure, until the next batch
	st    *writeStmts
	batch []*commitReq

	lastCommit time.Time // when the last batch committed (gather)

	// Counters for tests and benchmarks.
	batches atomic.Int64 // transactions attempted
	applied atomic.Int64 // jobs applied inside them

	// afterApply, when set (tests, before the first Commit), runs after
	// each job of a batch was applied.
	afterApply func()
}

// newCommitter starts the committer with its connection: a database that
// cannot prepare its writes fails Open, not the first checkout.
func newCommitter(d *DB) (*committer, error) {
	c := &committer{
		d:      d,
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	if err := c.ensureConn(); err != nil {
		return nil, err
	}
	go c.run()
	return c, nil
}

// submit queues j and waits for its answer; see the package comment above
// for what cancellation of ctx does.
func (c *committer) submit(ctx context.Context, j job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &commitReq{ctx: ctx, job: j, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	c.queue = append(c.queue, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // already signaled
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCanceled) {
			return ctx.Err() // never applied; run skips it
		}
		<-r.done // being applied: its fate is the batch's
		return r.err
	}
}

// queued counts the requests waiting (tests).
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

func (c *committer) run() {
	defer close(c.exited)
	for {
		select {
		case <-c.wake:
		case <-c.quit:
			return
		}
		for c.queued() > 0 {
			// The lock first, the batch second: whatever queues while a
			// catalog swap or a purge holds the lock joins the batch.
			select {
			case c.d.writes <- struct{}{}:
			case <-c.quit:
				return
			}
			c.gather()
			c.take()
			if len(c.batch) > 0 {
				c.commitBatch()
				c.lastCommit = time.Now()
			}
			<-c.d.writes
		}
	}
}

// gather lets a small batch grow for a moment when writes are coming in
// fast. A COMMIT costs about the same for 2 changes as for 20 (one fsync,
// the transaction's fixed work), and under load requests arrive all the
// time, so a few hundred microseconds of waiting buy a batch several times
// larger: measured on the project's 2-core machine (cmd/loadtest, 64
// connections), checkout updates went from ~5.0k to ~6.6k per second and
// their p99 from ~28 to ~21 ms, creates from ~7k to ~8.5k. Only
// right after a commit (the committer is busy), never for a lone write on
// an idle bridge.
//
// The wait is bounded by the clock, not by counting sleeps: a sleep of
// 100 µs lasts ~1.1 ms on some virtual machines (timer slack under load,
// measured on the project's machine), and six of them made every commit
// that followed another closely wait ~6.6 ms instead of 600 µs: a worker
// finishing outbox jobs one after the other did ~120 a second.
func (c *committer) gather() {
	if time.Since(c.lastCommit) > gatherAfter {
		return
	}
	deadline := time.Now().Add(gatherSteps * gatherStep)
	for c.queued() < gatherEnough && time.Now().Before(deadline) {
		time.Sleep(gatherStep)
	}
}

// take moves up to maxBatch requests from the queue to c.batch.
func (c *committer) take() {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.queue), maxBatch)
	clear(c.batch)
	c.batch = append(c.batch[:0], c.queue[:n]...)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
}

// commitBatch applies c.batch in one transaction and answers its callers.
func (c *committer) commitBatch() {
	batch := c.batch
	c.batches.Add(1)
	// taken are the requests this batch answers after COMMIT, with errs[i]
	// their own outcome.
	var (
		taken []*commitReq
		errs  []error
	)
	fail := func(err error) {
		// Everything of the batch that is not answered yet gets err: the
		// transaction is gone or in an unknown state.
		c.abandonTx()
		for _, r := range taken {
			r.answer(err)
		}
		for _, r := range batch {
			if r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.answer(err)
			}
		}
	}
	if err := c.ensureConn(); err != nil {
		fail(err)
		return
	}
	st := c.st
	began := false
	for _, r := range batch {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // its caller gave up while it was queued
		}
		if err := r.ctx.Err(); err != nil {
			r.answer(err) // not applied: it may leave now
			continue
		}
		if !began {
			if _, err := st.begin.Exec(); err != nil {
				taken = append(taken, r)
				fail(fmt.Errorf("begin transaction: %w", err))
				return
			}
			began = true
		}
		taken = append(taken, r)
		if _, err := st.savepoint.Exec(); err != nil {
			fail(fmt.Errorf("savepoint: %w", err))
			return
		}
		err := r.job.apply(st, c.d.now())
		if err != nil {
			if _, rerr := st.rollbackTo.Exec(); rerr != nil {
				// SQLite may have rolled back the whole transaction
				// itself (I/O error, disk full): the savepoint is gone.
				// Every caller gets the rollback's error; the change's own
				// is only mentioned, lest errors.Is find its ErrStale in
				// another caller's answer.
				fail(fmt.Errorf("rollback to savepoint after a change failed (%v): %w", err, rerr))
				return
			}
		}
		if _, rerr := st.release.Exec(); rerr != nil {
			fail(fmt.Errorf("release savepoint: %w", rerr))
			return
		}
		if err == nil {
			c.applied.Add(1)
		}
		errs = append(errs, err)
		if c.afterApply != nil {
			c.afterApply()
		}
	}
	if !began {
		return // every caller had left
	}
	if _, err := st.commit.Exec(); err != nil {
		fail(fmt.Errorf("commit transaction: %w", err))
		return
	}
	for i, r := range taken {
		r.answer(errs[i])
	}
}

// ensureConn gives the committer a connection with its statements prepared.
func (c *committer) ensureConn() error {
	if c.conn != nil {
		return nil
	}
	ctx := context.Background()
	conn, err := c.d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	// Each change's savepoint journals the pages it touches first; in
	// memory, that costs no write(2) (the default spills to a temporary
	// file beyond 64 kB). Only this connection: a catalog sync stages whole
	// snapshots in temp tables, which must be allowed to go to disk.
	if _, err := conn.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
		discard(conn)
		return fmt.Errorf("writer connection: %w", err)
	}
	st, err := prepareWrites(ctx, conn)
	if err != nil {
		discard(conn)
		return fmt.Errorf("writer connection: %w", err)
	}
	c.conn, c.st = conn, st
	return nil
}

// abandonTx drops the connection, which rolls back whatever transaction
// it was in, so the next batch starts on a clean one. Failures are rare
// (I/O errors, a full disk) and the new connection costs a millisecond.
func (c *committer) abandonTx() {
	if c.conn == nil {
		return
	}
	c.st.close()
	discard(c.conn)
	c.conn, c.st = nil, nil
}

// close stops the committer: the batch being applied finishes, changes
// still queued get errClosed. Called once, by DB.Close, before the pool
// closes.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	left := c.queue
	c.queue = nil
	c.mu.Unlock()
	close(c.quit)
	<-c.exited
	for _, r := range left {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			r.answer(errClosed)
		}
	}
	if c.conn != nil {
		c.st.close()
		c.conn.Close()
		c.conn, c.st = nil, nil
	}
}

// writeStmts are the committer's statements, prepared once on its
// connection (modernc.org/sqlite keeps a prepared single statement compiled:
// no parsing per execution).
type writeStmts struct {
	begin, commit, savepoint, rollbackTo, release *sql.Stmt

	insertSession, updateSession, updateSessionExpiry      *sql.Stmt
	upsertOrder, insertOrder, updateOrder                  *sql.Stmt
	insertIdem, takeoverIdem, finishIdem, finishIdemExpiry *sql.Stmt
	releaseIdem                                            *sql.Stmt
	holdOrder, holdLine, releaseOrder                      *sql.Stmt
	orderHolds, reservedSince                              *sql.Stmt
	insertJob, claimJobs, claimJobByID, finishJob, setJob  *sql.Stmt
	jobExists                                              *sql.Stmt

	all []*sql.Stmt
}

func prepareWrites(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	st := &writeStmts{}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		// IMMEDIATE: the write lock at BEGIN, so that another process's
		// writer makes this one wait (busy_timeout) rather than fail when
		// its first write upgrades a read lock.
		{&st.begin, `BEGIN IMMEDIATE`},
		{&st.commit, `COMMIT`},
		{&st.savepoint, `SAVEPOINT change`},
		{&st.rollbackTo, `ROLLBACK TO change`},
		{&st.release, `RELEASE change`},
		{&st.insertSession, insertSessionSQL},
		{&st.updateSession, updateSessionSQL},
		{&st.updateSessionExpiry, updateSessionExpirySQL},
		{&st.upsertOrder, upsertOrderSQL},
		{&st.insertOrder, insertOrderSQL},
		{&st.updateOrder, updateOrderSQL},
		{&st.insertJob, insertJobSQL},
		{&st.claimJobs, claimJobsSQL},
		{&st.claimJobByID, claimJobByIDSQL},
		{&st.jobExists, `SELECT 1 FROM outbox_jobs WHERE id = ?`},
		{&st.finishJob, finishJobSQL},
		{&st.setJob, setJobSQL},
		{&st.insertIdem, insertIdem},
		{&st.takeoverIdem, takeoverIdem},
		{&st.finishIdem, finishIdemSQL},
		{&st.finishIdemExpiry, finishIdemExpirySQL},
		{&st.releaseIdem, releaseIdemSQL},
		{&st.holdOrder, holdOrderSQL},
		{&st.holdLine, holdLineSQL},
		{&st.releaseOrder, releaseOrderSQL},
		{&st.orderHolds, `SELECT 1 FROM reservation_orders WHERE order_id = ?`},
		{&st.reservedSince, reservedSQL},
	} {
		s, err := conn.PrepareContext(ctx, p.query)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.stmt = s
		st.all = append(st.all, s)
	}
	return st, nil
}

func (st *writeStmts) close() {
	for _, s := range st.all {
		s.Close()
	}
	st.all = nil
}
