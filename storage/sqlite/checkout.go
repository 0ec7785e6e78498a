package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

var _ bridge.CheckoutStore = (*DB)(nil)

// The checkout tables: migrations/0004_checkout.sql, orders' revision,
// payment reference and update time from 0006_outbox.sql. What their rows
// hold, and how a Change is checked and encoded for them, is
// storage/internal/rowcodec's, shared with the Postgres driver.

// Session returns the session id of owner. A session of another owner is
// reported exactly like a missing one. Decoded sessions are cached by the
// body they came from (sessioncache.go).
func (d *DB) Session(ctx context.Context, owner, id string) (bridge.Session, error) {
	rows, err := d.sessionByID.QueryContext(pointCtx(ctx), id, owner)
	if err != nil {
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
		}
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, bridge.ErrNotFound)
	}
	var raw sql.RawBytes // the driver's bytes: compared with the cache before any copy
	if err := rows.Scan(&raw); err != nil {
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
	}
	if s, ok := lookupSession(d.sessions, id, raw); ok {
		return s, nil
	}
	body := bytes.Clone(raw)
	if err := rows.Close(); err != nil { // the connection goes back before the decoding
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
	}
	var s bridge.Session
	if err := json.Unmarshal(body, &s); err != nil {
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
	}
	d.sessions.put(0, id, &cachedSession{body: body, session: s})
	return cloneSession(s), nil
}

// Order returns the order id with its revision. Orders are not cached:
// they are read once per job or webhook, not on every checkout request.
func (d *DB) Order(ctx context.Context, id string) (bridge.Order, error) {
	var rev int64
	var body []byte
	err := d.orderByID.QueryRowContext(pointCtx(ctx), id).Scan(&rev, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.Order{}, fmt.Errorf("sqlite: order %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order %q: %w", id, err)
	}
	o, err := rowcodec.DecodeOrder(rev, body)
	if err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order %q: %w", id, err)
	}
	return o, nil
}

// OrderByPaymentRef returns the order whose PaymentRef is ref (the payment
// provider's id of its charge), with its revision; ErrNotFound if none.
// Should two orders carry the same reference, the newest wins.
func (d *DB) OrderByPaymentRef(ctx context.Context, ref string) (bridge.Order, error) {
	if ref == "" {
		// Every order without a payment has the empty reference.
		return bridge.Order{}, fmt.Errorf("sqlite: order by payment ref: empty ref: %w", bridge.ErrNotFound)
	}
	var rev int64
	var body []byte
	err := d.orderByPayRef.QueryRowContext(pointCtx(ctx), ref).Scan(&rev, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.Order{}, fmt.Errorf("sqlite: order by payment ref %q: %w", ref, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order by payment ref %q: %w", ref, err)
	}
	o, err := rowcodec.DecodeOrder(rev, body)
	if err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order by payment ref %q: %w", ref, err)
	}
	return o, nil
}

// Orders lists orders with status (all when ""), most recently created
// first, at most limit (0: rowcodec.DefaultListLimit). Orders created at
// the same instant come newest-written first.
func (d *DB) Orders(ctx context.Context, status string, limit int) ([]bridge.Order, error) {
	limit, err := rowcodec.ListLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: orders: %w", err)
	}
	// Two statements rather than "?1 = '' OR status = ?1", which would hide
	// the condition from the planner. Both walk orders_by_created backwards.
	query, args := `SELECT rev, body FROM orders ORDER BY created_at DESC, rowid DESC LIMIT ?`, []any{limit}
	if status != "" {
		query = `SELECT rev, body FROM orders WHERE status = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`
		args = []any{status, limit}
	}
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: orders: %w", err)
	}
	defer rows.Close()
	var out []bridge.Order
	for rows.Next() {
		var rev int64
		var body []byte
		if err := rows.Scan(&rev, &body); err != nil {
			return nil, fmt.Errorf("sqlite: orders: %w", err)
		}
		o, err := rowcodec.DecodeOrder(rev, body)
		if err != nil {
			return nil, fmt.Errorf("sqlite: orders: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: orders: %w", err)
	}
	return out, nil
}

// Idempotency returns the record of key in scope, unless it expired (its
// ExpiresAt is at or before now, by the clock of SetClock).
func (d *DB) Idempotency(ctx context.Context, scope, key string) (bridge.IdempotencyRecord, error) {
	var rs rowcodec.IdemScanner
	err := d.idemByKey.QueryRowContext(pointCtx(ctx), scope, key, rowcodec.ClampNano(d.now())).Scan(rs.Dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, err)
	}
	r, err := rs.Record(scope, key)
	if err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, err)
	}
	return r, nil
}

// Commit applies c in one transaction under the write lock. The idempotency
// operation goes first, so when a change fails for two reasons the error
// names the one that decides what the caller does next: a replay
// (ErrIdempotencyExists) or giving up (ErrIdempotencyLost) rather than a
// retry (ErrStale). Then come the session (over its revision), the order
// (by the rules of Order.Rev: 0 replaces and moves the stored revision on,
// 1 inserts, n writes over n − 1; ErrStale otherwise) and the jobs (an id
// already queued is left alone; a zero NextRunAt is now, by the store's
// clock). ReleaseOrderID is released before Hold is reserved, so releasing
// and holding the same order replaces its hold. A hold without lines is
// nothing to hold and does nothing.
//
// Concurrent Commits share transactions (group commit, see commit.go): each
// change is applied in its own savepoint, in arrival order, and answered
// after the shared COMMIT is durable. When ctx is done before the change is
// applied, Commit returns ctx.Err() and nothing of the change is written;
// once it is being applied, Commit waits for the COMMIT and reports its
// outcome even if ctx ends meanwhile.
func (d *DB) Commit(ctx context.Context, c bridge.Change) error {
	w, err := encodeChange(c)
	if err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if w.Empty() {
		return nil
	}
	if err := d.commits.submit(ctx, w); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	d.committed(w)
	return nil
}

// committed fills the session cache with a change's session once its
// transaction is durable (never before: a failed change must not be read
// back from the cache, although a read would miss it anyway, the body
// differing from the row's).
func (d *DB) committed(w *change) {
	if w.cached != nil {
		d.sessions.put(0, w.Session.ID, w.cached)
	}
}

// change is a bridge.Change checked and encoded for the tables, so that
// nothing that can fail without the database runs under the write lock,
// with what the session cache keeps of it.
type change struct {
	*rowcodec.Change
	// cached is what Session would decode from the session's body, for the
	// session cache once committed; nil when there is no session or it
	// cannot be had without decoding.
	cached *cachedSession
}

func encodeChange(c bridge.Change) (*change, error) {
	rc, err := rowcodec.EncodeChange(c)
	if err != nil {
		return nil, err
	}
	w := &change{Change: rc}
	if s := rc.Session; s != nil && cacheableSession(s.Body) {
		// A copy: the caller may change its session after Commit.
		w.cached = &cachedSession{body: s.Body, session: cloneSession(s.Session)}
	}
	return w, nil
}

// apply writes the change inside the committer's transaction. The idempotency
// record's times are judged by now, read under the write lock, when nothing
// else can change them.
func (w *change) apply(st *writeStmts, now time.Time) error {
	if w.IdemOp != bridge.IdemNone {
		if err := applyIdem(st, w.IdemOp, w.Idem, rowcodec.ClampNano(now)); err != nil {
			return err
		}
	}
	if s := w.Session; s != nil {
		if err := applySession(st, s); err != nil {
			return err
		}
	}
	if o := w.Order; o != nil {
		if err := applyOrder(st, o); err != nil {
			return err
		}
	}
	for i := range w.Jobs {
		if err := insertJob(st, &w.Jobs[i], now); err != nil {
			return err
		}
	}
	if w.Release != "" {
		if _, err := st.releaseOrder.Exec(w.Release); err != nil {
			return fmt.Errorf("release order %q: %w", w.Release, err)
		}
	}
	if w.Checks != nil {
		if err := checkStockTx(st, w.HoldID, w.Checks); err != nil {
			return fmt.Errorf("hold order %q: %w", w.HoldID, err)
		}
	}
	if w.Hold != nil {
		if err := reserveTx(st, now, w.HoldID, w.Hold); err != nil {
			return fmt.Errorf("hold order %q: %w", w.HoldID, err)
		}
	}
	return nil
}

const (
	insertSessionSQL = `INSERT INTO checkout_sessions (id, owner, rev, status, expires_at, updated_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	// A session's expiry is fixed when it is created, and an UPDATE that
	// sets an indexed column rewrites its index entry even when the value
	// stays the same: one more page for the WAL, its fsync and the
	// checkpoint. So the update leaves expires_at alone while it is
	// unchanged (the first statement; the WHERE makes sure), and only the
	// rare update that moves it uses the second.
	updateSessionSQL = `UPDATE checkout_sessions SET rev = ?1, status = ?2, updated_at = ?4, body = ?5
		WHERE id = ?6 AND rev = ?7 AND owner = ?8 AND expires_at = ?3`
	updateSessionExpirySQL = `UPDATE checkout_sessions SET rev = ?1, status = ?2, expires_at = ?3, updated_at = ?4, body = ?5
		WHERE id = ?6 AND rev = ?7 AND owner = ?8`
	// Revision 0: the checkout's write, whatever is stored; the stored
	// revision moves on by one so that a job that read the order before
	// cannot write over it.
	upsertOrderSQL = `INSERT INTO orders (id, session_id, owner, status, created_at, body, rev, payment_ref, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)
		ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, owner = excluded.owner,
		  status = excluded.status, created_at = excluded.created_at, body = excluded.body,
		  rev = orders.rev + 1, payment_ref = excluded.payment_ref, updated_at = excluded.updated_at`
	// Revision 1: a new order, never over an existing one.
	insertOrderSQL = `INSERT INTO orders (id, session_id, owner, status, created_at, body, rev, payment_ref, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)
		ON CONFLICT (id) DO NOTHING`
	// Revision n > 1: only over n − 1.
	updateOrderSQL = `UPDATE orders SET session_id = ?2, owner = ?3, status = ?4, created_at = ?5, body = ?6,
		  rev = ?9, payment_ref = ?7, updated_at = ?8
		WHERE id = ?1 AND rev = ?9 - 1`
)

// applyOrder writes an order by its revision's rule (bridge.Order.Rev).
func applyOrder(st *writeStmts, o *rowcodec.OrderRow) error {
	args := []any{o.ID, o.SessionID, o.Owner, o.Status, o.CreatedAt, string(o.Body), o.PaymentRef, o.UpdatedAt}
	var (
		res sql.Result
		err error
	)
	switch o.Rev {
	case 0:
		_, err = st.upsertOrder.Exec(args...)
		if err != nil {
			return fmt.Errorf("order %q: %w", o.ID, err)
		}
		return nil
	case 1:
		res, err = st.insertOrder.Exec(args...)
	default:
		res, err = st.updateOrder.Exec(append(args, o.Rev)...)
	}
	if err != nil {
		return fmt.Errorf("order %q: %w", o.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("order %q: %w", o.ID, err)
	}
	if n == 0 {
		if o.Rev == 1 {
			return fmt.Errorf("order %q already exists: %w", o.ID, bridge.ErrStale)
		}
		return fmt.Errorf("order %q is not at revision %d: %w", o.ID, o.Rev-1, bridge.ErrStale)
	}
	return nil
}

func applySession(st *writeStmts, s *rowcodec.SessionRow) error {
	if s.Rev == 1 {
		_, err := st.insertSession.Exec(s.ID, s.Owner, s.Rev, s.Status, s.Expires, s.UpdatedAt, string(s.Body))
		if isConstraint(err) {
			// Whoever owns it: the caller only learns that revision 1 is
			// taken, as it would from any stale write.
			return fmt.Errorf("session %q already exists: %w", s.ID, bridge.ErrStale)
		}
		if err != nil {
			return fmt.Errorf("session %q: %w", s.ID, err)
		}
		return nil
	}
	for _, stmt := range []*sql.Stmt{st.updateSession, st.updateSessionExpiry} {
		res, err := stmt.Exec(s.Rev, s.Status, s.Expires, s.UpdatedAt, string(s.Body), s.ID, s.Rev-1, s.Owner)
		if err != nil {
			return fmt.Errorf("session %q: %w", s.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("session %q: %w", s.ID, err)
		} else if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("session %q is not at revision %d: %w", s.ID, s.Rev-1, bridge.ErrStale)
}

// upsertIdem writes the record over an existing one only WHERE allows it;
// %s is that condition on the stored row (named idempotency_keys), which may
// use the parameter ?10 for now.
const upsertIdem = `INSERT INTO idempotency_keys
	(scope, key, request_hash, token, locked_until, done, outcome, created_at, expires_at)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
	ON CONFLICT (scope, key) DO UPDATE SET
	  request_hash = excluded.request_hash, token = excluded.token,
	  locked_until = excluded.locked_until, done = excluded.done,
	  outcome = excluded.outcome, created_at = excluded.created_at,
	  expires_at = excluded.expires_at
	WHERE %s`

var (
	// IdemInsert replaces only a record that expired.
	insertIdem = fmt.Sprintf(upsertIdem, `idempotency_keys.expires_at <= ?10`)
	// IdemTakeover replaces an expired record too, and an unfinished claim
	// whose lock has passed: from LockedUntil on ("when another request may
	// take it over"), which is also when the engine stops calling the claim
	// in flight. With no record at all it inserts: nobody holds the key, so
	// the caller's new claim is as good as an insert.
	takeoverIdem = fmt.Sprintf(upsertIdem,
		`idempotency_keys.expires_at <= ?10 OR (idempotency_keys.done = 0 AND idempotency_keys.locked_until <= ?10)`)
)

const (
	// Like a session's update, finishing a claim leaves the indexed
	// expires_at alone unless it changes (the engine keeps the claim's).
	finishIdemSQL = `UPDATE idempotency_keys SET request_hash = ?1, locked_until = ?2, done = ?3, outcome = ?4,
		  created_at = ?5
		WHERE scope = ?7 AND key = ?8 AND token = ?9 AND done = 0 AND expires_at = ?6`
	finishIdemExpirySQL = `UPDATE idempotency_keys SET request_hash = ?1, locked_until = ?2, done = ?3, outcome = ?4,
		  created_at = ?5, expires_at = ?6
		WHERE scope = ?7 AND key = ?8 AND token = ?9 AND done = 0`
	releaseIdemSQL = `DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND token = ? AND done = 0`
)

func applyIdem(st *writeStmts, op bridge.IdempotencyOp, r *rowcodec.IdemRow, now int64) error {
	var outcome any // nil is NULL; an empty non-nil Outcome stays an empty blob
	if r.Outcome != nil {
		outcome = r.Outcome
	}
	var (
		res  sql.Result
		err  error
		fail error
	)
	switch op {
	case bridge.IdemInsert:
		res, err = st.insertIdem.Exec(
			r.Scope, r.Key, r.Hash, r.Token, r.Locked, r.Done, outcome, r.Created, r.Expires, now)
		fail = bridge.ErrIdempotencyExists
	case bridge.IdemTakeover:
		res, err = st.takeoverIdem.Exec(
			r.Scope, r.Key, r.Hash, r.Token, r.Locked, r.Done, outcome, r.Created, r.Expires, now)
		fail = bridge.ErrIdempotencyExists
	case bridge.IdemFinish:
		res, err = st.finishIdem.Exec(
			r.Hash, r.Locked, r.Done, outcome, r.Created, r.Expires, r.Scope, r.Key, r.Token)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				res, err = st.finishIdemExpiry.Exec(
					r.Hash, r.Locked, r.Done, outcome, r.Created, r.Expires, r.Scope, r.Key, r.Token)
			}
		}
		fail = bridge.ErrIdempotencyLost
	case bridge.IdemRelease:
		res, err = st.releaseIdem.Exec(r.Scope, r.Key, r.Token)
		fail = bridge.ErrIdempotencyLost
	}
	if err != nil {
		return fmt.Errorf("idempotency key %q: %w", r.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("idempotency key %q: %w", r.Key, err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency key %q: %w", r.Key, fail)
	}
	return nil
}

// purgeBatch bounds the rows one purge transaction deletes, so checkouts
// waiting for the write lock wait for a batch, not for the whole purge.
const purgeBatch = 1000

// PurgeExpired deletes the idempotency records expired at now, and the
// sessions whose expiry passed, the webhook events received and the done or
// canceled outbox jobs last updated more than keep before now. A session
// still in complete_in_progress is kept whatever its expiry: its payment's
// outcome is unknown, and the session is what settles it. Pending jobs have
// work to do and dead ones wait for a person (retry or cancel), so neither
// is purged. Orders and reservations are never purged. It returns how many
// rows went; rows are deleted in batches, each its own transaction, so
// after an error the count says how many did.
func (d *DB) PurgeExpired(ctx context.Context, now time.Time, keep time.Duration) (int64, error) {
	idemCut, sessionCut, err := rowcodec.PurgeCuts(now, keep)
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	var total int64
	for _, p := range []struct {
		what, query string
		args        []any
	}{
		{"idempotency records", `DELETE FROM idempotency_keys WHERE rowid IN
			(SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`,
			[]any{idemCut, purgeBatch}},
		{"webhook events", `DELETE FROM webhook_events WHERE (source, id) IN
			(SELECT source, id FROM webhook_events WHERE received_at < ? LIMIT ?)`,
			[]any{sessionCut, purgeBatch}},
		{"sessions", `DELETE FROM checkout_sessions WHERE rowid IN
			(SELECT rowid FROM checkout_sessions WHERE expires_at < ? AND status <> ? LIMIT ?)`,
			[]any{sessionCut, string(bridge.StatusCompleteInProgress), purgeBatch}},
		{"outbox jobs", `DELETE FROM outbox_jobs WHERE rowid IN
			(SELECT rowid FROM outbox_jobs WHERE status IN (?, ?) AND updated_at < ? LIMIT ?)`,
			[]any{string(bridge.JobDone), string(bridge.JobCanceled), sessionCut, purgeBatch}},
	} {
		for {
			n, err := d.purgeOnce(ctx, p.query, p.args...)
			total += n
			if err != nil {
				return total, fmt.Errorf("sqlite: purge %s: %w", p.what, err)
			}
			if n < purgeBatch {
				break
			}
		}
	}
	return total, nil
}

func (d *DB) purgeOnce(ctx context.Context, query string, args ...any) (int64, error) {
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	res, err := d.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
