package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// PurgeExpired deletes in batches of purgeBatch; a purge of more rows than
// that must go through every batch and count them all.
func TestPurgeInBatches(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	const n = 2*purgeBatch + 17
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO idempotency_keys (scope, key, request_hash, token, locked_until, done, created_at, expires_at)
			 VALUES ('s', ?, 'h', '', 0, 1, 0, ?)`, fmt.Sprint(i), now.Add(-time.Minute).UnixNano()); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO checkout_sessions (id, owner, rev, status, expires_at, updated_at, body)
			 VALUES (?, 'alice', 1, 'canceled', ?, 0, '{}')`, fmt.Sprint(i), now.Add(-48*time.Hour).UnixNano()); err != nil {
			t.Fatal(err)
		}
		status := []string{"done", "canceled"}[i%2]
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO outbox_jobs (id, kind, order_id, status, attempts, next_run_at, lease_until, token, last_error, created_at, updated_at)
			 VALUES (?, 'notice', '', ?, 1, 0, 0, '', '', 0, ?)`, fmt.Sprint(i), status, now.Add(-48*time.Hour).UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := db.PurgeExpired(ctx, now, time.Hour)
	if err != nil || got != 3*n {
		t.Fatalf("PurgeExpired = %d, %v; want %d", got, err, 3*n)
	}
	var left int
	db.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM idempotency_keys) + (SELECT count(*) FROM checkout_sessions)
		+ (SELECT count(*) FROM outbox_jobs)`).Scan(&left)
	if left != 0 {
		t.Errorf("%d rows left after the purge", left)
	}
}

// The columns beside a session's body are what the guards and the purge
// read; they must follow every write.
func TestSessionColumns(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	expires := time.Date(2026, 6, 1, 16, 0, 0, 0, time.FixedZone("CEST", 7200))
	s := bridge.Session{ID: "s1", Owner: "alice", Rev: 1, Status: bridge.StatusNotReady, ExpiresAt: expires, UpdatedAt: expires.Add(-time.Hour)}
	if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
		t.Fatal(err)
	}
	s.Rev, s.Status, s.ExpiresAt = 2, bridge.StatusCanceled, time.Time{}
	if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
		t.Fatal(err)
	}
	var rev, exp, upd int64
	var status string
	if err := db.db.QueryRowContext(ctx, `SELECT rev, status, expires_at, updated_at FROM checkout_sessions WHERE id = 's1'`).
		Scan(&rev, &status, &exp, &upd); err != nil {
		t.Fatal(err)
	}
	if rev != 2 || status != "canceled" || exp != math.MaxInt64 || upd != expires.Add(-time.Hour).UnixNano() {
		t.Errorf("columns rev=%d status=%s expires_at=%d updated_at=%d; want 2 canceled MaxInt64 %d",
			rev, status, exp, upd, expires.Add(-time.Hour).UnixNano())
	}
}

func TestIdempotencyTimeOutOfRange(t *testing.T) {
	db := openTemp(t)
	r := bridge.IdempotencyRecord{Scope: "s", Key: "k", Token: "t", CreatedAt: time.Now(),
		ExpiresAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	err := db.Commit(t.Context(), bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Commit of a record expiring in 3000 = %v, want an out-of-range error", err)
	}
}

// A nil Outcome is stored as NULL and an empty one as an empty blob; both
// come back with no bytes (the domain treats them alike: omitempty).
func TestIdempotencyOutcomeEmpty(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	for _, tt := range []struct {
		key     string
		outcome []byte
	}{{"nil", nil}, {"empty", []byte{}}, {"bytes", []byte("x")}} {
		r := bridge.IdempotencyRecord{Scope: "s", Key: tt.key, Done: true, Outcome: tt.outcome,
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r}); err != nil {
			t.Fatal(err)
		}
		got, err := db.Idempotency(ctx, "s", tt.key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Outcome, tt.outcome) {
			t.Errorf("%s: Outcome = %q, want %q", tt.key, got.Outcome, tt.outcome)
		}
	}
}

// With SetClock the store judges expiry and locks by the caller's clock, to
// the nanosecond: a record expires at its ExpiresAt, a claim may be taken
// over from its LockedUntil on.
func TestClockBoundaries(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	now := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC) // long before the wall clock
	db.SetClock(func() time.Time { return now })
	r := bridge.IdempotencyRecord{Scope: "s", Key: "k", Token: "tok-1", RequestHash: "h",
		LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Idempotency(ctx, "s", "k"); err != nil {
		t.Fatalf("Idempotency under the fake clock: %v (judged by the wall clock?)", err)
	}
	next := r
	next.Token = "tok-2"
	next.LockedUntil = now.Add(2 * time.Hour)

	now = r.LockedUntil.Add(-time.Nanosecond)
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &next}); !errors.Is(err, bridge.ErrIdempotencyExists) {
		t.Errorf("takeover 1 ns before LockedUntil = %v, want ErrIdempotencyExists", err)
	}
	now = r.LockedUntil
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &next}); err != nil {
		t.Errorf("takeover at LockedUntil: %v", err)
	}

	now = r.ExpiresAt.Add(-time.Nanosecond)
	if _, err := db.Idempotency(ctx, "s", "k"); err != nil {
		t.Errorf("Idempotency 1 ns before ExpiresAt: %v", err)
	}
	again := r
	again.Token = "tok-3"
	again.ExpiresAt = now.Add(time.Hour)
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &again}); !errors.Is(err, bridge.ErrIdempotencyExists) {
		t.Errorf("insert 1 ns before ExpiresAt = %v, want ErrIdempotencyExists", err)
	}
	now = r.ExpiresAt
	if _, err := db.Idempotency(ctx, "s", "k"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("Idempotency at ExpiresAt = %v, want ErrNotFound", err)
	}
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &again}); err != nil {
		t.Errorf("insert at ExpiresAt: %v", err)
	}

	// Holds are dated by the clock too.
	if err := db.Commit(ctx, bridge.Change{HoldOrderID: "o1", Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Reserved(ctx, "v1", now.Add(time.Nanosecond)); n != 0 {
		t.Errorf("hold made at the fake now counted from after it: %d", n)
	}
	if n, _ := db.Reserved(ctx, "v1", now); n != 1 {
		t.Errorf("hold made at the fake now not counted from it: %d", n)
	}
	db.SetClock(nil)
	if _, err := db.Idempotency(ctx, "s", "k"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("back on the wall clock, a record that expired in 2020 = %v, want ErrNotFound", err)
	}
}

// A session read by a process that did not write it (no cache) keeps what
// an agent declared: no interventions in common ([]) is not "no
// capabilities declared" (nil), or an agent without 3-D Secure would be
// sent into a challenge after a restart.
func TestSessionSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "b.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, s := range []bridge.Session{
		{ID: "cs_empty", Owner: "a", Rev: 1, Status: bridge.StatusReady, Currency: "USD", Interventions: []string{}, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{ID: "cs_nil", Owner: "a", Rev: 1, Status: bridge.StatusReady, Currency: "USD", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	empty, err := db.Session(ctx, "a", "cs_empty")
	if err != nil || empty.Interventions == nil || len(empty.Interventions) != 0 {
		t.Fatalf("empty interventions after reopen: %#v %v", empty.Interventions, err)
	}
	none, err := db.Session(ctx, "a", "cs_nil")
	if err != nil || none.Interventions != nil {
		t.Fatalf("nil interventions after reopen: %#v %v", none.Interventions, err)
	}
}

// A long outcome (stored compressed, storage/internal/rowcodec) comes back
// whole through the database.
func TestOutcomeCompression(t *testing.T) {
	long := []byte(`{"session":{"id":"cs_1","lines":[` + strings.Repeat(`{"title":"Classic Tee / Navy / M","quantity":1},`, 40) + `{}]}}`)
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	rec := &bridge.IdempotencyRecord{Scope: "s", Key: "k", RequestHash: "h", Token: "t", Done: true, Outcome: long, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.Commit(t.Context(), bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: rec}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Idempotency(t.Context(), "s", "k")
	if err != nil || !bytes.Equal(got.Outcome, long) {
		t.Fatalf("outcome through the database: %v %q", err, got.Outcome)
	}
}

// Claims of a dead process are released at start: a retry takes over at
// once; finished records stay as they are.
func TestReleaseClaims(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	for _, r := range []bridge.IdempotencyRecord{
		{Scope: "s", Key: "running", RequestHash: "h", Token: "t1", LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		{Scope: "s", Key: "done", RequestHash: "h", Token: "t2", Done: true, Outcome: []byte(`{}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.ReleaseClaims(ctx)
	if err != nil || n != 1 {
		t.Fatalf("released %d, %v; want 1", n, err)
	}
	r, err := db.Idempotency(ctx, "s", "running")
	if err != nil || r.LockedUntil.After(time.Now()) {
		t.Fatalf("claim still locked: %+v %v", r, err)
	}
	take := bridge.IdempotencyRecord{Scope: "s", Key: "running", RequestHash: "h", Token: "t3", LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &take}); err != nil {
		t.Fatalf("takeover after release: %v", err)
	}
	if d, _ := db.Idempotency(ctx, "s", "done"); !d.Done {
		t.Fatal("a finished record changed")
	}
}
