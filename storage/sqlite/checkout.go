package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/klauspost/compress/s2"
)

var _ bridge.CheckoutStore = (*DB)(nil)

// The checkout tables (migrations/0004_checkout.sql, orders' revision,
// payment reference and update time from 0006_outbox.sql) keep a session
// and an order whole, as the JSON of the domain type, with copies of the
// fields the WHERE clauses need in columns of their own. An order's Rev is
// not in its body: it is the row's revision, kept in the rev column and
// filled in by every read. Idempotency records are all columns: their
// lookups and guards read every field.
//
// Times are written in UTC. Columns hold Unix nanoseconds; a time int64
// nanoseconds cannot hold (before 1678, after 2262) is clamped in a session's
// or an order's columns, whose body keeps the exact value, and refused in an
// idempotency record or a job, which have no body.

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
	o, err := decodeOrder(rev, body)
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
	o, err := decodeOrder(rev, body)
	if err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order by payment ref %q: %w", ref, err)
	}
	return o, nil
}

// defaultListLimit is what a list with limit 0 returns at most.
const defaultListLimit = 100

// Orders lists orders with status (all when ""), most recently created
// first, at most limit (0: defaultListLimit). Orders created at the same
// instant come newest-written first.
func (d *DB) Orders(ctx context.Context, status string, limit int) ([]bridge.Order, error) {
	if limit < 0 {
		return nil, fmt.Errorf("sqlite: orders: negative limit %d", limit)
	}
	if limit == 0 {
		limit = defaultListLimit
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
		o, err := decodeOrder(rev, body)
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

// decodeOrder is an order's body with the revision from its column (the
// body does not carry it: Rev is the row's, not the order's).
func decodeOrder(rev int64, body []byte) (bridge.Order, error) {
	var o bridge.Order
	if err := json.Unmarshal(body, &o); err != nil {
		return bridge.Order{}, err
	}
	o.Rev = rev
	return o, nil
}

// Idempotency returns the record of key in scope, unless it expired (its
// ExpiresAt is at or before now, by the clock of SetClock).
func (d *DB) Idempotency(ctx context.Context, scope, key string) (bridge.IdempotencyRecord, error) {
	r := bridge.IdempotencyRecord{Scope: scope, Key: key}
	var locked, created, expires int64
	var done bool
	err := d.idemByKey.QueryRowContext(pointCtx(ctx), scope, key, clampNano(d.now())).
		Scan(&r.RequestHash, &r.Token, &locked, &done, &r.Outcome, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, err)
	}
	if r.Outcome, err = unpackOutcome(r.Outcome); err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: outcome: %w", key, err)
	}
	r.Done = done
	r.LockedUntil, r.CreatedAt, r.ExpiresAt = fromNano(locked), fromNano(created), fromNano(expires)
	return r, nil
}

// Outcomes hold a whole session's JSON (~2–3 kB), a copy of what the
// session row holds: compressed they take a third of the space, so fewer
// pages reach the WAL per commit. A compressed outcome starts with
// s2Outcome, a byte JSON never starts with; shorter outcomes, and rows
// written before, are stored as they are.
const (
	s2Outcome        = 0x01
	compressOutcomes = 256
)

func packOutcome(b []byte) []byte {
	if len(b) < compressOutcomes {
		return b
	}
	buf := make([]byte, 1+s2.MaxEncodedLen(len(b)))
	buf[0] = s2Outcome
	return buf[:1+len(s2.Encode(buf[1:], b))]
}

func unpackOutcome(b []byte) ([]byte, error) {
	if len(b) == 0 || b[0] != s2Outcome {
		return b, nil
	}
	return s2.Decode(nil, b[1:])
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
	if w.empty() {
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
	if s := w.session; s != nil && s.cached != nil {
		d.sessions.put(0, s.id, s.cached)
	}
}

// change is a bridge.Change checked and encoded for the tables, so that
// nothing that can fail without the database runs under the write lock.
type change struct {
	session *sessionRow
	order   *orderRow
	jobs    []jobRow
	release string
	holdID  string
	hold    []bridge.Reservation
	idemOp  bridge.IdempotencyOp
	idem    *idemRow
}

type sessionRow struct {
	id, owner, status  string
	rev                int64
	expires, updatedAt int64
	body               []byte
	// cached is what Session would decode from body, for the session
	// cache once committed; nil when it cannot be had without decoding.
	cached *cachedSession
}

// orderRow is an order with the copies of its fields that the columns
// keep in step with the body (status, payment_ref, created_at, updated_at).
type orderRow struct {
	id, sessionID, owner, status, paymentRef string
	// rev is Order.Rev: 0 replaces whatever is stored, 1 inserts, n
	// writes over n − 1.
	rev                  int64
	createdAt, updatedAt int64
	body                 []byte
}

type idemRow struct {
	scope, key, hash, token  string
	locked, created, expires int64
	done                     bool
	outcome                  []byte
}

func encodeChange(c bridge.Change) (*change, error) {
	w := &change{release: c.ReleaseOrderID, idemOp: c.IdemOp}
	if s := c.Session; s != nil {
		if s.ID == "" {
			return nil, errors.New("session without id")
		}
		if s.Rev < 1 {
			return nil, fmt.Errorf("session %q: revision %d, want 1 or more", s.ID, s.Rev)
		}
		u := s.UTC()
		body, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("session %q: %w", s.ID, err)
		}
		expires := int64(math.MaxInt64) // no expiry: never purged
		if !u.ExpiresAt.IsZero() {
			expires = clampNano(u.ExpiresAt)
		}
		w.session = &sessionRow{
			id: u.ID, owner: u.Owner, status: string(u.Status), rev: u.Rev,
			expires: expires, updatedAt: clampNano(u.UpdatedAt), body: body,
		}
		if cacheableSession(body) {
			// A copy: the caller may change its session after Commit.
			w.session.cached = &cachedSession{body: body, session: cloneSession(u)}
		}
	}
	if o := c.Order; o != nil {
		if o.ID == "" {
			return nil, errors.New("order without id")
		}
		if o.Rev < 0 {
			return nil, fmt.Errorf("order %q: revision %d, want 0 (replace) or 1 or more", o.ID, o.Rev)
		}
		u := orderUTC(*o)
		body, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("order %q: %w", o.ID, err)
		}
		w.order = &orderRow{
			id: u.ID, sessionID: u.SessionID, owner: u.Owner, status: u.Status, paymentRef: u.PaymentRef,
			rev: u.Rev, createdAt: clampNano(u.CreatedAt), updatedAt: clampNano(u.UpdatedAt), body: body,
		}
	}
	for i := range c.Jobs {
		r, err := encodeJob(&c.Jobs[i])
		if err != nil {
			return nil, err
		}
		w.jobs = append(w.jobs, r)
	}
	if len(c.Hold) > 0 {
		if err := checkHold(c.HoldOrderID, c.Hold); err != nil {
			return nil, fmt.Errorf("hold: %w", err)
		}
		w.holdID, w.hold = c.HoldOrderID, c.Hold
	}
	switch c.IdemOp {
	case bridge.IdemNone:
		return w, nil
	case bridge.IdemInsert, bridge.IdemFinish, bridge.IdemRelease, bridge.IdemTakeover:
	default:
		return nil, fmt.Errorf("unknown idempotency operation %d", c.IdemOp)
	}
	r := c.Idempotency
	if r == nil {
		return nil, fmt.Errorf("idempotency operation %d without a record", c.IdemOp)
	}
	if r.Scope == "" || r.Key == "" {
		return nil, fmt.Errorf("idempotency record without scope or key (%q, %q)", r.Scope, r.Key)
	}
	if r.Token == "" && c.IdemOp != bridge.IdemInsert {
		// Finish and Release match the claim by token, Takeover makes a new
		// claim: an empty token would match or make anyone's.
		return nil, fmt.Errorf("idempotency key %q: operation %d without a claim token", r.Key, c.IdemOp)
	}
	if r.ExpiresAt.IsZero() && c.IdemOp != bridge.IdemRelease {
		// It would be expired, hence invisible, from the start.
		return nil, fmt.Errorf("idempotency key %q: record without expiry", r.Key)
	}
	w.idem = &idemRow{scope: r.Scope, key: r.Key, hash: r.RequestHash, token: r.Token, done: r.Done, outcome: packOutcome(r.Outcome)}
	for _, t := range []struct {
		name string
		t    time.Time
		dst  *int64
	}{
		{"locked_until", r.LockedUntil, &w.idem.locked},
		{"created_at", r.CreatedAt, &w.idem.created},
		{"expires_at", r.ExpiresAt, &w.idem.expires},
	} {
		n, err := toNano(t.t)
		if err != nil {
			return nil, fmt.Errorf("idempotency key %q: %s: %w", r.Key, t.name, err)
		}
		*t.dst = n
	}
	return w, nil
}

func (w *change) empty() bool {
	return w.session == nil && w.order == nil && w.jobs == nil && w.release == "" && w.hold == nil && w.idemOp == bridge.IdemNone
}

// orderUTC returns o with every time in UTC, the form it is stored and
// read back in, sharing no slice it changes with o (the caller's).
func orderUTC(o bridge.Order) bridge.Order {
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if o.Fulfillments != nil {
		fs := slices.Clone(o.Fulfillments)
		for i := range fs {
			if fs[i].Events != nil {
				evs := slices.Clone(fs[i].Events)
				for j := range evs {
					evs[j].OccurredAt = evs[j].OccurredAt.UTC()
				}
				fs[i].Events = evs
			}
		}
		o.Fulfillments = fs
	}
	if o.Adjustments != nil {
		as := slices.Clone(o.Adjustments)
		for i := range as {
			as[i].OccurredAt = as[i].OccurredAt.UTC()
		}
		o.Adjustments = as
	}
	if o.History != nil {
		hs := slices.Clone(o.History)
		for i := range hs {
			hs[i].At = hs[i].At.UTC()
		}
		o.History = hs
	}
	return o
}

// apply writes the change inside the committer's transaction. The idempotency
// record's times are judged by now, read under the write lock, when nothing
// else can change them.
func (w *change) apply(st *writeStmts, now time.Time) error {
	if w.idemOp != bridge.IdemNone {
		if err := w.applyIdem(st, clampNano(now)); err != nil {
			return err
		}
	}
	if s := w.session; s != nil {
		if err := applySession(st, s); err != nil {
			return err
		}
	}
	if o := w.order; o != nil {
		if err := applyOrder(st, o); err != nil {
			return err
		}
	}
	for i := range w.jobs {
		if err := insertJob(st, &w.jobs[i], now); err != nil {
			return err
		}
	}
	if w.release != "" {
		if _, err := st.releaseOrder.Exec(w.release); err != nil {
			return fmt.Errorf("release order %q: %w", w.release, err)
		}
	}
	if w.hold != nil {
		if err := reserveTx(st, now, w.holdID, w.hold); err != nil {
			return fmt.Errorf("hold order %q: %w", w.holdID, err)
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
func applyOrder(st *writeStmts, o *orderRow) error {
	args := []any{o.id, o.sessionID, o.owner, o.status, o.createdAt, string(o.body), o.paymentRef, o.updatedAt}
	var (
		res sql.Result
		err error
	)
	switch o.rev {
	case 0:
		_, err = st.upsertOrder.Exec(args...)
		if err != nil {
			return fmt.Errorf("order %q: %w", o.id, err)
		}
		return nil
	case 1:
		res, err = st.insertOrder.Exec(args...)
	default:
		res, err = st.updateOrder.Exec(append(args, o.rev)...)
	}
	if err != nil {
		return fmt.Errorf("order %q: %w", o.id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("order %q: %w", o.id, err)
	}
	if n == 0 {
		if o.rev == 1 {
			return fmt.Errorf("order %q already exists: %w", o.id, bridge.ErrStale)
		}
		return fmt.Errorf("order %q is not at revision %d: %w", o.id, o.rev-1, bridge.ErrStale)
	}
	return nil
}

func applySession(st *writeStmts, s *sessionRow) error {
	if s.rev == 1 {
		_, err := st.insertSession.Exec(s.id, s.owner, s.rev, s.status, s.expires, s.updatedAt, string(s.body))
		if isConstraint(err) {
			// Whoever owns it: the caller only learns that revision 1 is
			// taken, as it would from any stale write.
			return fmt.Errorf("session %q already exists: %w", s.id, bridge.ErrStale)
		}
		if err != nil {
			return fmt.Errorf("session %q: %w", s.id, err)
		}
		return nil
	}
	for _, stmt := range []*sql.Stmt{st.updateSession, st.updateSessionExpiry} {
		res, err := stmt.Exec(s.rev, s.status, s.expires, s.updatedAt, string(s.body), s.id, s.rev-1, s.owner)
		if err != nil {
			return fmt.Errorf("session %q: %w", s.id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("session %q: %w", s.id, err)
		} else if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("session %q is not at revision %d: %w", s.id, s.rev-1, bridge.ErrStale)
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

func (w *change) applyIdem(st *writeStmts, now int64) error {
	r := w.idem
	var outcome any // nil is NULL; an empty non-nil Outcome stays an empty blob
	if r.outcome != nil {
		outcome = r.outcome
	}
	var (
		res  sql.Result
		err  error
		fail error
	)
	switch w.idemOp {
	case bridge.IdemInsert:
		res, err = st.insertIdem.Exec(
			r.scope, r.key, r.hash, r.token, r.locked, r.done, outcome, r.created, r.expires, now)
		fail = bridge.ErrIdempotencyExists
	case bridge.IdemTakeover:
		res, err = st.takeoverIdem.Exec(
			r.scope, r.key, r.hash, r.token, r.locked, r.done, outcome, r.created, r.expires, now)
		fail = bridge.ErrIdempotencyExists
	case bridge.IdemFinish:
		res, err = st.finishIdem.Exec(
			r.hash, r.locked, r.done, outcome, r.created, r.expires, r.scope, r.key, r.token)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				res, err = st.finishIdemExpiry.Exec(
					r.hash, r.locked, r.done, outcome, r.created, r.expires, r.scope, r.key, r.token)
			}
		}
		fail = bridge.ErrIdempotencyLost
	case bridge.IdemRelease:
		res, err = st.releaseIdem.Exec(r.scope, r.key, r.token)
		fail = bridge.ErrIdempotencyLost
	}
	if err != nil {
		return fmt.Errorf("idempotency key %q: %w", r.key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("idempotency key %q: %w", r.key, err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency key %q: %w", r.key, fail)
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
	if keep < 0 {
		return 0, fmt.Errorf("sqlite: purge: negative keep %v", keep)
	}
	idemCut := clampNano(now)
	sessionCut := clampNano(now.Add(-keep))
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

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// toNano encodes t as Unix nanoseconds; the zero time is 0.
func toNano(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minNano) || t.After(maxNano) {
		return 0, fmt.Errorf("time %v is out of range (years 1678 to 2262)", t)
	}
	return t.UnixNano(), nil
}

// clampNano is toNano for columns that only order rows: out-of-range times
// become the smallest or largest integer.
func clampNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromNano decodes toNano's integers, in UTC.
func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
