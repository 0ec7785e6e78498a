//go:build !unix

package sqlite

// lockExclusive is a no-op where flock is not available: the one-process
// rule is then the operator's to keep (README, "Storage").
func lockExclusive(string) (func(), error) { return func() {}, nil }
