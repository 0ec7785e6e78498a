package sftppush

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/internal/fakesftp"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

// TestTidyFailureFailsPush: when an old shard the new set replaces cannot
// be removed, readers may see old shards beside new ones, so the push is
// an error in its recorded state, not a success with a log line.
func TestTidyFailureFailsPush(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse string // a remote name whose removal fails; "" none
		fail   bool
	}{
		{"removals work", "", false},
		{"an old openai shard stays", "openai-part-005", true},
		{"an old acp shard stays", "products-part-004", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			srv := fakesftp.Start(t, "feeds", "pw-0123456789", nil)
			p := &Pusher{Addr: srv.Addr(), User: "feeds", Password: "pw-0123456789", HostKeyFingerprint: srv.Fingerprint(),
				Dir: "feeds", Formats: []feed.Format{feed.FormatOpenAIJSONL, feed.FormatACP}, ShardItems: 20,
				Store: db, Settings: feed.Settings{Merchant: bridge.Merchant{Name: "Shop", URL: "https://shop.example.com", Country: "US", Currency: "USD"}},
				RetryWait: time.Millisecond, Timeout: 5 * time.Second, TempDir: t.TempDir(),
				Log: slog.New(slog.NewTextHandler(&syncbuf.Buffer{}, nil))}
			commit := func(v, n int) {
				storagetest.CommitEach(t, db, bridge.CatalogInfo{Version: fmt.Sprint("v", v), SyncedAt: time.Now().UTC(), Products: n}, n, storagetest.Entry)
			}
			commit(1, 30) // 5 shards per format
			first, err := p.Push(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			p.refuseRemove = func(name string) error {
				if tc.refuse != "" && strings.Contains(name, tc.refuse) {
					return errors.New("permission denied")
				}
				return nil
			}
			commit(2, 12) // 2 shards per format
			st, err := p.Push(t.Context())
			if !tc.fail {
				if err != nil || st.Error != "" || st.Version != "v2" {
					t.Fatalf("push: %v, state %+v", err, st)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "readers may see both") || !strings.Contains(st.Error, tc.refuse) {
				t.Fatalf("push with an old shard left: err %v, state %+v", err, st)
			}
			if !st.LastSuccess.Equal(first.LastSuccess) {
				t.Fatalf("last success moved to %v", st.LastSuccess)
			}
		})
	}
}
