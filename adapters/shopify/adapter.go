package shopify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// DefaultAPIVersion is the Admin API version used when none is configured.
const DefaultAPIVersion = "2026-10"

// Bulk modes (Options.Bulk).
const (
	BulkAuto   = "auto"   // the first full read, and catalogs above BulkThreshold
	BulkAlways = "always" // every full read
	BulkNever  = "never"  // always page
)

// Options configures the adapter. Zero values take the documented defaults.
type Options struct {
	// Shop is the shop's domain (my-shop.myshopify.com) or base URL.
	// Plain http is refused unless AllowHTTP (tests, development).
	Shop       string
	APIVersion string
	// AccessToken is a static Admin API token (shpat_…). Without it,
	// ClientID and ClientSecret get tokens by the client-credentials
	// grant, renewed before their 24 hours run out.
	AccessToken            string
	ClientID, ClientSecret string
	// Locations restricts stock to these locations (gids or numeric ids):
	// a variant's quantity is the sum of what is available there. Empty
	// means every location (the variant's inventoryQuantity).
	Locations []string
	// Bulk chooses when a full read uses a bulk operation (default auto);
	// BulkThreshold is the variant count above which auto does (default
	// 2000).
	Bulk          string
	BulkThreshold int
	// FullReadEvery is how often a sync reads the whole catalog; the syncs
	// between read only products updated since (default 6h).
	FullReadEvery time.Duration
	// StorefrontURL is where product pages live: <storefront>/products/
	// <handle>, variants ?variant=<id>. Empty takes the product's
	// onlineStoreUrl (the shop's primary domain), or https://<shop> for a
	// product not published to the online store.
	StorefrontURL string
	// StatusPagePermalink makes the order's Shopify status page its
	// permalink_url once the order is written.
	StatusPagePermalink bool
	AllowHTTP           bool
	// Upstream is the resilient client for Shopify (one is made when nil).
	Upstream *upstream.Client
	Logger   *slog.Logger
	// BulkPoll is how often a running bulk operation is polled (default
	// 2s); BulkTimeout bounds its wait (default 30 minutes).
	BulkPoll, BulkTimeout time.Duration
	// LookupWait is how long WriteOrder looks for an order whose create
	// had no answer (the search index lags), default 5s.
	LookupWait time.Duration
}

// Adapter is the Shopify store adapter. It is safe for concurrent use.
type Adapter struct {
	opts Options
	gql  *client
	base *url.URL
	// domain is the shop's myshopify domain when Options.Shop was given
	// as one (lower case), else "": webhooks must come from it.
	domain string
	front  string // StorefrontURL without a trailing slash, or ""
	log    *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error
	locIDs []string // location gids
	// maxBulkLine bounds a bulk result's line (maxBulkLine; tests lower it).
	maxBulkLine int

	// readMu serializes catalog reads; mu guards the cached catalog and the
	// marks webhooks leave.
	readMu     sync.Mutex
	mu         sync.Mutex
	cache      *catalogCache
	dirty      map[string]bool // product gids to read again
	dirtyItems map[string]bool // inventory item gids whose product to read again
	sourceTime time.Time

	pollMu    sync.Mutex
	pollSince time.Time // the latest order updatedAt seen, by Shopify's clock

	// unsure holds the orders whose create got no answer, with when: until
	// unsureFor has passed, FindOrder does not call them missing.
	unsureMu sync.Mutex
	unsure   map[string]time.Time
}

var (
	_ bridge.CatalogSource     = (*Adapter)(nil)
	_ bridge.DatedSource       = (*Adapter)(nil)
	_ bridge.OrderStore        = (*Adapter)(nil)
	_ bridge.StockReader       = (*Adapter)(nil)
	_ bridge.OrderStockCounter = (*Adapter)(nil)
	_ bridge.OrderUpdateSource = (*Adapter)(nil)
)

var (
	versionRe = regexp.MustCompile(`^20[0-9]{2}-(01|04|07|10)$|^unstable$`)
	shopRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.myshopify\.com$`)
)

// shopURL turns the configured shop (a *.myshopify.com domain or a base
// URL) into the API's base URL.
func shopURL(shop string, allowHTTP bool) (*url.URL, error) {
	shop = strings.TrimSpace(shop)
	if shop == "" {
		return nil, errors.New("the shop is empty (set my-shop.myshopify.com)")
	}
	if !strings.Contains(shop, "://") {
		if !shopRe.MatchString(strings.ToLower(shop)) {
			return nil, fmt.Errorf("%q is not a shop domain like my-shop.myshopify.com (or a https:// URL)", shop)
		}
		shop = "https://" + strings.ToLower(shop)
	}
	u, err := url.Parse(shop)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("%q is not a shop URL", shop)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return nil, fmt.Errorf("%s uses plain http; the Admin API needs https (plain http only in development mode)", u.Host)
		}
	default:
		return nil, fmt.Errorf("shop URL scheme %q is not https", u.Scheme)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// New checks opts and returns an adapter. It makes no call to Shopify.
func New(opts Options) (*Adapter, error) {
	base, err := shopURL(opts.Shop, opts.AllowHTTP)
	if err != nil {
		return nil, fmt.Errorf("shopify: %w", err)
	}
	if opts.APIVersion == "" {
		opts.APIVersion = DefaultAPIVersion
	}
	if !versionRe.MatchString(opts.APIVersion) {
		return nil, fmt.Errorf("shopify: API version %q is not a release like %s", opts.APIVersion, DefaultAPIVersion)
	}
	switch {
	case opts.AccessToken != "" && opts.ClientID != "":
		return nil, errors.New("shopify: set either an access token or a client id and secret, not both")
	case opts.AccessToken == "" && (opts.ClientID == "" || opts.ClientSecret == ""):
		return nil, errors.New("shopify: no credentials: set an access token, or a client id and client secret")
	}
	switch opts.Bulk {
	case "":
		opts.Bulk = BulkAuto
	case BulkAuto, BulkAlways, BulkNever:
	default:
		return nil, fmt.Errorf("shopify: bulk %q is not one of auto, always, never", opts.Bulk)
	}
	if opts.BulkThreshold <= 0 {
		opts.BulkThreshold = 2000
	}
	if opts.FullReadEvery <= 0 {
		opts.FullReadEvery = 6 * time.Hour
	}
	if opts.BulkPoll <= 0 {
		opts.BulkPoll = 2 * time.Second
	}
	if opts.BulkTimeout <= 0 {
		opts.BulkTimeout = 30 * time.Minute
	}
	if opts.LookupWait <= 0 {
		opts.LookupWait = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	up := opts.Upstream
	if up == nil {
		up = upstream.New(upstream.Config{Name: "shopify", Logger: log})
	}
	a := &Adapter{opts: opts, base: base, front: strings.TrimSuffix(opts.StorefrontURL, "/"), log: log, sleep: sleepCtx,
		dirty: map[string]bool{}, dirtyItems: map[string]bool{}, unsure: map[string]time.Time{},
		maxBulkLine: maxBulkLine}
	if shop := strings.TrimSpace(opts.Shop); !strings.Contains(shop, "://") {
		a.domain = strings.ToLower(shop)
	}
	for _, l := range opts.Locations {
		g, err := toGID("Location", l)
		if err != nil {
			return nil, fmt.Errorf("shopify: location: %w", err)
		}
		a.locIDs = append(a.locIDs, g)
	}
	a.gql = &client{
		endpoint: base.String() + "/admin/api/" + opts.APIVersion + "/graphql.json",
		version:  opts.APIVersion, up: up, log: log, sleep: func(ctx context.Context, d time.Duration) error { return a.sleep(ctx, d) },
		warned: map[string]bool{}, lastCost: map[string]int{}, maxThrottle: 20,
		tokens: &tokens{static: opts.AccessToken, clientID: opts.ClientID, secret: opts.ClientSecret,
			tokenURL: base.String() + "/admin/oauth/access_token", up: up},
	}
	return a, nil
}

// toGID turns a numeric id or a gid of kind into the gid.
func toGID(kind, id string) (string, error) {
	id = strings.TrimSpace(id)
	prefix := "gid://shopify/" + kind + "/"
	n := strings.TrimPrefix(id, prefix)
	if n == "" || strings.TrimLeft(n, "0123456789") != "" {
		return "", fmt.Errorf("%q is not a %s id (a number or %s<number>)", id, kind, prefix)
	}
	return prefix + n, nil
}

// legacyID is the number at the end of a gid.
func legacyID(gid string) string {
	if i := strings.LastIndexByte(gid, '/'); i >= 0 {
		gid = gid[i+1:]
	}
	if i := strings.IndexByte(gid, '?'); i >= 0 {
		gid = gid[:i]
	}
	return gid
}

// CountsWrittenOrders: Shopify takes an order's units from its stock when
// orderCreate creates it (inventoryBehaviour DECREMENT_OBEYING_POLICY), so
// the bridge's hold ends with the write.
func (a *Adapter) CountsWrittenOrders() bool { return true }

// SourceTime is when the last completed catalog read started: the data
// is at least that current.
func (a *Adapter) SourceTime() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sourceTime
}
