package rowcodec

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// The outbox: jobs are rows of outbox_jobs. A job's claim is its token and
// lease_until (0: not leased); next_run_at says when it is due.

// jobColumns are the columns JobScanner reads, in its order.
var jobColumns = []string{"id", "kind", "order_id", "status", "payload", "attempts", "next_run_at", "lease_until",
	"token", "last_error", "created_at", "updated_at"}

// JobColumns lists the columns JobScanner reads, in its order, each
// prefixed with table and a dot when table is given.
func JobColumns(table string) string {
	if table == "" {
		return strings.Join(jobColumns, ", ")
	}
	return table + "." + strings.Join(jobColumns, ", "+table+".")
}

// JobRow is a bridge.Job checked and encoded for outbox_jobs, queued
// unclaimed. Times are Unix nanoseconds; Next and Created are 0 when the
// caller left them zero, and then become the store's now when the row is
// written (Times).
type JobRow struct {
	ID, Kind, OrderID, Status, LastError string
	// Payload is nil for none (NULL).
	Payload       []byte
	Attempts      int64
	Next, Created int64
}

// Times returns the row's next_run_at and created_at written at now (Unix
// nanoseconds): a job left without them is due at once, created now.
func (r *JobRow) Times(now int64) (next, created int64) {
	next, created = r.Next, r.Created
	if next == 0 {
		next = now
	}
	if created == 0 {
		created = now
	}
	return next, created
}

// ValidStatus reports whether s is a status the domain knows.
func ValidStatus(s bridge.JobStatus) bool {
	switch s {
	case bridge.JobPending, bridge.JobDone, bridge.JobDead, bridge.JobCanceled:
		return true
	}
	return false
}

// encodeJob checks a job queued by a Change. Its claim (Token,
// LeaseUntil) is not taken over: a job is queued unclaimed, and whoever
// wants to run it claims it.
func encodeJob(j *bridge.Job) (JobRow, error) {
	if j.ID == "" {
		return JobRow{}, errors.New("job without id")
	}
	if j.Kind == "" {
		return JobRow{}, fmt.Errorf("job %q: no kind", j.ID)
	}
	status := j.Status
	if status == "" {
		status = bridge.JobPending
	}
	if !ValidStatus(status) {
		return JobRow{}, fmt.Errorf("job %q: unknown status %q", j.ID, status)
	}
	if j.Attempts < 0 {
		return JobRow{}, fmt.Errorf("job %q: negative attempts %d", j.ID, j.Attempts)
	}
	// Refused here, although the column would take it: every listing of
	// the job would fail to encode it (json.RawMessage).
	if len(j.Payload) > 0 && !json.Valid(j.Payload) {
		return JobRow{}, fmt.Errorf("job %q: payload is not valid JSON", j.ID)
	}
	r := JobRow{ID: j.ID, Kind: j.Kind, OrderID: j.OrderID, Status: string(status), LastError: j.LastError,
		Payload: j.Payload, Attempts: int64(j.Attempts)}
	var err error
	if r.Next, err = ToNano(j.NextRunAt); err != nil {
		return JobRow{}, fmt.Errorf("job %q: next_run_at: %w", j.ID, err)
	}
	if r.Created, err = ToNano(j.CreatedAt); err != nil {
		return JobRow{}, fmt.Errorf("job %q: created_at: %w", j.ID, err)
	}
	return r, nil
}

// JobScanner reads a row of JobColumns into a bridge.Job.
type JobScanner struct {
	j                             bridge.Job
	status                        string
	payload                       []byte
	attempts                      int64
	next, lease, created, updated int64
}

// Dest returns the scan destinations of JobColumns.
func (s *JobScanner) Dest() []any {
	return []any{&s.j.ID, &s.j.Kind, &s.j.OrderID, &s.status, &s.payload, &s.attempts, &s.next, &s.lease,
		&s.j.Token, &s.j.LastError, &s.created, &s.updated}
}

// Job returns the job scanned, times in UTC.
func (s *JobScanner) Job() bridge.Job {
	j := s.j
	j.Status = bridge.JobStatus(s.status)
	if len(s.payload) > 0 { // NULL and an empty value are both "no payload"
		j.Payload = json.RawMessage(s.payload)
	}
	j.Attempts = int(s.attempts)
	j.NextRunAt, j.LeaseUntil = FromNano(s.next), FromNano(s.lease)
	j.CreatedAt, j.UpdatedAt = FromNano(s.created), FromNano(s.updated)
	return j
}

// MaxClaim bounds one claim: a worker runs a few dozen jobs at once, and a
// claim holds its rows (or SQLite's writer) for the time its UPDATE takes.
const MaxClaim = 1000

// Claim is a ClaimJobs (or a ClaimJob) checked and encoded. Each job's
// token is the claim's Token, a dot and the job's id, so tokens differ
// between jobs as well as between claims.
type Claim struct {
	Token     string
	At, Until int64 // now, and the end of the lease
	Limit     int
}

// NewClaim checks a claim of up to limit jobs due at now for lease; a zero
// now is clock's. It returns nil, and no error, for limit 0: nothing to
// claim.
func NewClaim(now time.Time, lease time.Duration, limit int, clock func() time.Time) (*Claim, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("claim jobs: lease %v is not positive", lease)
	}
	if limit < 0 || limit > MaxClaim {
		return nil, fmt.Errorf("claim jobs: limit %d out of range 0..%d", limit, MaxClaim)
	}
	if limit == 0 {
		return nil, nil
	}
	if now.IsZero() {
		now = clock()
	}
	at, err := ToNano(now)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: now: %w", err)
	}
	until, err := ToNano(now.Add(lease))
	if err != nil || until == math.MaxInt64 { // NextDue adds 1 to lease_until
		return nil, errors.New("claim jobs: lease ends after year 2262")
	}
	var random [16]byte
	rand.Read(random[:]) // never fails (crypto/rand)
	return &Claim{Token: hex.EncodeToString(random[:]), At: at, Until: until, Limit: limit}, nil
}

// Claimed is a job a claim's UPDATE returned, with the row's order of
// insertion (seq: SQLite's rowid, Postgres's sequence).
type Claimed struct {
	seq int64
	js  JobScanner
}

// Dest returns the scan destinations of the seq column followed by
// JobColumns.
func (c *Claimed) Dest() []any {
	return append([]any{&c.seq}, c.js.Dest()...)
}

// ClaimedJobs returns the jobs claimed in the order the claim promises,
// oldest due first and then in the order they were queued: RETURNING
// gives rows in the order they were updated, which is not promised to be
// the subquery's. Nil for none.
func ClaimedJobs(got []Claimed) []bridge.Job {
	type job struct {
		seq int64
		j   bridge.Job
	}
	jobs := make([]job, len(got))
	for i := range got {
		jobs[i] = job{got[i].seq, got[i].js.Job()}
	}
	slices.SortFunc(jobs, func(a, b job) int {
		if c := a.j.NextRunAt.Compare(b.j.NextRunAt); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	var out []bridge.Job
	for _, j := range jobs {
		out = append(out, j.j)
	}
	return out
}

// Finish is a FinishJob's job checked and encoded: the end of a run,
// written over the claim whose Token it holds.
type Finish struct {
	ID, Token, Status, LastError string
	Attempts                     int64
	// Next is 0 when the caller left NextRunAt zero (NextAt).
	Next int64
}

// EncodeFinish checks the job FinishJob is given.
func EncodeFinish(j bridge.Job) (Finish, error) {
	if j.ID == "" {
		return Finish{}, errors.New("finish job: no id")
	}
	if j.Token == "" {
		// An unclaimed job's token is empty: "" would match it.
		return Finish{}, fmt.Errorf("finish job %q: no claim token", j.ID)
	}
	if !ValidStatus(j.Status) {
		return Finish{}, fmt.Errorf("finish job %q: unknown status %q", j.ID, j.Status)
	}
	if j.Attempts < 0 {
		return Finish{}, fmt.Errorf("finish job %q: negative attempts %d", j.ID, j.Attempts)
	}
	next, err := ToNano(j.NextRunAt)
	if err != nil {
		return Finish{}, fmt.Errorf("finish job %q: next_run_at: %w", j.ID, err)
	}
	return Finish{ID: j.ID, Token: j.Token, Status: string(j.Status), LastError: j.LastError,
		Attempts: int64(j.Attempts), Next: next}, nil
}

// NextAt is the job's next_run_at written at now: a pending job left
// without one is due at once.
func (f *Finish) NextAt(now int64) int64 {
	if f.Next == 0 && f.Status == string(bridge.JobPending) {
		return now
	}
	return f.Next
}

// SetJob is a SetJob checked and encoded.
type SetJob struct {
	ID, Status string
	// Next is 0 for now (NextAt).
	Next int64
}

// EncodeSetJob checks SetJob's arguments.
func EncodeSetJob(id string, status bridge.JobStatus, next time.Time) (SetJob, error) {
	if !ValidStatus(status) {
		return SetJob{}, fmt.Errorf("set job %q: unknown status %q", id, status)
	}
	n, err := ToNano(next)
	if err != nil {
		return SetJob{}, fmt.Errorf("set job %q: next: %w", id, err)
	}
	return SetJob{ID: id, Status: string(status), Next: n}, nil
}

// NextAt is the job's next_run_at written at now: zero is now.
func (s *SetJob) NextAt(now int64) int64 {
	if s.Next == 0 {
		return now
	}
	return s.Next
}

// JobFilter returns the conditions of f, each a column that must equal
// its value, in a fixed order; the driver writes them in its dialect.
func JobFilter(f bridge.JobFilter) (cols []string, vals []any) {
	for _, c := range []struct{ col, val string }{
		{"status", string(f.Status)}, {"order_id", f.OrderID}, {"kind", f.Kind},
	} {
		if c.val != "" {
			cols = append(cols, c.col)
			vals = append(vals, c.val)
		}
	}
	return cols, vals
}
