package shopify

import (
	"context"
	"fmt"

	"github.com/acp-bridge/bridge"
)

// Stock asks Shopify for a variant's live stock: its inventoryQuantity
// over every location, or the sum available at the configured locations
// capped at that total (see stock).
// The figure counts every order Shopify created, and the bridge's holds
// end once their order is written (CountsWrittenOrders), so every hold
// still held is one Shopify does not count yet: HoldsSince is zero.
// A variant that is not tracked, or that may be oversold (inventory
// policy CONTINUE), has nothing to run out of: Tracked is false. An
// unknown variant is an error wrapping bridge.ErrNotFound.
func (a *Adapter) Stock(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	gid, err := toGID("ProductVariant", variantID)
	if err != nil {
		return bridge.StockLevel{}, fmt.Errorf("shopify: stock: %w: %w", bridge.ErrNotFound, err)
	}
	var out struct {
		Variant *gqlVariant `json:"productVariant"`
	}
	q := `query Stock($id: ID!) { productVariant(id: $id) { ` + a.variantFields() + ` } }`
	if err := a.gql.query(ctx, q, map[string]any{"id": gid}, &out); err != nil {
		return bridge.StockLevel{}, fmt.Errorf("shopify: stock of variant %s: %w", variantID, err)
	}
	if out.Variant == nil {
		return bridge.StockLevel{}, fmt.Errorf("shopify: stock of variant %s: %w", variantID, bridge.ErrNotFound)
	}
	qty, limited := a.stock(*out.Variant)
	if !limited {
		return bridge.StockLevel{}, nil
	}
	return bridge.StockLevel{Tracked: true, OnHand: qty}, nil
}
