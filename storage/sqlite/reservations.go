package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/acp-bridge/bridge"
)

// Reserve holds lines for orderID. Reserving an order that already holds
// stock changes nothing, whatever lines the repeated call brings: a retried
// checkout must not hold twice. Two lines of one call for the same variant
// add up. The call is all or nothing.
func (d *DB) Reserve(ctx context.Context, orderID string, lines []bridge.Reservation) error {
	if err := checkHold(orderID, lines); err != nil {
		return fmt.Errorf("sqlite: reserve: %w", err)
	}
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	defer unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	defer tx.Rollback()
	if err := reserveTx(ctx, tx, d.now(), orderID, lines); err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	return nil
}

// checkHold refuses what Reserve and a Change's hold must not record.
func checkHold(orderID string, lines []bridge.Reservation) error {
	if orderID == "" {
		return errors.New("empty order id")
	}
	if len(lines) == 0 {
		// Recording an order with no lines would make every later Reserve
		// of it a no-op; that is never what the caller meant.
		return fmt.Errorf("order %q: no lines", orderID)
	}
	for _, l := range lines {
		if l.VariantID == "" {
			return fmt.Errorf("order %q: line without variant id", orderID)
		}
		if l.Quantity <= 0 {
			return fmt.Errorf("order %q: variant %q: quantity %d is not positive", orderID, l.VariantID, l.Quantity)
		}
	}
	return nil
}

// reserveTx holds lines for orderID inside tx, unless the order already holds
// stock. The caller holds the write lock and has checked the lines
// (checkHold); Reserve and CheckoutStore.Commit share it.
func reserveTx(ctx context.Context, tx *sql.Tx, now time.Time, orderID string, lines []bridge.Reservation) error {
	now = now.UTC()
	res, err := tx.ExecContext(ctx,
		`INSERT INTO reservation_orders (order_id, created_at, created_ns) VALUES (?, ?, ?) ON CONFLICT (order_id) DO NOTHING`,
		orderID, now.Format(time.RFC3339Nano), now.UnixNano())
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
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO reservation_lines (order_id, variant_id, quantity) VALUES (?, ?, ?)
			 ON CONFLICT (order_id, variant_id) DO UPDATE SET quantity = quantity + excluded.quantity`,
			orderID, l.VariantID, l.Quantity); err != nil {
			return fmt.Errorf("variant %q: %w", l.VariantID, err)
		}
	}
	return nil
}

// releaseTx drops what orderID holds; its lines go with it (ON DELETE
// CASCADE).
func releaseTx(ctx context.Context, tx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, orderID string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM reservation_orders WHERE order_id = ?`, orderID)
	return err
}

// Reserved sums what orders reserved at or after since hold of variantID; 0
// when none does. The zero since counts every order.
func (d *DB) Reserved(ctx context.Context, variantID string, since time.Time) (int64, error) {
	var from int64 // orders before 1970 do not exist; 0 counts them all
	if !since.IsZero() {
		from = since.UnixNano()
	}
	var n int64
	if err := d.reserved.QueryRowContext(ctx, variantID, from).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: reserved %q: %w", variantID, err)
	}
	return n, nil
}

// Release drops what orderID holds. Releasing an order that holds nothing is
// not an error, so cancellation handlers can retry.
func (d *DB) Release(ctx context.Context, orderID string) error {
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: release order %q: %w", orderID, err)
	}
	defer unlock()
	if err := releaseTx(ctx, d.db, orderID); err != nil {
		return fmt.Errorf("sqlite: release order %q: %w", orderID, err)
	}
	return nil
}
