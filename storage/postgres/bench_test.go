package postgres

import (
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/storage/storagetest"
)

// BenchmarkStorage runs the drivers' common benchmarks
// (storagetest.Bench), so that
//
//	BRIDGE_TEST_POSTGRES_DSN=… go test -run '^$' -bench . ./storage/...
//
// compares the drivers; Outbox/two-replicas splits the workers over two
// pools, as two bridges on one database. Skipped without a server. Each
// store is a schema of its own; the server's own settings
// (synchronous_commit, the disk under it) decide most of what a commit
// costs.
func BenchmarkStorage(b *testing.B) {
	baseDSN(b) // one skip, not one per benchmark
	storagetest.Bench(b, storagetest.BenchDriver{
		Open:       func(tb testing.TB) bridge.Storage { return openTest(tb) },
		OpenShared: openShared,
		// Fresh statistics after loading a catalog, as autovacuum would
		// gather them soon after.
		Analyze: func(tb testing.TB, s bridge.Storage) {
			if _, err := s.(*DB).pool.Exec(tb.Context(), `ANALYZE`); err != nil {
				tb.Fatal(err)
			}
		},
	})
}
