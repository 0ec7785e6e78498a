//go:build !unix

package fsx

// SyncDir is a no-op where directories cannot be opened for fsync (Windows);
// the file system there makes renames durable with the file.
func SyncDir(string) error { return nil }
