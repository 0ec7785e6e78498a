package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/acp-bridge/bridge"
)

var _ bridge.CheckoutStore = (*DB)(nil)

// The checkout tables (migrations/0004_checkout.sql) keep a session and an
// order whole, as the JSON of the domain type, with copies of the fields the
// WHERE clauses need in columns of their own. Idempotency records are all
// columns: their lookups and guards read every field.
//
// Times are written in UTC. Columns hold Unix nanoseconds; a time int64
// nanoseconds cannot hold (before 1678, after 2262) is clamped in a session's
// columns, whose body keeps the exact value, and refused in an idempotency
// record, which has no body.

// Session returns the session id of owner. A session of another owner is
// reported exactly like a missing one.
func (d *DB) Session(ctx context.Context, owner, id string) (bridge.Session, error) {
	var body []byte
	err := d.sessionByID.QueryRowContext(ctx, id, owner).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
	}
	var s bridge.Session
	if err := json.Unmarshal(body, &s); err != nil {
		return bridge.Session{}, fmt.Errorf("sqlite: session %q: %w", id, err)
	}
	return s, nil
}

// Order returns the order id.
func (d *DB) Order(ctx context.Context, id string) (bridge.Order, error) {
	var body []byte
	err := d.db.QueryRowContext(ctx, `SELECT body FROM orders WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.Order{}, fmt.Errorf("sqlite: order %q: %w", id, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order %q: %w", id, err)
	}
	var o bridge.Order
	if err := json.Unmarshal(body, &o); err != nil {
		return bridge.Order{}, fmt.Errorf("sqlite: order %q: %w", id, err)
	}
	return o, nil
}

// Idempotency returns the record of key in scope, unless it expired (its
// ExpiresAt is at or before now, by the clock of SetClock).
func (d *DB) Idempotency(ctx context.Context, scope, key string) (bridge.IdempotencyRecord, error) {
	r := bridge.IdempotencyRecord{Scope: scope, Key: key}
	var locked, created, expires int64
	var done bool
	err := d.idemByKey.QueryRowContext(ctx, scope, key, clampNano(d.now())).
		Scan(&r.RequestHash, &r.Token, &locked, &done, &r.Outcome, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("sqlite: idempotency key %q: %w", key, err)
	}
	r.Done = done
	r.LockedUntil, r.CreatedAt, r.ExpiresAt = fromNano(locked), fromNano(created), fromNano(expires)
	return r, nil
}

// Commit applies c in one transaction under the write lock. The idempotency
// operation goes first, so when a change fails for two reasons the error
// names the one that decides what the caller does next: a replay
// (ErrIdempotencyExists) or giving up (ErrIdempotencyLost) rather than a
// retry (ErrStale). Within the change, ReleaseOrderID is released before
// Hold is reserved, so releasing and holding the same order replaces its
// hold. A hold without lines is nothing to hold and does nothing.
func (d *DB) Commit(ctx context.Context, c bridge.Change) error {
	w, err := encodeChange(c)
	if err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if w.empty() {
		return nil
	}
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	defer unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	defer tx.Rollback()
	// Taken once the write lock is held: a claim's lock or a record's expiry
	// is judged at the moment nothing else can change it.
	now := d.now()
	if err := w.apply(ctx, tx, now); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// change is a bridge.Change checked and encoded for the tables, so that
// nothing that can fail without the database runs under the write lock.
type change struct {
	session *sessionRow
	order   *orderRow
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
}

type orderRow struct {
	id, sessionID, owner, status string
	createdAt                    int64
	body                         []byte
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
		u := utcSession(*s)
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
	}
	if o := c.Order; o != nil {
		if o.ID == "" {
			return nil, errors.New("order without id")
		}
		u := *o
		u.CreatedAt = u.CreatedAt.UTC()
		body, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("order %q: %w", o.ID, err)
		}
		w.order = &orderRow{
			id: u.ID, sessionID: u.SessionID, owner: u.Owner, status: u.Status,
			createdAt: clampNano(u.CreatedAt), body: body,
		}
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
	w.idem = &idemRow{scope: r.Scope, key: r.Key, hash: r.RequestHash, token: r.Token, done: r.Done, outcome: r.Outcome}
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
	return w.session == nil && w.order == nil && w.release == "" && w.hold == nil && w.idemOp == bridge.IdemNone
}

func (w *change) apply(ctx context.Context, tx *sql.Tx, now time.Time) error {
	if w.idemOp != bridge.IdemNone {
		if err := w.applyIdem(ctx, tx, clampNano(now)); err != nil {
			return err
		}
	}
	if s := w.session; s != nil {
		if err := applySession(ctx, tx, s); err != nil {
			return err
		}
	}
	if o := w.order; o != nil {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO orders (id, session_id, owner, status, created_at, body) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, owner = excluded.owner,
			   status = excluded.status, created_at = excluded.created_at, body = excluded.body`,
			o.id, o.sessionID, o.owner, o.status, o.createdAt, string(o.body)); err != nil {
			return fmt.Errorf("order %q: %w", o.id, err)
		}
	}
	if w.release != "" {
		if err := releaseTx(ctx, tx, w.release); err != nil {
			return fmt.Errorf("release order %q: %w", w.release, err)
		}
	}
	if w.hold != nil {
		if err := reserveTx(ctx, tx, now, w.holdID, w.hold); err != nil {
			return fmt.Errorf("hold order %q: %w", w.holdID, err)
		}
	}
	return nil
}

func applySession(ctx context.Context, tx *sql.Tx, s *sessionRow) error {
	if s.rev == 1 {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO checkout_sessions (id, owner, rev, status, expires_at, updated_at, body)
			 VALUES (?, ?, ?, ?, ?, ?, ?)`,
			s.id, s.owner, s.rev, s.status, s.expires, s.updatedAt, string(s.body))
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
	res, err := tx.ExecContext(ctx,
		`UPDATE checkout_sessions SET rev = ?, status = ?, expires_at = ?, updated_at = ?, body = ?
		 WHERE id = ? AND rev = ? AND owner = ?`,
		s.rev, s.status, s.expires, s.updatedAt, string(s.body), s.id, s.rev-1, s.owner)
	if err != nil {
		return fmt.Errorf("session %q: %w", s.id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("session %q: %w", s.id, err)
	} else if n == 0 {
		return fmt.Errorf("session %q is not at revision %d: %w", s.id, s.rev-1, bridge.ErrStale)
	}
	return nil
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

func (w *change) applyIdem(ctx context.Context, tx *sql.Tx, now int64) error {
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
		res, err = tx.ExecContext(ctx, insertIdem,
			r.scope, r.key, r.hash, r.token, r.locked, r.done, outcome, r.created, r.expires, now)
		fail = bridge.ErrIdempotencyExists
	case bridge.IdemTakeover:
		res, err = tx.ExecContext(ctx, takeoverIdem,
			r.scope, r.key, r.hash, r.token, r.locked, r.done, outcome, r.created, r.expires, now)
		fail = bridge.ErrIdempotencyExists
	case bridge.IdemFinish:
		res, err = tx.ExecContext(ctx,
			`UPDATE idempotency_keys SET request_hash = ?, locked_until = ?, done = ?, outcome = ?,
			   created_at = ?, expires_at = ?
			 WHERE scope = ? AND key = ? AND token = ? AND done = 0`,
			r.hash, r.locked, r.done, outcome, r.created, r.expires, r.scope, r.key, r.token)
		fail = bridge.ErrIdempotencyLost
	case bridge.IdemRelease:
		res, err = tx.ExecContext(ctx,
			`DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND token = ? AND done = 0`,
			r.scope, r.key, r.token)
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

// PurgeExpired deletes the idempotency records expired at now and the
// sessions whose expiry passed more than keep before now. A session still
// in complete_in_progress is kept whatever its expiry: its payment's outcome
// is unknown, and the session is what settles it. Orders and reservations
// are never purged. It returns how many rows went; rows are deleted in
// batches, each its own transaction, so after an error the count says how
// many did.
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
		{"sessions", `DELETE FROM checkout_sessions WHERE rowid IN
			(SELECT rowid FROM checkout_sessions WHERE expires_at < ? AND status <> ? LIMIT ?)`,
			[]any{sessionCut, string(bridge.StatusCompleteInProgress), purgeBatch}},
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

// utcSession returns s with every time in UTC, sharing nothing it changes
// with s.
func utcSession(s bridge.Session) bridge.Session {
	s.CreatedAt, s.UpdatedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC(), s.ExpiresAt.UTC()
	if s.Options != nil {
		opts := make([]bridge.FulfillmentOption, len(s.Options))
		for i, o := range s.Options {
			o.Earliest, o.Latest = o.Earliest.UTC(), o.Latest.UTC()
			opts[i] = o
		}
		s.Options = opts
	}
	return s
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
