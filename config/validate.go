package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
)

// applyDefaults fills what the file left out. The defaults make
// config.example.yaml run as-is: CSV demo catalog, SQLite, sandbox payments.
func (c *Config) applyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Mode, ModeDevelopment)
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "text")
	def(&c.Server.Listen, "127.0.0.1:8080")
	// Only production insists on these; an invalid mode is reported once,
	// not again as "required in production".
	if c.Server.PublicURL == "" && c.Mode != ModeProduction {
		c.Server.PublicURL = "http://" + c.Server.Listen
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 1 << 20
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 15 * time.Second
	}
	def(&c.Storage.Driver, "sqlite")
	if c.Storage.DSN == "" && c.Storage.Driver == "sqlite" {
		c.Storage.DSN = "data/bridge.db"
	}
	def(&c.Merchant.Currency, "USD")
	def(&c.Store.Adapter, "csv")
	if c.Store.Adapter == "csv" {
		def(&c.Store.CSV.OrdersPath, "data/orders.jsonl")
		def(&c.Store.CSV.Delimiter, ",")
		def(&c.Store.CSV.GroupColumn, "group_id")
		def(&c.Store.CSV.IDColumn, "sku")
		def(&c.Store.CSV.StockColumn, "quantity")
		def(&c.Store.CSV.Holds, "keep")
	}
	if c.Store.Adapter == "woocommerce" {
		def(&c.Store.WooCommerce.Auth, "basic")
		// A live stock read is a PHP request (100–500 ms), not a file
		// lookup: 500 ms would often fall back to the snapshot, and at
		// payment nothing is sold without the live figure.
		if c.ACP.StockTimeout == 0 {
			c.ACP.StockTimeout = 2 * time.Second
		}
		if c.Store.WooCommerce.FullSyncInterval == 0 {
			c.Store.WooCommerce.FullSyncInterval = 6 * time.Hour
		}
	}
	if c.Store.Adapter == "shopify" {
		sh := &c.Store.Shopify
		def(&sh.APIVersion, "2026-10")
		def(&sh.Bulk, "auto")
		if sh.BulkThreshold == 0 {
			sh.BulkThreshold = 2000
		}
		if sh.FullSyncInterval == 0 {
			sh.FullSyncInterval = 6 * time.Hour
		}
		if sh.WebhookSecret == "" {
			sh.WebhookSecret = sh.ClientSecret
		}
	}
	if c.Feed.Refresh == 0 {
		c.Feed.Refresh = 15 * time.Minute
	}
	def(&c.Feed.Dir, "data/feeds")
	if c.Feed.MaxShrinkPercent == nil {
		fifty := 50
		c.Feed.MaxShrinkPercent = &fifty
	}
	if len(c.Feed.TargetCountries) == 0 && len(c.Merchant.Country) == 2 && strings.ToUpper(c.Merchant.Country) == c.Merchant.Country {
		c.Feed.TargetCountries = []string{c.Merchant.Country}
	}
	if c.Payments.Provider == "" && c.Mode != ModeProduction {
		c.Payments.Provider = "sandbox"
	}
	if c.Orders.SyncBudget == 0 {
		c.Orders.SyncBudget = 3 * time.Second
	}
	if c.Orders.RetryHorizon == 0 {
		c.Orders.RetryHorizon = 24 * time.Hour
	}
	if c.Orders.JobLease == 0 {
		c.Orders.JobLease = 2 * time.Minute
	}
	if c.Orders.PollInterval == 0 {
		c.Orders.PollInterval = time.Minute
	}
	def(&c.Payments.Stripe.Capture, "immediate")
	if td := &c.Payments.Stripe.ThreeDS; td.Enabled() && td.MerchantName == "" {
		// ACP allows 40 characters; merchant.name may have up to 70.
		name := []rune(c.Merchant.Name)
		if len(name) > 40 {
			name = name[:40]
		}
		td.MerchantName = strings.TrimSpace(string(name))
	}
	c.applyCommerceDefaults()
	c.applyFeedPushDefaults()
}

// validate checks meaning once the types are right.
func (c *Config) validate() []bridge.Problem {
	var ps []bridge.Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, bridge.Problem{File: c.File, Line: c.Line(path), Key: path, Message: fmt.Sprintf(format, args...)})
	}
	prod := c.Mode == ModeProduction
	oneOf := func(path, v string, allowed ...string) bool {
		for _, a := range allowed {
			if v == a {
				return true
			}
		}
		add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
		return false
	}

	oneOf("mode", c.Mode, ModeDevelopment, ModeProduction)
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "text", "json")

	if _, port, err := net.SplitHostPort(c.Server.Listen); err != nil {
		add("server.listen", "want host:port such as 127.0.0.1:8080 or :8080: %v", err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("server.listen", "port %q is not a number between 0 and 65535", port)
	}
	if c.Server.PublicURL == "" {
		add("server.public_url", "required in production: the https address agents and feeds use to reach this bridge")
	} else if u, err := url.Parse(c.Server.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		add("server.public_url", "%q is not an absolute http(s) URL", c.Server.PublicURL)
	} else if prod && u.Scheme != "https" {
		add("server.public_url", "must be https in production (agents send payment data to it)")
	}
	if c.Server.ShutdownTimeout <= 0 {
		add("server.shutdown_timeout", "must be positive, such as 15s")
	}
	if c.Server.MaxBodyBytes < 1024 {
		add("server.max_body_bytes", "must be at least 1024")
	}

	oneOf("storage.driver", c.Storage.Driver, "sqlite", "postgres")
	switch {
	case c.Storage.Driver == "postgres" && c.Storage.DSN == "":
		// No default: a database server is the admin's to name.
		add("storage.dsn", "required with driver postgres: a connection string such as "+
			"postgres://bridge@db.internal:5432/bridge?sslmode=verify-full, from the environment (${NAME})")
	case c.Storage.Driver == "postgres":
		// It names the server and usually carries the password.
		c.requireSecret(&ps, "storage.dsn", c.Storage.DSN)
	case c.Storage.DSN == "":
		add("storage.dsn", "required")
	}
	if c.Storage.Driver != "postgres" {
		if c.Storage.StatementTimeout != 0 {
			add("storage.statement_timeout", "only with driver postgres")
		}
		if c.Storage.MaxConns != 0 {
			add("storage.max_conns", "only with driver postgres")
		}
	}
	if t := c.Storage.StatementTimeout; t != 0 && (t < 100*time.Millisecond || t > time.Minute) {
		// At most a minute: the orders' hold grace (5 min) relies on a
		// checkout's commit ending within about twice this.
		add("storage.statement_timeout", "want 100ms to 1m (0: the DSN's, else 10s), have %s", t)
	}
	if n := c.Storage.MaxConns; n != 0 && (n < 8 || n > 1000) {
		add("storage.max_conns", "want 8 to 1000 (0: the DSN's pool_max_conns, else max(16, 2 × CPUs)), have %d", n)
	}

	m := c.Merchant
	if m.Name == "" {
		add("merchant.name", "required: feeds show it as the seller name")
	} else if len([]rune(m.Name)) > 70 {
		add("merchant.name", "at most 70 characters (feed rule), have %d", len([]rune(m.Name)))
	}
	if _, err := bridge.CurrencyExponent(m.Currency); err != nil {
		add("merchant.currency", "%q is not an ISO 4217 currency code such as USD or EUR", m.Currency)
	}
	if len(m.Country) != 2 || strings.ToUpper(m.Country) != m.Country {
		add("merchant.country", "%q is not an ISO 3166-1 alpha-2 code such as US", m.Country)
	}
	c.checkURL(&ps, "merchant.url", m.URL, true)
	c.checkURL(&ps, "merchant.privacy_policy_url", m.PrivacyPolicyURL, false)
	c.checkURL(&ps, "merchant.terms_url", m.TermsURL, false)
	c.checkURL(&ps, "merchant.return_policy_url", m.ReturnPolicyURL, true)
	if m.ReturnWindowDays < 0 {
		add("merchant.return_window_days", "must not be negative")
	}

	if oneOf("store.adapter", c.Store.Adapter, "csv", "shopify", "woocommerce") {
		switch c.Store.Adapter {
		case "woocommerce":
			ps = append(ps, c.validateWooCommerce()...)
		case "shopify":
			ps = append(ps, c.validateShopify()...)
		case "csv":
			s := c.Store.CSV
			if s.Path == "" {
				add("store.csv.path", "required: a CSV file path or an https URL")
			} else if strings.HasPrefix(s.Path, "http://") && prod {
				add("store.csv.path", "plain http is refused in production; use https")
			}
			switch s.Delimiter {
			case ",", ";", "\t":
			case "tab", `\t`: // `\t` is what an unquoted \t in YAML gives
				c.Store.CSV.Delimiter = "\t"
			default:
				add("store.csv.delimiter", "want \",\", \";\" or \"\\t\" (tab), have %q", s.Delimiter)
			}
			if s.Holds != "keep" && s.Holds != "release_on_newer_export" {
				add("store.csv.holds", "%q is not one of keep, release_on_newer_export", s.Holds)
			}
			if s.GroupColumn == "" {
				add("store.csv.group_column", "required")
			}
			if s.IDColumn == "" {
				add("store.csv.id_column", "required")
			}
		}
	}

	if c.Feed.Refresh < 10*time.Second {
		add("feed.refresh", "at least 10s, have %s", c.Feed.Refresh)
	}
	if p := *c.Feed.MaxShrinkPercent; p < 1 || p > 100 {
		add("feed.max_shrink_percent", "want 1 to 100 (100 turns the guard off), have %d", p)
	}
	for i, cc := range c.Feed.TargetCountries {
		if len(cc) != 2 || strings.ToUpper(cc) != cc {
			add(fmt.Sprintf("feed.target_countries.%d", i), "%q is not an ISO 3166-1 alpha-2 code", cc)
		}
	}

	switch c.Payments.Provider {
	case "sandbox":
		if prod {
			add("payments.provider", "the sandbox provider takes no real money and is refused in production; use stripe")
		}
	case "stripe":
		c.requireSecret(&ps, "payments.stripe.secret_key", c.Payments.Stripe.SecretKey)
		c.requireSecret(&ps, "payments.stripe.webhook_secret", c.Payments.Stripe.WebhookSecret)
	case "":
		add("payments.provider", "required in production: stripe")
	default:
		add("payments.provider", "%q is not one of sandbox, stripe", c.Payments.Provider)
	}

	oneOf("payments.stripe.capture", c.Payments.Stripe.Capture, "immediate", "after_store")
	ps = append(ps, c.validateThreeDS()...)
	if c.Orders.SyncBudget < 10*time.Millisecond || c.Orders.SyncBudget > time.Minute {
		add("orders.sync_budget", "want 10ms to 1m, have %s", c.Orders.SyncBudget)
	}
	if c.Orders.JobLease < 10*time.Second || c.Orders.JobLease > time.Hour {
		add("orders.job_lease", "want 10s to 1h (a job's run gets half), have %s", c.Orders.JobLease)
	}
	if c.Orders.RetryHorizon < time.Minute {
		add("orders.retry_horizon", "at least 1m, have %s", c.Orders.RetryHorizon)
	}
	if c.Orders.PollInterval < time.Second {
		add("orders.poll_interval", "at least 1s, have %s", c.Orders.PollInterval)
	}
	if w := c.ACP.Webhooks; w.URL != "" {
		c.checkURL(&ps, "acp.webhooks.url", w.URL, true)
		if strings.HasPrefix(w.URL, "http://") && prod {
			add("acp.webhooks.url", "plain http is refused in production; use https")
		}
		c.requireSecret(&ps, "acp.webhooks.secret", w.Secret)
	}
	if prod && len(c.ACP.APIKeys) == 0 {
		add("acp.api_keys", "at least one key is required in production, or any caller could use the checkout")
	}
	ps = append(ps, c.validateFeedPush()...)
	return append(ps, c.validateCommerce()...)
}

func (c *Config) checkURL(ps *[]bridge.Problem, path, v string, required bool) {
	add := func(format string, args ...any) {
		*ps = append(*ps, bridge.Problem{File: c.File, Line: c.Line(path), Key: path, Message: fmt.Sprintf(format, args...)})
	}
	if v == "" {
		if required {
			add("required: an absolute https URL")
		}
		return
	}
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		add("%q is not an absolute http(s) URL", v)
	case u.User != nil:
		add("must not contain a user name or password")
	case c.Mode == ModeProduction && u.Scheme != "https":
		add("must be https in production")
	}
}

// requireSecret insists that a secret is set and, in production, that it
// comes from the environment: a secret written into the file ends up in
// backups, tickets and version control.
func (c *Config) requireSecret(ps *[]bridge.Problem, path string, v Secret) {
	add := func(msg string) {
		*ps = append(*ps, bridge.Problem{File: c.File, Line: c.Line(path), Key: path, Message: msg})
	}
	if v == "" {
		add("required (reference an environment variable: ${NAME})")
		return
	}
	if c.Mode == ModeProduction && !c.fromEnv[path] {
		add("secrets must come from the environment in production: write ${NAME} instead of the value")
	}
}

// Production reports whether the config runs in production mode.
func (c *Config) Production() bool { return c.Mode == ModeProduction }

var acquirerBINRe = regexp.MustCompile(`^[0-9]{6,8}$`)

// validateThreeDS checks payments.stripe.three_ds when it is filled in:
// agents send these details to the card's directory server, so a wrong
// one fails every 3-D Secure challenge after the buyer was asked to
// authenticate.
func (c *Config) validateThreeDS() []bridge.Problem {
	const block = "payments.stripe.three_ds"
	td := c.Payments.Stripe.ThreeDS
	if !td.Enabled() {
		return nil
	}
	var ps []bridge.Problem
	add := func(key, format string, args ...any) {
		path := block + "." + key
		line := c.Line(path)
		if line == 0 {
			line = c.Line(block) // a missing key: point at the block
		}
		ps = append(ps, bridge.Problem{File: c.File, Line: line, Key: path, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case td.AcquirerBIN == "":
		add("acquirer_bin", "required with three_ds: the acquirer BIN Stripe gives for 3-D Secure (6 to 8 digits)")
	case !acquirerBINRe.MatchString(td.AcquirerBIN):
		add("acquirer_bin", "%q is not an acquirer BIN: want 6 to 8 digits", td.AcquirerBIN)
	}
	switch {
	case td.AcquirerCountry == "":
		add("acquirer_country", "required with three_ds: the acquirer's ISO 3166-1 alpha-2 country, such as US")
	case !isAlpha2(td.AcquirerCountry):
		add("acquirer_country", "%q is not an ISO 3166-1 alpha-2 code such as US", td.AcquirerCountry)
	}
	switch n := len([]rune(td.AcquirerMerchantID)); {
	case n == 0:
		add("acquirer_merchant_id", "required with three_ds: the merchant id the acquirer assigned")
	case n > 35 || td.AcquirerMerchantID != strings.TrimSpace(td.AcquirerMerchantID) || !printable(td.AcquirerMerchantID):
		add("acquirer_merchant_id", "want 1 to 35 printable characters without surrounding spaces (ACP's limit)")
	}
	switch n := len([]rune(td.MerchantName)); {
	case n == 0:
		add("merchant_name", "required: the name the card issuer shows the buyer (default merchant.name)")
	case n > 40 || td.MerchantName != strings.TrimSpace(td.MerchantName) || !printable(td.MerchantName):
		add("merchant_name", "want 1 to 40 printable characters without surrounding spaces (ACP's limit), have %d", n)
	}
	return ps
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// validateWooCommerce checks store.woocommerce.
func (c *Config) validateWooCommerce() []bridge.Problem {
	var ps []bridge.Problem
	add := func(key, format string, args ...any) {
		path := "store.woocommerce." + key
		ps = append(ps, bridge.Problem{File: c.File, Line: c.Line(path), Key: path, Message: fmt.Sprintf(format, args...)})
	}
	w := c.Store.WooCommerce
	switch u, err := url.Parse(w.URL); {
	case w.URL == "":
		add("url", "required: the shop's address, such as https://shop.example")
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		add("url", "%q is not an absolute https URL", w.URL)
	case u.User != nil || u.RawQuery != "":
		add("url", "must not contain a user name, password or query (the keys go in consumer_key and consumer_secret)")
	case u.Scheme == "http" && c.Production():
		add("url", "plain http is refused in production: the keys would travel in clear text; use https")
	}
	c.requireSecret(&ps, "store.woocommerce.consumer_key", w.ConsumerKey)
	c.requireSecret(&ps, "store.woocommerce.consumer_secret", w.ConsumerSecret)
	if w.WebhookSecret != "" {
		c.requireSecret(&ps, "store.woocommerce.webhook_secret", w.WebhookSecret)
	}
	if w.Auth != "basic" && w.Auth != "query_string" {
		add("auth", "%q is not one of basic, query_string", w.Auth)
	}
	if w.FullSyncInterval < time.Minute {
		add("full_sync_interval", "at least 1m, have %s", w.FullSyncInterval)
	}
	return ps
}

var (
	shopDomainRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.myshopify\.com$`)
	shopifyVersionRe = regexp.MustCompile(`^20[0-9]{2}-(01|04|07|10)$`)
)

// validateShopify checks store.shopify.
func (c *Config) validateShopify() []bridge.Problem {
	var ps []bridge.Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, bridge.Problem{File: c.File, Line: c.Line(path), Key: path, Message: fmt.Sprintf(format, args...)})
	}
	s := c.Store.Shopify
	switch {
	case s.Shop == "":
		add("store.shopify.shop", "required: the shop's domain, like my-shop.myshopify.com")
	case strings.Contains(s.Shop, "://"):
		// A base URL: a local fake or proxy, for development only.
		if c.Production() {
			add("store.shopify.shop", "write the shop's my-shop.myshopify.com domain in production, not a URL")
		} else {
			c.checkURL(&ps, "store.shopify.shop", s.Shop, true)
		}
	case !shopDomainRe.MatchString(s.Shop):
		add("store.shopify.shop", "%q is not a shop domain like my-shop.myshopify.com", s.Shop)
	}
	if !shopifyVersionRe.MatchString(s.APIVersion) {
		add("store.shopify.api_version", "%q is not a release like 2026-10 (YYYY-01, -04, -07 or -10)", s.APIVersion)
	}
	switch {
	case s.AccessToken != "" && (s.ClientID != "" || s.ClientSecret != ""):
		add("store.shopify.access_token", "set either access_token or client_id and client_secret, not both")
	case s.AccessToken != "":
		c.requireSecret(&ps, "store.shopify.access_token", s.AccessToken)
	case s.ClientID != "" || s.ClientSecret != "":
		if s.ClientID == "" {
			add("store.shopify.client_id", "required with client_secret")
		}
		c.requireSecret(&ps, "store.shopify.client_secret", s.ClientSecret)
	default:
		add("store.shopify.access_token", "required: an Admin API token (${NAME}), or client_id and client_secret")
	}
	if s.WebhookSecret != "" && s.WebhookSecret != s.ClientSecret {
		c.requireSecret(&ps, "store.shopify.webhook_secret", s.WebhookSecret)
	}
	for i, l := range s.Locations {
		if n := strings.TrimPrefix(strings.TrimSpace(l), "gid://shopify/Location/"); n == "" || strings.Trim(n, "0123456789") != "" {
			add(fmt.Sprintf("store.shopify.locations.%d", i), "%q is not a location id (a number or gid://shopify/Location/<number>)", l)
		}
	}
	if s.Bulk != "auto" && s.Bulk != "always" && s.Bulk != "never" {
		add("store.shopify.bulk", "%q is not one of auto, always, never", s.Bulk)
	}
	if s.BulkThreshold < 0 {
		add("store.shopify.bulk_threshold", "must not be negative")
	}
	if s.FullSyncInterval < time.Minute {
		add("store.shopify.full_sync_interval", "at least 1m, have %s", s.FullSyncInterval)
	}
	c.checkURL(&ps, "store.shopify.storefront_url", s.StorefrontURL, false)
	return ps
}
