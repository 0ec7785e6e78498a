package sqlite

import "fmt"

// ServeLock takes the database's serving lock, held until unlock: one bridge
// process serves a SQLite file. The driver relies on it — at start,
// ReleaseClaims frees the claims and job leases the previous process left,
// which would take running work away from a second live process (a rolling
// deploy that overlaps, a second `serve` started by mistake) and let both
// write the same order to the store. The CLI's commands do not take it: they
// read, or queue jobs for the server to run.
func (d *DB) ServeLock() (unlock func(), err error) {
	unlock, err = lockExclusive(d.file + ".serve.lock")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", d.file, err)
	}
	return unlock, nil
}
