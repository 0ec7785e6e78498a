package sqlite

import (
	"errors"
	"fmt"

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
