package sftppush_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

// BenchmarkSFTPPush measures a full snapshot push of 100k products (300k
// variants; BRIDGE_BENCH_PRODUCTS to change it) to the in-process SFTP
// server on loopback: render openai.jsonl.gz from SQLite, upload, rename.
//
//	go test -run '^$' -bench SFTPPush -benchtime 3x ./sftppush/
func BenchmarkSFTPPush(b *testing.B) {
	products := 100_000
	if v, err := strconv.Atoi(os.Getenv("BRIDGE_BENCH_PRODUCTS")); err == nil && v > 0 {
		products = v
	}
	h := newHarness(b)
	storagetest.CommitEach(b, h.db, bridge.CatalogInfo{Version: "v1", SyncedAt: time.Now().UTC(), Products: products}, products, storagetest.Entry)
	h.pusher.Formats = []feed.Format{feed.FormatOpenAIJSONL}
	var st bridge.FeedPushState
	for b.Loop() {
		var err error
		if st, err = h.pusher.Push(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Bytes)/1e6, "file-MB")
	b.ReportMetric(float64(st.Items)*float64(b.N)/b.Elapsed().Seconds(), "variants/s")
}
