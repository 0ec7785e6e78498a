package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/pgtest"
	"github.com/acp-bridge/bridge/storage/internal/migrate"
	"github.com/acp-bridge/bridge/storage/storagetest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The tests need a PostgreSQL server (see package pgtest): each works in
// a schema of its own.

func baseDSN(t testing.TB) string {
	t.Helper()
	return pgtest.DSN(t)
}

// TestServerReachable checks the test server alone (.ci/run runs it first,
// so that an unreachable server is one clear failure).
func TestServerReachable(t *testing.T) {
	baseDSN(t)
}

// newSchema creates an empty schema for t and returns a DSN whose
// search_path names it; the schema is dropped when t ends.
func newSchema(t testing.TB) string {
	t.Helper()
	return pgtest.Schema(t, baseDSN(t), "bridge_test_")
}

var withParam = pgtest.WithParam

// openSchema opens a store in the schema of dsn; closed when t ends.
// Tests run in parallel on a server others may share, so their pools are
// small (enough for every concurrency test to have connections in
// parallel); benchmarks get the default.
func openSchema(t testing.TB, dsn string) *DB {
	t.Helper()
	cfg := Config{DSN: dsn}
	if _, bench := t.(*testing.B); !bench && !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = 8
	}
	db, err := OpenConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openTest opens a store in a new schema of its own.
func openTest(t testing.TB) *DB {
	t.Helper()
	return openSchema(t, newSchema(t))
}

// openShared opens n stores (pools) on one new schema, as n replicas.
func openShared(t testing.TB, n int) []bridge.Storage {
	t.Helper()
	dsn := newSchema(t)
	stores := make([]bridge.Storage, n)
	for i := range stores {
		stores[i] = openSchema(t, dsn)
	}
	return stores
}

func TestConformance(t *testing.T) {
	t.Parallel()
	baseDSN(t) // one skip, not one per subtest
	storagetest.Run(t, func(t *testing.T) bridge.Storage { return openTest(t) })
}

// The concurrency tests again across two replicas (two pools) of one
// schema: a key, a session revision, a job and the last units are each
// taken once whichever replica a request reaches.
func TestConformanceShared(t *testing.T) {
	t.Parallel()
	baseDSN(t)
	storagetest.RunShared(t, openShared)
}

// The suite again with pgx's simple protocol (no prepared statements),
// the mode a DSN selects behind a pooler such as PgBouncer in transaction
// mode (default_query_exec_mode=simple_protocol): a batch is then one
// multi-statement query, still one implicit transaction.
func TestConformanceSimpleProtocol(t *testing.T) {
	t.Parallel()
	baseDSN(t)
	storagetest.Run(t, func(t *testing.T) bridge.Storage {
		return openSchema(t, withParam(newSchema(t), "default_query_exec_mode", "simple_protocol"))
	})
}

// Four bridges starting at once on a new schema: one migrates, the others
// wait for it and find everything applied.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			db, err := Open(t.Context(), dsn)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	db := openSchema(t, dsn)
	ms, err := migrate.Load(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations has %v, want each of %d migrations once", got, len(ms))
	}
	for i, m := range ms {
		if int(got[i]) != m.Version {
			t.Errorf("schema_migrations[%d] = %d, want %d", i, got[i], m.Version)
		}
	}
	// The migration lock was let go: nobody holds it now.
	var held int
	if err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1::oid AND objid = hashtext(current_schema())::oid`,
		lockMigrate).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 0 {
		t.Errorf("%d migration locks still held", held)
	}
}

// A database migrated by a newer bridge is refused, not written to.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db := openSchema(t, dsn)
	if _, err := db.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn)
	if err == nil || !strings.Contains(err.Error(), "newer than this bridge knows") {
		t.Fatalf("Open of a newer schema: %v, want a refusal", err)
	}
}

// The DSN's schema must exist; the error says what to do, and no error
// repeats a password.
func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dsn := baseDSN(t)
	_, err := Open(t.Context(), withParam(dsn, "search_path", "bridge_test_missing"))
	if err == nil || !strings.Contains(err.Error(), "CREATE SCHEMA") {
		t.Errorf("Open with a missing schema: %v", err)
	}
	for _, bad := range []string{
		"postgres://bridge:s3cret-pw@127.0.0.1:notaport/test",
		"host=127.0.0.1 port=notaport password=s3cret-pw",
	} {
		_, err := Open(t.Context(), bad)
		if err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
	if _, err := Open(t.Context(), " "); err == nil {
		t.Error("Open with an empty DSN succeeded")
	}
}

// Every connection has the statement timeout: a statement past it fails.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	if _, err := OpenConfig(t.Context(), Config{DSN: withParam(dsn, "pool_max_conns", "7")}); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("a pool of 7 from the DSN: %v; want refused as too small", err)
	}
	if _, err := OpenConfig(t.Context(), Config{DSN: dsn, MaxConns: 2}); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("a pool of 2: %v; want refused as too small", err)
	}
	db, err := OpenConfig(t.Context(), Config{DSN: dsn, StatementTimeout: 200 * time.Millisecond, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.pool.Config().MaxConns; got != 8 {
		t.Errorf("MaxConns = %d, want 8", got)
	}
	for range 8 { // every connection, not only the first
		_, err = db.pool.Exec(t.Context(), `SELECT pg_sleep(2)`)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" { // query_canceled
			t.Fatalf("a statement past the timeout: %v, want SQLSTATE 57014", err)
		}
	}
	var setting string
	if err := db.pool.QueryRow(t.Context(), `SHOW statement_timeout`).Scan(&setting); err != nil || setting != "200ms" {
		t.Errorf("statement_timeout = %q, %v; want 200ms", setting, err)
	}
	// The default, and a DSN that sets its own.
	def := openSchema(t, dsn)
	if err := def.pool.QueryRow(t.Context(), `SHOW statement_timeout`).Scan(&setting); err != nil || setting != "10s" {
		t.Errorf("default statement_timeout = %q, %v; want 10s", setting, err)
	}
	own := openSchema(t, withParam(dsn, "statement_timeout", "1234"))
	if err := own.pool.QueryRow(t.Context(), `SHOW statement_timeout`).Scan(&setting); err != nil || setting != "1234ms" {
		t.Errorf("the DSN's statement_timeout = %q, %v; want 1234ms", setting, err)
	}
}

// A catalog sync and a feed export outlive the statement timeout: they
// lift it for their own transaction.
func TestLongCatalogWorkIgnoresStatementTimeout(t *testing.T) {
	t.Parallel()
	db, err := OpenConfig(t.Context(), Config{DSN: newSchema(t), StatementTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Rollback()
	for i := range 3 {
		if err := w.Put(ctx, storagetest.Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The writer's connection: a slow statement in its transaction is not
	// cut off.
	cw := w.(*catalogWriter)
	if _, err := cw.tx.Exec(ctx, `SELECT pg_sleep(0.3)`); err != nil {
		t.Fatalf("slow statement in the catalog writer: %v", err)
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := db.EachCatalogEntry(ctx, func(bridge.CatalogEntry) error {
		n++
		time.Sleep(150 * time.Millisecond) // a slow feed writer
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("slow EachCatalogEntry: %d entries, %v", n, err)
	}
}

// ReleaseClaims, which serve calls at start, leaves other replicas' claims
// and leases alone.
func TestReleaseClaimsKeepsOtherReplicasClaims(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := openSchema(t, dsn), openSchema(t, dsn)
	ctx := t.Context()
	now := time.Now()
	claim := bridge.IdempotencyRecord{Scope: "agent POST /checkout_sessions/s1/complete", Key: "k1", RequestHash: "h",
		Token: "tok-a", LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &claim,
		Jobs: []bridge.Job{{ID: "j1", Kind: "store_write", NextRunAt: now}}}); err != nil {
		t.Fatal(err)
	}
	jobs, err := a.ClaimJobs(ctx, now, time.Hour, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimJobs = %v, %v", jobs, err)
	}
	if n, err := b.ReleaseClaims(ctx); err != nil || n != 0 {
		t.Errorf("ReleaseClaims = %d, %v; want 0, nil", n, err)
	}
	take := claim
	take.Token = "tok-b"
	if err := b.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &take}); !errors.Is(err, bridge.ErrIdempotencyExists) {
		t.Errorf("takeover of a live claim after ReleaseClaims: %v, want ErrIdempotencyExists", err)
	}
	if got, err := b.ClaimJobs(ctx, now.Add(time.Minute), time.Hour, 1); err != nil || len(got) != 0 {
		t.Errorf("ClaimJobs after ReleaseClaims = %v, %v; want none (the lease holds)", got, err)
	}
}

// Commits that wait on a row another transaction holds past the statement
// timeout fail with the timeout, and leave nothing.
func TestCommitStatementTimeout(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	db, err := OpenConfig(t.Context(), Config{DSN: dsn, StatementTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	now := time.Now()
	s := bridge.Session{ID: "s1", Owner: "agent", Rev: 1, Status: bridge.StatusNotReady, Currency: "USD",
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.Commit(ctx, bridge.Change{Session: &s}); err != nil {
		t.Fatal(err)
	}
	// Another replica's transaction holds the session's row.
	other := openSchema(t, dsn)
	tx, err := other.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT FROM checkout_sessions WHERE id = 's1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	s.Rev = 2
	r := bridge.IdempotencyRecord{Scope: "agent POST /checkout_sessions/s1", Key: "k1", RequestHash: "h",
		Done: true, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	err = db.Commit(ctx, bridge.Change{Session: &s, IdemOp: bridge.IdemInsert, Idempotency: &r})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("Commit behind a held row: %v, want the statement timeout", err)
	}
	tx.Rollback(ctx)
	if _, err := db.Idempotency(ctx, r.Scope, r.Key); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("the timed-out commit left its key: %v", err)
	}
}

// A duplicate id in a later batch than its first use is refused when its
// batch is sent, and named; the snapshot is not committed.
func TestCatalogDuplicateAcrossBatches(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := t.Context()
	old := storagetest.Entry(999999)
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		dup  func() bridge.CatalogEntry
		want string
	}{
		{"product id", func() bridge.CatalogEntry { return storagetest.Entry(3) }, `product id "p3"`},
		{"variant id", func() bridge.CatalogEntry {
			e := storagetest.Entry(5000)
			e.Product.Variants[1].ID = "p7-v2"
			return e
		}, `variant id "p7-v2" is already in this snapshot (in product "p7")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := db.BeginCatalog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Rollback()
			for i := range putBatch + 10 { // the first batch is sent
				if err := w.Put(ctx, storagetest.Entry(i)); err != nil {
					t.Fatal(err)
				}
			}
			putErr := w.Put(ctx, tt.dup())
			commitErr := w.Commit(ctx, bridge.CatalogInfo{Version: "v2"})
			if commitErr == nil {
				t.Fatal("the snapshot with a duplicate committed")
			}
			err = putErr
			if err == nil {
				err = commitErr
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
			if info, err := db.CatalogInfo(ctx); err != nil || info.Version != "v1" {
				t.Errorf("CatalogInfo = %q, %v; want v1 still", info.Version, err)
			}
		})
	}
}

func TestParseTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":      0,
		"0":     0,
		"1500":  1500 * time.Millisecond,
		"5s":    5 * time.Second,
		"250ms": 250 * time.Millisecond,
		"1min":  0, // PostgreSQL's unit, not Go's: unknown, so no bound assumed
		"-3":    0,
	} {
		if got := parseTimeout(in); got != want {
			t.Errorf("parseTimeout(%q) = %v, want %v", in, got, want)
		}
	}
}

// TryLock: one holder across replicas at a time; released by release, or
// by the holder's Close (or death: its connection goes).
func TestTryLock(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	a, b := openSchema(t, dsn), openSchema(t, dsn)
	ctx := t.Context()
	tryLock := func(db *DB, name string, want bool) func() {
		t.Helper()
		release, ok, err := db.TryLock(ctx, name)
		if err != nil || ok != want {
			t.Fatalf("TryLock(%s) = %v, %v; want %v", name, ok, err, want)
		}
		return release
	}
	releaseA := tryLock(a, "catalog-sync", true)
	tryLock(b, "catalog-sync", false) // another replica
	tryLock(a, "catalog-sync", false) // the holder's own process, another connection
	releaseB := tryLock(b, "other", true)
	releaseB()
	releaseA()
	releaseA() // twice is harmless
	tryLock(b, "catalog-sync", true)
	// b closes without releasing: the lock goes with it, and Close does
	// not wait for the connection that held it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tryLock(a, "catalog-sync", true)
	// Another schema's lock of the same name is another lock.
	other := openSchema(t, newSchema(t))
	tryLock(other, "catalog-sync", true)
	if _, _, err := b.TryLock(ctx, "x"); err == nil {
		t.Error("TryLock on a closed DB succeeded")
	}
}
