package shopify

import (
	"time"

	"github.com/acp-bridge/bridge"
)

var _ bridge.LaggingOrderStore = (*Adapter)(nil)

// LookupLag is how long an order Shopify created may stay out of the order
// search FindOrder uses (the search index lags behind writes): after a
// write was started, the orders service trusts "not found" only once it
// has passed.
func (a *Adapter) LookupLag() time.Duration { return 2 * time.Minute }
