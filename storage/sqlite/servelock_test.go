//go:build unix

package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// A second serving process on the same file is refused while the first
// holds the lock, and allowed once it lets go (or dies: the kernel drops a
// dead process's flock).
func TestServeLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	first := openPath(t, path)
	second := openPath(t, path)
	unlock, err := first.ServeLock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.ServeLock(); err == nil || !strings.Contains(err.Error(), "another bridge process") {
		t.Fatalf("second ServeLock: %v, want refused", err)
	}
	unlock()
	unlock2, err := second.ServeLock()
	if err != nil {
		t.Fatalf("ServeLock after the first let go: %v", err)
	}
	unlock2()
}

// TestTryLock: a named lock is held by one process at a time (two opens of
// one file stand for two processes: flock is per open file), comes free on
// release, and names are apart.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	first, second := openPath(t, path), openPath(t, path)
	release, ok, err := first.TryLock(t.Context(), "feed_push_sftp")
	if err != nil || !ok {
		t.Fatalf("first TryLock: ok=%v err=%v", ok, err)
	}
	if _, ok, err := second.TryLock(t.Context(), "feed_push_sftp"); err != nil || ok {
		t.Fatalf("second TryLock while held: ok=%v err=%v", ok, err)
	}
	other, ok, err := second.TryLock(t.Context(), "feed_push_feed_api")
	if err != nil || !ok {
		t.Fatalf("another name: ok=%v err=%v", ok, err)
	}
	other()
	release()
	again, ok, err := second.TryLock(t.Context(), "feed_push_sftp")
	if err != nil || !ok {
		t.Fatalf("TryLock after release: ok=%v err=%v", ok, err)
	}
	again()
	if _, _, err := first.TryLock(t.Context(), "../x"); err == nil {
		t.Fatal("a name with a path separator was accepted")
	}
}
