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
	Mapping  yaml.Node `yaml:"mapping"`
	Feed     Feed      `yaml:"feed"`
	Payments Payments  `yaml:"payments"`
	ACP      ACP       `yaml:"acp"`

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
	Adapter string   `yaml:"adapter"` // csv|shopify|woocommerce
	CSV     CSVStore `yaml:"csv"`
}

// CSVStore configures the CSV adapter.
type CSVStore struct {
	Path        string `yaml:"path"`
	OrdersPath  string `yaml:"orders_path"`
	Delimiter   string `yaml:"delimiter"`
	GroupColumn string `yaml:"group_column"`
	IDColumn    string `yaml:"id_column"`
	StockColumn string `yaml:"stock_column"`
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
}

// Payments selects the payment provider.
type Payments struct {
	Provider string `yaml:"provider"` // sandbox|stripe
	Stripe   Stripe `yaml:"stripe"`
}

// Stripe holds Stripe credentials.
type Stripe struct {
	SecretKey     Secret `yaml:"secret_key"`
	WebhookSecret Secret `yaml:"webhook_secret"`
}

// ACP configures the agent-facing checkout API.
type ACP struct {
	APIKeys []APIKey `yaml:"api_keys"`
}

// APIKey is one agent credential; Name is the identity sessions bind to.
type APIKey struct {
	Name string `yaml:"name"`
	Key  Secret `yaml:"key"`
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
