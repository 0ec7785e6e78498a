package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const minimal = `
merchant:
  name: Demo Shop
  url: https://shop.example
  country: US
  return_policy_url: https://shop.example/returns
store:
  csv:
    path: catalog.csv
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("/etc/bridge/bridge.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"mode", c.Mode, ModeDevelopment},
		{"listen", c.Server.Listen, "127.0.0.1:8080"},
		{"public_url", c.Server.PublicURL, "http://127.0.0.1:8080"},
		{"driver", c.Storage.Driver, "sqlite"},
		{"dsn resolved next to the config", c.Storage.DSN.Value(), "/etc/bridge/data/bridge.db"},
		{"csv path resolved", c.Store.CSV.Path, "/etc/bridge/catalog.csv"},
		{"orders path", c.Store.CSV.OrdersPath, "/etc/bridge/data/orders.jsonl"},
		{"currency", c.Merchant.Currency, "USD"},
		{"payments", c.Payments.Provider, "sandbox"},
		{"group column", c.Store.CSV.GroupColumn, "group_id"},
		{"target countries", strings.Join(c.Feed.TargetCountries, ","), "US"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.Feed.Refresh != 15*time.Minute {
		t.Errorf("feed.refresh = %s, want 15m", c.Feed.Refresh)
	}
	if c.Line("merchant.name") != 3 {
		t.Errorf("Line(merchant.name) = %d, want 3", c.Line("merchant.name"))
	}
}

func TestParseProblems(t *testing.T) {
	prodBase := prodHead + prodCSVStore + prodCommerce
	goodEnv := prodEnv(nil)
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings, each must appear in one problem line
	}{
		{"unknown key with line and suggestion", minimal + "servr:\n  listen: :80\n", nil,
			[]string{`x.yaml:10: servr: unknown key (did you mean "server"?)`}},
		{"unknown nested key", minimal + "feed:\n  refrsh: 5m\n", nil,
			[]string{`x.yaml:11: feed.refrsh: unknown key (did you mean "refresh"?)`}},
		{"several unknown keys at once", minimal + "foo: 1\nbar: 2\n", nil,
			[]string{"x.yaml:10: foo: unknown key", "x.yaml:11: bar: unknown key"}},
		{"bad type", minimal + "merchant2: x\nserver:\n  max_body_bytes: lots\n", nil,
			[]string{"x.yaml:10: merchant2: unknown key", `x.yaml:12: server.max_body_bytes: want a whole number, have "lots"`}},
		{"bad duration", minimal + "feed:\n  refresh: soon\n", nil,
			[]string{`x.yaml:11: feed.refresh: want a duration such as 30s, 15m or 2h, have "soon"`}},
		{"list expected", minimal + "feed:\n  formats: openai.jsonl.gz\n", nil,
			[]string{`x.yaml:11: feed.formats: want a list such as [a, b], have "openai.`}},
		{"text expected", strings.Replace(minimal, "country: US", "country: {a: 1}", 1), nil,
			[]string{"x.yaml:5: merchant.country: want text, have a section of keys"}},
		{"section expected", minimal + "server: foo\n", nil,
			[]string{`x.yaml:10: server: want a section of keys, have "foo"`}},
		{"tab indentation", minimal + "server:\n\tlisten: :80\n", nil,
			[]string{"x.yaml:11: found character that cannot start any token (YAML indents with spaces"}},
		{"missing env var", minimal + "server:\n  public_url: ${PUBLIC_URL}\n", nil,
			[]string{"x.yaml:11: server.public_url: environment variable PUBLIC_URL is not set"}},
		{"duplicate key", minimal + "mode: development\nmode: production\n", nil,
			[]string{`x.yaml:11: mode: key given twice (first at line 10)`}},
		{"bad enum", minimal + "mode: staging\n", nil,
			[]string{`x.yaml:10: mode: "staging" is not one of development, production`}},
		{"bad currency and country", strings.Replace(strings.Replace(minimal, "country: US", "country: usa", 1), "name: Demo Shop", "name: Demo Shop\n  currency: DOLLARS", 1), nil,
			[]string{"merchant.currency:", `merchant.country: "usa" is not an ISO 3166-1 alpha-2`}},
		{"production refuses http public url", strings.Replace(prodBase, "https://bridge", "http://bridge", 1), goodEnv,
			[]string{"x.yaml:4: server.public_url: must be https in production"}},
		{"production refuses sandbox", strings.Replace(prodBase, "provider: stripe", "provider: sandbox", 1), goodEnv,
			[]string{"x.yaml:14: payments.provider: the sandbox provider takes no real money and is refused in production"}},
		{"production refuses missing secret", strings.Replace(prodBase, "    webhook_secret: ${STRIPE_WHSEC}\n", "", 1), goodEnv,
			[]string{"payments.stripe.webhook_secret: required"}},
		{"production refuses literal secret", strings.Replace(prodBase, "${STRIPE_KEY}", "sk_live_literal", 1), goodEnv,
			[]string{"x.yaml:16: payments.stripe.secret_key: secrets must come from the environment in production"}},
		{"production needs api keys", strings.Split(prodBase, "acp:")[0], goodEnv,
			[]string{"acp.api_keys: at least one key is required in production"}},
		{"production refuses a secret from a default in the file", strings.Replace(prodBase, "${STRIPE_KEY}", "${STRIPE_KEY_UNSET:-sk_live_literal}", 1), goodEnv,
			[]string{"x.yaml:16: payments.stripe.secret_key: secrets must come from the environment in production"}},
		{"production refuses a secret partly written in the file", strings.Replace(prodBase, "${STRIPE_KEY}", "sk_live_LITERAL${EMPTY}", 1), map[string]string{"EMPTY": "", "STRIPE_WHSEC": "w", "ACP_KEY": strings.Repeat("k", 32)},
			[]string{"x.yaml:16: payments.stripe.secret_key: secrets must come from the environment in production"}},
		{"unsupported delimiter", strings.Replace(minimal, "path: catalog.csv", "path: catalog.csv\n    delimiter: \"|\"", 1), nil,
			[]string{`store.csv.delimiter: want ",", ";" or "\t" (tab), have "|"`}},
		{"negative shutdown timeout", minimal + "server:\n  shutdown_timeout: -5s\n", nil,
			[]string{"server.shutdown_timeout: must be positive"}},
		{"shrink guard 0", minimal + "feed:\n  max_shrink_percent: 0\n", nil,
			[]string{"feed.max_shrink_percent: want 1 to 100"}},
		{"unknown holds policy", strings.Replace(minimal, "path: catalog.csv", "path: catalog.csv\n    holds: sometimes", 1), nil,
			[]string{`store.csv.holds: "sometimes" is not one of keep, release_on_newer_export`}},
		{"second document", minimal + "---\nmode: production\n", nil,
			[]string{"x.yaml:10: a second YAML document"}},
		{"production refuses http store url", strings.Replace(prodBase, "path: catalog.csv", "path: http://shop.example/c.csv", 1), goodEnv,
			[]string{"store.csv.path: plain http is refused in production"}},
		{"unknown storage driver", minimal + "storage:\n  driver: mysql\n", nil,
			[]string{`x.yaml:11: storage.driver: "mysql" is not one of sqlite, postgres`}},
		{"postgres without dsn", minimal + "storage:\n  driver: postgres\n", nil,
			[]string{"storage.dsn: required with driver postgres"}},
		{"production refuses a literal postgres dsn", prodBase + "storage:\n  driver: postgres\n  dsn: postgres://bridge:pw@db/bridge\n", goodEnv,
			[]string{"x.yaml:28: storage.dsn: secrets must come from the environment in production"}},
		{"postgres tuning on sqlite", minimal + "storage:\n  statement_timeout: 5s\n  max_conns: 4\n", nil,
			[]string{"storage.statement_timeout: only with driver postgres", "storage.max_conns: only with driver postgres"}},
		{"postgres tuning out of range", minimal + "storage:\n  driver: postgres\n  dsn: host=db\n  statement_timeout: 10ms\n  max_conns: 2\n", nil,
			[]string{"storage.statement_timeout: want 100ms to 1m", "storage.max_conns: want 8 to 1000"}},
		// store.shopify (shopifyBase and shopifyToken: shopify_test.go)
		{"shopify without credentials", shopifyBase, nil, []string{"store.shopify.access_token: required"}},
		{"shopify with both credentials", shopifyBase + shopifyToken + "    client_id: a\n    client_secret: ${TOKEN}\n", shopifyEnv, []string{"not both"}},
		{"shopify secret without id", shopifyBase + "    client_secret: ${TOKEN}\n", shopifyEnv, []string{"store.shopify.client_id: required"}},
		{"shopify bad shop", strings.Replace(shopifyBase, "demo.myshopify.com", "demo.com", 1) + shopifyToken, shopifyEnv, []string{`store.shopify.shop: "demo.com" is not a shop domain`}},
		{"shopify no shop", strings.Replace(shopifyBase, "    shop: demo.myshopify.com\n", "    bulk: auto\n", 1) + shopifyToken, shopifyEnv, []string{"store.shopify.shop: required"}},
		{"shopify bad version", shopifyBase + shopifyToken + "    api_version: \"2026-11\"\n", shopifyEnv, []string{"store.shopify.api_version"}},
		{"shopify bad bulk", shopifyBase + shopifyToken + "    bulk: sometimes\n", shopifyEnv, []string{"store.shopify.bulk:"}},
		{"shopify bad location", shopifyBase + shopifyToken + "    locations: [abc]\n", shopifyEnv, []string{"store.shopify.locations.0"}},
		{"shopify short full sync", shopifyBase + shopifyToken + "    full_sync_interval: 10s\n", shopifyEnv, []string{"store.shopify.full_sync_interval"}},
		{"shopify bad storefront", shopifyBase + shopifyToken + "    storefront_url: shop\n", shopifyEnv, []string{"store.shopify.storefront_url"}},
		{"shopify literal token in production", "mode: production\n" + shopifyBase + "    access_token: shpat_literal\n", nil,
			[]string{"store.shopify.access_token: secrets must come from the environment in production"}},
		{"shopify url in production", "mode: production\n" + strings.Replace(shopifyBase, "demo.myshopify.com", "http://127.0.0.1:9", 1) + shopifyToken, shopifyEnv,
			[]string{"store.shopify.shop: write the shop's my-shop.myshopify.com domain in production"}},
		{"not a mapping", "- a\n- b\n", nil, []string{"x.yaml:1: the config must be a mapping"}},
		{"yaml syntax", "mode: [\n", nil, []string{"x.yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml), env(tt.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing problem %q in:\n%s", w, err)
				}
			}
		})
	}
	// The production base itself is valid: the refusals above come from the edits.
	if _, err := Parse("x.yaml", []byte(prodBase), env(goodEnv)); err != nil {
		t.Fatalf("production base config should load: %v", err)
	}
}

// Postgres: the DSN is taken as it is (no path resolution), from the
// environment in production, and never printed.
func TestPostgresStorage(t *testing.T) {
	const dsn = "postgres://bridge:pw@db.internal:5432/bridge?sslmode=verify-full"
	c, err := Parse("/etc/bridge/bridge.yaml", []byte(minimal+"storage:\n  driver: postgres\n  dsn: ${BRIDGE_DSN}\n"),
		env(map[string]string{"BRIDGE_DSN": dsn}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Driver != "postgres" || c.Storage.DSN.Value() != dsn {
		t.Errorf("storage = %q %q, want postgres and the DSN as given", c.Storage.Driver, c.Storage.DSN.Value())
	}
	if s := fmt.Sprint(c.Storage); strings.Contains(s, "pw") {
		t.Errorf("the storage settings print the DSN: %s", s)
	}
	c, err = Parse("x.yaml", []byte(minimal+"storage:\n  driver: postgres\n  dsn: host=db\n  statement_timeout: 30s\n  max_conns: 8\n"), env(nil))
	if err != nil || c.Storage.StatementTimeout != 30*time.Second || c.Storage.MaxConns != 8 {
		t.Errorf("postgres tuning: %+v, %v; want 30s and 8", c.Storage, err)
	}
	// A literal DSN is fine outside production.
	if _, err := Parse("x.yaml", []byte(minimal+"storage:\n  driver: postgres\n  dsn: host=/run/postgresql dbname=bridge\n"), env(nil)); err != nil {
		t.Errorf("a literal DSN in development: %v", err)
	}
}

func TestExpand(t *testing.T) {
	lookup := env(map[string]string{"A": "alpha", "EMPTY": ""})
	tests := []struct {
		in, want string
		used     bool
		err      bool
	}{
		{"${A}", "alpha", true, false},
		{"x-${A}-y", "x-alpha-y", true, false},
		{"${B:-beta}", "beta", false, false},
		{"${EMPTY:-dflt}", "dflt", false, false},
		{"${B:-beta}${A}", "betaalpha", true, false},
		{"${EMPTY}", "", true, false},
		{"$$A", "$A", false, false},
		{"price $5", "price $5", false, false},
		{"${B}", "", false, true},
		{"${A", "", false, true},
	}
	for _, tt := range tests {
		got, used, err := expand(tt.in, lookup)
		if (err != nil) != tt.err || (!tt.err && (got != tt.want || used != tt.used)) {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v, err=%v", tt.in, got, used, err, tt.want, tt.used, tt.err)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal+"acp:\n  api_keys:\n    - name: a\n      key: ${K}\n"), env(map[string]string{"K": "super-secret-value-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", c.ACP), fmt.Sprintf("%+v", c.ACP), fmt.Sprintf("%#v", c.ACP.APIKeys[0].Key), fmt.Sprint(c.ACP.APIKeys[0].Key)} {
		if strings.Contains(s, "super-secret") {
			t.Errorf("secret leaked: %s", s)
		}
	}
	if c.ACP.APIKeys[0].Key.Value() != "super-secret-value-0123456789" {
		t.Error("Value() must return the secret")
	}
}

func TestEnvInTypedFields(t *testing.T) {
	src := minimal + "server:\n  max_body_bytes: ${MAXB:-4096}\n  shutdown_timeout: ${GRACE}\nfeed:\n  refresh: ${REFRESH:-2m}\n"
	c, err := Parse("x.yaml", []byte(src), env(map[string]string{"GRACE": "3s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBodyBytes != 4096 || c.Server.ShutdownTimeout != 3*time.Second || c.Feed.Refresh != 2*time.Minute {
		t.Errorf("typed values from env: %d %s %s", c.Server.MaxBodyBytes, c.Server.ShutdownTimeout, c.Feed.Refresh)
	}
	// A quoted value stays a string, as the admin wrote it.
	if _, err := Parse("x.yaml", []byte(minimal+"server:\n  max_body_bytes: \"${MAXB:-4096}\"\n"), env(nil)); err == nil {
		t.Error("a quoted number must stay a string and fail to decode into an int")
	}
}

func TestSecretMaskedEverywhere(t *testing.T) {
	s := Secret("sk_live_abcdef")
	var buf strings.Builder
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("x", "key", s, "cfg", Stripe{SecretKey: s})
	b, _ := json.Marshal(Stripe{SecretKey: s, WebhookSecret: s})
	for _, out := range []string{buf.String(), string(b)} {
		if strings.Contains(out, "abcdef") {
			t.Errorf("secret leaked: %s", out)
		}
	}
}
