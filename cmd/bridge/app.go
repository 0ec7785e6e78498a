package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/acp-bridge/bridge"
	csvstore "github.com/acp-bridge/bridge/adapters/csv"
	"github.com/acp-bridge/bridge/adapters/shopify"
	"github.com/acp-bridge/bridge/adapters/woocommerce"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/acp-bridge/bridge/config"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/mapping"
	"github.com/acp-bridge/bridge/storage/postgres"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// app is the bridge assembled from a config: the pieces every command shares.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	storage  bridge.Storage // nil for commands that only read the store
	source   bridge.CatalogSource
	mapping  *mapping.Mapping
	settings feed.Settings
	formats  []feed.Format
	// reg receives the metrics of everything the app builds (the store
	// adapter's HTTP client among them); serve exports it.
	reg *prometheus.Registry
}

// loadConfig loads the config, printing every problem on its own line.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path)
	var ce *config.Error
	if errors.As(err, &ce) && cfg != nil {
		// Value problems: report the mapping's and the formats' too, so
		// the admin fixes the file in one pass.
		printProblems(stderr, append(ce.Problems, moreProblems(cfg)...))
		return nil, exitError{1}
	}
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			printProblems(stderr, ce.Problems)
			return nil, exitError{1}
		}
		return nil, err
	}
	return cfg, nil
}

func printProblems(w io.Writer, ps bridge.Problems) {
	for _, p := range ps {
		fmt.Fprintln(w, p.String())
	}
	fmt.Fprintf(w, "%d problem(s)\n", len(ps))
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newApp assembles the bridge. withStorage opens the database; commands that
// only read the store (feed build, validate, preview) leave it closed so they
// run beside a live server without touching its data.
func newApp(ctx context.Context, cfg *config.Config, logOut io.Writer, withStorage bool) (*app, error) {
	a := &app{cfg: cfg, log: newLogger(cfg, logOut), reg: prometheus.NewRegistry()}
	m := cfg.Merchant
	a.settings = feed.Settings{
		Merchant: bridge.Merchant{Name: m.Name, URL: m.URL, Currency: m.Currency, Country: m.Country,
			PrivacyPolicyURL: m.PrivacyPolicyURL, TermsURL: m.TermsURL, ReturnPolicyURL: m.ReturnPolicyURL, ReturnWindowDays: m.ReturnWindowDays},
		TargetCountries: cfg.Feed.TargetCountries,
		FeedID:          cfg.Feed.FeedID,
	}
	formats, ps := feedFormats(cfg)
	if len(ps) > 0 {
		return nil, ps
	}
	a.formats = formats

	if withStorage {
		st, err := openStorage(ctx, cfg)
		if err != nil {
			return nil, err
		}
		a.storage = st
	}
	src, defaultMapping, err := a.newSource()
	if err != nil {
		a.close()
		return nil, err
	}
	a.source = src
	mp, err := compileMapping(cfg, defaultMapping)
	if err != nil {
		a.close()
		return nil, err
	}
	a.mapping = mp
	return a, nil
}

func (a *app) close() {
	if a.storage != nil {
		_ = a.storage.Close()
	}
}

func openStorage(ctx context.Context, cfg *config.Config) (bridge.Storage, error) {
	switch cfg.Storage.Driver {
	case "sqlite":
		db, err := sqlite.Open(ctx, cfg.Storage.DSN.Value())
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		return db, nil
	case "postgres":
		// Connects, and migrates the schema under an advisory lock: a
		// replica starting beside others waits for whichever migrates.
		db, err := postgres.OpenConfig(ctx, postgres.Config{DSN: cfg.Storage.DSN.Value(),
			StatementTimeout: cfg.Storage.StatementTimeout, MaxConns: cfg.Storage.MaxConns})
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		return db, nil
	}
	return nil, fmt.Errorf("storage driver %q is not available", cfg.Storage.Driver)
}

// newSource builds the store adapter and returns its default mapping.
func (a *app) newSource() (bridge.CatalogSource, string, error) {
	switch a.cfg.Store.Adapter {
	case "csv":
		opts := csvOptions(a.cfg)
		opts.Logger = a.log
		var cat bridge.CatalogStore
		var res bridge.ReservationStore
		if a.storage != nil {
			cat, res = a.storage, a.storage
		}
		ad, err := csvstore.New(opts, cat, res)
		if err != nil {
			return nil, "", fmt.Errorf("csv store: %w", err)
		}
		return ad, csvstore.DefaultMapping(opts), nil
	case "woocommerce":
		w := a.cfg.Store.WooCommerce
		opts := woocommerce.Options{URL: w.URL, ConsumerKey: w.ConsumerKey.Value(), ConsumerSecret: w.ConsumerSecret.Value(),
			QueryStringAuth: w.Auth == "query_string", AllowHTTP: !a.cfg.Production(), FullSyncInterval: w.FullSyncInterval,
			Currency: a.cfg.Merchant.Currency,
			// A store write is retried for retry_horizon; its order may be
			// that old when it is looked up.
			OrderLookback: max(a.cfg.Orders.RetryHorizon+48*time.Hour, woocommerce.DefaultOrderLookback),
			Logger:        a.log, Upstream: upstream.Config{Name: "woocommerce", Logger: a.log, Registerer: a.reg}}
		// A nil storage (feed build, check) leaves Stock unavailable; the
		// catalog reads need none.
		var cat woocommerce.VariantFinder
		if a.storage != nil {
			cat = a.storage
		}
		ad, err := woocommerce.New(opts, cat)
		if err != nil {
			return nil, "", fmt.Errorf("store.woocommerce: %w", err)
		}
		return ad, woocommerce.DefaultMapping, nil
	case "shopify":
		opts := shopifyOptions(a.cfg)
		opts.Logger = a.log
		opts.Upstream = upstream.New(upstream.Config{Name: "shopify", Logger: a.log, Registerer: a.reg})
		ad, err := shopify.New(opts)
		if err != nil {
			return nil, "", fmt.Errorf("shopify store: %w", err)
		}
		return ad, shopify.DefaultMapping(), nil
	}
	return nil, "", fmt.Errorf("store adapter %q is not available", a.cfg.Store.Adapter)
}

// moreProblems finds the problems newApp would stop at (unknown formats, the
// mapping) on a config whose values have problems of their own.
func moreProblems(cfg *config.Config) bridge.Problems {
	_, ps := feedFormats(cfg)
	def := ""
	switch cfg.Store.Adapter {
	case "csv":
		def = csvstore.DefaultMapping(csvOptions(cfg))
	case "woocommerce":
		def = woocommerce.DefaultMapping
	case "shopify":
		def = shopify.DefaultMapping()
	}
	if def != "" {
		var mps bridge.Problems
		if _, err := compileMapping(cfg, def); errors.As(err, &mps) {
			ps = append(ps, mps...)
		}
	}
	return ps
}

// shopifyOptions is the Shopify adapter's configuration from the config
// file.
func shopifyOptions(cfg *config.Config) shopify.Options {
	c := cfg.Store.Shopify
	return shopify.Options{
		Shop:                c.Shop,
		APIVersion:          c.APIVersion,
		AccessToken:         c.AccessToken.Value(),
		ClientID:            c.ClientID,
		ClientSecret:        c.ClientSecret.Value(),
		Locations:           c.Locations,
		Bulk:                c.Bulk,
		BulkThreshold:       c.BulkThreshold,
		FullReadEvery:       c.FullSyncInterval,
		StorefrontURL:       c.StorefrontURL,
		StatusPagePermalink: c.StatusPagePermalink,
		AllowHTTP:           !cfg.Production(),
	}
}

// csvOptions is the CSV adapter's configuration from the config file. It
// tolerates a config whose values have problems (moreProblems uses it).
func csvOptions(cfg *config.Config) csvstore.Options {
	c := cfg.Store.CSV
	var delim rune
	if d := []rune(c.Delimiter); len(d) == 1 {
		delim = d[0]
	}
	return csvstore.Options{
		Path:                      c.Path,
		Delimiter:                 delim,
		GroupColumn:               c.GroupColumn,
		IDColumn:                  c.IDColumn,
		StockColumn:               c.StockColumn,
		OrdersPath:                c.OrdersPath,
		OrderStatusPath:           c.OrderStatusPath,
		ReleaseHoldsOnNewerExport: c.Holds == "release_on_newer_export",
		AllowHTTP:                 !cfg.Production(),
	}
}

// compileMapping layers the admin's overrides over the adapter's default.
func compileMapping(cfg *config.Config, defaultMapping string) (*mapping.Mapping, error) {
	var def yaml.Node
	if err := yaml.Unmarshal([]byte(defaultMapping), &def); err != nil {
		return nil, fmt.Errorf("adapter default mapping: %w", err)
	}
	m := cfg.Merchant
	return mapping.Compile(mapping.MerchantFields{Name: m.Name, URL: m.URL, Currency: m.Currency, Country: m.Country},
		mapping.Source{File: cfg.Store.Adapter + " adapter default mapping", Node: &def, Builtin: true},
		mapping.Source{File: cfg.File, Node: &cfg.Mapping})
}

// feedFormats resolves feed.formats (all formats when empty).
// feed.push.sftp.formats is checked by the config itself (the formats the
// drop takes), so every command reports it once.
func feedFormats(cfg *config.Config) ([]feed.Format, bridge.Problems) {
	if len(cfg.Feed.Formats) == 0 {
		return feed.Formats(), nil
	}
	return resolveFormats(cfg, "feed.formats", cfg.Feed.Formats)
}

// resolveFormats looks up the format names of the list at key.
func resolveFormats(cfg *config.Config, key string, names []string) ([]feed.Format, bridge.Problems) {
	var out []feed.Format
	var ps bridge.Problems
	for i, name := range names {
		f, ok := lookupFormat(name)
		if !ok {
			path := fmt.Sprintf("%s.%d", key, i)
			ps = append(ps, bridge.Problem{File: cfg.File, Line: cfg.Line(path), Key: path, Message: fmt.Sprintf("unknown format %q (formats: %s)", name, formatNames())})
			continue
		}
		out = append(out, f)
	}
	return out, ps
}

func lookupFormat(name string) (feed.Format, bool) {
	for _, f := range feed.Formats() {
		if string(f) == name {
			return f, true
		}
	}
	return "", false
}

func formatNames() string {
	var s string
	for i, f := range feed.Formats() {
		if i > 0 {
			s += ", "
		}
		s += string(f)
	}
	return s
}

// settingsAt returns the feed settings as of t: "now" for the rules about
// future dates, and the time stamped into feeds.
func (a *app) settingsAt(t time.Time) feed.Settings {
	s := a.settings
	s.GeneratedAt = t.UTC()
	return s
}

// pipeline validates as of t; the Syncer sets its own time on every run.
func (a *app) pipeline(t time.Time) *catalog.Pipeline {
	return &catalog.Pipeline{Source: a.source, Mapping: a.mapping, Settings: a.settingsAt(t)}
}

// openApp parses a command's flags, loads the config and assembles the app:
// the start every command shares. Problems are printed; the error then is an
// exitError.
func openApp(ctx context.Context, fs *flag.FlagSet, cfgPath *string, args []string, stderr io.Writer, withStorage bool, required ...string) (*app, error) {
	if err := parseFlags(fs, args, cfgPath, required...); err != nil {
		return nil, err
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return nil, err
	}
	a, err := newApp(ctx, cfg, stderr, withStorage)
	if err != nil {
		return nil, reportAssembly(err, stderr)
	}
	return a, nil
}

// reportAssembly prints problems from newApp the way check does.
func reportAssembly(err error, stderr io.Writer) error {
	var ps bridge.Problems
	if errors.As(err, &ps) {
		printProblems(stderr, ps)
		return exitError{1}
	}
	return err
}

// pollsOrders reports whether the store adapter's order updates are polled:
// always for WooCommerce (it never retries a webhook), for CSV when a
// status file is configured.
func pollsOrders(cfg *config.Config) bool {
	switch cfg.Store.Adapter {
	case "woocommerce", "shopify":
		// Reconciliation: WooCommerce never retries a webhook, and
		// Shopify gives up on one after its retries.
		return true
	case "csv":
		return cfg.Store.CSV.OrderStatusPath != ""
	}
	return false
}
