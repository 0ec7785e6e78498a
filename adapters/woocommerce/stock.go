package woocommerce

import (
	"cmp"
	"context"
	"fmt"
	"time"

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

// Stock reports how many units of variantID can still be sold: WooCommerce's
// stock_quantity now (the parent's for "parent" stock) less the stock the
// bridge holds for orders not yet written to the shop. tracked is false when
// WooCommerce does not manage the item's stock or sells it on backorder.
// The variant's product is found in the catalog snapshot; an unknown
// variant is an error wrapping bridge.ErrNotFound.
func (a *Adapter) Stock(ctx context.Context, variantID string) (available int64, tracked bool, err error) {
	if a.catalog == nil || a.reservations == nil {
		return 0, false, errNoStorage
	}
	fail := func(err error) (int64, bool, error) {
		return 0, false, fmt.Errorf("woocommerce: stock of variant %q: %w", variantID, err)
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
	if isNotFound(err) {
		return fail(fmt.Errorf("deleted in the shop: %w", bridge.ErrNotFound))
	}
	if err != nil {
		return fail(err)
	}
	if why := it.forSale(); why != "" {
		return 0, true, nil // not for sale: nothing available
	}
	if !it.stock.Managed || it.stock.Backorders {
		if it.stock.Status == "outofstock" {
			return 0, true, nil
		}
		return 0, false, nil
	}
	held, err := a.reservations.Reserved(ctx, variantID, time.Time{})
	if err != nil {
		return fail(fmt.Errorf("holds: %w", err))
	}
	return it.stock.Quantity - held, true, nil
}
