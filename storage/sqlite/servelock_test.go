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
