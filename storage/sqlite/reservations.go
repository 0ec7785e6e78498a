package sqlite

import (
	"context"
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
)

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
