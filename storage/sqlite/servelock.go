package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/acp-bridge/bridge/internal/fsx"
)

// ServeLock takes the database's serving lock, held until unlock: one bridge
// process serves a SQLite file. The driver relies on it — at start,
// ReleaseClaims frees the claims and job leases the previous process left,
// which would take running work away from a second live process (a rolling
// deploy that overlaps, a second `serve` started by mistake) and let both
// write the same order to the store. The CLI's commands do not take it: they
// read, or queue jobs for the server to run.
func (d *DB) ServeLock() (unlock func(), err error) {
	unlock, err = fsx.LockExclusive(d.file + ".serve.lock")
	if errors.Is(err, fsx.ErrLocked) {
		err = errors.New("another bridge process is serving this database (one process per SQLite file; use Postgres for several)")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", d.file, err)
	}
	return unlock, nil
}

// TryLock takes the lock name for this process unless another process
// holds it, without waiting: ok reports whether it was taken. It is an
// flock on a file beside the database (<file>.<name>.lock), so it keeps
// `serve` and the CLI's commands on one machine — the only place a SQLite
// file is shared — from doing the same work at once (a feed push). The
// kernel drops it when the process dies. Where flock is missing it always
// succeeds. Within one process the caller serializes.
func (d *DB) TryLock(_ context.Context, name string) (release func(), ok bool, err error) {
	if strings.ContainsAny(name, `/\`) {
		return nil, false, fmt.Errorf("sqlite: lock %q: the name must not contain a path separator", name)
	}
	unlock, err := fsx.LockExclusive(d.file + "." + name + ".lock")
	switch {
	case errors.Is(err, fsx.ErrLocked):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("sqlite: lock %q: %w", name, err)
	}
	return unlock, true, nil
}
