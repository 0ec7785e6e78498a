package sqlite

import (
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

// BenchmarkStorage runs the drivers' common benchmarks
// (storagetest.Bench) on a database file in a temporary directory
// (synchronous=FULL: one WAL fsync per transaction). "batch" is the mean
// number of writes per transaction of the group committer (commit.go).
// For the 1M-variant sync:
//
//	go test -run '^$' -bench Storage/CatalogPut -benchtime 333334x ./storage/sqlite
func BenchmarkStorage(b *testing.B) {
	storagetest.Bench(b, storagetest.BenchDriver{
		Open: func(tb testing.TB) bridge.Storage { return openTemp(tb) },
		Commits: func(s bridge.Storage) (transactions, writes int64) {
			c := s.(*DB).commits
			return c.batches.Load(), c.applied.Load()
		},
	})
}
