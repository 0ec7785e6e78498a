package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
	"github.com/jackc/pgx/v5"
)

var _ bridge.CheckoutStore = (*DB)(nil)

// The checkout tables: migrations/0003_checkout.sql. What their rows hold,
// and how a Change is checked and encoded for them, is
// storage/internal/rowcodec's, shared with the SQLite driver.

// Session returns the session id of owner. A session of another owner is
// reported exactly like a missing one. Sessions are not cached (the SQLite
// driver keeps decoded ones): another replica may have written the row.
func (d *DB) Session(ctx context.Context, owner, id string) (bridge.Session, error) {
	var body []byte
	err := d.pool.QueryRow(ctx, `SELECT body FROM checkout_sessions WHERE id = $1 AND owner = $2`, id, owner).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.Session{}, fmt.Errorf("postgres: session %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Session{}, fmt.Errorf("postgres: session %q: %w", id, err)
	}
	var s bridge.Session
	if err := json.Unmarshal(body, &s); err != nil {
		return bridge.Session{}, fmt.Errorf("postgres: session %q: %w", id, err)
	}
	return s, nil
}

// Order returns the order id with its revision.
func (d *DB) Order(ctx context.Context, id string) (bridge.Order, error) {
	o, err := scanOrder(d.pool.QueryRow(ctx, `SELECT rev, body FROM orders WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.Order{}, fmt.Errorf("postgres: order %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Order{}, fmt.Errorf("postgres: order %q: %w", id, err)
	}
	return o, nil
}

// OrderByPaymentRef returns the order whose PaymentRef is ref (the payment
// provider's id of its charge), with its revision; ErrNotFound if none.
// Should two orders carry the same reference, the newest wins.
func (d *DB) OrderByPaymentRef(ctx context.Context, ref string) (bridge.Order, error) {
	if ref == "" {
		// Every order without a payment has the empty reference.
		return bridge.Order{}, fmt.Errorf("postgres: order by payment ref: empty ref: %w", bridge.ErrNotFound)
	}
	// "payment_ref <> ''" repeats the partial index's condition so the
	// planner may use it whatever the parameter.
	o, err := scanOrder(d.pool.QueryRow(ctx, `SELECT rev, body FROM orders WHERE payment_ref = $1 AND payment_ref <> ''
		ORDER BY created_at DESC, seq DESC LIMIT 1`, ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.Order{}, fmt.Errorf("postgres: order by payment ref %q: %w", ref, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Order{}, fmt.Errorf("postgres: order by payment ref %q: %w", ref, err)
	}
	return o, nil
}

// Orders lists orders with status (all when ""), most recently created
// first, at most limit (0: rowcodec.DefaultListLimit). Orders created at
// the same instant come newest-written first.
func (d *DB) Orders(ctx context.Context, status string, limit int) ([]bridge.Order, error) {
	limit, err := rowcodec.ListLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: orders: %w", err)
	}
	// Two statements rather than "$1 = '' OR status = $1", which would hide
	// the condition from the planner.
	query, args := `SELECT rev, body FROM orders ORDER BY created_at DESC, seq DESC LIMIT $1`, []any{limit}
	if status != "" {
		query = `SELECT rev, body FROM orders WHERE status = $1 ORDER BY created_at DESC, seq DESC LIMIT $2`
		args = []any{status, limit}
	}
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: orders: %w", err)
	}
	defer rows.Close()
	var out []bridge.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: orders: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: orders: %w", err)
	}
	return out, nil
}

// scanOrder reads (rev, body) into an order (rowcodec.DecodeOrder).
func scanOrder(row pgx.Row) (bridge.Order, error) {
	var rev int64
	var body []byte
	if err := row.Scan(&rev, &body); err != nil {
		return bridge.Order{}, err
	}
	return rowcodec.DecodeOrder(rev, body)
}

// Idempotency returns the record of key in scope, unless it expired (its
// ExpiresAt is at or before now, by the clock of SetClock).
func (d *DB) Idempotency(ctx context.Context, scope, key string) (bridge.IdempotencyRecord, error) {
	var rs rowcodec.IdemScanner
	err := d.pool.QueryRow(ctx, `SELECT `+rowcodec.IdemColumns+`
		FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at > $3`, scope, key, rowcodec.ClampNano(d.now())).
		Scan(rs.Dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.IdempotencyRecord{}, fmt.Errorf("postgres: idempotency key %q: %w", key, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("postgres: idempotency key %q: %w", key, err)
	}
	r, err := rs.Record(scope, key)
	if err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("postgres: idempotency key %q: %w", key, err)
	}
	return r, nil
}

// Commit applies c in one transaction, sent as one pipeline (see send).
// The idempotency operation goes first, so when a change fails for two
// reasons the error names the one that decides what the caller does next:
// a replay (ErrIdempotencyExists) or giving up (ErrIdempotencyLost) rather
// than a retry (ErrStale). Then come the session (over its revision), the
// order (by the rules of Order.Rev: 0 replaces and moves the stored
// revision on, 1 inserts, n writes over n − 1; ErrStale otherwise) and the
// jobs (an id already queued is left alone; a zero NextRunAt is now, by
// the store's clock). ReleaseOrderID is released before Hold is reserved,
// so releasing and holding the same order replaces its hold. A hold
// without lines is nothing to hold and does nothing.
//
// Concurrent Commits, in this process or another, behave as if applied
// one at a time: each statement that checks a rule (a revision, a key, a
// claim's token) locks the row it checks, so a second writer waits for the
// first's transaction and then judges the row the first left.
//
// When ctx is done before the change is sent, Commit returns ctx.Err() and
// nothing is written; once sent, Commit waits for its outcome even if ctx
// ends meanwhile.
func (d *DB) Commit(ctx context.Context, c bridge.Change) error {
	w, err := rowcodec.EncodeChange(c)
	if err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	if w.Empty() {
		return nil
	}
	if err := d.send(ctx, func(b *pgx.Batch, now time.Time) { queueChange(b, w, now) }, nil); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// queueExpect queues stmt (whose parameters are args) so that the batch
// fails with code and message unless it touched a row.
func queueExpect(b *pgx.Batch, stmt, code, message string, args ...any) {
	n := len(args)
	b.Queue(fmt.Sprintf(`WITH w AS (%s) SELECT bridge_expect(EXISTS (SELECT FROM w), $%d, $%d)`, stmt, n+1, n+2),
		append(args, code, message)...)
}

// queueChange adds the change's statements to b, in the order Commit
// documents; now is the store's clock, read as the batch is built.
func queueChange(b *pgx.Batch, w *rowcodec.Change, now time.Time) {
	n := rowcodec.ClampNano(now)
	if w.IdemOp != bridge.IdemNone {
		queueIdem(b, w.IdemOp, w.Idem, n)
	}
	if s := w.Session; s != nil {
		queueSession(b, s)
	}
	if o := w.Order; o != nil {
		queueOrder(b, o)
	}
	if len(w.Jobs) > 0 {
		queueJobs(b, w.Jobs, n)
	}
	if w.Hold != nil {
		// Before the release: a change that releases and holds one order
		// takes the variants' locks before it touches the order's rows,
		// like every hold (see queueStockLocks).
		queueStockLocks(b, w.Hold, w.Checks)
	}
	if w.Release != "" {
		b.Queue(releaseOrderSQL, w.Release)
	}
	if w.Checks != nil {
		// After the release: an order that gives up its hold and holds
		// again is checked without its old hold.
		queueStockChecks(b, w.HoldID, w.Checks)
	}
	if w.Hold != nil {
		queueHold(b, w.HoldID, w.Hold, n)
	}
}

const (
	insertSessionSQL = `INSERT INTO checkout_sessions (id, owner, rev, status, expires_at, updated_at, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING 1`
	// Over rev − 1 of the same owner. A concurrent writer of the session
	// holds the row until its transaction ends; this one then re-reads the
	// row it left and finds another revision.
	updateSessionSQL = `UPDATE checkout_sessions SET rev = $1, status = $2, expires_at = $3, updated_at = $4, body = $5
		WHERE id = $6 AND rev = $7 AND owner = $8 RETURNING 1`
)

func queueSession(b *pgx.Batch, s *rowcodec.SessionRow) {
	if s.Rev == 1 {
		// Whoever owns it: the caller only learns that revision 1 is
		// taken, as it would from any stale write.
		queueExpect(b, insertSessionSQL, codeStale, fmt.Sprintf("session %q already exists", s.ID),
			s.ID, s.Owner, s.Rev, s.Status, s.Expires, s.UpdatedAt, string(s.Body))
		return
	}
	queueExpect(b, updateSessionSQL, codeStale, fmt.Sprintf("session %q is not at revision %d", s.ID, s.Rev-1),
		s.Rev, s.Status, s.Expires, s.UpdatedAt, string(s.Body), s.ID, s.Rev-1, s.Owner)
}

const (
	// Revision 0: the checkout's write, whatever is stored; the stored
	// revision moves on by one so that a job that read the order before
	// cannot write over it.
	upsertOrderSQL = `INSERT INTO orders (id, session_id, owner, status, created_at, body, rev, payment_ref, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)
		ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, owner = excluded.owner,
		  status = excluded.status, created_at = excluded.created_at, body = excluded.body,
		  rev = orders.rev + 1, payment_ref = excluded.payment_ref, updated_at = excluded.updated_at`
	// Revision 1: a new order, never over an existing one.
	insertOrderSQL = `INSERT INTO orders (id, session_id, owner, status, created_at, body, rev, payment_ref, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)
		ON CONFLICT (id) DO NOTHING RETURNING 1`
	// Revision n > 1: only over n − 1.
	updateOrderSQL = `UPDATE orders SET session_id = $2, owner = $3, status = $4, created_at = $5, body = $6,
		  rev = $9, payment_ref = $7, updated_at = $8
		WHERE id = $1 AND rev = $9 - 1 RETURNING 1`
)

// queueOrder writes an order by its revision's rule (bridge.Order.Rev).
func queueOrder(b *pgx.Batch, o *rowcodec.OrderRow) {
	args := []any{o.ID, o.SessionID, o.Owner, o.Status, o.CreatedAt, string(o.Body), o.PaymentRef, o.UpdatedAt}
	switch o.Rev {
	case 0:
		b.Queue(upsertOrderSQL, args...)
	case 1:
		queueExpect(b, insertOrderSQL, codeStale, fmt.Sprintf("order %q already exists", o.ID), args...)
	default:
		queueExpect(b, updateOrderSQL, codeStale, fmt.Sprintf("order %q is not at revision %d", o.ID, o.Rev-1),
			append(args, o.Rev)...)
	}
}

// upsertIdem writes the record over an existing one only where %s, a
// condition on the stored row (k) that may use $10, now, allows it.
const upsertIdem = `INSERT INTO idempotency_keys AS k
	(scope, key, request_hash, token, locked_until, done, outcome, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (scope, key) DO UPDATE SET
	  request_hash = excluded.request_hash, token = excluded.token,
	  locked_until = excluded.locked_until, done = excluded.done,
	  outcome = excluded.outcome, created_at = excluded.created_at,
	  expires_at = excluded.expires_at
	WHERE %s
	RETURNING 1`

var (
	// IdemInsert replaces only a record that expired. Two requests
	// inserting one key at once: the second waits for the first's
	// transaction, then finds the key taken (or free again, if the first
	// rolled back).
	insertIdemSQL = fmt.Sprintf(upsertIdem, `k.expires_at <= $10`)
	// IdemTakeover replaces an expired record too, and an unfinished claim
	// whose lock has passed: from LockedUntil on ("when another request may
	// take it over"), which is also when the engine stops calling the claim
	// in flight. With no record at all it inserts: nobody holds the key, so
	// the caller's new claim is as good as an insert.
	takeoverIdemSQL = fmt.Sprintf(upsertIdem, `k.expires_at <= $10 OR (NOT k.done AND k.locked_until <= $10)`)
)

const (
	finishIdemSQL = `UPDATE idempotency_keys SET request_hash = $1, locked_until = $2, done = $3, outcome = $4,
		  created_at = $5, expires_at = $6
		WHERE scope = $7 AND key = $8 AND token = $9 AND NOT done RETURNING 1`
	releaseIdemSQL = `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND token = $3 AND NOT done RETURNING 1`
)

func queueIdem(b *pgx.Batch, op bridge.IdempotencyOp, r *rowcodec.IdemRow, now int64) {
	// A nil Outcome is NULL; an empty non-nil one stays an empty value.
	key := fmt.Sprintf("idempotency key %q", r.Key)
	switch op {
	case bridge.IdemInsert:
		queueExpect(b, insertIdemSQL, codeIdemExists, key,
			r.Scope, r.Key, r.Hash, r.Token, r.Locked, r.Done, r.Outcome, r.Created, r.Expires, now)
	case bridge.IdemTakeover:
		queueExpect(b, takeoverIdemSQL, codeIdemExists, key,
			r.Scope, r.Key, r.Hash, r.Token, r.Locked, r.Done, r.Outcome, r.Created, r.Expires, now)
	case bridge.IdemFinish:
		queueExpect(b, finishIdemSQL, codeIdemLost, key,
			r.Hash, r.Locked, r.Done, r.Outcome, r.Created, r.Expires, r.Scope, r.Key, r.Token)
	case bridge.IdemRelease:
		queueExpect(b, releaseIdemSQL, codeIdemLost, key, r.Scope, r.Key, r.Token)
	}
}

// purgeBatch bounds the rows one purge statement deletes, so that it
// holds its locks (and its share of the WAL) for a moment only.
const purgeBatch = 1000

// PurgeExpired deletes the idempotency records expired at now, and the
// sessions whose expiry passed, the webhook events received and the done
// or canceled outbox jobs last updated more than keep before now. A
// session still in complete_in_progress is kept whatever its expiry: its
// payment's outcome is unknown, and the session is what settles it.
// Pending jobs have work to do and dead ones wait for a person (retry or
// cancel), so neither is purged. Orders and reservations are never purged.
// It returns how many rows went; rows are deleted in batches, each its
// own transaction, so after an error the count says how many did.
//
// Replicas may purge at the same time: each batch skips the rows another
// transaction holds (SKIP LOCKED), so purges never wait for each other or
// for a checkout writing a row, and a row is counted by the one that
// deleted it.
func (d *DB) PurgeExpired(ctx context.Context, now time.Time, keep time.Duration) (int64, error) {
	idemCut, cut, err := rowcodec.PurgeCuts(now, keep)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	var total int64
	for _, p := range []struct {
		what, query string
		args        []any
	}{
		{"idempotency records", `DELETE FROM idempotency_keys WHERE (scope, key) IN
			(SELECT scope, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			[]any{idemCut, purgeBatch}},
		{"webhook events", `DELETE FROM webhook_events WHERE (source, id) IN
			(SELECT source, id FROM webhook_events WHERE received_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			[]any{cut, purgeBatch}},
		{"sessions", `DELETE FROM checkout_sessions WHERE id IN
			(SELECT id FROM checkout_sessions WHERE expires_at < $1 AND status <> $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
			[]any{cut, string(bridge.StatusCompleteInProgress), purgeBatch}},
		{"outbox jobs", `DELETE FROM outbox_jobs WHERE id IN
			(SELECT id FROM outbox_jobs WHERE status IN ($1, $2) AND updated_at < $3 LIMIT $4 FOR UPDATE SKIP LOCKED)`,
			[]any{string(bridge.JobDone), string(bridge.JobCanceled), cut, purgeBatch}},
	} {
		for {
			tag, err := d.pool.Exec(ctx, p.query, p.args...)
			if err != nil {
				return total, fmt.Errorf("postgres: purge %s: %w", p.what, err)
			}
			n := tag.RowsAffected()
			total += n
			if n < purgeBatch {
				break
			}
		}
	}
	return total, nil
}
