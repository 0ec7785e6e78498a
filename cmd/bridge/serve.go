package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/adapters/shopify"
	"github.com/acp-bridge/bridge/adapters/woocommerce"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/acp-bridge/bridge/httpapi"
	"github.com/acp-bridge/bridge/internal/fsx"
	"github.com/acp-bridge/bridge/orders"
	"github.com/acp-bridge/bridge/storage/postgres"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	// Catch SIGHUP from the start: its default action ends the process, and
	// an admin may send it while a long first render runs. One pending
	// request is kept and served once syncs run.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fs, cfgPath := newFlags("serve", stderr)
	a, err := openApp(ctx, fs, cfgPath, args, stderr, true)
	if err != nil {
		return err
	}
	defer a.close()
	cfg := a.cfg
	log := a.log

	reg := a.reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	catalogGauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bridge_catalog_items", Help: "Items in the current catalog snapshot by kind (products, variants, valid_variants, excluded, skipped_rows).",
	}, []string{"kind"})
	reg.MustRegister(catalogGauge)

	target := &catalog.Feeds{Dir: cfg.Feed.Dir, Formats: a.formats, Settings: a.settings}
	feeds := httpapi.NewFeedFiles(cfg.Feed.Dir, 15*time.Minute, target.Files())
	// published runs once a snapshot's feeds are in place: serve them and
	// export the snapshot's counts.
	published := func(_ context.Context, info bridge.CatalogInfo) error {
		for k, v := range map[string]int{"products": info.Products, "variants": info.Variants, "valid_variants": info.ValidVariants, "excluded": info.Excluded, "skipped_rows": info.ProblemCount} {
			catalogGauge.WithLabelValues(k).Set(float64(v))
		}
		return feeds.Refresh()
	}
	pushes, err := a.newPushRunner(reg)
	if err != nil {
		return reportAssembly(err, stderr)
	}
	// A new snapshot also goes to the push targets that follow changes
	// (the Feed API, within feed.push.feed_api.delay).
	synced := func(ctx context.Context, info bridge.CatalogInfo) error {
		err := published(ctx, info)
		pushes.Changed()
		return err
	}
	syncer := &catalog.Syncer{Pipeline: a.pipeline(time.Now()), Store: a.storage, Feeds: target, OnSnapshot: synced, Logger: log,
		MaxShrinkPercent: *cfg.Feed.MaxShrinkPercent}
	if l, ok := a.storage.(syncLocker); ok && cfg.Storage.Driver == "postgres" {
		// Replicas share the database: one reads the store at a time, the
		// others serve its snapshot. (SQLite has a TryLock too, which keeps
		// serve and the CLI apart; one process serves it, nothing to share.)
		syncer.Lock = func(ctx context.Context) (func(), bool, error) { return l.TryLock(ctx, "catalog-sync") }
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bridge_catalog_last_sync_success_timestamp_seconds", Help: "Unix time of the last successful catalog sync.",
	}, func() float64 {
		if t := syncer.Status().LastSuccess; !t.IsZero() {
			return float64(t.Unix())
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "bridge_catalog_last_sync_failed", Help: "1 when the latest catalog sync failed (the previous snapshot is served), else 0.",
	}, func() float64 {
		if syncer.Status().LastError != "" {
			return 1
		}
		return 0
	}))

	// One bridge per feed folder: a replica renders its feeds from the
	// shared snapshot and clears leftover temp files first, which would
	// be another live bridge's build in a shared folder.
	if err := os.MkdirAll(cfg.Feed.Dir, 0o755); err != nil {
		return fmt.Errorf("feed.dir: %w", err)
	}
	unlockFeeds, err := fsx.LockExclusive(filepath.Join(cfg.Feed.Dir, ".serve.lock"))
	if errors.Is(err, fsx.ErrLocked) {
		return fmt.Errorf("feed.dir %s is in use by another bridge process: give each bridge a feed.dir of its own", cfg.Feed.Dir)
	}
	if err != nil {
		return fmt.Errorf("feed.dir lock: %w", err)
	}
	defer unlockFeeds()

	// Serve the last good snapshot's feeds right away (rendering them from
	// storage if the files do not match it); the first sync runs in the
	// background.
	start := time.Now()
	if info, rendered, err := target.RenderStored(ctx, a.storage); err == nil {
		if rendered {
			log.Info("feeds rendered from the stored snapshot", "version", info.Version, "duration", time.Since(start).Round(time.Millisecond))
		}
		if err := published(ctx, info); err != nil {
			log.Error("serving the stored snapshot's feeds failed; waiting for the next sync", "err", err)
		} else {
			syncer.Published(info.Version)
		}
	} else if !errors.Is(err, bridge.ErrNotFound) {
		log.Error("rendering the stored snapshot's feeds failed; waiting for the next sync", "err", err)
	}

	if cfg.Store.Adapter == "csv" && cfg.Store.CSV.OrdersPath != "" {
		// Like the SQLite file's, the orders file's folder is made at
		// start (with PostgreSQL nothing else makes data/); an order write
		// never makes one, so a share that goes away while the bridge runs
		// fails the writes rather than filling a local folder the shop
		// never reads. A folder that cannot be made is the store being
		// down: orders wait in the outbox, the bridge still serves.
		if err := os.MkdirAll(filepath.Dir(cfg.Store.CSV.OrdersPath), 0o755); err != nil {
			log.Error("csv store: cannot make the orders file's folder; orders wait in the outbox until it can be written",
				"path", cfg.Store.CSV.OrdersPath, "err", err)
		}
	}

	co, err := a.newCheckout()
	if err != nil {
		return err
	}
	if l, ok := a.storage.(interface{ ServeLock() (func(), error) }); ok {
		// One process per SQLite file: refuse to start beside another,
		// whose running work the release below would take away. Then
		// requests of a process that died are not running, so their
		// retries may go on at once. (With Postgres, replicas share the
		// database: a payment another replica runs is left to its lease.)
		unlock, err := l.ServeLock()
		if err != nil {
			return err
		}
		defer unlock()
		co.engine.Started = time.Now().UTC()
	}
	if r, ok := a.storage.(interface {
		ReleaseClaims(ctx context.Context) (int64, error)
	}); ok {
		if n, err := r.ReleaseClaims(ctx); err != nil {
			log.Error("releasing the claims of the previous process", "err", err)
		} else if n > 0 {
			log.Warn("requests of the previous process were cut short; their retries resume them", "claims", n)
		}
	}
	ords, err := a.newOrders(co.payments, reg)
	if err != nil {
		return err
	}
	co.engine.Orders = ords
	if co.stripeHooks != nil {
		co.stripeHooks.Orders = ords
	}
	if co.keys.Len() == 0 {
		log.Warn("acp.api_keys is empty: the checkout API refuses every request until a key is configured")
	}
	var pushStatus httpapi.PushStatus // /readyz lists push targets only when there are some
	if len(pushes.Targets) > 0 {
		pushStatus = pushes
	}
	handler := httpapi.New(httpapi.Config{
		Logger: log, Registry: reg, Storage: a.storage, Catalog: a.storage, Sync: syncer, Pushes: pushStatus, Feeds: feeds,
		Checkout: co.api, MCP: co.mcp, StripeWebhooks: co.stripeHooks, StoreWebhooks: a.storeWebhooks(syncer, ords),
		Orders: co.engine.Store, MerchantName: cfg.Merchant.Name, MaxBodyBytes: cfg.Server.MaxBodyBytes,
	})
	// Requests still running after Shutdown gave up (a complete waits up
	// to half the claim lease on the payment, then on the store) must
	// record their outcome before storage closes.
	inflight := &inflightCounter{}
	srv := &http.Server{
		Handler:           inflight.wrap(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // big feed downloads
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	syncDone := make(chan struct{})
	go func() {
		defer close(syncDone)
		syncer.Run(runCtx, cfg.Feed.Refresh)
	}()
	pushDone := make(chan struct{})
	go func() {
		defer close(pushDone)
		pushes.Run(runCtx)
	}()
	purgeDone := make(chan struct{})
	go func() {
		defer close(purgeDone)
		purgeLoop(runCtx, co.engine.Store, 7*24*time.Hour, log)
	}()
	ordersDone := make(chan struct{})
	go func() {
		defer close(ordersDone)
		_ = ords.Run(runCtx)
	}()
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		if src, ok := a.source.(bridge.OrderUpdateSource); ok && pollsOrders(cfg) {
			ords.Poll(runCtx, src, cfg.Orders.PollInterval)
		}
	}()
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: catalog sync requested")
				syncer.Trigger()
				reloadKeys(cfg.File, co.keys, log)
			case <-runCtx.Done():
				return
			}
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("bridge serving", "version", version, "mode", cfg.Mode, "listen", ln.Addr().String(), "public_url", cfg.Server.PublicURL,
		"store", cfg.Store.Adapter, "storage", cfg.Storage.Driver)

	var serveErr error
	select {
	case serveErr = <-errc:
		log.Error("http server failed; stopping", "err", serveErr)
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout)
	}
	cancel() // stops the sync loop; a running sync rolls back
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("requests did not finish in time; closing their connections", "err", err)
		_ = srv.Close()
		if serveErr == nil {
			serveErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	if !inflight.wait(time.Minute) {
		log.Error("requests still running a minute after shutdown; closing storage under them")
	}
	<-purgeDone // a purge batch is short; storage must outlive it
	// A push records its outcome before storage closes; a cancelled
	// upload stops at once, so this is short.
	select {
	case <-pushDone:
	case <-time.After(cfg.Server.ShutdownTimeout):
		log.Error("a feed push did not stop within the shutdown timeout")
	}
	// Jobs running now, and store writes the last completes left in the
	// background, record their outcome before storage closes.
	<-ordersDone
	<-pollDone
	ords.Wait()
	// Storage closes (deferred) only after the sync has let go of it; the
	// sync gets its own grace period, whatever the requests took.
	select {
	case <-syncDone:
	case <-time.After(cfg.Server.ShutdownTimeout):
		log.Error("the catalog sync did not stop within the shutdown timeout; its transaction will roll back")
		if serveErr == nil {
			serveErr = errors.New("the catalog sync did not stop in time")
		}
	}
	if serveErr != nil {
		return fmt.Errorf("http server: %w", serveErr)
	}
	log.Info("stopped")
	return nil
}

// syncLocker is storage shared by replicas (Postgres), whose catalog syncs
// take turns.
type syncLocker interface {
	TryLock(ctx context.Context, name string) (func(), bool, error)
}

var _ syncLocker = (*postgres.DB)(nil)

// inflightCounter counts running HTTP handlers. http.Server.Close does not
// wait for them, and storage must outlive them.
type inflightCounter struct{ n atomic.Int64 }

func (c *inflightCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		defer c.n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// wait polls until no handler runs or max passes; it reports whether they
// all ended. Polling, not a WaitGroup: a handler may still start on a
// connection accepted just before the listener closed.
func (c *inflightCounter) wait(max time.Duration) bool {
	deadline := time.Now().Add(max)
	for c.n.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// storeWebhooks are the store's webhook receivers, by name
// (/webhooks/<name>): the adapter's, when a secret to check them is
// configured; none otherwise (the bridge then polls).
func (a *app) storeWebhooks(syncer *catalog.Syncer, ords *orders.Service) map[string]http.Handler {
	switch ad := a.source.(type) {
	case *woocommerce.Adapter:
		if secret := a.cfg.Store.WooCommerce.WebhookSecret; secret != "" {
			return map[string]http.Handler{"woocommerce": &woocommerce.Webhooks{Secret: secret.Value(), Adapter: ad, Events: a.storage,
				Refresh: syncer.Trigger, Orders: ords, Log: a.log}}
		}
	case *shopify.Adapter:
		if secret := a.cfg.Store.Shopify.WebhookSecret.Value(); secret != "" {
			return map[string]http.Handler{"shopify": &shopify.Webhooks{Secret: secret, Adapter: ad, Events: a.storage, Catalog: syncer, Orders: ords, Log: a.log}}
		}
	}
	return nil
}
