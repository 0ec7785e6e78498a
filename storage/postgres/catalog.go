package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/catalogwriter"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A catalog sync can stream for minutes (a store API paged through). The
// writer holds one transaction on a connection of its own from BeginCatalog
// to Commit: its rows carry a new snapshot number and are uncommitted, so
// readers (on this replica and every other) keep reading the current
// snapshot, and reservations and checkouts never wait for it (nothing it
// writes is a row they lock). Commit points catalog_info at the new number
// and deletes the rows of the older snapshots, in the same transaction.
//
// Entries are sent in batches with COPY, which is several times faster
// than an INSERT per entry; a product or variant id already in the
// snapshot is refused by the tables' keys when its batch is sent, and then
// named by a query (each batch runs in a savepoint so the query can run
// after the refusal). So a duplicate within the current batch fails the Put
// that brings it, and one of an earlier batch fails the Put (or the Commit)
// that sends the batch: either way the writer cannot be committed, and the
// error names the id.
//
// Two replicas syncing at once both succeed; the snapshot committed last
// is the one readers see (running the sync on one replica at a time is the
// caller's choice: TryLock).

// putBatch bounds the entries (and putBatchBytes their JSON) sent in one
// COPY: large enough that the round trips do not count, small enough that
// a batch is a few megabytes of memory.
const (
	putBatch      = 1000
	putBatchBytes = 8 << 20
)

// catalogWriter implements bridge.CatalogWriter; its life (open, ended,
// abandoned with its context or the store) is catalogwriter.Life's.
type catalogWriter struct {
	life catalogwriter.Life
	db   *DB

	// Guarded by life: the writer is used by one goroutine, but
	// cancellation of BeginCatalog's context and Close end it from another.
	conn     *pgxpool.Conn // nil once the writer ended
	tx       pgx.Tx
	snapshot int64
	position int64

	// The batch being gathered: rows for COPY, and the ids it holds, to
	// refuse a duplicate within it at once.
	products, variants [][]any
	productIDs         map[string]bool
	variantIDs         map[string]string // variant → product
	bytes              int
}

// BeginCatalog starts a new snapshot. Nothing is visible to readers until
// Commit. The writer lives as long as ctx: when ctx is done before Commit,
// the snapshot is dropped, as if Rollback had been called.
func (d *DB) BeginCatalog(ctx context.Context) (bridge.CatalogWriter, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin catalog: %w", err)
	}
	w := &catalogWriter{db: d, conn: conn, productIDs: map[string]bool{}, variantIDs: map[string]string{}}
	if err := w.life.Begin(ctx, "postgres", &d.writers, func() error { return w.begin(ctx) }, w.end); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *catalogWriter) begin(ctx context.Context) error {
	tx, err := w.conn.Begin(ctx)
	if err != nil {
		return err
	}
	w.tx = tx
	// The sync's own context bounds it; a Commit that deletes a million
	// old rows may take longer than a checkout statement ever should.
	if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return err
	}
	return tx.QueryRow(ctx, `SELECT nextval('catalog_snapshot_seq')`).Scan(&w.snapshot)
}

// Put adds one entry. Entries come back from EachCatalogEntry in Put order.
// A product id or variant id already in this snapshot is refused (by this
// Put, or by the one or the Commit that sends its batch), and the writer
// cannot be committed after that.
func (w *catalogWriter) Put(ctx context.Context, e bridge.CatalogEntry) error {
	return w.life.Do(func() error { return w.put(ctx, e) })
}

func (w *catalogWriter) put(ctx context.Context, e bridge.CatalogEntry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: put product %q: %w", e.Product.ID, err)
	}
	id := e.Product.ID
	if id == "" {
		return errors.New("postgres: put product: empty product id")
	}
	if w.productIDs[id] {
		return fmt.Errorf("postgres: put product %q: product id %q is already in this snapshot", id, id)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("postgres: put product %q: %w", id, err)
	}
	// Checked before anything of the entry is added, so a refused entry
	// leaves the batch as it was.
	seen := map[string]bool{}
	for _, v := range e.Product.Variants {
		if v.ID == "" {
			// Not indexed: no checkout can name it. Validation reports the
			// missing id as an issue on the entry, which is still stored.
			continue
		}
		if owner, dup := w.variantIDs[v.ID]; dup || seen[v.ID] {
			if !dup {
				owner = id
			}
			return fmt.Errorf("postgres: put product %q: variant id %q is already in this snapshot (in product %q)", id, v.ID, owner)
		}
		seen[v.ID] = true
	}
	w.position++
	w.products = append(w.products, []any{w.snapshot, w.position, id, string(data)})
	w.productIDs[id] = true
	for _, v := range e.Product.Variants {
		if v.ID != "" {
			w.variants = append(w.variants, []any{w.snapshot, v.ID, id})
			w.variantIDs[v.ID] = id
		}
	}
	w.bytes += len(data)
	if len(w.products) >= putBatch || w.bytes >= putBatchBytes {
		return w.flush(ctx)
	}
	return nil
}

// flush sends the gathered batch. An error ends the writer (life).
func (w *catalogWriter) flush(ctx context.Context) error {
	if len(w.products) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, w.tx, func(sp pgx.Tx) error { // a savepoint
		if _, err := sp.CopyFrom(ctx, pgx.Identifier{"catalog_products"},
			[]string{"snapshot", "position", "id", "entry"}, pgx.CopyFromRows(w.products)); err != nil {
			return err
		}
		_, err := sp.CopyFrom(ctx, pgx.Identifier{"catalog_variants"},
			[]string{"snapshot", "variant_id", "product_id"}, pgx.CopyFromRows(w.variants))
		return err
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
			return w.duplicate(ctx)
		}
		return fmt.Errorf("postgres: put catalog entries: %w", err)
	}
	clear(w.products)
	w.products = w.products[:0]
	clear(w.variants)
	w.variants = w.variants[:0]
	clear(w.productIDs)
	clear(w.variantIDs)
	w.bytes = 0
	return nil
}

// duplicate names the first id of the refused batch that an earlier batch
// of the snapshot holds already (the batch itself has none: Put checks).
func (w *catalogWriter) duplicate(ctx context.Context) error {
	ids := make([]string, len(w.products))
	for i, r := range w.products {
		ids[i] = r[2].(string)
	}
	var vids, owners []string
	for _, r := range w.variants {
		vids = append(vids, r[1].(string))
		owners = append(owners, r[2].(string))
	}
	var dup string
	err := w.tx.QueryRow(ctx, `SELECT id FROM unnest($2::text[]) WITH ORDINALITY AS b(id, n)
		WHERE EXISTS (SELECT 1 FROM catalog_products p WHERE p.snapshot = $1 AND p.id = b.id)
		ORDER BY n LIMIT 1`, w.snapshot, ids).Scan(&dup)
	if err == nil {
		return fmt.Errorf("postgres: put product %q: product id %q is already in this snapshot", dup, dup)
	}
	var owner, first string
	err = w.tx.QueryRow(ctx, `SELECT b.id, b.product, v.product_id
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS b(id, product, n)
		JOIN catalog_variants v ON v.snapshot = $1 AND v.variant_id = b.id
		ORDER BY n LIMIT 1`, w.snapshot, vids, owners).Scan(&dup, &owner, &first)
	if err == nil {
		return fmt.Errorf("postgres: put product %q: variant id %q is already in this snapshot (in product %q)", owner, dup, first)
	}
	return fmt.Errorf("postgres: put catalog entries: an id is already in this snapshot (%v)", err)
}

// Commit makes the snapshot the current one, atomically: the pointer moves
// and the older snapshots' rows go in one transaction.
func (w *catalogWriter) Commit(ctx context.Context, info bridge.CatalogInfo) error {
	return w.life.Commit(func() error {
		if err := w.flush(ctx); err != nil {
			return err
		}
		data, err := rowcodec.EncodeCatalogInfo(info)
		if err != nil {
			return fmt.Errorf("postgres: commit catalog %q: %w", info.Version, err)
		}
		// The pointer first: its row lock orders two syncs committing at
		// once, and the second's DELETE (a new statement, so a new
		// snapshot of the data) then sees and removes the first's rows.
		for _, st := range []struct {
			query string
			args  []any
		}{
			{`INSERT INTO catalog_info (id, snapshot, info) VALUES (1, $1, $2)
			  ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, info = excluded.info`, []any{w.snapshot, string(data)}},
			{`DELETE FROM catalog_variants WHERE snapshot <> $1`, []any{w.snapshot}},
			{`DELETE FROM catalog_products WHERE snapshot <> $1`, []any{w.snapshot}},
		} {
			if _, err := w.tx.Exec(ctx, st.query, st.args...); err != nil {
				return fmt.Errorf("postgres: commit catalog %q: %w", info.Version, err)
			}
		}
		if err := w.tx.Commit(ctx); err != nil {
			return fmt.Errorf("postgres: commit catalog %q: %w", info.Version, err)
		}
		return nil
	})
}

// Rollback drops the snapshot. After Commit it does nothing, so
// `defer w.Rollback()` is safe.
func (w *catalogWriter) Rollback() error {
	w.life.Rollback()
	return nil
}

// end rolls back (unless committed) and gives the connection back
// (catalogwriter.Life calls it once, locked).
func (w *catalogWriter) end(committed bool) {
	if !committed && w.tx != nil {
		// Bounded: a connection that does not answer is closed instead
		// (the pool drops it when it comes back not idle).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := w.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			w.conn.Conn().Close(ctx)
		}
		cancel()
	}
	w.conn.Release()
	w.conn, w.tx = nil, nil
	w.products, w.variants = nil, nil
}

// CatalogInfo returns the committed snapshot's description, or an error
// wrapping bridge.ErrNotFound before the first commit.
func (d *DB) CatalogInfo(ctx context.Context) (bridge.CatalogInfo, error) {
	var data []byte
	err := d.pool.QueryRow(ctx, `SELECT info FROM catalog_info WHERE id = 1`).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.CatalogInfo{}, fmt.Errorf("postgres: catalog info: no snapshot committed yet: %w", bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.CatalogInfo{}, fmt.Errorf("postgres: catalog info: %w", err)
	}
	info, err := rowcodec.DecodeCatalogInfo(data)
	if err != nil {
		return bridge.CatalogInfo{}, fmt.Errorf("postgres: catalog info: %w", err)
	}
	return info, nil
}

// EachCatalogEntry calls fn for every entry of the current snapshot in Put
// order, and stops at fn's first error, which it returns. It is one
// statement, so it reads one snapshot from start to end even if a sync
// commits meanwhile (the rows it deletes stay visible to the statement).
// A feed export may take longer than the statement timeout, so it runs
// without one, bounded by ctx.
func (d *DB) EachCatalogEntry(ctx context.Context, fn func(bridge.CatalogEntry) error) error {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: read catalog: %w", err)
	}
	// Read-only: rolling back is how it ends, and what frees the
	// connection when fn fails.
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
		return fmt.Errorf("postgres: read catalog: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT entry FROM catalog_products
		WHERE snapshot = (SELECT snapshot FROM catalog_info WHERE id = 1) ORDER BY position`)
	if err != nil {
		return fmt.Errorf("postgres: read catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		// RawValues: the driver's bytes, valid until the next row;
		// Unmarshal copies what it keeps.
		var e bridge.CatalogEntry
		if err := json.Unmarshal(rows.RawValues()[0], &e); err != nil {
			return fmt.Errorf("postgres: read catalog: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read catalog: %w", err)
	}
	return nil
}

// CatalogEntry returns the entry of product productID.
func (d *DB) CatalogEntry(ctx context.Context, productID string) (bridge.CatalogEntry, error) {
	e, err := scanEntry(d.pool.QueryRow(ctx, `SELECT p.entry FROM catalog_info i
		JOIN catalog_products p ON p.snapshot = i.snapshot AND p.id = $1 WHERE i.id = 1`, productID))
	if err != nil {
		return e, fmt.Errorf("postgres: product %q: %w", productID, err)
	}
	return e, nil
}

// CatalogEntryByVariant returns the entry holding variant variantID.
// Entries are not cached (the SQLite driver does): a cache would have to
// learn of other replicas' syncs, and a lookup is one indexed query.
func (d *DB) CatalogEntryByVariant(ctx context.Context, variantID string) (bridge.CatalogEntry, error) {
	e, err := scanEntry(d.pool.QueryRow(ctx, `SELECT p.entry FROM catalog_info i
		JOIN catalog_variants v ON v.snapshot = i.snapshot AND v.variant_id = $1
		JOIN catalog_products p ON p.snapshot = v.snapshot AND p.id = v.product_id
		WHERE i.id = 1`, variantID))
	if err != nil {
		return e, fmt.Errorf("postgres: variant %q: %w", variantID, err)
	}
	return e, nil
}

func scanEntry(row pgx.Row) (bridge.CatalogEntry, error) {
	var data []byte
	if err := row.Scan(&data); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return bridge.CatalogEntry{}, bridge.ErrNotFound
		}
		return bridge.CatalogEntry{}, err
	}
	var e bridge.CatalogEntry
	err := json.Unmarshal(data, &e)
	return e, err
}
