// Package sqlite keeps everything the bridge stores (the catalog snapshot,
// stock reservations, checkout sessions, orders, idempotency records, the
// outbox's jobs and the feed push records) in
// one SQLite file, so that a shop can run the bridge as a single binary with
// no database server. It implements bridge.Storage on modernc.org/sqlite, a
// pure-Go SQLite, so the binary needs no cgo.
//
// The file is opened in WAL mode: readers (feeds, checkouts) never wait for
// the writer, and a catalog sync never waits for them. Checkout writes
// (Commit, Reserve, Release) and the outbox's (ClaimJobs, FinishJob,
// SetJob) are group-committed: concurrent ones share one transaction and
// one fsync, each in a savepoint of its own (commit.go, outbox.go).
// Decoded catalog entries and sessions are cached (cache.go,
// sessioncache.go).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/catalogwriter"
	"github.com/acp-bridge/bridge/storage/internal/clock"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DB is a bridge.Storage in one SQLite file. It is safe for concurrent use.
type DB struct {
	db *sql.DB
	// file is the database file's path (ServeLock locks beside it).
	file string

	// writes serializes this process's write transactions. SQLite allows one
	// writer per file anyway; queueing here, with a context, beats letting
	// connections poll each other through busy_timeout and fail after it.
	// busy_timeout still covers other processes on the same file. The group
	// committer holds it for each batch, the catalog swap and the purge for
	// their transactions.
	writes chan struct{}

	// commits runs checkout changes, reservations and releases in shared
	// transactions (group commit, commit.go).
	commits *committer

	// entries caches CatalogEntryByVariant's decoded entries for the
	// current snapshot (cache.go); sessions decoded sessions with the body
	// they came from (sessioncache.go).
	entries  *entryCache
	sessions *sessionCache

	// Lookups that run on every checkout, webhook or outbox job, prepared
	// once per connection by database/sql (the pool keeps its connections,
	// see Open, so that is once per process).
	entryByID      *sql.Stmt
	entryByVariant *sql.Stmt
	reserved       *sql.Stmt
	sessionByID    *sql.Stmt
	idemByKey      *sql.Stmt
	orderByID      *sql.Stmt
	orderByPayRef  *sql.Stmt
	jobByID        *sql.Stmt
	nextDue        *sql.Stmt
	catalogInfo    *sql.Stmt

	// writers are the open catalog writers, which Close abandons: each
	// holds a connection of its own that closing the pool does not reach.
	writers catalogwriter.Set

	closeOnce sync.Once
	closeErr  error

	// clock is SetClock's.
	clock clock.Clock
}

var _ bridge.Storage = (*DB)(nil)

// pragmas are applied by the driver to every new connection of the pool:
// settings made with Exec would reach only the one connection that ran them.
var pragmas = []struct{ name, value string }{
	// Wait for a writer in another process instead of failing at once.
	{"busy_timeout", "5000"},
	// Readers do not block the writer nor the writer them.
	{"journal_mode", "WAL"},
	// FULL: a committed reservation (and later a session, an order, an
	// outbox job) survives power loss. NORMAL would save an fsync per commit
	// but could lose a hold whose order line the CSV store had already
	// fsynced, and the last unit would sell twice.
	{"synchronous", "FULL"},
	// Releasing an order cascades to its reservation lines.
	{"foreign_keys", "1"},
	// A catalog commit passes the whole snapshot through the WAL; without a
	// limit the file would keep that size after the checkpoint.
	{"journal_size_limit", "67108864"},
}

// Open opens (creating it if needed) the database at dsn and brings its schema
// up to date. dsn is a file path, whose missing parent directories are
// created, or a "file:" URI; either may carry modernc.org/sqlite query
// parameters. In-memory databases are refused: database/sql pools
// connections, and each connection to ":memory:" is a separate, empty
// database.
func Open(ctx context.Context, dsn string) (*DB, error) {
	full, file, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	sqldb, err := sql.Open("sqlite", full)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", dsnPath(dsn), err)
	}
	// The pool. database/sql keeps 2 idle connections by default and closes
	// every other one a request gives back, so 64 concurrent checkouts kept
	// opening SQLite connections (a file open, the schema read, the pragmas)
	// and re-preparing the lookups on each. The pool now keeps every
	// connection it opens and opens at most poolSize: 2 per processor for
	// the lookups (pure-Go CPU work, so more of them at once would only wait
	// for a processor while holding a connection; a request beyond the limit
	// waits for the next free one, microseconds), 2 for long holders (the
	// group committer keeps one, a catalog sync holds one for its run) and 2
	// to spare (an export running EachCatalogEntry). No method of DB holds a
	// pooled connection while it waits for another.
	poolSize := 2*runtime.GOMAXPROCS(0) + 4
	sqldb.SetMaxOpenConns(poolSize)
	sqldb.SetMaxIdleConns(poolSize)
	d := &DB{db: sqldb, file: file, writes: make(chan struct{}, 1), entries: newEntryCache(entryCacheSize),
		sessions: newSessionCache(sessionCacheSize)}
	if err := d.init(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", dsnPath(dsn), err)
	}
	if d.commits, err = newCommitter(d); err != nil {
		d.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", dsnPath(dsn), err)
	}
	return d, nil
}

func (d *DB) init(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return err
	}
	if err := migrateFS(ctx, d.db, migrationFiles); err != nil {
		return err
	}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&d.entryByID, `SELECT entry FROM catalog_products WHERE id = ?`},
		{&d.entryByVariant, `SELECT p.entry FROM catalog_variants v
			JOIN catalog_products p ON p.id = v.product_id WHERE v.variant_id = ?`},
		{&d.reserved, reservedSQL},
		{&d.sessionByID, `SELECT body FROM checkout_sessions WHERE id = ? AND owner = ?`},
		{&d.idemByKey, `SELECT ` + rowcodec.IdemColumns + ` FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at > ?`},
		{&d.orderByID, `SELECT rev, body FROM orders WHERE id = ?`},
		// "payment_ref <> ''" repeats the partial index's condition, which
		// is how SQLite knows the index may answer (a bound parameter
		// proves nothing).
		{&d.orderByPayRef, `SELECT rev, body FROM orders WHERE payment_ref = ? AND payment_ref <> ''
			ORDER BY created_at DESC, rowid DESC LIMIT 1`},
		{&d.jobByID, `SELECT ` + jobColumns + ` FROM outbox_jobs WHERE id = ?`},
		{&d.nextDue, nextDueSQL},
		{&d.catalogInfo, `SELECT info FROM catalog_info WHERE id = 1`},
	} {
		stmt, err := d.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.stmt = stmt
	}
	return nil
}

// buildDSN adds the connection settings the bridge relies on to dsn.
func buildDSN(dsn string) (string, error) {
	full, _, err := parseDSN(dsn)
	return full, err
}

// parseDSN is buildDSN that also returns the database file's path.
func parseDSN(dsn string) (full, file string, err error) {
	if strings.TrimSpace(dsn) == "" {
		return "", "", errors.New("sqlite: no database path given")
	}
	name, rawQuery, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", fmt.Errorf("sqlite: dsn %q: %w", dsn, err)
	}
	path := name
	if rest, ok := strings.CutPrefix(name, "file:"); ok {
		u, err := url.Parse(name)
		if err != nil {
			return "", "", fmt.Errorf("sqlite: dsn %q: %w", dsn, err)
		}
		path = u.Path
		if u.Opaque != "" {
			if path, err = url.PathUnescape(u.Opaque); err != nil {
				return "", "", fmt.Errorf("sqlite: dsn %q: %w", dsn, err)
			}
		}
		if rest == "" {
			path = ""
		}
	}
	if path == "" || path == ":memory:" || q.Get("mode") == "memory" {
		return "", "", fmt.Errorf("sqlite: dsn %q: in-memory and temporary databases are not supported "+
			"(each pooled connection would see its own database); give a file path, such as one in t.TempDir() for tests", dsn)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", "", fmt.Errorf("sqlite: create directory for %s: %w", path, err)
	}
	given := map[string]bool{}
	for _, p := range q["_pragma"] {
		n, _, _ := strings.Cut(p, "(")
		given[strings.ToLower(strings.TrimSpace(n))] = true
	}
	for _, p := range pragmas {
		if !given[p.name] { // the caller's own setting wins
			q.Add("_pragma", p.name+"("+p.value+")")
		}
	}
	// Transactions that write take the write lock at BEGIN, so two of them
	// queue on busy_timeout instead of one failing when it upgrades a read
	// lock. The catalog writer opts out with a plain BEGIN (see catalog.go).
	q.Set("_txlock", "immediate")
	return name + "?" + q.Encode(), path, nil
}

// SetClock sets the clock by which the store judges what its callers do not
// pass a time for: whether an idempotency record expired, whether a claim's
// lock passed, when a hold was made. It is time.Now unless set; a test that
// gives the checkout engine a fake clock gives the store the same one, or
// the two disagree about every expiry. PurgeExpired takes its time as an
// argument and ignores the clock. Safe to call at any time; nil restores
// time.Now.
func (d *DB) SetClock(now func() time.Time) { d.clock.Set(now) }

// now reads the clock SetClock set.
func (d *DB) now() time.Time { return d.clock.Now() }

// lockWrites waits for this process's turn to write.
func (d *DB) lockWrites(ctx context.Context) (unlock func(), err error) {
	select {
	case d.writes <- struct{}{}:
		return func() { <-d.writes }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ping checks that the database file can be queried.
func (d *DB) Ping(ctx context.Context) error {
	var one int
	if err := d.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database. An open catalog writer is abandoned, so its
// snapshot is never committed. Close may be called more than once.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		d.writers.Close("sqlite")
		// The batch being committed finishes; queued changes fail.
		if d.commits != nil { // nil when Open failed
			d.commits.close()
		}
		for _, s := range []*sql.Stmt{d.entryByID, d.entryByVariant, d.reserved, d.sessionByID, d.idemByKey, d.orderByID,
			d.orderByPayRef, d.jobByID, d.nextDue, d.catalogInfo} {
			if s != nil {
				s.Close()
			}
		}
		if err := d.db.Close(); err != nil {
			d.closeErr = fmt.Errorf("sqlite: close: %w", err)
		}
	})
	return d.closeErr
}

// dsnPath is the DSN without its query, for error messages: parameters may
// one day carry credentials, and the path is what an admin needs to see.
func dsnPath(dsn string) string {
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		return dsn[:i]
	}
	return dsn
}

// pointCtx is the context a point lookup (one row by its key) runs its
// query with. Such a query takes microseconds, and honoring cancellation
// while it runs costs more: with a cancelable context database/sql starts
// a goroutine per query to close its rows, and modernc.org/sqlite one to
// interrupt it and a progress handler. So a done context fails the lookup
// before it starts (the query sees ctx and returns its error), and a live
// one is not watched. A wait for a pooled connection is not watched either;
// it lasts as long as the lookups ahead of it (the pool is sized for the
// processors, see Open).
func pointCtx(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx
	}
	return context.Background()
}
