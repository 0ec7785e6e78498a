package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFeedPushDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal+`feed:
  push:
    feed_api:
      base_url: https://agent.example/acp
      token: ${TOKEN}
    sftp:
      host: sftp.agent.example
      user: shop
      private_key: ${KEY}
`), env(map[string]string{"TOKEN": "tok", "KEY": "-----BEGIN OPENSSH PRIVATE KEY-----"}))
	if err != nil {
		t.Fatal(err)
	}
	a, s := c.Feed.Push.FeedAPI, c.Feed.Push.SFTP
	if !a.Enabled() || a.APIVersion != "2026-04-17" || a.TargetCountry != "US" || a.Delay != time.Minute ||
		a.Every != 24*time.Hour || a.BatchProducts != 500 || a.Token.Value() != "tok" {
		t.Errorf("feed_api defaults: %+v", a)
	}
	if !s.Enabled() || s.Port != 22 || s.Dir != "." || strings.Join(s.Formats, ",") != "openai.jsonl.gz" ||
		s.Every != 24*time.Hour || s.ShardItems != 500_000 || s.ShardBytes != 500_000_000 {
		t.Errorf("sftp defaults: %+v", s)
	}
	// No push block: both targets off.
	c, err = Parse("x.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Feed.Push.FeedAPI.Enabled() || c.Feed.Push.SFTP.Enabled() {
		t.Error("a config without feed.push enables a push target")
	}
}

func TestFeedPushProblems(t *testing.T) {
	prod := prodHead + prodCSVStore + prodCommerce
	pushEnv := prodEnv(map[string]string{"KEY": "pem", "TOKEN": "tok"})
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"feed_api without url and token", minimal + "feed:\n  push:\n    feed_api:\n      delay: 5s\n", []string{
			"x.yaml: feed.push.feed_api.base_url: required", "x.yaml: feed.push.feed_api.token: required"}},
		{"feed_api bad values", minimal + `feed:
  push:
    feed_api:
      base_url: ftp://agent
      token: t
      api_version: latest
      target_country: usa
      delay: 2h
      batch_products: -1
`, []string{`feed.push.feed_api.base_url: "ftp://agent" is not an absolute http(s) URL`,
			`x.yaml:15: feed.push.feed_api.api_version: "latest" is not an API version`,
			`x.yaml:16: feed.push.feed_api.target_country: "usa" is not`,
			"x.yaml:17: feed.push.feed_api.delay: want 1s to 1h, have 2h0m0s",
			"x.yaml:18: feed.push.feed_api.batch_products: want 1 to 10000, have -1"}},
		{"sftp without credentials", minimal + "feed:\n  push:\n    sftp:\n      host: h\n", []string{
			"feed.push.sftp.user: required", "feed.push.sftp.private_key: required"}},
		{"sftp bad values", minimal + `feed:
  push:
    sftp:
      host: user@h:22
      port: 70000
      user: u
      password: p
      host_key_fingerprint: MD5:aa:bb
      shard_items: -1
      shard_bytes: 1000
`, []string{`feed.push.sftp.host: "user@h:22" is not a host name`, "feed.push.sftp.port: want 1 to 65535",
			`feed.push.sftp.host_key_fingerprint: "MD5:aa:bb" is not a SHA256 fingerprint`,
			"feed.push.sftp.shard_items: want 1 to 500000", "feed.push.sftp.shard_bytes: want 1 MiB"}},
		{"sftp over the drop's limits and formats it does not take", minimal + `feed:
  push:
    sftp:
      host: h
      user: u
      password: p
      shard_items: 500001
      shard_bytes: 600000000
      formats: [openai.jsonl.gz, feed.json, openai.parquet]
`, []string{"x.yaml:16: feed.push.sftp.shard_items: want 1 to 500000 (the drop's limit per file), have 500001",
			"x.yaml:17: feed.push.sftp.shard_bytes: want 1 MiB (1048576) to 500000000 (the drop's limit per file), have 600000000",
			`feed.push.sftp.formats.1: "feed.json" is not a format the SFTP drop takes`,
			`feed.push.sftp.formats.2: "openai.parquet" is not a format the SFTP drop takes`}},
		{"sftp fingerprint with two pads", minimal + `feed:
  push:
    sftp:
      host: h
      user: u
      password: p
      host_key_fingerprint: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s==
`, []string{`is not a SHA256 fingerprint`}},
		{"production needs the host key and secrets from the environment", prod + `feed:
  push:
    sftp:
      host: h
      user: u
      private_key: literal-pem
    feed_api:
      base_url: http://agent.example
      token: literal
`, []string{"feed.push.sftp.host_key_fingerprint: required in production",
			"x.yaml:31: feed.push.sftp.private_key: secrets must come from the environment in production",
			"x.yaml:33: feed.push.feed_api.base_url: must be https in production",
			"x.yaml:34: feed.push.feed_api.token: secrets must come from the environment in production"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml), env(pushEnv))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing problem %q in:\n%s", w, err)
				}
			}
			if strings.Contains(err.Error(), "literal-pem") {
				t.Error("a secret's value is in the error")
			}
		})
	}
	// The production base with a correct push block loads.
	good := prod + `feed:
  push:
    sftp:
      host: h
      user: u
      private_key: ${KEY}
      host_key_fingerprint: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s
    feed_api:
      base_url: https://agent.example
      token: ${TOKEN}
`
	if _, err := Parse("x.yaml", []byte(good), env(pushEnv)); err != nil {
		t.Fatalf("a correct production push config: %v", err)
	}
}

// TestFingerprintPadding: ssh.FingerprintSHA256 never pads its base64, so
// a fingerprint given with its "=" is normalized to the form that matches.
func TestFingerprintPadding(t *testing.T) {
	const fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
	for _, given := range []string{fp, fp + "="} {
		c, err := Parse("x.yaml", []byte(minimal+"feed:\n  push:\n    sftp:\n      host: h\n      user: u\n      password: p\n      host_key_fingerprint: "+given+"\n"), env(nil))
		if err != nil {
			t.Fatalf("%s: %v", given, err)
		}
		if got := c.Feed.Push.SFTP.HostKeyFingerprint; got != fp {
			t.Errorf("%s: fingerprint %q, want %q", given, got, fp)
		}
	}
}
