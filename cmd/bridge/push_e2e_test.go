package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/fakeagent"
	"github.com/acp-bridge/bridge/internal/fakesftp"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// withPush adds a feed.push block for a Feed API at api and an SFTP server
// at sftpAddr to the example config; secrets come from the environment.
func withPush(api, sftpAddr, fingerprint string) func(string) string {
	return func(s string) string {
		host, port, _ := strings.Cut(sftpAddr, ":")
		block := `  max_shrink_percent: 50
  push:
    feed_api:
      base_url: ` + api + `
      token: ${BRIDGE_TEST_FEED_TOKEN}
      delay: 1s
    sftp:
      host: ` + host + `
      port: ` + port + `
      user: shop
      password: ${BRIDGE_TEST_SFTP_PASSWORD}
      host_key_fingerprint: ` + fingerprint + `
      dir: drop
      formats: [openai.jsonl.gz, acp/products.jsonl.gz]
`
		return strings.Replace(s, "  max_shrink_percent: 50\n", block, 1)
	}
}

// TestServePushes: serve pushes the first snapshot to the Feed API and the
// SFTP drop by itself, /readyz and `bridge feed status` show it, and
// `bridge feed push` pushes on demand, sending nothing to the Feed API
// when nothing changed.
func TestServePushes(t *testing.T) {
	const token, password = "tok_e2e_feed_api_0123456789", "pw_e2e_sftp_0123456789"
	t.Setenv("BRIDGE_TEST_FEED_TOKEN", token)
	t.Setenv("BRIDGE_TEST_SFTP_PASSWORD", password)
	api := fakeagent.NewFeedAPI(t, token)
	srv := fakesftp.Start(t, "shop", password, nil)
	cfg := writeConfig(t, withPush(api.URL(), srv.Addr(), srv.Fingerprint()))
	base, cmd, logs := startServe(t, cfg)

	// The demo catalog has 14 products; all reach the agent and the drop.
	deadline := time.Now().Add(30 * time.Second)
	for {
		feeds := api.Feeds()
		_, err := os.Stat(filepath.Join(srv.Root, "drop", "openai.jsonl.gz"))
		if len(feeds) == 1 && len(api.Products(feeds[0])) == 14 && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes not done within 30s: feeds %v; logs:\n%s", feeds, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f := api.Failures(); len(f) > 0 {
		t.Fatalf("the agent refused requests: %+v", f)
	}
	for _, name := range []string{"acp/products.jsonl.gz", "acp/metadata.json"} {
		if _, err := os.Stat(filepath.Join(srv.Root, "drop", filepath.FromSlash(name))); err != nil {
			t.Fatalf("%s not uploaded: %v", name, err)
		}
	}

	// /readyz names both targets (the SFTP push may still be recording).
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
		Push   json.RawMessage   `json:"push"` // details are for `bridge feed status`, not the public /readyz
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body := get(t, base+"/readyz", nil)
		if err := json.Unmarshal(body, &ready); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ready.Checks["push.feed_api"], "ok: ") && strings.HasPrefix(ready.Checks["push.sftp"], "ok: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz: %+v", ready)
		}
	}
	if ready.Status != "ready" || ready.Push != nil {
		t.Fatalf("readyz: %+v", ready)
	}

	_, metrics := get(t, base+"/metrics", nil)
	for _, want := range []string{`bridge_feed_push_runs_total{result="ok",target="feed_api"}`, `bridge_feed_push_items_total{target="feed_api"} 14`,
		`bridge_feed_push_last_success_timestamp_seconds{target="sftp"}`, `bridge_upstream_requests_total{outcome="ok",upstream="feed_api"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	out, errOut, code := runCLI(t, "feed", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "feed_api: ok at") || !strings.Contains(out, "sftp: ok at") {
		t.Fatalf("feed status (%d):\n%s%s", code, out, errOut)
	}

	// A price change: after the sync (SIGHUP), that product alone reaches
	// the agent within feed.push.feed_api.delay (1s here).
	catalogPath := filepath.Join(filepath.Dir(cfg), "examples", "catalog.csv")
	data, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(data), "classic-tee.jpg,https://demo-outfitters.example/images/TEE-RED-S.jpg,19.99,", "classic-tee.jpg,https://demo-outfitters.example/images/TEE-RED-S.jpg,17.49,", 1)
	if changed == string(data) {
		t.Fatal("test edit did not apply")
	}
	if err := os.WriteFile(catalogPath, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	api.ResetPatches()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	feedID := api.Feeds()[0]
	for !strings.Contains(string(api.Products(feedID)["classic-tee"]), `"amount":1749`) {
		if time.Since(sent) > 20*time.Second {
			t.Fatalf("the new price did not reach the agent; patches %v; logs:\n%s", api.Patches(), logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("price change at the agent %s after SIGHUP", time.Since(sent).Round(time.Millisecond))
	if p := api.Patches(); len(p) != 1 || len(p[0]) != 1 || p[0][0] != "classic-tee" {
		t.Fatalf("upserts after the price change: %v, want classic-tee alone", p)
	}

	// On demand: nothing changed, so the Feed API gets no request; the
	// SFTP drop gets the full snapshot again.
	before := api.Requests()
	conns := srv.Connections()
	out, errOut, code = runCLI(t, "feed", "push", "--config", cfg)
	if code != 0 || !strings.Contains(out, "feed_api: pushed 0 item(s)") || !strings.Contains(out, "sftp: pushed") {
		t.Fatalf("feed push (%d):\n%s%s", code, out, errOut)
	}
	if api.Requests() != before || srv.Connections() != conns+1 {
		t.Fatalf("on-demand push: %d Feed API requests, %d SFTP connections", api.Requests()-before, srv.Connections()-conns)
	}
	// --all sends every product again (the agent lost them).
	// The agent applies it: not a replay of the first push's request.
	api.ResetPatches()
	out, errOut, code = runCLI(t, "feed", "push", "--config", cfg, "--target", "feed_api", "--all")
	if code != 0 || !strings.Contains(out, "feed_api: pushed 14 item(s)") || len(api.Patches()) != 1 {
		t.Fatalf("feed push --all (%d), %d upserts applied:\n%s%s", code, len(api.Patches()), out, errOut)
	}

	// While another process pushes (here: this test holding the lock), the
	// command says so instead of pushing the same target at once.
	db, err := sqlite.Open(t.Context(), filepath.Join(filepath.Dir(cfg), "data", "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	release, ok, err := db.TryLock(t.Context(), "feed_push_sftp")
	if err != nil || !ok {
		t.Fatalf("take the push lock: ok=%v err=%v", ok, err)
	}
	out, _, code = runCLI(t, "feed", "push", "--config", cfg, "--target", "sftp")
	release()
	if code != 1 || !strings.Contains(out, "another bridge process is pushing this target") {
		t.Fatalf("push while another process pushes (%d):\n%s", code, out)
	}
	if out, _, code := runCLI(t, "feed", "push", "--config", cfg, "--target", "ftp"); code != 2 {
		t.Fatalf("unknown target: exit %d\n%s", code, out)
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), password) {
		t.Fatal("a push secret reached the logs")
	}
}
