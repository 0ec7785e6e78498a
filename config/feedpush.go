package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// FeedPush configures the push targets: agents do not pull feeds, the
// merchant pushes them. Each target is on when its block names where to
// push (feed_api.base_url, sftp.host).
type FeedPush struct {
	FeedAPI FeedAPIPush `yaml:"feed_api"`
	SFTP    SFTPPush    `yaml:"sftp"`
}

// FeedAPIPush is an agent's ACP Feed API (openapi.feed.yaml).
type FeedAPIPush struct {
	// BaseURL is the agent's Feed API root; /feeds… is appended.
	BaseURL string `yaml:"base_url"`
	// Token is the bearer token the agent issued (from the environment).
	Token Secret `yaml:"token"`
	// SigningSecret, when set, signs every request (Signature header:
	// base64url HMAC-SHA256 of Timestamp + "." + body).
	SigningSecret Secret `yaml:"signing_secret"`
	// APIVersion is the API-Version header (default 2026-04-17).
	APIVersion string `yaml:"api_version"`
	// TargetCountry is the feed's market at creation (default the first
	// of feed.target_countries).
	TargetCountry string `yaml:"target_country"`
	// FeedID is a feed the agent made at onboarding; empty creates one
	// (POST /feeds) and keeps its id in storage.
	FeedID string `yaml:"feed_id"`
	// Delay is how soon after a sync the changed products are sent
	// (default 60s): the changes of that window go in one push.
	Delay time.Duration `yaml:"delay"`
	// Every re-checks the whole catalog this often even without a sync
	// (default 24h); only changed products are sent.
	Every time.Duration `yaml:"every"`
	// BatchProducts bounds the products of one request (default 500).
	BatchProducts int `yaml:"batch_products"`
}

// Enabled reports whether the Feed API target is configured.
func (f FeedAPIPush) Enabled() bool { return f.BaseURL != "" }

// SFTPPush is an SFTP drop for full snapshot files (OpenAI's file upload).
type SFTPPush struct {
	Host string `yaml:"host"`
	// Port defaults to 22.
	Port int    `yaml:"port"`
	User string `yaml:"user"`
	// Password or PrivateKey (PEM, OpenSSH or PKCS#8) from the environment;
	// PrivateKeyPassphrase when the key is encrypted.
	Password             Secret `yaml:"password"`
	PrivateKey           Secret `yaml:"private_key"`
	PrivateKeyPassphrase Secret `yaml:"private_key_passphrase"`
	// HostKeyFingerprint pins the server's host key
	// ("SHA256:<base64>", as ssh-keygen -lf prints it). Required in
	// production; without it any host key is accepted (with a warning).
	HostKeyFingerprint string `yaml:"host_key_fingerprint"`
	// Dir is the remote folder (default ".", the login folder).
	Dir string `yaml:"dir"`
	// Formats are the files uploaded (default openai.jsonl.gz); names as
	// in feed.formats (checked with them, by the command).
	Formats []string `yaml:"formats"`
	// Every is the schedule (default 24h: the full snapshot "at least
	// daily").
	Every time.Duration `yaml:"every"`
	// ShardItems and ShardBytes cut a file into shards (defaults 500000
	// items and 500 MB, the upload limits per file).
	ShardItems int   `yaml:"shard_items"`
	ShardBytes int64 `yaml:"shard_bytes"`
}

// Enabled reports whether the SFTP target is configured.
func (s SFTPPush) Enabled() bool { return s.Host != "" }

func (c *Config) applyFeedPushDefaults() {
	a := &c.Feed.Push.FeedAPI
	if a.APIVersion == "" {
		a.APIVersion = "2026-04-17"
	}
	if a.TargetCountry == "" && len(c.Feed.TargetCountries) > 0 {
		a.TargetCountry = c.Feed.TargetCountries[0]
	}
	if a.Delay == 0 {
		a.Delay = time.Minute
	}
	if a.Every == 0 {
		a.Every = 24 * time.Hour
	}
	if a.BatchProducts == 0 {
		a.BatchProducts = 500
	}
	s := &c.Feed.Push.SFTP
	// ssh.FingerprintSHA256 never pads, so a padded value (some tools
	// print base64 with its "=") could never match: drop the padding.
	s.HostKeyFingerprint = strings.TrimSuffix(s.HostKeyFingerprint, "=")
	if s.Port == 0 {
		s.Port = 22
	}
	if s.Dir == "" {
		s.Dir = "."
	}
	if len(s.Formats) == 0 {
		s.Formats = []string{"openai.jsonl.gz"}
	}
	if s.Every == 0 {
		s.Every = 24 * time.Hour
	}
	if s.ShardItems == 0 {
		s.ShardItems = 500_000
	}
	if s.ShardBytes == 0 {
		s.ShardBytes = 500_000_000
	}
}

var (
	apiVersionRe = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	// fingerprintRe is ssh.FingerprintSHA256's form: 32 bytes in
	// unpadded base64 (a padded value is normalized before the check).
	fingerprintRe = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)
)

// The SFTP drop's limits per file (docs/product-feed.md §2: a stable
// shard set of at most 500k items and under about 500 MB each).
const (
	maxShardItems = 500_000
	maxShardBytes = 500_000_000
)

// sftpFormats are the feed formats (feed.Format names) the SFTP drop
// takes: gzipped JSON lines, CSV or TSV of the file-upload schema, and
// ACP's full replacement. The seed's feed.json is a pull feed, not a file
// the drop reads.
var sftpFormats = []string{"openai.jsonl.gz", "openai.csv.gz", "openai.tsv.gz", "acp/products.jsonl.gz"}

func (c *Config) validateFeedPush() []bridge.Problem {
	var ps []bridge.Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, bridge.Problem{File: c.File, Line: c.Line(path), Key: path, Message: fmt.Sprintf(format, args...)})
	}
	prod := c.Mode == ModeProduction
	optionalSecret := func(path string, v Secret) {
		if v != "" {
			c.requireSecret(&ps, path, v)
		}
	}

	a := c.Feed.Push.FeedAPI
	if a.Enabled() || c.Line("feed.push.feed_api") > 0 {
		const p = "feed.push.feed_api"
		c.checkURL(&ps, p+".base_url", a.BaseURL, true)
		c.requireSecret(&ps, p+".token", a.Token)
		optionalSecret(p+".signing_secret", a.SigningSecret)
		if !apiVersionRe.MatchString(a.APIVersion) {
			add(p+".api_version", "%q is not an API version (YYYY-MM-DD)", a.APIVersion)
		}
		if a.TargetCountry != "" && !isAlpha2(a.TargetCountry) {
			add(p+".target_country", "%q is not an ISO 3166-1 alpha-2 code such as US", a.TargetCountry)
		}
		if a.Delay < time.Second || a.Delay > time.Hour {
			add(p+".delay", "want 1s to 1h, have %s", a.Delay)
		}
		if a.Every < time.Minute {
			add(p+".every", "at least 1m, have %s", a.Every)
		}
		if a.BatchProducts < 1 || a.BatchProducts > 10_000 {
			add(p+".batch_products", "want 1 to 10000, have %d", a.BatchProducts)
		}
	}

	s := c.Feed.Push.SFTP
	if s.Enabled() || c.Line("feed.push.sftp") > 0 {
		const p = "feed.push.sftp"
		if s.Host == "" {
			add(p+".host", "required: the SFTP server's host name")
		} else if strings.ContainsAny(s.Host, "/@ ") {
			add(p+".host", "%q is not a host name (give the user in user: and the port in port:)", s.Host)
		}
		if s.Port < 1 || s.Port > 65535 {
			add(p+".port", "want 1 to 65535, have %d", s.Port)
		}
		if s.User == "" {
			add(p+".user", "required")
		}
		switch {
		case s.Password == "" && s.PrivateKey == "":
			add(p+".private_key", "required: a private key (or a password) from the environment (${NAME})")
		default:
			optionalSecret(p+".password", s.Password)
			optionalSecret(p+".private_key", s.PrivateKey)
		}
		optionalSecret(p+".private_key_passphrase", s.PrivateKeyPassphrase)
		switch {
		case s.HostKeyFingerprint == "" && prod:
			add(p+".host_key_fingerprint", "required in production: the server's host key fingerprint (SHA256:…, from ssh-keygen -lf), or anyone on the path could receive the catalog")
		case s.HostKeyFingerprint != "" && !fingerprintRe.MatchString(s.HostKeyFingerprint):
			add(p+".host_key_fingerprint", "%q is not a SHA256 fingerprint such as SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", s.HostKeyFingerprint)
		}
		if s.Every < time.Minute {
			add(p+".every", "at least 1m, have %s", s.Every)
		}
		if s.ShardItems < 1 || s.ShardItems > maxShardItems {
			add(p+".shard_items", "want 1 to %d (the drop's limit per file), have %d", maxShardItems, s.ShardItems)
		}
		if s.ShardBytes < 1<<20 || s.ShardBytes > maxShardBytes {
			add(p+".shard_bytes", "want 1 MiB (1048576) to %d (the drop's limit per file), have %d", maxShardBytes, s.ShardBytes)
		}
		for i, f := range s.Formats {
			if !slices.Contains(sftpFormats, f) {
				add(fmt.Sprintf("%s.formats.%d", p, i), "%q is not a format the SFTP drop takes (%s)", f, strings.Join(sftpFormats, ", "))
			}
		}
	}
	return ps
}
