package woocommerce

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// Options configures the adapter. Zero values take the documented defaults.
type Options struct {
	// URL is the shop's address (https://shop.example); the API is at
	// URL/wp-json/wc/v3/.
	URL string
	// ConsumerKey and ConsumerSecret are a REST API key (ck_…, cs_…) with
	// read/write access.
	ConsumerKey    string
	ConsumerSecret string
	// QueryStringAuth sends the keys as consumer_key/consumer_secret query
	// parameters instead of Basic auth, for servers whose proxy strips the
	// Authorization header. Still over https only.
	QueryStringAuth bool
	// AllowHTTP permits a plain http shop URL (development mode and tests
	// only: the keys would travel in clear text).
	AllowHTTP bool
	// Currency is the currency the bridge sells in (merchant.currency): a
	// full read checks that the shop's prices are in it. Empty skips the
	// check.
	Currency string
	// FullSyncInterval is how often a catalog read reads every product; the
	// reads in between ask only for products modified since the last one
	// (and those webhooks reported). Default 6h; negative: every read is
	// full.
	FullSyncInterval time.Duration
	// OrderLookback is how far back FindOrder scans the shop's orders for
	// the bridge's order id (default 72h: longer than the outbox's retry
	// horizon).
	OrderLookback time.Duration
	// Concurrency bounds the variation reads running at once during a sync
	// (default 4): a shop's PHP workers serve its buyers too.
	Concurrency int
	// Upstream configures retries, budget, breaker and metrics of the HTTP
	// client; its Name defaults to "woocommerce".
	Upstream upstream.Config
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultFullSyncInterval = 6 * time.Hour
	DefaultOrderLookback    = 72 * time.Hour
	DefaultConcurrency      = 4
)

// Adapter is a WooCommerce shop as the bridge's catalog source, stock
// reader, order store and order update source.
type Adapter struct {
	opts    Options
	c       *client
	catalog VariantFinder
	log     *slog.Logger

	readMu sync.Mutex // one catalog read at a time
	mu     sync.Mutex // guards the fields below
	last   *snapshot  // the last complete catalog read
	dirty  map[int64]bool
	gone   map[int64]bool

	updMu     sync.Mutex
	updCursor time.Time // newest order modification OrderUpdates has seen
}

var (
	_ bridge.CatalogSource     = (*Adapter)(nil)
	_ bridge.DatedSource       = (*Adapter)(nil)
	_ bridge.OrderStore        = (*Adapter)(nil)
	_ bridge.StockReader       = (*Adapter)(nil)
	_ bridge.OrderUpdateSource = (*Adapter)(nil)
)

// VariantFinder finds the snapshot entry of a variant (bridge.CatalogStore
// does): Stock learns a variation's product from it.
type VariantFinder interface {
	CatalogEntryByVariant(ctx context.Context, variantID string) (bridge.CatalogEntry, error)
}

// New checks opts and returns an adapter. catalog backs Stock, which finds
// a variation's product in the snapshot; it may be nil for an adapter that
// only reads the catalog, and Stock then fails.
func New(opts Options, catalog VariantFinder) (*Adapter, error) {
	if opts.FullSyncInterval == 0 {
		opts.FullSyncInterval = DefaultFullSyncInterval
	}
	if opts.OrderLookback <= 0 {
		opts.OrderLookback = DefaultOrderLookback
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Upstream.Logger == nil {
		opts.Upstream.Logger = opts.Logger
	}
	c, err := newClient(opts.URL, opts.ConsumerKey, opts.ConsumerSecret, opts.QueryStringAuth, opts.AllowHTTP, opts.Upstream)
	if err != nil {
		return nil, err
	}
	return &Adapter{opts: opts, c: c, catalog: catalog, log: opts.Logger.With("store", "woocommerce"),
		dirty: map[int64]bool{}, gone: map[int64]bool{}}, nil
}

// BreakerState is the state of the client's circuit breaker.
func (a *Adapter) BreakerState() string { return a.c.up.BreakerState() }

// errNoStorage: Stock needs the snapshot and the holds.
var errNoStorage = errors.New("woocommerce: cannot read stock: no catalog or reservation store")

func (a *Adapter) now() time.Time { return a.opts.Now() }

// idString formats a WooCommerce id for paths, queries and records.
func idString(id int64) string { return strconv.FormatInt(id, 10) }
