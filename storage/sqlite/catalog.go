package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/catalogwriter"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// A catalog sync can stream for minutes (a store API paged through), and
// SQLite has one writer per file. Writing the new snapshot straight into the
// catalog tables would hold that write lock the whole time, and every
// reservation a checkout makes meanwhile would wait or fail. So the writer
// stages the snapshot in TEMP tables of its own connection, which lock
// nothing in the database file, and Commit swaps it in: delete the old rows,
// copy the staged ones, store the info, all in the one transaction that began
// at BeginCatalog. The write lock is held only for the swap.
//
// The staging tables carry the same keys as the real ones, so a duplicate
// product or variant id fails the Put that brings it. They are declared
// exactly like the tables of migrations/0001_catalog.sql (columns, keys,
// STRICT, WITHOUT ROWID) because that lets SQLite's transfer optimization
// copy their records into the emptied real tables as they are, without
// decoding and re-checking every row. Keep them in step with later
// migrations (TestStageSchemaMatchesCatalog checks): another column list
// breaks the swap, another set of indexes silently slows it down.
const stageSchema = `
CREATE TEMP TABLE stage_products (
    position INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    entry    TEXT NOT NULL
) STRICT;
CREATE TEMP TABLE stage_variants (
    variant_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`

// swap replaces the committed snapshot with the staged one. The transfer
// optimization wants "INSERT INTO t SELECT * FROM u" to the letter.
var swap = []string{
	`DELETE FROM main.catalog_variants`,
	`DELETE FROM main.catalog_products`,
	`INSERT INTO main.catalog_products SELECT * FROM temp.stage_products`,
	`INSERT INTO main.catalog_variants SELECT * FROM temp.stage_variants`,
}

// catalogWriter implements bridge.CatalogWriter; its life (open, ended,
// abandoned with its context or the store) is catalogwriter.Life's.
type catalogWriter struct {
	life catalogwriter.Life
	db   *DB

	// Guarded by life: the writer is used by one goroutine, but
	// cancellation of BeginCatalog's context and Close end it from another.
	conn       *sql.Conn // nil once the writer ended
	putProduct *sql.Stmt
	putVariant *sql.Stmt
	position   int64
}

// BeginCatalog starts a new snapshot. Nothing is visible to readers until
// Commit. The writer lives as long as ctx: when ctx is done before Commit, the
// snapshot is dropped, as if Rollback had been called.
func (d *DB) BeginCatalog(ctx context.Context) (bridge.CatalogWriter, error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin catalog: %w", err)
	}
	w := &catalogWriter{db: d, conn: conn}
	if err := w.life.Begin(ctx, "sqlite", &d.writers, func() error { return w.begin(ctx) }, w.end); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *catalogWriter) begin(ctx context.Context) error {
	// A plain (deferred) BEGIN, not the pool's BEGIN IMMEDIATE: until Commit
	// the transaction touches only the temp schema, so it takes no lock on
	// the database file.
	if _, err := w.conn.ExecContext(ctx, `BEGIN`); err != nil {
		return err
	}
	// The staged snapshot outgrows the default 2 MB cache at a few thousand
	// entries; a larger cache keeps the staging B-trees off the temp file.
	// The connection is discarded afterwards, so the setting does not leak.
	if _, err := w.conn.ExecContext(ctx, `PRAGMA temp.cache_size = -65536`); err != nil {
		return err
	}
	if _, err := w.conn.ExecContext(ctx, stageSchema); err != nil {
		return err
	}
	var err error
	if w.putProduct, err = w.conn.PrepareContext(ctx,
		`INSERT INTO temp.stage_products (position, id, entry) VALUES (?, ?, ?)`); err != nil {
		return err
	}
	if w.putVariant, err = w.conn.PrepareContext(ctx,
		`INSERT INTO temp.stage_variants (variant_id, product_id) VALUES (?, ?)`); err != nil {
		return err
	}
	return nil
}

// Put stages one entry. Entries come back from EachCatalogEntry in Put order.
// A product id or variant id already in this snapshot is refused, and the
// writer cannot be committed after a refused Put.
func (w *catalogWriter) Put(ctx context.Context, e bridge.CatalogEntry) error {
	return w.life.Do(func() error { return w.put(ctx, e) })
}

func (w *catalogWriter) put(ctx context.Context, e bridge.CatalogEntry) error {
	id := e.Product.ID
	if id == "" {
		return errors.New("sqlite: put product: empty product id")
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("sqlite: put product %q: %w", id, err)
	}
	w.position++
	if _, err := w.putProduct.ExecContext(ctx, w.position, id, string(data)); err != nil {
		if isConstraint(err) {
			return fmt.Errorf("sqlite: put product %q: product id %q is already in this snapshot", id, id)
		}
		return fmt.Errorf("sqlite: put product %q: %w", id, err)
	}
	for _, v := range e.Product.Variants {
		if v.ID == "" {
			// Not indexed: no checkout can name it. Validation reports the
			// missing id as an issue on the entry, which is still stored.
			continue
		}
		if _, err := w.putVariant.ExecContext(ctx, v.ID, id); err != nil {
			if isConstraint(err) {
				return fmt.Errorf("sqlite: put product %q: variant id %q is already in this snapshot%s",
					id, v.ID, w.variantOwner(ctx, v.ID))
			}
			return fmt.Errorf("sqlite: put product %q: variant %q: %w", id, v.ID, err)
		}
	}
	return nil
}

// variantOwner names the product that first claimed variantID, for the
// duplicate error; it is best effort.
func (w *catalogWriter) variantOwner(ctx context.Context, variantID string) string {
	var owner string
	err := w.conn.QueryRowContext(ctx,
		`SELECT product_id FROM temp.stage_variants WHERE variant_id = ?`, variantID).Scan(&owner)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (in product %q)", owner)
}

// Commit makes the staged snapshot the current one, atomically.
func (w *catalogWriter) Commit(ctx context.Context, info bridge.CatalogInfo) error {
	// The write lock is let go of after the writer ended: a swap that
	// failed midway is rolled back (end) before another write begins.
	unlock := func() {}
	defer func() { unlock() }()
	return w.life.Commit(func() error {
		data, err := rowcodec.EncodeCatalogInfo(info)
		if err != nil {
			return fmt.Errorf("sqlite: commit catalog %q: %w", info.Version, err)
		}
		u, err := w.db.lockWrites(ctx)
		if err != nil {
			return fmt.Errorf("sqlite: commit catalog %q: %w", info.Version, err)
		}
		unlock = u
		for _, q := range swap {
			if _, err := w.conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("sqlite: commit catalog %q: %w", info.Version, err)
			}
		}
		if _, err := w.conn.ExecContext(ctx,
			`INSERT INTO main.catalog_info (id, info) VALUES (1, ?)
			 ON CONFLICT (id) DO UPDATE SET info = excluded.info`, string(data)); err != nil {
			return fmt.Errorf("sqlite: commit catalog %q: %w", info.Version, err)
		}
		_, err = w.conn.ExecContext(ctx, `COMMIT`)
		// Before Commit returns, so lookups made after it see the new
		// snapshot; after a failed COMMIT too, which may have committed all
		// the same (a context that ends during it turns its outcome into
		// ctx.Err()).
		w.db.entries.invalidate()
		if err != nil {
			return fmt.Errorf("sqlite: commit catalog %q: %w", info.Version, err)
		}
		return nil
	})
}

// Rollback drops the staged snapshot. After Commit it does nothing, so
// `defer w.Rollback()` is safe.
func (w *catalogWriter) Rollback() error {
	w.life.Rollback()
	return nil
}

// end releases the writer's connection (catalogwriter.Life calls it once,
// locked).
func (w *catalogWriter) end(committed bool) {
	for _, s := range []*sql.Stmt{w.putProduct, w.putVariant} {
		if s != nil { // nil when begin failed
			s.Close()
		}
	}
	// The connection is never returned to the pool: it holds the staging
	// tables and, after a failed statement, maybe an open transaction. A new
	// connection costs far less than the next user inheriting either. The
	// ROLLBACK is for clarity only; closing the connection rolls back too.
	if !committed {
		w.conn.ExecContext(context.Background(), `ROLLBACK`)
	}
	discard(w.conn)
	w.conn = nil
}

// discard closes conn instead of returning it to the pool.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

func isConstraint(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// CatalogInfo returns the committed snapshot's description, or an error
// wrapping bridge.ErrNotFound before the first commit.
func (d *DB) CatalogInfo(ctx context.Context) (bridge.CatalogInfo, error) {
	var data []byte
	err := d.catalogInfo.QueryRowContext(pointCtx(ctx)).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.CatalogInfo{}, fmt.Errorf("sqlite: catalog info: no snapshot committed yet: %w", bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.CatalogInfo{}, fmt.Errorf("sqlite: catalog info: %w", err)
	}
	info, err := rowcodec.DecodeCatalogInfo(data)
	if err != nil {
		return bridge.CatalogInfo{}, fmt.Errorf("sqlite: catalog info: %w", err)
	}
	return info, nil
}

// EachCatalogEntry calls fn for every entry of the current snapshot in Put
// order, and stops at fn's first error, which it returns. It reads one
// snapshot from start to end even if a sync commits meanwhile; a long
// iteration only keeps SQLite from trimming its WAL file until it ends.
func (d *DB) EachCatalogEntry(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
	rows, err := d.db.QueryContext(ctx, `SELECT entry FROM catalog_products ORDER BY position`)
	if err != nil {
		return fmt.Errorf("sqlite: read catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		// RawBytes avoids a copy per entry; Unmarshal copies what it keeps.
		var data sql.RawBytes
		if err := rows.Scan(&data); err != nil {
			return fmt.Errorf("sqlite: read catalog: %w", err)
		}
		var e bridge.CatalogEntry
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("sqlite: read catalog: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read catalog: %w", err)
	}
	return nil
}

// CatalogEntry returns the entry of product productID.
func (d *DB) CatalogEntry(ctx context.Context, productID string) (bridge.CatalogEntry, error) {
	e, err := scanEntry(d.entryByID.QueryRowContext(pointCtx(ctx), productID))
	if err != nil {
		return e, fmt.Errorf("sqlite: product %q: %w", productID, err)
	}
	return e, nil
}

// CatalogEntryByVariant returns the entry holding variant variantID. Entries
// of the current snapshot are cached decoded (entrycache.go); the caller
// gets its own copy, which it may change.
func (d *DB) CatalogEntryByVariant(ctx context.Context, variantID string) (bridge.CatalogEntry, error) {
	e, ok, gen := d.entries.get(variantID)
	if ok {
		return cloneEntry(e), nil // cached entries are never changed: cloning unlocked is safe
	}
	e, err := scanEntry(d.entryByVariant.QueryRowContext(pointCtx(ctx), variantID))
	if err != nil {
		return e, fmt.Errorf("sqlite: variant %q: %w", variantID, err)
	}
	d.entries.put(gen, variantID, e)
	return cloneEntry(e), nil
}

func scanEntry(row *sql.Row) (bridge.CatalogEntry, error) {
	var data []byte
	if err := row.Scan(&data); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return bridge.CatalogEntry{}, bridge.ErrNotFound
		}
		return bridge.CatalogEntry{}, err
	}
	var e bridge.CatalogEntry
	err := json.Unmarshal(data, &e)
	return e, err
}
