package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/acpspec"
)

// bridgeBin is the binary built once for the end-to-end tests.
var bridgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bridge-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bridgeBin = filepath.Join(dir, "bridge")
	if runtime.GOOS == "windows" {
		bridgeBin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bridgeBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building bridge:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is where config.example.yaml and examples/ live.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeConfig copies config.example.yaml into a temp folder with the demo
// catalog, so data/ lands in the temp folder, and applies edits.
func writeConfig(t *testing.T, edits ...func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	root := repoRoot(t)
	cfg, err := os.ReadFile(filepath.Join(root, "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csvData, err := os.ReadFile(filepath.Join(root, "examples", "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "examples", "catalog.csv"), csvData, 0o644); err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for _, e := range edits {
		text = e(text)
	}
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runBridge(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bridgeBin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run bridge %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// startServe runs `bridge serve` on cfg at a free port until the test ends,
// then stops it with SIGINT and checks that it exits cleanly. It returns once
// /readyz answers 200.
func startServe(t *testing.T, cfg string) (base string, cmd *exec.Cmd, logs *syncbuf.Buffer) {
	t.Helper()
	addr := freePort(t)
	cmd = exec.Command(bridgeBin, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "BRIDGE_LISTEN="+addr)
	logs = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bridge did not exit cleanly on SIGINT: %v\n%s", err, logs.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("bridge did not stop within 20s")
		}
	})
	base = "http://" + addr
	waitReady(t, base, logs)
	return base, cmd, logs
}

func TestServeDemoCatalog(t *testing.T) {
	base, _, _ := startServe(t, writeConfig(t))

	type feedURL struct {
		path, contentType string
		gz                bool
	}
	for _, f := range []feedURL{
		{"/api/commerce/feed.json", "application/json", false},
		{"/feeds/openai.jsonl.gz", "application/gzip", true},
		{"/feeds/openai.csv.gz", "application/gzip", true},
		{"/feeds/openai.tsv.gz", "application/gzip", true},
		{"/feeds/acp/products.jsonl.gz", "application/gzip", true},
		{"/feeds/acp/metadata.json", "application/json", false},
	} {
		t.Run(strings.TrimPrefix(f.path, "/"), func(t *testing.T) {
			resp, body := get(t, base+f.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != f.contentType {
				t.Errorf("Content-Type = %q, want %q", got, f.contentType)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=900" {
				t.Errorf("Cache-Control = %q", cc)
			}
			etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
			if etag == "" || lm == "" {
				t.Fatalf("ETag %q, Last-Modified %q: both required", etag, lm)
			}
			resp304, _ := get(t, base+f.path, map[string]string{"If-None-Match": etag})
			if resp304.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", resp304.StatusCode)
			}
			resp304, _ = get(t, base+f.path, map[string]string{"If-Modified-Since": lm})
			if resp304.StatusCode != http.StatusNotModified {
				t.Errorf("If-Modified-Since: status %d, want 304", resp304.StatusCode)
			}
			if f.gz {
				body = gunzip(t, body)
			}
			checkFeed(t, f.path, body)
		})
	}

	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, body := get(t, base+p, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d: %s", p, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", p)
		}
	}
	resp, body := get(t, base+"/metrics", nil)
	if !bytes.Contains(body, []byte(`bridge_catalog_items{kind="variants"} 36`)) || resp.StatusCode != 200 {
		t.Errorf("metrics lack the catalog gauge:\n%.2000s", body)
	}
	resp, body = get(t, base+"/nope", nil)
	var eb struct{ Type, Code, Message string }
	if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &eb) != nil || eb.Code != "not_found" {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
}

// checkFeed asserts what each format must contain for the demo catalog:
// 36 variants, of which the invalid ones are excluded.
func checkFeed(t *testing.T, path string, body []byte) {
	t.Helper()
	switch {
	case strings.HasSuffix(path, "feed.json") && strings.HasPrefix(path, "/api"):
		var doc struct {
			Meta     map[string]any   `json:"meta"`
			Products []map[string]any `json:"products"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("feed.json: %v", err)
		}
		if doc.Meta == nil || len(doc.Products) != 36 {
			t.Fatalf("feed.json: meta %v, %d products, want 36", doc.Meta, len(doc.Products))
		}
		if ts, _ := doc.Meta["generated_at"].(string); !recent(ts) {
			t.Errorf("feed.json meta.generated_at = %q, want the sync's time", ts)
		}
		p := doc.Products[0]
		if p["id"] != "TEE-RED-S" || p["price"] != "24.99 USD" || p["sale_price"] != "19.99 USD" || p["enable_search"] != true {
			t.Errorf("feed.json first product = %v", p)
		}
	case strings.HasSuffix(path, "openai.jsonl.gz"):
		lines := nonEmptyLines(body)
		if len(lines) != 36 {
			t.Fatalf("openai.jsonl: %d lines, want 36", len(lines))
		}
		var row map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
			t.Fatal(err)
		}
		if row["item_id"] != "TEE-RED-S" || row["group_id"] != "classic-tee" || row["is_eligible_search"] != true {
			t.Errorf("openai.jsonl first row = %v", row)
		}
	case strings.HasSuffix(path, ".csv.gz"), strings.HasSuffix(path, ".tsv.gz"):
		r := csv.NewReader(bytes.NewReader(body))
		if strings.HasSuffix(path, ".tsv.gz") {
			r.Comma, r.LazyQuotes = '\t', true
		}
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(recs) != 37 {
			t.Fatalf("%s: %d rows, want header + 36", path, len(recs))
		}
	case strings.HasSuffix(path, "products.jsonl.gz"):
		lines := nonEmptyLines(body)
		if len(lines) != 14 {
			t.Fatalf("acp products: %d lines, want 14", len(lines))
		}
		for i, ln := range lines {
			if err := acpspec.Validate("2026-04-17", "schema.feed.json", "Product", []byte(ln)); err != nil {
				t.Errorf("acp line %d does not validate: %v", i+1, err)
			}
		}
	case strings.HasSuffix(path, "metadata.json"):
		if err := acpspec.Validate("2026-04-17", "schema.feed.json", "FeedMetadata", body); err != nil {
			t.Errorf("metadata.json does not validate: %v", err)
		}
		var meta struct {
			ID            string `json:"id"`
			TargetCountry string `json:"target_country"`
			UpdatedAt     string `json:"updated_at"`
		}
		if err := json.Unmarshal(body, &meta); err != nil || meta.ID == "" || meta.TargetCountry != "US" || !recent(meta.UpdatedAt) {
			t.Errorf("metadata.json = %s (%v)", body, err)
		}
	}
}

// recent reports whether ts is an RFC 3339 time within the last ten minutes.
func recent(ts string) bool {
	at, err := time.Parse(time.RFC3339, ts)
	return err == nil && time.Since(at) < 10*time.Minute && time.Since(at) > -time.Minute
}

func waitReady(t *testing.T, base string, logs *syncbuf.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bridge not ready within 30s; logs:\n%s", logs.String())
}

func get(t *testing.T, url string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func nonEmptyLines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestBinaryExitCodes runs the built binary, as scripts and CI use it: exit
// codes and where the output goes matter there.
func TestBinaryExitCodes(t *testing.T) {
	good := writeConfig(t)
	bad := writeConfig(t, func(s string) string { return strings.Replace(s, "mode: development", "mode: develop", 1) })
	tests := []struct {
		args       []string
		code       int
		stdout     string
		stderrPart string
	}{
		{[]string{"version"}, 0, "bridge ", ""},
		{[]string{"check", "--config", good}, 0, "config OK", ""},
		{[]string{"check", "--config", bad}, 1, "", `mode: "develop" is not one of development, production`},
		{[]string{"check", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "", "read config"},
		{[]string{"feed", "validate", "--config", good}, 0, "summary", ""},
		{[]string{"nope"}, 2, "", "unknown command"},
	}
	for _, tt := range tests {
		out, errOut, code := runBridge(t, tt.args...)
		if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderrPart) {
			t.Errorf("bridge %v: exit %d, stdout %q, stderr %q; want exit %d, stdout ~%q, stderr ~%q",
				tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderrPart)
		}
	}
}

// TestServeResyncsOnSIGHUP: an admin edits the CSV and asks for a sync; the
// feeds show the change without a restart, and a broken file keeps the last
// good feed.
func TestServeResyncsOnSIGHUP(t *testing.T) {
	cfg := writeConfig(t)
	catalogPath := filepath.Join(filepath.Dir(cfg), "examples", "catalog.csv")
	base, cmd, logs := startServe(t, cfg)

	data, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	// TEE-RED-S: 19.99 sale / 24.99 list → 17.49 / 24.99.
	changed := strings.Replace(string(data), "classic-tee.jpg,https://demo-outfitters.example/images/TEE-RED-S.jpg,19.99,", "classic-tee.jpg,https://demo-outfitters.example/images/TEE-RED-S.jpg,17.49,", 1)
	if changed == string(data) {
		t.Fatal("test edit did not apply")
	}
	if err := os.WriteFile(catalogPath, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	firstSalePrice := func() string {
		_, body := get(t, base+"/api/commerce/feed.json", nil)
		var doc struct{ Products []map[string]any }
		if err := json.Unmarshal(body, &doc); err != nil || len(doc.Products) == 0 {
			return ""
		}
		s, _ := doc.Products[0]["sale_price"].(string)
		return s
	}
	deadline := time.Now().Add(20 * time.Second)
	for firstSalePrice() != "17.49 USD" {
		if time.Now().After(deadline) {
			t.Fatalf("feed did not pick up the edited price after SIGHUP; logs:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A broken export (no id column) fails the sync; the feed stays.
	if err := os.WriteFile(catalogPath, []byte("group_id,title\nx,y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, body := get(t, base+"/readyz", nil)
		if strings.Contains(string(body), "failed:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never reported the failed sync; logs:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := firstSalePrice(); got != "17.49 USD" {
		t.Errorf("after a failed sync the feed shows %q, want the last good 17.49 USD", got)
	}
}
