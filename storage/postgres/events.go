package postgres

import (
	"context"
	"fmt"

	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

// EventSeen reports whether the event id from source was recorded.
func (d *DB) EventSeen(ctx context.Context, source, id string) (bool, error) {
	var seen bool
	err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM webhook_events WHERE source = $1 AND id = $2)`, source, id).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("postgres: webhook event %s/%s: %w", source, id, err)
	}
	return seen, nil
}

// RecordEvent records that the event id from source was handled;
// recording it again changes nothing.
func (d *DB) RecordEvent(ctx context.Context, source, id string) error {
	if _, err := d.pool.Exec(ctx, `INSERT INTO webhook_events (source, id, received_at) VALUES ($1, $2, $3)
		ON CONFLICT (source, id) DO NOTHING`, source, id, rowcodec.ClampNano(d.now())); err != nil {
		return fmt.Errorf("postgres: record webhook event %s/%s: %w", source, id, err)
	}
	return nil
}

// ReleaseClaims releases nothing and returns 0. The SQLite driver's ends
// the in-flight idempotency claims and job leases left by an earlier
// process, because one process serves a SQLite file and none of those
// claims can be running. On a database shared by several bridges the
// claims a starting bridge finds belong, for all it can tell, to replicas
// that are alive and mid-request (a payment being charged, an order being
// written to the store): ending them would let a retry run the same
// request twice at once. So here claims end only by their leases, which
// is what they are for; the retries of a replica that died wait that long
// (a minute for a checkout claim, the worker's lease for a job). Callers
// that look for the method (serve, at start) find it and learn that
// nothing was released.
func (d *DB) ReleaseClaims(context.Context) (int64, error) { return 0, nil }
