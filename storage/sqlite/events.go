package sqlite

import (
	"context"
	"fmt"

	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

// EventSeen reports whether the event id from source was recorded.
func (d *DB) EventSeen(ctx context.Context, source, id string) (bool, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE source = ? AND id = ?`, source, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite: webhook event %s/%s: %w", source, id, err)
	}
	return n > 0, nil
}

// RecordEvent records that the event id from source was handled;
// recording it again changes nothing.
func (d *DB) RecordEvent(ctx context.Context, source, id string) error {
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: record webhook event %s/%s: %w", source, id, err)
	}
	defer unlock()
	if _, err := d.db.ExecContext(ctx, `INSERT INTO webhook_events (source, id, received_at) VALUES (?, ?, ?)
		ON CONFLICT (source, id) DO NOTHING`, source, id, rowcodec.ClampNano(d.now())); err != nil {
		return fmt.Errorf("sqlite: record webhook event %s/%s: %w", source, id, err)
	}
	return nil
}

// ReleaseClaims ends the in-flight idempotency claims left by an earlier
// process: one process serves a SQLite file, so at start no request of its
// own is running, and a retry of a request that died with the last process
// may take its claim over at once instead of waiting out the lease. It
// returns how many claims it released.
func (d *DB) ReleaseClaims(ctx context.Context) (int64, error) {
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: release claims: %w", err)
	}
	defer unlock()
	now := rowcodec.ClampNano(d.now())
	res, err := d.db.ExecContext(ctx, `UPDATE idempotency_keys SET locked_until = ? WHERE done = 0 AND locked_until > ?`, now, now)
	if err != nil {
		return 0, fmt.Errorf("sqlite: release claims: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: release claims: %w", err)
	}
	// Outbox jobs the dead process had claimed run again at once instead
	// of after their lease; every job is safe to repeat.
	res, err = d.db.ExecContext(ctx, `UPDATE outbox_jobs SET lease_until = 0, token = '' WHERE status = 'pending' AND lease_until > 0`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: release job claims: %w", err)
	}
	m, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: release job claims: %w", err)
	}
	return n + m, nil
}
