package csv

import (
	"context"
	"errors"
	"fmt"
	"time"

	bridge "github.com/acp-bridge/bridge"
)

// Stock reports how many units of variantID can still be sold: the quantity
// of the last catalog snapshot minus what orders hold in the reservation
// store. The CSV file is only as fresh as its last export, so the
// reservations are what keeps two buyers from getting the last unit. With
// ReleaseHoldsOnNewerExport, orders older than the snapshot's export
// (CatalogInfo.SourceTime) are taken to be in the export's quantity already
// and no longer count (unless the export's date is unknown).
//
// available is the true difference and may be negative: when a new export
// still shows stock that orders have since taken, the shop is oversold, and
// hiding that behind a zero would hide it from the admin too. tracked is false
// (and available 0) when the snapshot has no quantity for the variant. An
// unknown variant is an error wrapping bridge.ErrNotFound.
func (a *Adapter) Stock(ctx context.Context, variantID string) (available int64, tracked bool, err error) {
	if a.catalog == nil || a.reservations == nil {
		return 0, false, errors.New("csv: cannot read stock: no catalog or reservation store")
	}
	e, err := a.catalog.CatalogEntryByVariant(ctx, variantID)
	if err != nil {
		return 0, false, fmt.Errorf("csv: stock of variant %q: %w", variantID, err)
	}
	for _, v := range e.Product.Variants {
		if v.ID != variantID {
			continue
		}
		if v.Quantity == nil {
			return 0, false, nil
		}
		var since time.Time
		if a.opts.ReleaseHoldsOnNewerExport {
			info, err := a.catalog.CatalogInfo(ctx)
			if err != nil {
				return 0, false, fmt.Errorf("csv: stock of variant %q: snapshot: %w", variantID, err)
			}
			since = info.SourceTime
		}
		held, err := a.reservations.Reserved(ctx, variantID, since)
		if err != nil {
			return 0, false, fmt.Errorf("csv: stock of variant %q: reservations: %w", variantID, err)
		}
		return *v.Quantity - held, true, nil
	}
	return 0, false, fmt.Errorf("csv: stock of variant %q: snapshot entry %q does not list it: %w", variantID, e.Product.ID, bridge.ErrNotFound)
}
