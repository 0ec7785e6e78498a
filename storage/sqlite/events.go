package sqlite

import (
	"context"
	"fmt"
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
		ON CONFLICT (source, id) DO NOTHING`, source, id, clampNano(d.now())); err != nil {
		return fmt.Errorf("sqlite: record webhook event %s/%s: %w", source, id, err)
	}
	return nil
}
