package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TryLock takes the lock name for this process unless another holds it
// (on this replica or another), without waiting: ok reports whether it was
// taken. The lock is a session advisory lock on a connection of its own,
// held until release is called (once; later calls do nothing) or the DB
// closes; a process that dies loses its connection and with it the lock,
// so a lock is never left behind. Locks are per schema. It is meant for
// work one replica does for all (the catalog sync, whose snapshot the
// others read), and holds a pool connection while held.
func (d *DB) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: lock %q: %w", name, err)
	}
	l := &heldLock{conn: conn, name: name}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, `+lockKey+`)`, lockNamed, name).Scan(&ok); err != nil || !ok {
		conn.Release()
		if err != nil {
			return nil, false, fmt.Errorf("postgres: lock %q: %w", name, err)
		}
		return nil, false, nil
	}
	d.mu.Lock()
	closed := d.closed
	if !closed {
		d.locks[l] = struct{}{}
	}
	d.mu.Unlock()
	if closed {
		l.release()
		return nil, false, errors.New("postgres: lock: database closed")
	}
	return func() {
		d.mu.Lock()
		delete(d.locks, l)
		d.mu.Unlock()
		l.release()
	}, true, nil
}

// lockKey is the second key of a named lock ($2: the name).
const lockKey = `hashtext(current_schema() || ':' || $2)`

// heldLock is a lock TryLock took, with the connection that holds it.
type heldLock struct {
	once sync.Once
	conn *pgxpool.Conn
	name string
}

// release lets go of the lock and gives the connection back; once.
func (l *heldLock) release() {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// A connection that cannot say it let go of the lock is closed,
		// which lets go of it, rather than pooled still holding it.
		if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, `+lockKey+`)`, lockNamed, l.name); err != nil {
			l.conn.Conn().Close(ctx)
		}
		l.conn.Release()
	})
}
