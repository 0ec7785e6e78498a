// Package rowcodec turns the domain's values into the rows the SQL storage
// drivers (storage/sqlite, storage/postgres) write, and their rows back
// into values. Both drivers keep the same tables in their own dialects, so
// everything between a bridge.Change and the parameters of a statement is
// the same for both: what a change may hold (checked here, before anything
// reaches the database, so that a change that cannot be written never
// takes a lock or a round trip), the form it is stored in (times as Unix
// nanoseconds in UTC, sessions and orders as the JSON of the domain type,
// idempotency outcomes s2-compressed) and how a row is read back. The
// drivers keep their SQL, their transactions and their concurrency; this
// package does no I/O.
//
// Errors name what is wrong with the value (the checks of a whole call
// name the call too: "claim jobs: …"), never the driver: callers prefix
// them ("sqlite: commit: …"), so both drivers say the same in their own
// names.
package rowcodec

import (
	"fmt"
	"math"
	"time"
)

// Columns hold times as Unix nanoseconds, which int64 can hold from 1678
// to 2262. The zero time is 0.
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// ToNano encodes t as Unix nanoseconds; the zero time is 0. A time out of
// range is an error: for columns that are the only copy of a time (an
// idempotency record's, a job's), where a clamped value would come back
// as another time.
func ToNano(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minNano) || t.After(maxNano) {
		return 0, fmt.Errorf("time %v is out of range (years 1678 to 2262)", t)
	}
	return t.UnixNano(), nil
}

// ClampNano is ToNano for columns that only order or select rows (a
// session's or an order's body keeps the exact time): out-of-range times
// become the smallest or largest integer.
func ClampNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// FromNano decodes ToNano's integers, in UTC.
func FromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// DefaultListLimit is what a list with limit 0 returns at most.
const DefaultListLimit = 100

// ListLimit checks a list's limit (Orders, Jobs) and applies the default
// to 0.
func ListLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("negative limit %d", n)
	case n == 0:
		return DefaultListLimit, nil
	}
	return n, nil
}

// PurgeCuts checks PurgeExpired's arguments and encodes its two limits:
// idempotency records expire at now, the rest (sessions, webhook events,
// finished jobs) keep longer ago.
func PurgeCuts(now time.Time, keep time.Duration) (idem, rest int64, err error) {
	if keep < 0 {
		return 0, 0, fmt.Errorf("purge: negative keep %v", keep)
	}
	return ClampNano(now), ClampNano(now.Add(-keep)), nil
}
