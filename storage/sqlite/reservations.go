package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

// Reserve holds lines for orderID. Reserving an order that already holds
// stock changes nothing, whatever lines the repeated call brings: a retried
// checkout must not hold twice. Two lines of one call for the same variant
// add up. The call is all or nothing. It is committed like a checkout
// change (group commit, see commit.go), with the same cancellation rules.
func (d *DB) Reserve(ctx context.Context, orderID string, lines []bridge.Reservation) error {
	if err := rowcodec.CheckHold(orderID, lines); err != nil {
		return fmt.Errorf("sqlite: reserve: %w", err)
	}
	if err := d.commits.submit(ctx, reserveJob{orderID, lines}); err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	return nil
}

type reserveJob struct {
	orderID string
	lines   []bridge.Reservation
}

func (j reserveJob) apply(st *writeStmts, now time.Time) error {
	return reserveTx(st, now, j.orderID, j.lines)
}

const (
	holdOrderSQL = `INSERT INTO reservation_orders (order_id, created_at, created_ns) VALUES (?, ?, ?)
		ON CONFLICT (order_id) DO NOTHING`
	holdLineSQL = `INSERT INTO reservation_lines (order_id, variant_id, quantity) VALUES (?, ?, ?)
		ON CONFLICT (order_id, variant_id) DO UPDATE SET quantity = quantity + excluded.quantity`
	// An order's lines go with it (ON DELETE CASCADE).
	releaseOrderSQL = `DELETE FROM reservation_orders WHERE order_id = ?`
	// What orders placed at or after a time (ns) hold of a variant.
	reservedSQL = `SELECT coalesce(sum(l.quantity), 0) FROM reservation_lines l
		JOIN reservation_orders o ON o.order_id = l.order_id
		WHERE l.variant_id = ? AND o.created_ns >= ?`
)

// checkStockTx fails with a *bridge.ShortStockError naming the first
// variant (in id order) whose holds since its check's Since plus what the
// hold takes would exceed its OnHand, unless orderID holds stock already.
// It runs inside the committer's transaction, which no other writer (of
// this process or another) shares, so the count stays true until the hold
// is written.
func checkStockTx(st *writeStmts, orderID string, checks []rowcodec.StockCheckRow) error {
	var one int
	switch err := st.orderHolds.QueryRow(orderID).Scan(&one); {
	case err == nil:
		return nil // the order holds its stock already
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("order %q: %w", orderID, err)
	}
	for _, c := range checks {
		var held int64
		for _, v := range c.Variants {
			var n int64
			if err := st.reservedSince.QueryRow(v, c.Since).Scan(&n); err != nil {
				return fmt.Errorf("held of variant %q: %w", v, err)
			}
			held += n
		}
		if c.Quantity+held > c.OnHand {
			return &bridge.ShortStockError{VariantID: c.VariantID}
		}
	}
	return nil
}

// reserveTx holds lines for orderID inside the committer's transaction,
// unless the order already holds stock. The caller has checked the lines
// (rowcodec.CheckHold); Reserve and CheckoutStore.Commit share it.
func reserveTx(st *writeStmts, now time.Time, orderID string, lines []bridge.Reservation) error {
	now = now.UTC()
	res, err := st.holdOrder.Exec(orderID, now.Format(time.RFC3339Nano), now.UnixNano())
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return nil // the order already holds its stock
	}
	for _, l := range lines {
		if _, err := st.holdLine.Exec(orderID, l.VariantID, l.Quantity); err != nil {
			return fmt.Errorf("variant %q: %w", l.VariantID, err)
		}
	}
	return nil
}

// Reserved sums what orders reserved at or after since hold of variantID; 0
// when none does. The zero since counts every order.
func (d *DB) Reserved(ctx context.Context, variantID string, since time.Time) (int64, error) {
	from := rowcodec.ClampNano(since) // the zero since is 0: every order
	var n int64
	if err := d.reserved.QueryRowContext(pointCtx(ctx), variantID, from).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: reserved %q: %w", variantID, err)
	}
	return n, nil
}

// Release drops what orderID holds. Releasing an order that holds nothing is
// not an error, so cancellation handlers can retry. It is committed like a
// checkout change (group commit).
func (d *DB) Release(ctx context.Context, orderID string) error {
	if err := d.commits.submit(ctx, releaseJob(orderID)); err != nil {
		return fmt.Errorf("sqlite: release order %q: %w", orderID, err)
	}
	return nil
}

type releaseJob string

func (j releaseJob) apply(st *writeStmts, _ time.Time) error {
	_, err := st.releaseOrder.Exec(string(j))
	return err
}
