package csv

import (
	"context"
	"errors"
	"fmt"

	bridge "github.com/acp-bridge/bridge"
)

// Stock reports variantID's quantity in the last catalog snapshot. The CSV
// file is only as fresh as its last export, so it includes none of the
// bridge's orders the shop imported after it: every hold counts against it
// (HoldsSince zero), and the holds are what keeps two buyers from getting
// the last unit. With ReleaseHoldsOnNewerExport, orders older than the
// snapshot's export (CatalogInfo.SourceTime) are taken to be in the
// export's quantity already (HoldsSince is the export's time, unless it is
// unknown).
//
// Tracked is false when the snapshot has no quantity for the variant. An
// unknown variant is an error wrapping bridge.ErrNotFound.
func (a *Adapter) Stock(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	if a.catalog == nil {
		return bridge.StockLevel{}, errors.New("csv: cannot read stock: no catalog store")
	}
	if !a.opts.ReleaseHoldsOnNewerExport {
		return a.quantity(ctx, variantID)
	}
	// The quantity and the export's time must come from one snapshot: an
	// old quantity with a newer export's time would leave the holds made
	// between the two exports counted nowhere. A sync committing between
	// the reads shows as a changed version: read again.
	for range 3 {
		before, err := a.catalog.CatalogInfo(ctx)
		if err != nil {
			return bridge.StockLevel{}, fmt.Errorf("csv: stock of variant %q: snapshot: %w", variantID, err)
		}
		level, err := a.quantity(ctx, variantID)
		if err != nil || !level.Tracked {
			return level, err
		}
		after, err := a.catalog.CatalogInfo(ctx)
		if err != nil {
			return bridge.StockLevel{}, fmt.Errorf("csv: stock of variant %q: snapshot: %w", variantID, err)
		}
		if after.Version == before.Version {
			level.HoldsSince = after.SourceTime
			return level, nil
		}
	}
	return bridge.StockLevel{}, fmt.Errorf("csv: stock of variant %q: the catalog snapshot keeps changing while it is read", variantID)
}

// quantity is variantID's quantity in the current snapshot.
func (a *Adapter) quantity(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	e, err := a.catalog.CatalogEntryByVariant(ctx, variantID)
	if err != nil {
		return bridge.StockLevel{}, fmt.Errorf("csv: stock of variant %q: %w", variantID, err)
	}
	for _, v := range e.Product.Variants {
		if v.ID != variantID {
			continue
		}
		if v.Quantity == nil {
			return bridge.StockLevel{}, nil
		}
		return bridge.StockLevel{Tracked: true, OnHand: *v.Quantity}, nil
	}
	return bridge.StockLevel{}, fmt.Errorf("csv: stock of variant %q: snapshot entry %q does not list it: %w", variantID, e.Product.ID, bridge.ErrNotFound)
}
