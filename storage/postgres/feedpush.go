package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/internal/rowcodec"
)

// FeedPushState returns target's state, bridge.ErrNotFound before the
// first save.
func (d *DB) FeedPushState(ctx context.Context, target string) (bridge.FeedPushState, error) {
	var raw string
	err := d.pool.QueryRow(ctx, `SELECT state FROM feed_push_state WHERE target = $1`, target).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return bridge.FeedPushState{}, fmt.Errorf("postgres: feed push state %s: %w", target, bridge.ErrNotFound)
	}
	if err != nil {
		return bridge.FeedPushState{}, fmt.Errorf("postgres: feed push state %s: %w", target, err)
	}
	s, err := rowcodec.DecodeFeedPushState(target, raw)
	if err != nil {
		return bridge.FeedPushState{}, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// SaveFeedPushState replaces the state of s.Target.
func (d *DB) SaveFeedPushState(ctx context.Context, s bridge.FeedPushState) error {
	raw, err := rowcodec.EncodeFeedPushState(s)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if _, err := d.pool.Exec(ctx, `INSERT INTO feed_push_state (target, state) VALUES ($1, $2)
		ON CONFLICT (target) DO UPDATE SET state = excluded.state`, s.Target, raw); err != nil {
		return fmt.Errorf("postgres: save feed push state %s: %w", s.Target, err)
	}
	return nil
}

// EachPushedProduct calls fn for every product recorded for target.
func (d *DB) EachPushedProduct(ctx context.Context, target string, fn func(bridge.PushedProduct) error) error {
	rows, err := d.pool.Query(ctx, `SELECT product_id, hash, rejected, retracted, held FROM feed_pushed_products WHERE target = $1`, target)
	if err != nil {
		return fmt.Errorf("postgres: pushed products %s: %w", target, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p bridge.PushedProduct
		if err := rows.Scan(&p.ProductID, &p.Hash, &p.Rejected, &p.Retracted, &p.Held); err != nil {
			return fmt.Errorf("postgres: pushed products %s: %w", target, err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: pushed products %s: %w", target, err)
	}
	return nil
}

// SavePushedProducts records ps for target in one statement (arrays
// unnested), so the batch lands whole or not at all.
func (d *DB) SavePushedProducts(ctx context.Context, target string, ps []bridge.PushedProduct) error {
	if err := rowcodec.CheckPushedProducts(target, ps); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if len(ps) == 0 {
		return nil
	}
	ids := make([]string, len(ps))
	hashes := make([]int64, len(ps))
	rejected := make([]string, len(ps))
	retracted := make([]bool, len(ps))
	retract := make([]string, len(ps))
	for i, p := range ps {
		ids[i], hashes[i], rejected[i], retracted[i], retract[i] = p.ProductID, p.Hash, p.Rejected, p.Retracted, p.Retract
	}
	if _, err := d.pool.Exec(ctx, `INSERT INTO feed_pushed_products (target, product_id, hash, rejected, retracted, retract, held)
		SELECT $1, u.*, u.rejected = '' AND NOT u.retracted
		FROM unnest($2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::text[]) AS u(product_id, hash, rejected, retracted, retract)
		ON CONFLICT (target, product_id) DO UPDATE SET hash = excluded.hash, rejected = excluded.rejected,
			retracted = excluded.retracted,
			-- A refusal changes nothing at the agent: it still holds (or
			-- not) the version the stored retract body withdraws.
			retract = CASE WHEN excluded.rejected = '' THEN excluded.retract ELSE feed_pushed_products.retract END,
			held = CASE WHEN excluded.rejected = '' THEN excluded.held ELSE feed_pushed_products.held END`,
		target, ids, hashes, rejected, retracted, retract); err != nil {
		return fmt.Errorf("postgres: save pushed products %s: %w", target, err)
	}
	return nil
}

// PushedRetractions returns the retract bodies of ids, by product id.
func (d *DB) PushedRetractions(ctx context.Context, target string, ids []string) (map[string]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT product_id, retract FROM feed_pushed_products WHERE target = $1 AND product_id = ANY($2)`, target, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: pushed retractions %s: %w", target, err)
	}
	defer rows.Close()
	out := make(map[string]string, len(ids))
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("postgres: pushed retractions %s: %w", target, err)
		}
		out[id] = body
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: pushed retractions %s: %w", target, err)
	}
	return out, nil
}

// ForgetPushedProducts drops every record of target.
func (d *DB) ForgetPushedProducts(ctx context.Context, target string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM feed_pushed_products WHERE target = $1`, target); err != nil {
		return fmt.Errorf("postgres: forget pushed products %s: %w", target, err)
	}
	return nil
}
