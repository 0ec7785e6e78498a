package sqlite

import (
	"context"
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
	if orderID == "" {
		return errors.New("sqlite: reserve: empty order id")
	}
	if len(lines) == 0 {
		// Recording an order with no lines would make every later Reserve
		// of it a no-op; that is never what the caller meant.
		return fmt.Errorf("sqlite: reserve order %q: no lines", orderID)
	}
	for _, l := range lines {
		if l.VariantID == "" {
			return fmt.Errorf("sqlite: reserve order %q: line without variant id", orderID)
		}
		if l.Quantity <= 0 {
			return fmt.Errorf("sqlite: reserve order %q: variant %q: quantity %d is not positive", orderID, l.VariantID, l.Quantity)
		}
	}
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	defer unlock()
	if err := d.reserve(ctx, orderID, lines); err != nil {
		return fmt.Errorf("sqlite: reserve order %q: %w", orderID, err)
	}
	return nil
}

func (d *DB) reserve(ctx context.Context, orderID string, lines []bridge.Reservation) error {
	now := time.Now().UTC()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
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
	return tx.Commit()
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
	// Its lines go with it: ON DELETE CASCADE.
	if _, err := d.db.ExecContext(ctx, `DELETE FROM reservation_orders WHERE order_id = ?`, orderID); err != nil {
		return fmt.Errorf("sqlite: release order %q: %w", orderID, err)
	}
	return nil
}
