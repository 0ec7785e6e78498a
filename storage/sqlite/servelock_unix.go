//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// lockExclusive takes an exclusive flock on path (created if missing)
// without waiting; errHeld when another process holds it. The kernel drops
// it when the process dies, so a crash never leaves a stale lock.
func lockExclusive(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errHeld
		}
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
