package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runCLI runs the command in-process and returns its outputs and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := 0
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		errb.WriteString(err.Error())
		code = 1
	}
	return out.String(), errb.String(), code
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(string) string
		wantCode int
		// want are substrings of stdout+stderr; "@LINE(text)" stands for
		// "bridge.yaml:N" where N is the line of text in the edited file.
		want []string
	}{
		{"example config is valid", nil, 0, []string{"config OK", `first product "classic-tee" mapped: 5 variant(s)`}},
		{"unknown key and bad mapping reported with lines", func(s string) string {
			s = strings.Replace(s, "log:\n", "log:\n  colour: red\n", 1)
			return strings.Replace(s, "    brand: product.brand | default merchant.name", "    brand: product.brand | shout", 1)
		}, 1, []string{"@LINE(colour: red): log.colour: unknown key"}},
		{"mapping errors with lines", func(s string) string {
			return strings.Replace(s, "    brand: product.brand | default merchant.name", "    brand: product.brand | shout\n    colour: variant.color", 1)
		}, 1, []string{`@LINE(| shout): mapping.product.brand: unknown filter "shout"`, "@LINE(colour: variant.color): mapping.product.colour: unknown field"}},
		{"value, format and mapping problems together", func(s string) string {
			s = strings.Replace(s, "mode: development", "mode: staging", 1)
			s = strings.Replace(s, "  formats: []", "  formats: [openai.xml]", 1)
			return strings.Replace(s, "    brand: product.brand | default merchant.name", "    titel: product.title", 1)
		}, 1, []string{`@LINE(mode: staging): mode: "staging" is not one of`, `feed.formats.0: unknown format "openai.xml"`, "@LINE(titel: product.title): mapping.product.titel: unknown field", "3 problem(s)"}},
		{"unknown feed format", func(s string) string {
			return strings.Replace(s, "  formats: []", "  formats: [openai.xml]", 1)
		}, 1, []string{`feed.formats.0: unknown format "openai.xml"`}},
		{"unknown sftp push format", func(s string) string {
			return strings.Replace(s, "  max_shrink_percent: 50\n", "  max_shrink_percent: 50\n  push:\n    sftp:\n      host: h\n      user: u\n      password: p\n      formats: [openai.jsonl.gz, feed.xml]\n", 1)
		}, 1, []string{`feed.push.sftp.formats.1: "feed.xml" is not a format the SFTP drop takes`, "1 problem(s)"}},
		{"unreadable sftp key", func(s string) string {
			return strings.Replace(s, "  max_shrink_percent: 50\n", "  max_shrink_percent: 50\n  push:\n    sftp:\n      host: h\n      user: u\n      private_key: not-a-key\n", 1)
		}, 1, []string{"@LINE(private_key: not-a-key): feed.push.sftp.private_key: sftp: the private key cannot be read"}},
		{"missing env var", func(s string) string {
			return strings.Replace(s, "dsn: data/bridge.db", "dsn: ${BRIDGE_TEST_UNSET_DSN}", 1)
		}, 1, []string{"storage.dsn: environment variable BRIDGE_TEST_UNSET_DSN is not set"}},
		{"production refusals", func(s string) string {
			return strings.Replace(s, "mode: development", "mode: production", 1)
		}, 1, []string{"server.public_url: required in production", "payments.provider: the sandbox provider", "acp.api_keys.0.key: secrets must come from the environment in production", "payments.handler.merchant_id: required in production"}},
		{"mapping that breaks the first product", func(s string) string {
			return strings.Replace(s, "    brand: product.brand | default merchant.name", "    title: '{{ .product.titel }}'", 1)
		}, 1, []string{"first product", `the store record has no field "titel"`}},
		{"mapping path to a column the CSV lacks", func(s string) string {
			return strings.Replace(s, "    brand: product.brand | default merchant.name", "    brand: product.brnd | default merchant.name\n    category: product.category", 1)
		}, 0, []string{"@LINE(brand: product.brnd): mapping.product.brand reads product.brnd, but the store record \"classic-tee\" has no such field"}},
		{"unreadable catalog", func(s string) string {
			return strings.Replace(s, "path: examples/catalog.csv", "path: examples/missing.csv", 1)
		}, 1, []string{"cannot read the catalog"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var edits []func(string) string
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			cfg := writeConfig(t, edits...)
			out, errOut, code := runCLI(t, "check", "--config", cfg)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			all := out + errOut
			for _, w := range tt.want {
				w = expandLine(t, cfg, w)
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestFeedValidateReportsBadRows(t *testing.T) {
	cfg := writeConfig(t)
	catalog := filepath.Join(filepath.Dir(cfg), "examples", "catalog.csv")
	data, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	// A price that is not a number (line 38), a row with too few fields
	// (line 39), a product without an image (line 40).
	bad := "broken,BRK-1,Broken Thing,Desc,https://demo-outfitters.example/p/broken,,Brand,Cat,https://demo-outfitters.example/i.jpg,,12;50,,3,,,,,,new,,\n" +
		"short,SHORT-1,Too short\n" +
		"noimg,NOIMG-1,No Image,Desc,https://demo-outfitters.example/p/noimg,,Brand,Cat,,,10.00,,3,,,,,,new,,\n"
	if err := os.WriteFile(catalog, append(data, bad...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "feed", "validate", "--config", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (products left out)\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{"product broken", "(line 38)", "price", "line 39", "product noimg", "(line 40)", "image"} {
		if !strings.Contains(out, w) {
			t.Errorf("report lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "products:  16, 2 left out") {
		t.Errorf("summary wrong:\n%s", out)
	}
}

func TestMappingPreview(t *testing.T) {
	cfg := writeConfig(t)
	out, errOut, code := runCLI(t, "mapping", "preview", "--config", cfg, "--id", "TEE-BLU-M", "--width", "200")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{"STORE RECORD classic-tee (line 2)", "MAPPED PRODUCT classic-tee", `"amount": 1999`, "VALIDATION:", "5 of 5 variant(s) go into the feeds"} {
		if !strings.Contains(out, w) {
			t.Errorf("preview lacks %q:\n%s", w, out)
		}
	}
	_, errOut, code = runCLI(t, "mapping", "preview", "--config", cfg, "--id", "nope")
	if code != 1 || !strings.Contains(errOut, `no store record, product or variant with id "nope"`) {
		t.Errorf("unknown id: exit %d, %s", code, errOut)
	}
}

func TestFeedBuild(t *testing.T) {
	cfg := writeConfig(t)
	dir := t.TempDir()
	out, errOut, code := runCLI(t, "feed", "build", "--config", cfg, "--out", dir, "--format", "openai.jsonl.gz", "--format", "acp/products.jsonl.gz")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "14 products, 36 variants") {
		t.Errorf("summary: %s", out)
	}
	for _, f := range []string{"openai.jsonl.gz", "acp/products.jsonl.gz", "acp/metadata.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "feed.json")); !os.IsNotExist(err) {
		t.Errorf("feed.json written although not asked for")
	}
}

func TestUsageAndVersion(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "bridge ") {
		t.Errorf("version: %d %q", code, out)
	}
	_, errOut, code := runCLI(t, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	_, errOut, code = runCLI(t, "check")
	if code != 2 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("missing --config: %d %q", code, errOut)
	}
}

// expandLine replaces "@LINE(text)" in w with "bridge.yaml:N", N being the
// line of the config file where text first appears.
func expandLine(t *testing.T, cfg, w string) string {
	t.Helper()
	i := strings.Index(w, "@LINE(")
	if i < 0 {
		return w
	}
	j := strings.Index(w[i:], ")") + i
	needle := w[i+len("@LINE(") : j]
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for n, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, needle) {
			return w[:i] + "bridge.yaml:" + strconv.Itoa(n+1) + w[j+1:]
		}
	}
	t.Fatalf("%q not in the config", needle)
	return ""
}

func TestFeedValidateNamesTheVariantsLine(t *testing.T) {
	cfg := writeConfig(t)
	catalog := filepath.Join(filepath.Dir(cfg), "examples", "catalog.csv")
	data, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	// TEE-RED-L is on line 4: give it a comma decimal.
	bad := strings.Replace(string(data), "TEE-RED-L.jpg,19.99,", "TEE-RED-L.jpg,\"19,99\",", 1)
	if bad == string(data) {
		t.Fatal("edit did not apply")
	}
	if err := os.WriteFile(catalog, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, "feed", "validate", "--config", cfg)
	if code != 1 || !strings.Contains(out, "variant TEE-RED-L (line 4)  price: price \"19,99\"") {
		t.Fatalf("exit %d; want the variant's own line and one price error:\n%s", code, out)
	}
	if strings.Contains(out, "no currency") {
		t.Errorf("follow-on currency error reported:\n%s", out)
	}
}
