//go:build !unix

package fsx

// LockExclusive is a no-op where flock is not available: the
// one-process rules it guards are then the operator's to keep (README).
func LockExclusive(string) (func(), error) { return func() {}, nil }
