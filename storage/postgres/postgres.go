// Package postgres keeps everything the bridge stores (the catalog
// snapshot, stock reservations, checkout sessions, orders, idempotency
// records, webhook events, the outbox's jobs and the feed push records) in
// PostgreSQL, so that several bridge processes behind one load balancer
// share them with the guarantees one process has on SQLite. It implements bridge.Storage on
// jackc/pgx/v5 (pgxpool) and passes the conformance suite
// (storage/storagetest).
//
// What makes it safe for several processes, where SQLite relies on its one
// writer:
//
//   - Every rule is enforced by the database, never by memory: a session is
//     written only over the revision it was read at (UPDATE … WHERE rev),
//     an idempotency key is claimed through its primary key (INSERT … ON
//     CONFLICT: concurrent claims of one key wait for each other and all
//     but one find it taken), an order by the rules of its revision, a job
//     queued twice is inserted once.
//   - A Commit (and a FinishJob with its change) is one pipeline of
//     statements in one implicit transaction: one round trip, all or
//     nothing. A statement whose rule fails raises an error of the
//     bridge's own (bridge_expect, migrations/0003_checkout.sql), which
//     ends the transaction and maps to bridge.ErrStale and the like.
//   - Outbox claims lock due rows with FOR UPDATE SKIP LOCKED and lease
//     them (lease_until, token): concurrent claimers on any replica never
//     get the same job, and a job whose worker died is claimed again when
//     its lease ends. Only the claim's token finishes it.
//   - Holds of one variant are serialized by a transaction-scoped advisory
//     lock per variant, so a check of the stock left and the hold that
//     follows it (a Change with StockChecks) are one step across replicas.
//   - Migrations run at start under a session advisory lock, so replicas
//     starting together migrate once; TryLock offers such a lock for work
//     one replica does for all (the catalog sync).
//   - Nothing assumes this process is the only one: ReleaseClaims, which
//     on SQLite frees the claims a dead process left, frees nothing here
//     (they may be a live replica's); claims end by their leases.
//   - Catalog snapshots are numbered; a sync writes its rows in one
//     transaction that, at Commit, points catalog_info at them and deletes
//     the older ones. Readers on every replica see one snapshot or the
//     next, and nothing of a sync that failed.
//
// Every connection runs with a statement_timeout (Config.StatementTimeout),
// so a statement stuck behind a lock or a slow plan fails instead of
// holding a request forever; the long reads and writes of a catalog sync
// and a feed export lift it for their own transaction and are bounded by
// their context instead.
//
// Times are judged by this process's clock (SetClock for tests), as with
// SQLite: the engine computes leases and expiries with the same clock.
// Replicas' clocks must agree to well within the leases (minutes); NTP does.
//
// The schema lives in the schema the connection's search_path names (the
// DSN's search_path parameter, "public" by default); several bridges, or
// test runs, can share a database in schemas of their own.
//
// Poolers: connect to the server directly or through a session-mode
// pooler. A transaction-mode pooler (PgBouncer's pool_mode=transaction)
// hands a session's advisory locks (migrations, TryLock) to whichever
// client gets the connection next; its lack of prepared statements alone
// would be fine (default_query_exec_mode=simple_protocol in the DSN: a
// batch is then one multi-statement query, still one transaction).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/catalogwriter"
	"github.com/acp-bridge/bridge/storage/internal/clock"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultStatementTimeout bounds every statement unless Config says
// otherwise. Checkout statements take milliseconds; one that waits this
// long is stuck behind a lock or a broken plan, and the request is better
// answered with an error than held.
const DefaultStatementTimeout = 10 * time.Second

// Config configures OpenConfig.
type Config struct {
	// DSN is a PostgreSQL connection string, URL (postgres://…) or
	// key=value, with pgx's parameters (sslmode, pool_max_conns …) and any
	// run-time parameter (search_path selects the schema).
	DSN string
	// StatementTimeout is every connection's statement_timeout: 0 means
	// DefaultStatementTimeout unless the DSN sets statement_timeout, and a
	// negative value means none.
	StatementTimeout time.Duration
	// MaxConns bounds the pool: 0 means the DSN's pool_max_conns, or
	// DefaultMaxConns when it sets none.
	MaxConns int
}

// MinConns is the smallest pool OpenConfig accepts: a catalog sync holds
// up to 3 connections (its lock, its writer, a read), a feed push as many
// (its lock, its read, its records), and checkouts need theirs meanwhile.
const MinConns = 8

// DefaultMaxConns is the pool size when neither Config nor the DSN sets
// one. A checkout request spends most of its time waiting for the
// database, and concurrent commits share the server's WAL flushes, so a
// pool wider than the processors pays: on the project's 2-core machine,
// 64 goroutines committing sessions made 3.7k commits/s with 4
// connections, 4.1k with 8, 5.9k with 16 and 5.5k with 32. Several
// replicas multiply it: their sum must stay below the server's
// max_connections (100 by default), less what other clients need.
func DefaultMaxConns() int {
	return max(16, 2*runtime.GOMAXPROCS(0))
}

// DB is a bridge.Storage in a PostgreSQL database. It is safe for
// concurrent use, and several DBs (in one process or many) may share a
// database.
type DB struct {
	pool *pgxpool.Pool

	// stmtTimeout is the connections' statement_timeout (0: none); a
	// Commit's wait for its answer is bounded by a multiple of it.
	stmtTimeout time.Duration

	// writers are the open catalog writers, which Close abandons: each
	// holds a pooled connection, and closing the pool waits for them.
	writers catalogwriter.Set
	// mu guards locks, TryLock's held locks, which Close lets go of, and
	// closed, after which TryLock takes none.
	mu     sync.Mutex
	locks  map[*heldLock]struct{}
	closed bool

	closeOnce sync.Once

	// clock is SetClock's.
	clock clock.Clock
}

var _ bridge.Storage = (*DB)(nil)

// Open opens the database at dsn with the default settings and brings its
// schema up to date; see OpenConfig.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenConfig(ctx, Config{DSN: dsn})
}

// OpenConfig connects to the database cfg names, checks that it answers,
// and applies the migrations it has not seen yet (under an advisory lock,
// so that replicas starting together migrate once and the others wait for
// it). The schema named by the DSN's search_path must exist. Errors never
// repeat the DSN, which may hold a password.
func OpenConfig(ctx context.Context, cfg Config) (*DB, error) {
	if strings.TrimSpace(cfg.DSN) == "" {
		return nil, errors.New("postgres: no DSN given")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", safeParseError(err))
	}
	params := pcfg.ConnConfig.RuntimeParams
	timeout := cfg.StatementTimeout
	if _, given := params["statement_timeout"]; !given || timeout != 0 {
		if timeout == 0 {
			timeout = DefaultStatementTimeout
		}
		// Sent in the startup message: every connection of the pool has it
		// from the start, at no round trip.
		params["statement_timeout"] = fmt.Sprint(max(timeout, 0).Milliseconds())
	}
	if _, given := params["application_name"]; !given {
		params["application_name"] = "acp-bridge" // names the replicas' sessions in pg_stat_activity
	}
	switch {
	case cfg.MaxConns > 0:
		pcfg.MaxConns = int32(min(cfg.MaxConns, math.MaxInt32))
	case !strings.Contains(cfg.DSN, "pool_max_conns"):
		pcfg.MaxConns = int32(DefaultMaxConns())
	}
	if pcfg.MaxConns < MinConns {
		return nil, fmt.Errorf("postgres: a pool of %d connections is too small: use at least %d (storage.max_conns, or pool_max_conns in the DSN)", pcfg.MaxConns, MinConns)
	}
	d := &DB{locks: map[*heldLock]struct{}{}, stmtTimeout: parseTimeout(params["statement_timeout"])}
	d.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := d.pool.Ping(ctx); err != nil {
		d.pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", where(pcfg), err)
	}
	if err := migrateFS(ctx, d.pool, migrationFiles); err != nil {
		d.pool.Close()
		return nil, fmt.Errorf("postgres: migrate %s: %w", where(pcfg), err)
	}
	return d, nil
}

// parseTimeout reads a statement_timeout setting: milliseconds, or a
// number with a unit ("5s", "250ms"). Zero for none, and for what it
// cannot read (then send waits its longest for an answer).
func parseTimeout(v string) time.Duration {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(max(n, 0)) * time.Millisecond
	}
	if d, err := time.ParseDuration(strings.ReplaceAll(v, " ", "")); err == nil {
		return max(d, 0)
	}
	return 0
}

// safeParseError drops the connection string from pgx's parse errors: pgx
// masks passwords, but only as well as it can tell them in a string that
// failed to parse.
func safeParseError(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return err
	}
	if inner := pe.Unwrap(); inner != nil {
		return fmt.Errorf("not a valid PostgreSQL connection string: %w", inner)
	}
	return errors.New("not a valid PostgreSQL connection string")
}

// where names the server and database for error messages, without user
// or password.
func where(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d", c.Database, c.Host, c.Port)
}

// SetClock sets the clock by which the store judges what its callers do
// not pass a time for: whether an idempotency record expired, whether a
// claim's lock passed, when a hold was made, when a job was queued. It is
// time.Now unless set; a test that gives the checkout engine a fake clock
// gives the store the same one. Safe to call at any time; nil restores
// time.Now.
func (d *DB) SetClock(now func() time.Time) { d.clock.Set(now) }

func (d *DB) now() time.Time { return d.clock.Now() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close abandons the open catalog writers (their snapshots are never
// committed), lets go of TryLock's locks and closes the pool, waiting for the connections in use to be
// given back. It may be called more than once.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		d.writers.Close("postgres")
		d.mu.Lock()
		d.closed = true
		locks := make([]*heldLock, 0, len(d.locks))
		for l := range d.locks {
			locks = append(locks, l)
		}
		clear(d.locks)
		d.mu.Unlock()
		for _, l := range locks {
			l.release()
		}
		d.pool.Close()
	})
	return nil
}

// The SQLSTATEs bridge_expect raises (migrations/0003_checkout.sql). Codes
// of five upper-case letters and digits outside PostgreSQL's own classes.
const (
	codeIdemExists = "BRI01" // bridge.ErrIdempotencyExists
	codeIdemLost   = "BRI02" // bridge.ErrIdempotencyLost
	codeStale      = "BRS01" // bridge.ErrStale
	codeLeaseLost  = "BRL01" // bridge.ErrLeaseLost
	codeShort      = "BRK01" // not enough stock (a hold's stock check)
)

// ruleErrors maps bridge_expect's codes to the domain's errors.
var ruleErrors = map[string]error{
	codeIdemExists: bridge.ErrIdempotencyExists,
	codeIdemLost:   bridge.ErrIdempotencyLost,
	codeStale:      bridge.ErrStale,
	codeLeaseLost:  bridge.ErrLeaseLost,
}

// ruleError turns an error raised by bridge_expect into "message: domain
// error"; other errors come back as they are.
func ruleError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	if pe.Code == codeShort {
		return &bridge.ShortStockError{VariantID: pe.Message}
	}
	if e, ok := ruleErrors[pe.Code]; ok {
		return fmt.Errorf("%s: %w", pe.Message, e)
	}
	return err
}

// writeTimeout bounds how long a write waits for the database's answer
// once it is sent (see send); statements are bounded by statement_timeout
// on the server, so this only ends waits on a connection that is gone.
func (d *DB) writeTimeout() time.Duration {
	if d.stmtTimeout <= 0 {
		return 2 * time.Minute
	}
	return 2*d.stmtTimeout + 5*time.Second
}

// send runs the statements build queues as one pipeline in one implicit
// transaction (pgx runs a batch so unless it holds BEGIN/COMMIT): one round
// trip, and the first statement that fails rolls the whole batch back. It
// returns the first statement's error, mapped by ruleError, and
// rows(i) reads the rows of statement i when given.
//
// Cancellation: a ctx done before the batch is sent fails it with
// ctx.Err() and nothing is written. Once sent, the batch runs to its end
// whatever ctx says, and send reports its outcome: canceling a pipeline
// midway would leave the caller not knowing whether the transaction
// committed, the one thing it must know. (The wait is bounded by
// writeTimeout; a connection lost mid-commit leaves the outcome unknown,
// as with any database server, and the error says so.)
//
// A transaction PostgreSQL ends to break a deadlock (or a serialization
// failure) was rolled back whole, so it is sent again, a few times: the
// statements' own rules judge the state the other transaction left.
func (d *DB) send(ctx context.Context, build func(b *pgx.Batch, now time.Time), rows func(i int, br pgx.BatchResults) (bool, error)) error {
	for attempt := 1; ; attempt++ {
		err := d.sendOnce(ctx, build, rows)
		var pe *pgconn.PgError
		if attempt < maxSendAttempts && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			continue
		}
		return err
	}
}

// maxSendAttempts bounds the sends of one batch (see send).
const maxSendAttempts = 3

func (d *DB) sendOnce(ctx context.Context, build func(b *pgx.Batch, now time.Time), rows func(i int, br pgx.BatchResults) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := ctx.Err(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	build(b, d.now())
	if b.Len() == 0 {
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.writeTimeout())
	defer cancel()
	br := conn.SendBatch(sctx, b)
	var first error
	for i := range b.Len() {
		handled := false
		if rows != nil && first == nil {
			handled, err = rows(i, br)
			if err != nil {
				first = err
			}
		}
		if !handled {
			if _, err := br.Exec(); err != nil && first == nil {
				first = err
			}
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	switch {
	case first == nil:
		return nil
	case isPgError(first):
		// The server answered: the transaction was rolled back.
		return ruleError(first)
	case pgconn.SafeToRetry(first):
		return first // nothing was sent
	}
	return fmt.Errorf("the database did not answer (waited at most %v); the change may or may not have been committed: %w",
		d.writeTimeout(), first)
}

func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}
