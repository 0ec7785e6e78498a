package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/klauspost/compress/s2"
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

// Order returns the order id.
func (d *DB) Order(ctx context.Context, id string) (bridge.Order, error) {
	var body []byte
	err := d.orderByID.QueryRowContext(pointCtx(ctx), id).Scan(&body)
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
// retry (ErrStale). Within the change, ReleaseOrderID is released before
// Hold is reserved, so releasing and holding the same order replaces its
// hold. A hold without lines is nothing to hold and does nothing.
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
	if s := w.session; s != nil && s.cached != nil {
		d.sessions.put(0, s.id, s.cached)
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
	// cached is what Session would decode from body, for the session
	// cache once committed; nil when it cannot be had without decoding.
	cached *cachedSession
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
	return w.session == nil && w.order == nil && w.release == "" && w.hold == nil && w.idemOp == bridge.IdemNone
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
		if _, err := st.upsertOrder.Exec(o.id, o.sessionID, o.owner, o.status, o.createdAt, string(o.body)); err != nil {
			return fmt.Errorf("order %q: %w", o.id, err)
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
	upsertOrderSQL = `INSERT INTO orders (id, session_id, owner, status, created_at, body) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, owner = excluded.owner,
		  status = excluded.status, created_at = excluded.created_at, body = excluded.body`
)

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
		{"webhook events", `DELETE FROM webhook_events WHERE (source, id) IN
			(SELECT source, id FROM webhook_events WHERE received_at < ? LIMIT ?)`,
			[]any{sessionCut, purgeBatch}},
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
