// Package config loads the bridge's one YAML configuration file: ${ENV}
// expansion on values, embedded defaults, strict keys, and validation whose
// every problem names the file and line, so a shop admin can fix the file in
// one pass instead of one error per restart.
package config

import (
	"log/slog"
	"time"

	"github.com/acp-bridge/bridge"
	"gopkg.in/yaml.v3"
)

// Modes.
const (
	ModeDevelopment = "development"
	ModeProduction  = "production"
)

// Config is the whole configuration. Field docs live in config.example.yaml,
// which a test keeps in step with these types.
type Config struct {
	Mode     string   `yaml:"mode"`
	Log      Log      `yaml:"log"`
	Server   Server   `yaml:"server"`
	Storage  Storage  `yaml:"storage"`
	Merchant Merchant `yaml:"merchant"`
	Store    Store    `yaml:"store"`
	// Mapping holds the admin's overrides of the adapter's default field
	// mapping; package mapping compiles it, keeping its line numbers.
	Mapping     yaml.Node   `yaml:"mapping"`
	Feed        Feed        `yaml:"feed"`
	Payments    Payments    `yaml:"payments"`
	ACP         ACP         `yaml:"acp"`
	Fulfillment Fulfillment `yaml:"fulfillment"`
	Tax         Tax         `yaml:"tax"`
	Orders      Orders      `yaml:"orders"`

	// File is the path the config was loaded from; relative paths inside it
	// were resolved against its folder.
	File string `yaml:"-"`
	// fromEnv records which value paths came from ${ENV} expansion, so that
	// production mode can insist that secrets do.
	fromEnv map[string]bool
	lines   map[string]int
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // text|json
}

// Server is the HTTP listener.
type Server struct {
	Listen          string        `yaml:"listen"`
	PublicURL       string        `yaml:"public_url"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Storage selects the database.
type Storage struct {
	Driver string `yaml:"driver"` // sqlite|postgres
	DSN    Secret `yaml:"dsn"`
	// StatementTimeout and MaxConns tune PostgreSQL (0: the DSN's
	// statement_timeout and pool_max_conns, else the driver's defaults).
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	MaxConns         int           `yaml:"max_conns"`
}

// Merchant is the seller identity shown in feeds and checkout.
type Merchant struct {
	Name             string `yaml:"name"`
	URL              string `yaml:"url"`
	Currency         string `yaml:"currency"`
	Country          string `yaml:"country"`
	PrivacyPolicyURL string `yaml:"privacy_policy_url"`
	TermsURL         string `yaml:"terms_url"`
	ReturnPolicyURL  string `yaml:"return_policy_url"`
	ReturnWindowDays int    `yaml:"return_window_days"`
}

// Store selects and configures the store adapter.
type Store struct {
	Adapter     string           `yaml:"adapter"` // csv|shopify|woocommerce
	CSV         CSVStore         `yaml:"csv"`
	WooCommerce WooCommerceStore `yaml:"woocommerce"`
	Shopify     ShopifyStore     `yaml:"shopify"`
}

// WooCommerceStore configures the WooCommerce adapter (REST API v3).
type WooCommerceStore struct {
	// URL is the shop's address (https://shop.example).
	URL string `yaml:"url"`
	// ConsumerKey and ConsumerSecret are a read/write REST API key.
	ConsumerKey    Secret `yaml:"consumer_key"`
	ConsumerSecret Secret `yaml:"consumer_secret"`
	// Auth is how the keys are sent: "basic" (default) or "query_string"
	// for servers whose proxy strips the Authorization header.
	Auth string `yaml:"auth"`
	// WebhookSecret is the secret of the shop's webhooks to
	// POST /webhooks/woocommerce; empty turns the endpoint off (the bridge
	// then learns of changes by polling only).
	WebhookSecret Secret `yaml:"webhook_secret"`
	// FullSyncInterval is how often a catalog sync reads every product;
	// syncs in between read only what changed (default 6h).
	FullSyncInterval time.Duration `yaml:"full_sync_interval"`
}

// ShopifyStore configures the Shopify adapter (GraphQL Admin API).
type ShopifyStore struct {
	// Shop is the shop's my-shop.myshopify.com domain (or, in development,
	// a base URL such as a local fake's).
	Shop       string `yaml:"shop"`
	APIVersion string `yaml:"api_version"`
	// AccessToken is a static Admin API token; ClientID and ClientSecret
	// instead get tokens by the client-credentials grant.
	AccessToken  Secret `yaml:"access_token"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// WebhookSecret signs Shopify's webhooks (the app's client secret,
	// which it defaults to); empty with no client secret turns
	// /webhooks/shopify off.
	WebhookSecret Secret `yaml:"webhook_secret"`
	// Locations limits stock to these location ids; empty counts all.
	Locations []string `yaml:"locations"`
	// Bulk is auto|always|never; BulkThreshold the variant count above
	// which auto reads by bulk operation.
	Bulk          string `yaml:"bulk"`
	BulkThreshold int    `yaml:"bulk_threshold"`
	// FullSyncInterval is how often the whole catalog is read; syncs in
	// between read what changed.
	FullSyncInterval time.Duration `yaml:"full_sync_interval"`
	// StorefrontURL is where product pages live (default: the product's
	// online store URL).
	StorefrontURL string `yaml:"storefront_url"`
	// StatusPagePermalink makes Shopify's order status page the order's
	// permalink_url once the order is written.
	StatusPagePermalink bool `yaml:"status_page_permalink"`
}

// CSVStore configures the CSV adapter.
type CSVStore struct {
	Path        string `yaml:"path"`
	OrdersPath  string `yaml:"orders_path"`
	Delimiter   string `yaml:"delimiter"`
	GroupColumn string `yaml:"group_column"`
	IDColumn    string `yaml:"id_column"`
	StockColumn string `yaml:"stock_column"`
	// OrderStatusPath is the shop's status file: one CSV row per order
	// update (shipped, delivered, canceled …), read every
	// orders.poll_interval; empty turns it off.
	OrderStatusPath string `yaml:"order_status_path"`
	// Holds says how long an order's stock hold counts against the CSV
	// quantity: "keep" (default) for good, "release_on_newer_export" until
	// an export dated after the order has been synced.
	Holds string `yaml:"holds"`
}

// Feed configures feed building and serving.
type Feed struct {
	Refresh         time.Duration `yaml:"refresh"`
	Dir             string        `yaml:"dir"`
	Formats         []string      `yaml:"formats"`
	TargetCountries []string      `yaml:"target_countries"`
	FeedID          string        `yaml:"feed_id"`
	// MaxShrinkPercent refuses a sync that loses more than this share of
	// the variants (nil → 50; 100 turns the guard off).
	MaxShrinkPercent *int `yaml:"max_shrink_percent"`
	// Push delivers the feed to agents (see feedpush.go).
	Push FeedPush `yaml:"push"`
}

// Payments selects the payment provider.
type Payments struct {
	Provider string  `yaml:"provider"` // sandbox|stripe
	Stripe   Stripe  `yaml:"stripe"`
	Handler  Handler `yaml:"handler"`
}

// Handler is the payment handler the checkout offers agents: what they
// need to obtain a payment token for this shop.
type Handler struct {
	// ID names the handler in sessions (default "card").
	ID string `yaml:"id"`
	// MerchantID is the PSP account id agents copy into the token's
	// allowance (the Stripe account id). Required in production; in
	// development it defaults to the merchant name as a slug.
	MerchantID string `yaml:"merchant_id"`
	// AcceptedBrands are the card brands offered (default visa,
	// mastercard, amex).
	AcceptedBrands []string `yaml:"accepted_brands"`
}

// Stripe holds Stripe credentials.
type Stripe struct {
	SecretKey     Secret `yaml:"secret_key"`
	WebhookSecret Secret `yaml:"webhook_secret"`
	// APIBase is Stripe's API address (default https://api.stripe.com);
	// tests point it at a fake or stripe-mock.
	APIBase string `yaml:"api_base"`
	// StripeVersion is the Stripe-Version sent with payment calls: the
	// preview that has Shared Payment Tokens (default 2026-04-22.preview).
	StripeVersion string `yaml:"stripe_version"`
	// SPTParam is the form field that carries the agent's token on the
	// PaymentIntent (default payment_method_data[shared_payment_granted_token];
	// shared_payment_granted_token for accounts on the older preview).
	SPTParam string `yaml:"spt_param"`
	// WebhookTolerance is how old a webhook's signature may be (default
	// 5m, Stripe's own default).
	WebhookTolerance time.Duration `yaml:"webhook_tolerance"`
	// Capture is when the money is taken: "immediate" (default) at
	// checkout, or "after_store": authorized at checkout and captured once
	// the store accepted the order (released if it refuses it for good).
	Capture string `yaml:"capture"`
	// ThreeDS holds the acquirer details agents need to run 3-D Secure
	// when Stripe asks for it; empty keeps 3-D Secure off (the agent is
	// asked for another card).
	ThreeDS StripeThreeDS `yaml:"three_ds"`
}

// StripeThreeDS is the acquirer's side of 3-D Secure, sent to agents as
// ACP 2026-04-17 authentication_metadata.acquirer_details. Setting any key
// turns 3-D Secure on; then the three acquirer keys are required.
type StripeThreeDS struct {
	// AcquirerBIN is the acquirer's BIN (6 to 8 digits).
	AcquirerBIN string `yaml:"acquirer_bin"`
	// AcquirerCountry is the acquirer's ISO 3166-1 alpha-2 country.
	AcquirerCountry string `yaml:"acquirer_country"`
	// AcquirerMerchantID is the merchant id the acquirer assigned (at
	// most 35 characters).
	AcquirerMerchantID string `yaml:"acquirer_merchant_id"`
	// MerchantName is shown to the buyer by the card issuer (at most 40
	// characters; default merchant.name, cut to 40).
	MerchantName string `yaml:"merchant_name"`
}

// Enabled reports whether the block is filled in at all.
func (t StripeThreeDS) Enabled() bool {
	return t.AcquirerBIN != "" || t.AcquirerCountry != "" || t.AcquirerMerchantID != "" || t.MerchantName != ""
}

// ACP configures the agent-facing checkout API.
type ACP struct {
	APIKeys []APIKey `yaml:"api_keys"`
	// SessionTTL is how long an untouched checkout session stays open
	// (default 30m).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept
	// (default and minimum 24h, as the protocol requires).
	IdempotencyTTL time.Duration `yaml:"idempotency_ttl"`
	// StockTimeout bounds the live stock check; past it the snapshot's
	// figures are used (default 500ms).
	StockTimeout time.Duration `yaml:"stock_timeout"`
	// ClaimLease is how long a complete holds its Idempotency-Key and its
	// session's payment before a retry may take them over because the
	// bridge running it died (default 1m); the payment call gets half.
	ClaimLease time.Duration `yaml:"claim_lease"`
	Signing    Signing       `yaml:"signing"`
	RateLimit  RateLimit     `yaml:"rate_limit"`
	Webhooks   Webhooks      `yaml:"webhooks"`
	MCP        MCP           `yaml:"mcp"`
}

// MCP configures ACP over MCP: the checkout's five tools at /mcp (MCP's
// Streamable HTTP transport), with the same API keys, rules and sessions
// as the REST endpoints.
type MCP struct {
	// Enabled serves /mcp and lists "mcp" in the discovery document's
	// transports (nil → true: agent apps that speak MCP reach the shop
	// with no extra setup, behind the same keys as REST).
	Enabled *bool `yaml:"enabled"`
}

// Webhooks configures the order events the bridge sends the agent.
type Webhooks struct {
	// URL receives order_create and order_update events; empty turns
	// them off.
	URL string `yaml:"url"`
	// Secret is the HMAC key the events are signed with.
	Secret Secret `yaml:"secret"`
}

// Orders configures the write-back of paid orders to the store.
type Orders struct {
	// SyncBudget is how long complete waits for the store to take the
	// order before leaving it to the outbox (default 3s; 10ms–1m). A write
	// still running then goes on in the background.
	SyncBudget time.Duration `yaml:"sync_budget"`
	// RetryHorizon is how long a failing job is retried before it is dead
	// and its order goes to manual review (default 24h).
	RetryHorizon time.Duration `yaml:"retry_horizon"`
	// PollInterval is how often the store's order updates are read, for
	// adapters that poll (default 1m).
	PollInterval time.Duration `yaml:"poll_interval"`
	// JobLease is how long an outbox job is the bridge's that claimed it
	// before another may run it because that bridge died (default 2m); a
	// run gets half.
	JobLease time.Duration `yaml:"job_lease"`
}

// APIKey is one agent credential; Name is the identity sessions bind to.
// Two entries may share a name (the old and new key of one agent during a
// rotation), never a key.
type APIKey struct {
	Name string `yaml:"name"`
	Key  Secret `yaml:"key"`
	// SigningSecret is the HMAC key of this agent's request signatures;
	// when set, every request with this key must be signed. Optional
	// unless acp.signing.required.
	SigningSecret Secret `yaml:"signing_secret"`
}

// Signing configures request signature checks.
type Signing struct {
	// Required makes every API key need a signing_secret, so every
	// request must be signed. When false, keys with a secret must sign and
	// the others need not.
	Required bool `yaml:"required"`
	// MaxSkew is how far a signed request's timestamp may be from the
	// bridge's clock (default 5m).
	MaxSkew time.Duration `yaml:"max_skew"`
}

// RateLimit limits requests per API key (a token bucket).
type RateLimit struct {
	// PerSecond is the sustained rate (nil → 20; 0 turns the limit off).
	PerSecond *float64 `yaml:"per_second"`
	// Burst is the bucket size (0 → 40).
	Burst int `yaml:"burst"`
}

// Fulfillment configures how items reach the buyer.
type Fulfillment struct {
	// Zones are tried in order and the first whose countries (and
	// regions, when set) match the address gives the shipping options.
	// nil (the key left out) means the development default: one zone for
	// merchant.country; production requires the key (zones: [] sells
	// digital items only).
	Zones   []Zone  `yaml:"zones"`
	Digital Digital `yaml:"digital"`
}

// Zone is a set of destinations sharing shipping options.
type Zone struct {
	Name string `yaml:"name"`
	// Countries are ISO 3166-1 alpha-2 codes; ["*"] is every country.
	Countries []string `yaml:"countries"`
	// Regions narrow the zone to ISO 3166-2 subdivisions of its one
	// country, without the country prefix (CA, NY); empty = the whole
	// country.
	Regions []string         `yaml:"regions"`
	Options []ShippingOption `yaml:"options"`
}

// ShippingOption is one way to ship, with its price.
type ShippingOption struct {
	ID      string `yaml:"id"`
	Title   string `yaml:"title"`
	Carrier string `yaml:"carrier"`
	Rate    Rate   `yaml:"rate"`
	// DeliveryDays is the delivery window in days after the order.
	DeliveryDays *DeliveryDays `yaml:"delivery_days"`
}

// Rate is a shipping price in merchant.currency: Flat plus PerKg for every
// started kilogram; free when the items subtotal is at least FreeOver.
type Rate struct {
	Flat     Amount `yaml:"flat"`
	PerKg    Amount `yaml:"per_kg"`
	FreeOver Amount `yaml:"free_over"`
}

// DeliveryDays is a delivery window in days.
type DeliveryDays struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// Digital is the fulfillment option of carts without physical items.
type Digital struct {
	ID    string `yaml:"id"`    // default "digital"
	Title string `yaml:"title"` // default "Instant download"
}

// Tax configures sales tax / VAT.
type Tax struct {
	// Provider computes the tax: "rates" (default, the tables below) or
	// "stripe" (Stripe Tax's /v1/tax/calculations; needs payments.provider
	// stripe).
	Provider string `yaml:"provider"`
	// PricesIncludeTax says catalog prices and shipping rates already
	// contain the tax (VAT-style); sessions then show the tax contained
	// instead of adding it.
	PricesIncludeTax bool `yaml:"prices_include_tax"`
	// ShippingTaxable taxes shipping at the destination's rate (nil → true).
	ShippingTaxable *bool `yaml:"shipping_taxable"`
	// Rates by destination; a region's rate beats its country's, and a
	// destination without a rate pays no tax.
	Rates []TaxRate `yaml:"rates"`
}

// TaxRate is the tax of one country or region.
type TaxRate struct {
	Country string  `yaml:"country"`
	Region  string  `yaml:"region"`
	Rate    Percent `yaml:"rate"`
}

// Amount is a money amount written as a decimal ("5.00") in
// merchant.currency. Minor holds it in minor units once the config has
// loaded (parsed exactly: more decimals than the currency has is an error).
type Amount struct {
	Text  string
	Minor int64
	bad   bool // not a scalar: validation says so, with the line
}

// UnmarshalYAML keeps the text; validation parses it in the currency.
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		a.bad = true
		return nil
	}
	if n.Tag != "!!null" {
		a.Text = n.Value
	}
	return nil
}

// IsSet reports whether the amount was given.
func (a Amount) IsSet() bool { return a.Text != "" }

// Percent is a percentage written as a decimal ("7.25"). PPM holds it in
// parts per million of the amount once the config has loaded (7.25% →
// 72500); at most four decimals.
type Percent struct {
	Text string
	PPM  int64
	bad  bool
}

// UnmarshalYAML keeps the text; validation parses it.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		p.bad = true
		return nil
	}
	if n.Tag != "!!null" {
		p.Text = n.Value
	}
	return nil
}

// Secret is a string that never prints: logs, errors and %v show a mask.
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue masks the secret in slog output, whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the secret in JSON, YAML and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Value returns the secret itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }

// Line returns the line of the value at a dotted path ("server.public_url"),
// or 0 when the key was not in the file.
func (c *Config) Line(path string) int { return c.lines[path] }

// Error lists every problem found in a config file; it is a
// bridge.Problems, so callers print it as one problem per line.
type Error struct{ Problems bridge.Problems }

func (e *Error) Error() string { return e.Problems.Error() }
