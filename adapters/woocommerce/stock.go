package woocommerce

import (
	"cmp"
	"context"
	"fmt"

	"github.com/acp-bridge/bridge"
)

// item is a variant as WooCommerce has it now: the product (simple) or the
// variation with its parent, and its stock resolved.
type item struct {
	product product
	parent  *product
	stock   stock
}

// forSale reports why item cannot be sold, or "".
func (it item) forSale() string {
	p := it.product
	switch {
	case it.parent != nil && it.parent.Status != "publish":
		return "its product is no longer published"
	case p.Status != "" && p.Status != "publish":
		return "it is no longer published"
	case p.Type == "variable":
		return "it is a variable product, not one of its variations"
	}
	return ""
}

// lookup reads a variant live: GET /products/{id} for a simple product,
// GET /products/{parent}/variations/{id} for a variation (and its parent,
// whose stock a "parent" variation sells from, and whose status governs
// the variation's).
func (a *Adapter) lookup(ctx context.Context, productID, variantID int64) (item, error) {
	if productID == variantID {
		var p product
		if _, err := a.c.get(ctx, "products/"+idString(productID), nil, &p); err != nil {
			return item{}, err
		}
		return item{product: p, stock: stockOf(p, nil)}, nil
	}
	// Both at once: the checkout waits for this within acp.stock_timeout.
	var v, p product
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, perr = a.c.get(ctx, "products/"+idString(productID), nil, &p)
	}()
	_, verr := a.c.get(ctx, "products/"+idString(productID)+"/variations/"+idString(variantID), nil, &v)
	<-done
	if err := cmp.Or(verr, perr); err != nil {
		return item{}, err
	}
	return item{product: v, parent: &p, stock: stockOf(v, &p)}, nil
}

// Stock reports variantID's stock as WooCommerce has it now: its
// stock_quantity (the parent's for "parent" stock), which already counts
// every order the shop has. The bridge subtracts its holds of orders not
// yet written. Tracked is false when WooCommerce does not manage the
// item's stock or sells it on backorder; an item not for sale (no longer
// published) or marked out of stock is tracked with nothing on hand. The
// variant's product is found in the catalog snapshot; an unknown variant
// is an error wrapping bridge.ErrNotFound.
func (a *Adapter) Stock(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	if a.catalog == nil {
		return bridge.StockLevel{}, errNoStorage
	}
	fail := func(err error) (bridge.StockLevel, error) {
		return bridge.StockLevel{}, fmt.Errorf("woocommerce: stock of variant %q: %w", variantID, err)
	}
	e, err := a.catalog.CatalogEntryByVariant(ctx, variantID)
	if err != nil {
		return fail(err)
	}
	pid, ok1 := parseID(e.Product.ID)
	vid, ok2 := parseID(variantID)
	if !ok1 || !ok2 {
		return fail(errMappedIDs)
	}
	it, err := a.lookup(ctx, pid, vid)
	if itemGone(err) {
		return fail(fmt.Errorf("deleted in the shop: %w", bridge.ErrNotFound))
	}
	// Any other failure (a 404 of the whole API included) is the shop's
	// trouble, not the item's: an error, never "no longer sold".
	if err != nil {
		return fail(err)
	}
	if why := it.forSale(); why != "" {
		return bridge.StockLevel{Tracked: true}, nil // not for sale: nothing on hand
	}
	if !it.stock.Managed || it.stock.Backorders {
		if it.stock.Status == "outofstock" {
			return bridge.StockLevel{Tracked: true}, nil
		}
		return bridge.StockLevel{}, nil
	}
	level := bridge.StockLevel{Tracked: true, OnHand: it.stock.Quantity}
	if it.stock.FromParent && it.parent != nil {
		// The siblings sell from the same figure: their holds count too.
		// All of the parent's variations, to be safe: one that keeps its
		// own stock only makes this figure err low.
		for _, id := range it.parent.Variations {
			if id != vid {
				level.Shared = append(level.Shared, idString(id))
			}
		}
	}
	return level, nil
}
