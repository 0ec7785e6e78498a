package storagetest

import (
	"testing"

	"github.com/acp-bridge/bridge"
)

// RunShared runs the suite's concurrency tests with the work spread over
// several stores on one database, as the replicas of a bridge behind a
// load balancer share it: an idempotency key claimed once, a session's
// revisions chained, an outbox job claimed once and the last units of a
// variant held once, whichever store each request reaches. It is for
// drivers meant for several processes (Postgres); open returns n stores on
// one new, empty database and arranges their cleanup on tb.
func RunShared(t *testing.T, open func(tb testing.TB, n int) []bridge.Storage) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, []bridge.Storage)
	}{
		{"ConcurrentIdemInsert", testConcurrentIdemInsert},
		{"ConcurrentSessionChain", testConcurrentSessionChain},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ConcurrentStockChecks", testConcurrentStockChecks},
		{"ConcurrentSharedStock", testConcurrentSharedStock},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, open(t, 2)) })
	}
}
