//go:build unix

package csv

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// lockFile takes an advisory flock on f (exclusive or shared), polling so
// that ctx can end the wait: another bridge process holds it only for the
// few milliseconds of an append.
func lockFile(ctx context.Context, f *os.File, exclusive bool) (unlock func(), err error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, how|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
