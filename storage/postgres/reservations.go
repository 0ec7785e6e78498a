package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
	"github.com/jackc/pgx/v5"
)

// Holds and the stock locks.
//
// Every hold takes, before it writes anything, a transaction-scoped
// advisory lock per variant it holds (in variant order, so two holds never
// wait for each other in a cycle). Plain holds need no lock among
// themselves (a hold is idempotent by its order's row); the lock is for
// a hold with stock checks (Change.StockChecks), which counts what is held
// and holds more only if the stock allows: while it holds a variant's
// lock no other hold of that variant can commit, and the count (a
// statement that starts after the lock is taken, so it sees every hold
// committed before) stays true until its own hold commits. So the
// checkout's "check the last unit, then hold it" is one step across
// replicas.

// Reserve holds lines for orderID. Reserving an order that already holds
// stock changes nothing, whatever lines the repeated call brings: a retried
// checkout must not hold twice. Two lines of one call for the same variant
// add up. The call is all or nothing.
func (d *DB) Reserve(ctx context.Context, orderID string, lines []bridge.Reservation) error {
	if err := rowcodec.CheckHold(orderID, lines); err != nil {
		return fmt.Errorf("postgres: reserve: %w", err)
	}
	if err := d.send(ctx, func(b *pgx.Batch, now time.Time) {
		queueStockLocks(b, lines, nil)
		queueHold(b, orderID, lines, rowcodec.ClampNano(now))
	}, nil); err != nil {
		return fmt.Errorf("postgres: reserve order %q: %w", orderID, err)
	}
	return nil
}

// queueStockChecks queues the hold's stock checks, one statement each:
// the batch fails with codeShort and the check's variant when the holds of
// its variants since its Since plus what the hold takes of them would
// exceed its OnHand, unless order holdID holds stock already. The caller
// has queued the locks of every variant the checks count.
func queueStockChecks(b *pgx.Batch, holdID string, checks []rowcodec.StockCheckRow) {
	for _, c := range checks {
		b.Queue(checkStockSQL, holdID, c.Variants, c.Quantity, c.OnHand, c.Since, codeShort, c.VariantID)
	}
}

// checkStockSQL fails with $6 (codeShort) and message $7 (the variant)
// unless order $1 holds stock already or $3 more of the variants $2 fit
// in $4 on hand beside what orders since $5 hold of them. It must run
// after the variants' locks are taken, as a statement of its own: a
// statement sees the holds committed before it started, so one that waited
// for a lock inside itself would miss the hold it waited for.
const checkStockSQL = `SELECT bridge_expect(
	EXISTS (SELECT FROM reservation_orders WHERE order_id = $1)
	OR $3 + (SELECT coalesce(sum(l.quantity), 0) FROM reservation_lines l
	    JOIN reservation_orders o ON o.order_id = l.order_id
	    WHERE l.variant_id = ANY($2::text[]) AND o.created_ns >= $5) <= $4, $6, $7)`

// stockLocksSQL takes the advisory locks of variants $2 (sorted,
// distinct) for the rest of the transaction, in the array's order (a
// function scan of unnest yields it). Keyed by the schema too: bridges in
// other schemas of the database are not held up.
const stockLocksSQL = `SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || ':' || v))
	FROM unnest($2::text[]) AS v`

// queueStockLocks queues the locks of the variants lines hold and of
// every variant checks count (those sharing a figure with a held one).
func queueStockLocks(b *pgx.Batch, lines []bridge.Reservation, checks []rowcodec.StockCheckRow) {
	vars := make([]string, 0, len(lines))
	for _, l := range lines {
		vars = append(vars, l.VariantID)
	}
	for _, c := range checks {
		vars = append(vars, c.Variants...)
	}
	slices.Sort(vars)
	b.Queue(stockLocksSQL, lockStock, slices.Compact(vars))
}

// holdSQL holds lines ($3, $4) for order $1 unless it holds stock
// already: the order's row is inserted first, and only an order row this
// statement inserted gets lines. Two lines of one variant add up.
const holdSQL = `WITH o AS (
	  INSERT INTO reservation_orders (order_id, created_ns) VALUES ($1, $2)
	  ON CONFLICT (order_id) DO NOTHING RETURNING order_id)
	INSERT INTO reservation_lines (order_id, variant_id, quantity)
	SELECT o.order_id, l.variant_id, sum(l.quantity)
	FROM o, unnest($3::text[], $4::bigint[]) AS l(variant_id, quantity)
	GROUP BY o.order_id, l.variant_id`

// releaseOrderSQL drops an order's hold; its lines go with it (ON DELETE
// CASCADE).
const releaseOrderSQL = `DELETE FROM reservation_orders WHERE order_id = $1`

// queueHold queues the hold of lines for orderID, made at now. The caller
// has checked the lines (rowcodec.CheckHold) and queued their locks.
func queueHold(b *pgx.Batch, orderID string, lines []bridge.Reservation, now int64) {
	vars := make([]string, len(lines))
	qty := make([]int64, len(lines))
	for i, l := range lines {
		vars[i], qty[i] = l.VariantID, l.Quantity
	}
	b.Queue(holdSQL, orderID, now, vars, qty)
}

// Reserved sums what orders reserved at or after since hold of variantID; 0
// when none does. The zero since counts every order.
func (d *DB) Reserved(ctx context.Context, variantID string, since time.Time) (int64, error) {
	var from int64
	if !since.IsZero() {
		from = rowcodec.ClampNano(since)
	}
	var n int64
	if err := d.pool.QueryRow(ctx, `SELECT coalesce(sum(l.quantity), 0) FROM reservation_lines l
		JOIN reservation_orders o ON o.order_id = l.order_id
		WHERE l.variant_id = $1 AND o.created_ns >= $2`, variantID, from).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: reserved %q: %w", variantID, err)
	}
	return n, nil
}

// Release drops what orderID holds. Releasing an order that holds nothing
// is not an error, so cancellation handlers can retry.
func (d *DB) Release(ctx context.Context, orderID string) error {
	if err := d.send(ctx, func(b *pgx.Batch, _ time.Time) { b.Queue(releaseOrderSQL, orderID) }, nil); err != nil {
		return fmt.Errorf("postgres: release order %q: %w", orderID, err)
	}
	return nil
}
