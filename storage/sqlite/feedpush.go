package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

// FeedPushState returns target's state, bridge.ErrNotFound before the
// first save.
func (d *DB) FeedPushState(ctx context.Context, target string) (bridge.FeedPushState, error) {
	var raw string
	err := d.db.QueryRowContext(ctx, `SELECT state FROM feed_push_state WHERE target = ?`, target).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return bridge.FeedPushState{}, fmt.Errorf("sqlite: feed push state %s: %w", target, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.FeedPushState{}, fmt.Errorf("sqlite: feed push state %s: %w", target, err)
	}
	s, err := rowcodec.DecodeFeedPushState(target, raw)
	if err != nil {
		return bridge.FeedPushState{}, fmt.Errorf("sqlite: %w", err)
	}
	return s, nil
}

// SaveFeedPushState replaces the state of s.Target.
func (d *DB) SaveFeedPushState(ctx context.Context, s bridge.FeedPushState) error {
	raw, err := rowcodec.EncodeFeedPushState(s)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: save feed push state %s: %w", s.Target, err)
	}
	defer unlock()
	if _, err := d.db.ExecContext(ctx, `INSERT INTO feed_push_state (target, state) VALUES (?, ?)
		ON CONFLICT (target) DO UPDATE SET state = excluded.state`, s.Target, raw); err != nil {
		return fmt.Errorf("sqlite: save feed push state %s: %w", s.Target, err)
	}
	return nil
}

// EachPushedProduct calls fn for every product recorded for target.
func (d *DB) EachPushedProduct(ctx context.Context, target string, fn func(bridge.PushedProduct) error) error {
	rows, err := d.db.QueryContext(ctx, `SELECT product_id, hash, rejected, retracted, held FROM feed_pushed_products WHERE target = ?`, target)
	if err != nil {
		return fmt.Errorf("sqlite: pushed products %s: %w", target, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p bridge.PushedProduct
		if err := rows.Scan(&p.ProductID, &p.Hash, &p.Rejected, &p.Retracted, &p.Held); err != nil {
			return fmt.Errorf("sqlite: pushed products %s: %w", target, err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: pushed products %s: %w", target, err)
	}
	return nil
}

// SavePushedProducts records ps for target in one transaction.
func (d *DB) SavePushedProducts(ctx context.Context, target string, ps []bridge.PushedProduct) error {
	if err := rowcodec.CheckPushedProducts(target, ps); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if len(ps) == 0 {
		return nil
	}
	return d.writeTx(ctx, "save pushed products "+target, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO feed_pushed_products (target, product_id, hash, rejected, retracted, retract, held)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4 = '' AND NOT ?5)
			ON CONFLICT (target, product_id) DO UPDATE SET hash = excluded.hash, rejected = excluded.rejected,
				retracted = excluded.retracted,
				-- A refusal changes nothing at the agent: it still holds
				-- (or not) the version the stored retract body withdraws.
				retract = CASE WHEN excluded.rejected = '' THEN excluded.retract ELSE retract END,
				held = CASE WHEN excluded.rejected = '' THEN excluded.held ELSE held END`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, p := range ps {
			if _, err := st.ExecContext(ctx, target, p.ProductID, p.Hash, p.Rejected, p.Retracted, p.Retract); err != nil {
				return err
			}
		}
		return nil
	})
}

// PushedRetractions returns the retract bodies of ids, by product id.
func (d *DB) PushedRetractions(ctx context.Context, target string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for chunk := range slices.Chunk(ids, 500) { // under SQLite's bound-parameter limit
		args := make([]any, 0, len(chunk)+1)
		args = append(args, target)
		for _, id := range chunk {
			args = append(args, id)
		}
		q := `SELECT product_id, retract FROM feed_pushed_products WHERE target = ? AND product_id IN (?` +
			strings.Repeat(", ?", len(chunk)-1) + `)`
		if err := d.scanPairs(ctx, q, args, out); err != nil {
			return nil, fmt.Errorf("sqlite: pushed retractions %s: %w", target, err)
		}
	}
	return out, nil
}

// scanPairs adds the (key, value) rows of query q to out.
func (d *DB) scanPairs(ctx context.Context, q string, args []any, out map[string]string) error {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		out[k] = v
	}
	return rows.Err()
}

// ForgetPushedProducts drops every record of target.
func (d *DB) ForgetPushedProducts(ctx context.Context, target string) error {
	return d.writeTx(ctx, "forget pushed products "+target, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM feed_pushed_products WHERE target = ?`, target)
		return err
	})
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE, the pool's
// _txlock) in this process's turn to write, committing when fn succeeds.
func (d *DB) writeTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	unlock, err := d.lockWrites(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer unlock()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return nil
}
