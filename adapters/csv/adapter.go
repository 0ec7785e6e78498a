package csv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bridge "github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fsx"
)

// Options configures the adapter. Zero values take the documented defaults.
type Options struct {
	// Path is the catalog: a local file path or an https:// URL.
	Path string
	// Delimiter separates fields: ',' (default), ';' or '\t'.
	Delimiter rune
	// GroupColumn holds the value that groups adjacent rows into one product
	// (default "group_id"). It may equal IDColumn for a shop without variants.
	GroupColumn string
	// IDColumn holds the variant id, unique per row (default "sku").
	IDColumn string
	// StockColumn holds the stock quantity (default "quantity"). When the
	// header lacks it, stock is untracked; when present, each value must be a
	// whole number or empty (untracked for that row).
	StockColumn string
	// OrdersPath is the JSON Lines file paid orders are appended to. Empty
	// means the adapter only reads the catalog; WriteOrder and FindOrder then
	// fail.
	OrdersPath string
	// OrderStatusPath is the shop's order status file, a local CSV that
	// OrderUpdates polls for shipments and cancellations (format: see
	// OrderUpdates). Empty turns it off: OrderUpdates then reports nothing.
	OrderStatusPath string
	// AllowHTTP permits plain http:// catalog URLs (development mode and
	// tests only: a catalog fetched in clear text can be altered in transit,
	// and prices come from it).
	AllowHTTP bool
	// HTTPClient fetches URL catalogs; nil means a client with timeouts.
	HTTPClient *http.Client
	// ReleaseHoldsOnNewerExport lets an order's reservation stop counting
	// against the CSV quantity once a catalog export dated after the order
	// (file modification time, HTTP Last-Modified) has been synced: the shop
	// imports orders before it exports, so the export's quantity already
	// reflects the sale. Off by default, because an export made before the
	// import would otherwise sell the same unit twice; with it off, holds
	// count until released (order canceled) and stock only ever errs low.
	ReleaseHoldsOnNewerExport bool
	// Logger receives warnings (corrupt order lines, repaired files); nil
	// means slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultGroupColumn = "group_id"
	DefaultIDColumn    = "sku"
	DefaultStockColumn = "quantity"
)

// Adapter reads a CSV catalog and keeps orders in a JSON Lines file.
type Adapter struct {
	opts         Options
	url          *url.URL // nil for a local file
	client       *http.Client
	catalog      bridge.CatalogStore
	reservations bridge.ReservationStore
	log          *slog.Logger
	orders       orderLog
	status       statusFile

	noStockLogged atomic.Bool

	mu         sync.Mutex
	sourceTime time.Time // of the last complete ReadCatalog

	// Seams for tests: durability calls and the clock.
	syncFile func(*os.File) error
	syncDir  func(dir string) error
	now      func() time.Time
}

var (
	_ bridge.CatalogSource     = (*Adapter)(nil)
	_ bridge.OrderStore        = (*Adapter)(nil)
	_ bridge.StockReader       = (*Adapter)(nil)
	_ bridge.OrderUpdateSource = (*Adapter)(nil)
)

// New checks opts and returns an adapter. catalog and reservations back Stock
// and WriteOrder; they may be nil for an adapter that only reads the catalog
// (a feed check), and those methods then return an error.
func New(opts Options, catalog bridge.CatalogStore, reservations bridge.ReservationStore) (*Adapter, error) {
	if strings.TrimSpace(opts.Path) == "" {
		return nil, errors.New("csv: catalog path is empty (set a local file path or an https:// URL)")
	}
	switch opts.Delimiter {
	case 0:
		opts.Delimiter = ','
	case ',', ';', '\t':
	default:
		return nil, fmt.Errorf("csv: delimiter %q is not supported (use ',', ';' or tab)", opts.Delimiter)
	}
	opts.GroupColumn = strings.TrimSpace(opts.GroupColumn)
	if opts.GroupColumn == "" {
		opts.GroupColumn = DefaultGroupColumn
	}
	opts.IDColumn = strings.TrimSpace(opts.IDColumn)
	if opts.IDColumn == "" {
		opts.IDColumn = DefaultIDColumn
	}
	opts.StockColumn = strings.TrimSpace(opts.StockColumn)
	if opts.StockColumn == "" {
		opts.StockColumn = DefaultStockColumn
	}
	if opts.StockColumn == opts.GroupColumn || opts.StockColumn == opts.IDColumn {
		return nil, fmt.Errorf("csv: stock column %q is also the group or id column", opts.StockColumn)
	}
	if strings.Contains(opts.OrdersPath, "://") {
		return nil, fmt.Errorf("csv: orders path %q must be a local file path", opts.OrdersPath)
	}
	opts.OrderStatusPath = strings.TrimSpace(opts.OrderStatusPath)
	if sp := opts.OrderStatusPath; sp != "" {
		if strings.Contains(sp, "://") {
			return nil, fmt.Errorf("csv: order status path %q must be a local file path", sp)
		}
		// The orders file is the bridge's own and the catalog has other
		// columns: a status path naming either is a slip in the config.
		for _, other := range []string{opts.OrdersPath, opts.Path} {
			if other != "" && filepath.Clean(sp) == filepath.Clean(other) {
				return nil, fmt.Errorf("csv: order status path %q is also the catalog or orders path; the shop's status file needs its own", sp)
			}
		}
	}
	a := &Adapter{
		opts:         opts,
		catalog:      catalog,
		reservations: reservations,
		log:          opts.Logger,
		syncFile:     (*os.File).Sync,
		syncDir:      fsx.SyncDir,
		now:          time.Now,
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.orders.path = opts.OrdersPath
	a.status.path = opts.OrderStatusPath
	a.status.keys = newKeyer()
	if strings.Contains(opts.Path, "://") {
		u, err := parseCatalogURL(opts.Path, opts.AllowHTTP)
		if err != nil {
			return nil, err
		}
		a.url = u
		a.client = httpClient(opts.HTTPClient, opts.AllowHTTP)
	}
	return a, nil
}

func parseCatalogURL(raw string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error would repeat raw, which may carry a token.
		return nil, errors.New("csv: catalog URL is not a valid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !allowHTTP {
			return nil, fmt.Errorf("csv: catalog URL %s uses plain http; use https:// (plain http is allowed only in development mode)", redact(u))
		}
	default:
		return nil, fmt.Errorf("csv: catalog URL scheme %q is not supported (use https:// or a local file path)", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("csv: catalog URL %s has no host", redact(u))
	}
	return u, nil
}

// httpClient returns a copy of c (or a new client) whose redirects cannot
// downgrade to plain http, so AllowHTTP=false holds even when the server
// redirects.
func httpClient(c *http.Client, allowHTTP bool) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = 15 * time.Second
		// A stalled server is caught here; the body itself may legitimately
		// stream for minutes (a million-row catalog), hence the long total.
		tr.ResponseHeaderTimeout = 60 * time.Second
		out = http.Client{Transport: tr, Timeout: 15 * time.Minute}
	}
	next := out.CheckRedirect
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" && !allowHTTP {
			return fmt.Errorf("redirect to %s refused: not https", redact(req.URL))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &out
}

// redact shows a URL without credentials or query, which often carry tokens
// (signed download links), so it is safe in errors and logs.
func redact(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// source describes the catalog for errors and logs.
func (a *Adapter) source() string {
	if a.url != nil {
		return redact(a.url)
	}
	return a.opts.Path
}

// openCatalog opens the catalog for streaming and tells how current it is:
// the file's modification time, or the response's Last-Modified; zero when
// the server does not say.
func (a *Adapter) openCatalog(ctx context.Context) (io.ReadCloser, time.Time, error) {
	if a.url == nil {
		f, err := os.Open(a.opts.Path)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("csv: open catalog: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, time.Time{}, fmt.Errorf("csv: open catalog: %w", err)
		}
		return f, st.ModTime(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url.String(), nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("csv: catalog request for %s: %w", a.source(), err)
	}
	req.Header.Set("Accept", "text/csv, text/tab-separated-values;q=0.9, text/plain;q=0.8, */*;q=0.5")
	req.Header.Set("User-Agent", "acp-bridge")
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, time.Time{}, ctx.Err()
		}
		// url.Error repeats the full URL, query string included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, time.Time{}, fmt.Errorf("csv: GET %s: %w", a.source(), err)
	}
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		return nil, time.Time{}, fmt.Errorf("csv: GET %s: server answered %s, want 200 OK", a.source(), resp.Status)
	}
	modified, _ := http.ParseTime(resp.Header.Get("Last-Modified")) // zero when absent or malformed
	return resp.Body, modified, nil
}
