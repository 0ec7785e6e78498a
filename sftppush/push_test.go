package sftppush_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/crypto/ssh"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/internal/fakesftp"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/sftppush"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

const (
	user     = "shop"
	password = "pw_0123456789abcdefghij" // long enough to spot in a log
)

var settings = feed.Settings{Merchant: bridge.Merchant{Name: "Example Shop", URL: "https://shop.example.com", Country: "US",
	Currency: "USD", ReturnPolicyURL: "https://shop.example.com/returns"}}

type harness struct {
	db     *sqlite.DB
	srv    *fakesftp.Server
	pusher *sftppush.Pusher
	logs   *syncbuf.Buffer
	snap   int
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := fakesftp.Start(t, user, password, nil)
	logs := &syncbuf.Buffer{}
	h := &harness{db: db, srv: srv, logs: logs}
	h.pusher = &sftppush.Pusher{
		Addr: srv.Addr(), User: user, Password: password, HostKeyFingerprint: srv.Fingerprint(),
		Dir: "feeds", Formats: []feed.Format{feed.FormatOpenAIJSONL, feed.FormatACP},
		Store: db, Settings: settings, RetryWait: time.Millisecond, Timeout: 5 * time.Second,
		TempDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(logs, nil)),
	}
	return h
}

func (h *harness) commit(t *testing.T, n int) {
	t.Helper()
	h.snap++
	storagetest.CommitEach(t, h.db, bridge.CatalogInfo{Version: fmt.Sprintf("v%d", h.snap), SyncedAt: time.Now().UTC(), Products: n}, n, storagetest.Entry)
}

// remote lists the files under the server's feed folder (relative,
// slash-separated).
func (h *harness) remote(t *testing.T) []string {
	t.Helper()
	var out []string
	root := filepath.Join(h.srv.Root, "feeds")
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// lines reads the gzipped JSON lines of remote files.
func (h *harness) lines(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(h.srv.Root, "feeds", name))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return out
}

func (h *harness) push(t *testing.T) bridge.FeedPushState {
	t.Helper()
	st, err := h.pusher.Push(t.Context())
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return st
}

// TestShards: files are cut at ShardItems variants under stable names,
// together hold exactly the catalog, and shards a smaller catalog no
// longer needs are removed.
func TestShards(t *testing.T) {
	h := newHarness(t)
	h.pusher.ShardItems = 20 // 6 products of 3 variants per shard
	h.commit(t, 30)
	st := h.push(t)
	want := []string{
		"acp/metadata.json",
		"acp/products-part-001.jsonl.gz", "acp/products-part-002.jsonl.gz", "acp/products-part-003.jsonl.gz",
		"acp/products-part-004.jsonl.gz", "acp/products-part-005.jsonl.gz",
		"openai-part-001.jsonl.gz", "openai-part-002.jsonl.gz", "openai-part-003.jsonl.gz",
		"openai-part-004.jsonl.gz", "openai-part-005.jsonl.gz",
	}
	if got := h.remote(t); !slices.Equal(got, want) {
		t.Fatalf("remote files:\n got %v\nwant %v", got, want)
	}
	if st.Items != 180 || st.Error != "" || st.Version != "v1" {
		t.Fatalf("state: %+v", st)
	}
	for _, name := range want[6:] {
		if n := len(h.lines(t, name)); n > 20 {
			t.Fatalf("%s holds %d rows, over the shard size 20", name, n)
		}
	}
	// The shards together are the unsharded file, row for row.
	whole := filepath.Join(t.TempDir(), "whole")
	s := settings
	info, _ := h.db.CatalogInfo(t.Context())
	s.GeneratedAt = info.SyncedAt
	if _, err := feed.Build(t.Context(), whole, []feed.Format{feed.FormatOpenAIJSONL}, s, h.db.EachCatalogEntry); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(whole, string(feed.FormatOpenAIJSONL)))
	zr, _ := gzip.NewReader(bytes.NewReader(raw))
	var all bytes.Buffer
	_, _ = all.ReadFrom(zr)
	if got := strings.Join(h.lines(t, want[6:]...), "\n") + "\n"; got != all.String() {
		t.Fatal("the openai shards differ from the unsharded file")
	}
	if got := len(h.lines(t, want[1:6]...)); got != 30 {
		t.Fatalf("acp shards hold %d products, want 30", got)
	}

	// A catalog that fits one shard: the stable single name, old parts gone.
	h.commit(t, 4)
	h.push(t)
	if got, want := h.remote(t), []string{"acp/metadata.json", "acp/products.jsonl.gz", "openai.jsonl.gz"}; !slices.Equal(got, want) {
		t.Fatalf("after shrinking:\n got %v\nwant %v", got, want)
	}
}

// TestShardBytes: a shard is cut before it passes ShardBytes.
func TestShardBytes(t *testing.T) {
	h := newHarness(t)
	h.pusher.Formats = []feed.Format{feed.FormatOpenAICSV}
	h.pusher.ShardBytes = 1 << 20 // the smallest the config allows
	h.commit(t, 12000)            // about 1.1 MB of openai.csv.gz
	h.push(t)
	files := h.remote(t)
	if len(files) < 2 {
		t.Fatalf("files %v: want several shards", files)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(h.srv.Root, "feeds", f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > h.pusher.ShardBytes {
			t.Fatalf("%s is %d bytes, over the shard limit %d", f, fi.Size(), h.pusher.ShardBytes)
		}
	}
}

// TestDroppedConnection: a connection dropped mid-upload is dialed again
// and the upload resumes where the file stopped; until every file is
// complete the stable names keep the previous snapshot.
func TestDroppedConnection(t *testing.T) {
	h := newHarness(t)
	h.pusher.Formats = []feed.Format{feed.FormatOpenAICSV}
	h.commit(t, 3)
	h.push(t)
	old, err := os.ReadFile(filepath.Join(h.srv.Root, "feeds", "openai.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}

	// A bigger catalog; every connection of the first push drops.
	h.commit(t, 1500)
	h.pusher.MaxAttempts = 2
	h.srv.DropNext(40 << 10) // the file is about 140 KB
	h.srv.DropNext(40 << 10)
	if _, err := h.pusher.Push(t.Context()); err == nil {
		t.Fatal("push over two dropped connections succeeded")
	}
	now, err := os.ReadFile(filepath.Join(h.srv.Root, "feeds", "openai.csv.gz"))
	if err != nil || !bytes.Equal(now, old) {
		t.Fatalf("the stable file changed during a failed upload (err %v)", err)
	}
	parts := h.remote(t)
	if len(parts) != 2 || !strings.HasSuffix(parts[0], ".part") {
		t.Fatalf("remote files after the failure: %v, want the partial upload beside the old file", parts)
	}

	// The next push resumes the partial file instead of starting over.
	before := h.srv.Received()
	h.pusher.MaxAttempts = 0
	st := h.push(t)
	sent := h.srv.Received() - before
	if !strings.Contains(h.logs.String(), "resuming upload") || sent >= st.Bytes {
		t.Fatalf("resumed push received %d bytes for a %d-byte file", sent, st.Bytes)
	}
	if got := h.remote(t); !slices.Equal(got, []string{"openai.csv.gz"}) {
		t.Fatalf("remote files: %v", got)
	}
	if n := len(h.lines(t, "openai.csv.gz")); n != 1500*3+1 {
		t.Fatalf("uploaded file has %d lines, want a header and 4500 rows", n)
	}

	// A drop within one push: the same push dials again and completes.
	h.commit(t, 1400)
	h.srv.DropNext(60 << 10)
	conns := h.srv.Connections()
	h.push(t)
	if n := h.srv.Connections() - conns; n != 2 {
		t.Fatalf("%d connections for one drop, want 2", n)
	}
	if n := len(h.lines(t, "openai.csv.gz")); n != 1400*3+1 {
		t.Fatalf("uploaded file has %d lines, want 4201", n)
	}
	if strings.Contains(h.logs.String(), password) {
		t.Fatal("the password reached the logs")
	}
}

// TestHostKey: a server whose key is not the pinned one is refused before
// any credential is offered, and is not dialed again.
func TestHostKey(t *testing.T) {
	h := newHarness(t)
	other := fakesftp.Start(t, user, password, nil)
	h.pusher.HostKeyFingerprint = other.Fingerprint()
	h.commit(t, 3)
	st, err := h.pusher.Push(t.Context())
	if !errors.Is(err, sftppush.ErrHostKey) || !strings.Contains(st.Error, "host key mismatch") {
		t.Fatalf("push to the wrong host: err = %v, state %+v", err, st)
	}
	if h.srv.Auths() != 0 || h.srv.Connections() != 1 || len(h.remote(t)) != 0 {
		t.Fatalf("auths %d, connections %d, files %v", h.srv.Auths(), h.srv.Connections(), h.remote(t))
	}
}

// TestAuthRefused: a login the server refuses fails the push on the
// first connection: no dialing again (a ban for repeated failed logins),
// and no password in the error or the logs.
func TestAuthRefused(t *testing.T) {
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", user, "not-the-password-0123456789"},
		{"wrong user", "someone-else", password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.pusher.User, h.pusher.Password = tc.user, tc.password
			h.commit(t, 3)
			st, err := h.pusher.Push(t.Context())
			if !errors.Is(err, sftppush.ErrAuth) || !strings.Contains(st.Error, "authentication refused") {
				t.Fatalf("push with a refused login: err = %v, state %+v", err, st)
			}
			if h.srv.Connections() != 1 {
				t.Fatalf("%d connections for a refused login, want 1", h.srv.Connections())
			}
			if strings.Contains(h.logs.String()+st.Error, tc.password) {
				t.Fatal("the password reached the logs or the status")
			}
		})
	}
}

// TestPrivateKey: key authentication, and clear errors for keys that
// cannot be used.
func TestPrivateKey(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	plain := pem.EncodeToMemory(block)
	block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := pem.EncodeToMemory(block)

	signer, err := sftppush.ParsePrivateKey(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sftppush.ParsePrivateKey(encrypted, []byte("secret passphrase")); err != nil ||
		!bytes.Equal(s.PublicKey().Marshal(), signer.PublicKey().Marshal()) {
		t.Fatalf("encrypted key with its passphrase: %v", err)
	}
	for _, tc := range []struct {
		name   string
		pem    []byte
		pass   string
		errHas string
	}{
		{"encrypted without passphrase", encrypted, "", "set private_key_passphrase"},
		{"not a key", []byte("-----BEGIN NOTHING-----\nabc\n"), "", "cannot be read"},
		{"wrong passphrase", encrypted, "nope", "cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sftppush.ParsePrivateKey(tc.pem, []byte(tc.pass))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("err = %v, want one containing %q and not the key", err, tc.errHas)
			}
		})
	}

	h := newHarness(t)
	srv := fakesftp.Start(t, user, "", signer.PublicKey())
	h.srv = srv
	h.pusher.Addr, h.pusher.HostKeyFingerprint = srv.Addr(), srv.Fingerprint()
	h.pusher.Password, h.pusher.Signer = "", signer
	h.commit(t, 2)
	h.push(t)
	if got := h.remote(t); len(got) != 3 {
		t.Fatalf("files uploaded with key auth: %v", got)
	}
}

// TestCanceled: a push whose context ends while it runs stops and
// records the failure.
func TestCanceled(t *testing.T) {
	h := newHarness(t)
	h.commit(t, 3)
	ctx, cancel := context.WithCancel(t.Context())
	h.pusher.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
		cancel() // the shutdown arrives as the connection opens
		var d net.Dialer
		return d.DialContext(context.WithoutCancel(ctx), "tcp", addr)
	}
	st, err := h.pusher.Push(ctx)
	if err == nil || st.Error == "" {
		t.Fatalf("canceled push: err %v, state %+v", err, st)
	}
	stored, err := h.db.FeedPushState(t.Context(), sftppush.Target)
	if err != nil || stored.Error == "" || !stored.LastSuccess.IsZero() {
		t.Fatalf("stored state %+v (%v)", stored, err)
	}
	if h.srv.Connections() > 1 {
		t.Fatalf("%d connections after the cancel", h.srv.Connections())
	}
}

// TestPlainRename: a server without posix-rename gets the stable file
// replaced by remove + rename, and the new content is in place.
func TestPlainRename(t *testing.T) {
	fakesftp.WithoutPosixRename(t)
	h := newHarness(t)
	h.pusher.Formats = []feed.Format{feed.FormatOpenAICSV}
	h.commit(t, 3)
	h.push(t)
	h.commit(t, 5)
	h.push(t)
	if got := h.remote(t); !slices.Equal(got, []string{"openai.csv.gz"}) {
		t.Fatalf("remote files: %v", got)
	}
	if n := len(h.lines(t, "openai.csv.gz")); n != 5*3+1 {
		t.Fatalf("file has %d lines, want the new snapshot's 16", n)
	}
}
