package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/gorilla/mux"
)

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

type syncStatus struct{ st catalog.Status }

func (s syncStatus) Status() catalog.Status { return s.st }

// infoStore is a CatalogStore that only knows whether a snapshot exists.
type infoStore struct {
	bridge.CatalogStore
	has bool
}

func (s infoStore) CatalogInfo(context.Context) (bridge.CatalogInfo, error) {
	if !s.has {
		return bridge.CatalogInfo{}, bridge.ErrNotFound
	}
	return bridge.CatalogInfo{SyncedAt: time.Unix(1e9, 0)}, nil
}

func quietLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, nil))
}

func do(t *testing.T, h http.Handler, method, path string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// pushStatus answers /readyz's push details.
type pushStatus []bridge.FeedPushState

func (p pushStatus) Status(context.Context) ([]bridge.FeedPushState, error) { return p, nil }

func TestReadyz(t *testing.T) {
	dir := t.TempDir()
	rendered := NewFeedFiles(dir, 15*time.Minute, []string{"feed.json"})
	if err := os.WriteFile(filepath.Join(dir, "feed.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rendered.Refresh(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cfg   Config
		code  int
		check string
	}{
		{"all good", Config{Storage: pinger{}, Catalog: infoStore{has: true}, Sync: syncStatus{catalog.Status{LastSuccess: time.Now()}}, Feeds: rendered}, 200, `"feeds":"ok"`},
		{"storage down", Config{Storage: pinger{errors.New("disk I/O error")}, Catalog: infoStore{has: true}, Feeds: rendered}, 503, "disk I/O error"},
		{"no snapshot yet", Config{Storage: pinger{}, Catalog: infoStore{}, Feeds: NewFeedFiles(t.TempDir(), time.Minute, allFeeds)}, 503, "no snapshot yet"},
		{"push failing: short, still ready", Config{Storage: pinger{}, Catalog: infoStore{has: true}, Feeds: rendered,
			Pushes: pushStatus{{Target: "feed_api", LastAttempt: time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC), Error: "agent answered 503"}}}, 200,
			`"push.feed_api":"failing: never succeeded, last attempt 2026-11-02T03:04:05Z"`},
		{"push failing after a success", Config{Storage: pinger{}, Catalog: infoStore{has: true}, Feeds: rendered,
			Pushes: pushStatus{{Target: "sftp", LastAttempt: time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC), LastSuccess: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Error: "x"}}}, 200,
			`"push.sftp":"failing since 2026-11-01T00:00:00Z (last success), last attempt 2026-11-02T03:04:05Z"`},
		{"push ok", Config{Storage: pinger{}, Catalog: infoStore{has: true}, Feeds: rendered,
			Pushes: pushStatus{{Target: "sftp", LastAttempt: time.Now(), LastSuccess: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Items: 12, Rejected: 1}}}, 200, `"push.sftp":"ok: 2026-11-01T00:00:00Z"`},
		{"push never ran", Config{Storage: pinger{}, Catalog: infoStore{has: true}, Feeds: rendered,
			Pushes: pushStatus{{Target: "sftp"}}}, 200, `"push.sftp":"not yet"`},
		{"failed sync still ready on the last snapshot", Config{Storage: pinger{}, Catalog: infoStore{has: true}, Sync: syncStatus{catalog.Status{LastError: "store unreachable"}}, Feeds: rendered}, 200, "failed: store unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			tt.cfg.Logger = quietLogger(&logs)
			rec := do(t, New(tt.cfg), http.MethodGet, "/readyz", nil, nil)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.check) {
				t.Fatalf("got %d %s, want %d containing %q", rec.Code, rec.Body, tt.code, tt.check)
			}
		})
	}
	// The public /readyz carries no push details: no feed id, refused
	// products or the agent's words, server addresses or error text.
	details := pushStatus{{Target: "feed_api", RemoteID: "feed_secretish_42", LastAttempt: time.Now(), Error: "sftp: host key mismatch at 10.1.2.3:2222",
		Rejected: 1, RejectedSample: []bridge.RejectedProduct{{ProductID: "p-hidden", Reason: "agent says GTIN 0123"}}}}
	rec := do(t, New(Config{Storage: pinger{}, Catalog: infoStore{has: true}, Feeds: rendered, Pushes: details, Logger: quietLogger(&bytes.Buffer{})}),
		http.MethodGet, "/readyz", nil, nil)
	for _, leak := range []string{"feed_secretish_42", "10.1.2.3", "p-hidden", "GTIN", "host key", `"push":`} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("/readyz shows %q: %s", leak, rec.Body)
		}
	}
}

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	h := New(Config{Logger: quietLogger(&logs), MaxBodyBytes: 2048})
	// Mount test routes on the same chain by wrapping the router.
	r := mux.NewRouter()
	r.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, http.StatusRequestEntityTooLarge, acp.InvalidRequest, "request_too_large", err.Error())
			return
		}
		_, _ = w.Write(b)
	})
	chain := chain(quietLogger(&logs), 2048, r)

	rec := do(t, chain, http.MethodGet, "/panic", nil, map[string]string{"X-Request-Id": "abc-123"})
	var eb struct{ Type, Code, Message string }
	if rec.Code != 500 || json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Code != "internal_error" {
		t.Errorf("panic: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("X-Request-Id") != "abc-123" {
		t.Errorf("caller's request id not echoed: %q", rec.Header().Get("X-Request-Id"))
	}
	if !strings.Contains(logs.String(), `"request_id":"abc-123"`) || !strings.Contains(logs.String(), "panic serving request") {
		t.Errorf("panic not logged with request id: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"path":"/panic","status":500`) {
		t.Errorf("the panicking request has no access-log line with its 500: %s", logs.String())
	}

	rec = do(t, chain, http.MethodPost, "/echo", strings.NewReader(strings.Repeat("x", 4096)), nil)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", rec.Code)
	}
	rec = do(t, chain, http.MethodPost, "/echo", strings.NewReader("hello"), map[string]string{"X-Request-Id": "bad id with spaces"})
	if rec.Code != 200 || rec.Body.String() != "hello" {
		t.Errorf("small body: %d %s", rec.Code, rec.Body)
	}
	if id := rec.Header().Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("insane caller id must be replaced, got %q", id)
	}

	rec = do(t, h, http.MethodGet, "/healthz?token=s3cret", nil, nil)
	if rec.Code != 200 || strings.Contains(logs.String(), "s3cret") {
		t.Errorf("healthz %d; query strings must not be logged: %s", rec.Code, logs.String())
	}
	rec = do(t, h, http.MethodDelete, "/healthz", nil, nil)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /healthz: %d", rec.Code)
	}
	rec = do(t, h, http.MethodGet, "/metrics", nil, nil)
	if !strings.Contains(rec.Body.String(), `bridge_http_requests_total{code="200",method="GET",route="/healthz"} 1`) {
		t.Errorf("metrics by route template missing:\n%s", rec.Body)
	}
}

func TestFeedFiles(t *testing.T) {
	dir := t.TempDir()
	// openai.csv.gz is not configured: never served, even when on disk.
	ff := NewFeedFiles(dir, 15*time.Minute, []string{"feed.json", "acp/products.jsonl.gz", "acp/metadata.json", "openai.jsonl.gz"})
	var logs bytes.Buffer
	h := New(Config{Logger: quietLogger(&logs), Feeds: ff})

	rec := do(t, h, http.MethodGet, "/feeds/openai.jsonl.gz", nil, nil)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "feed_not_ready") {
		t.Fatalf("before render: %d %s", rec.Code, rec.Body)
	}
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("feed.json", `{"meta":{},"products":[]}`)
	write("acp/metadata.json", `{"id":"feed_x"}`)
	write("openai.csv.gz", "stale file of a format dropped from the config")
	if err := ff.Refresh(); err != nil {
		t.Fatal(err)
	}
	rec = do(t, h, http.MethodGet, "/api/commerce/feed.json", nil, nil)
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || rec.Body.String() != `{"meta":{},"products":[]}` || rec.Header().Get("Cache-Control") != "public, max-age=900" || etag == "" {
		t.Fatalf("feed.json: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := do(t, h, http.MethodGet, "/api/commerce/feed.json", nil, map[string]string{"If-None-Match": etag}); rec.Code != 304 {
		t.Errorf("If-None-Match: %d", rec.Code)
	}
	if rec := do(t, h, http.MethodHead, "/api/commerce/feed.json", nil, nil); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d %d bytes", rec.Code, rec.Body.Len())
	}
	if rec := do(t, h, http.MethodGet, "/feeds/acp/metadata.json", nil, nil); rec.Code != 200 {
		t.Errorf("metadata: %d", rec.Code)
	}
	// A configured format not rendered yet, and a format not configured
	// (whose old file is still on disk), are not served.
	if rec := do(t, h, http.MethodGet, "/feeds/openai.jsonl.gz", nil, nil); rec.Code != 503 {
		t.Errorf("configured, not rendered: %d, want 503", rec.Code)
	}
	if rec := do(t, h, http.MethodGet, "/feeds/openai.csv.gz", nil, nil); rec.Code != 404 || !strings.Contains(rec.Body.String(), "feed_not_enabled") {
		t.Errorf("not configured: %d %s, want 404 feed_not_enabled", rec.Code, rec.Body)
	}
	// New content, new ETag; same content, same ETag (a content hash).
	write("feed.json", `{"meta":{},"products":[1]}`)
	if err := ff.Refresh(); err != nil {
		t.Fatal(err)
	}
	rec = do(t, h, http.MethodGet, "/api/commerce/feed.json", nil, map[string]string{"If-None-Match": etag})
	if rec.Code != 200 || rec.Header().Get("ETag") == etag {
		t.Errorf("changed feed: %d etag %s (old %s)", rec.Code, rec.Header().Get("ETag"), etag)
	}
}

// TestFeedFilesServeWhatWasHashed: after a render renames a new file into
// place but before Refresh, requests still get the old bytes under the old
// ETag, never new bytes under an old ETag.
func TestFeedFilesServeWhatWasHashed(t *testing.T) {
	dir := t.TempDir()
	ff := NewFeedFiles(dir, time.Minute, allFeeds)
	h := New(Config{Logger: quietLogger(&bytes.Buffer{}), Feeds: ff})
	path := filepath.Join(dir, "feed.json")
	if err := os.WriteFile(path, []byte(`{"v":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ff.Refresh(); err != nil {
		t.Fatal(err)
	}
	first := do(t, h, http.MethodGet, "/api/commerce/feed.json", nil, nil)
	// A render replaces the file the way feed.Build does: write, rename.
	tmp := filepath.Join(dir, ".feed.json.tmp")
	if err := os.WriteFile(tmp, []byte(`{"v":2,"more":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	mid := do(t, h, http.MethodGet, "/api/commerce/feed.json", nil, nil)
	if mid.Body.String() != `{"v":1}` || mid.Header().Get("ETag") != first.Header().Get("ETag") {
		t.Fatalf("before Refresh: body %s etag %s, want the old file under the old ETag", mid.Body, mid.Header().Get("ETag"))
	}
	if err := ff.Refresh(); err != nil {
		t.Fatal(err)
	}
	after := do(t, h, http.MethodGet, "/api/commerce/feed.json", nil, nil)
	if after.Body.String() != `{"v":2,"more":true}` || after.Header().Get("ETag") == first.Header().Get("ETag") {
		t.Fatalf("after Refresh: body %s etag %s", after.Body, after.Header().Get("ETag"))
	}
	// The retired generation's handles are closed once unused.
	ff.mu.RLock()
	cur := ff.gen
	ff.mu.RUnlock()
	if cur.refs.Load() != 0 {
		t.Errorf("references leak: %d", cur.refs.Load())
	}
}

var allFeeds = []string{"feed.json", "openai.jsonl.gz", "openai.csv.gz", "openai.tsv.gz", "acp/products.jsonl.gz", "acp/metadata.json"}

// The store adapter's webhook handler is mounted at /webhooks/<adapter>,
// POST only, behind the same middleware as every route.
func TestStoreWebhooksMounted(t *testing.T) {
	var logs bytes.Buffer
	hits := 0
	hook := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits++; w.WriteHeader(http.StatusOK) })
	h := New(Config{Logger: quietLogger(&logs), StoreWebhooks: map[string]http.Handler{"woocommerce": hook}, MaxBodyBytes: 2048})
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/webhooks/woocommerce", 200},
		{http.MethodGet, "/webhooks/woocommerce", 405},
		{http.MethodPost, "/webhooks/shopify", 404},
	}
	for _, tt := range tests {
		if rec := do(t, h, tt.method, tt.path, strings.NewReader("{}"), nil); rec.Code != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.status)
		}
	}
	if hits != 1 {
		t.Errorf("the handler ran %d times", hits)
	}
	if rec := do(t, New(Config{Logger: quietLogger(&logs)}), http.MethodPost, "/webhooks/woocommerce", nil, nil); rec.Code != 404 {
		t.Errorf("without a store handler: %d", rec.Code)
	}
}
