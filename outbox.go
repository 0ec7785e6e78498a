package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Job is one unit of work that must happen after a commit, however often the
// bridge, the store or the network fail: write an order to the store,
// capture or release its payment, tell the agent. Jobs are written in the
// same transaction as the change that makes them necessary (Change.Jobs), so
// none is lost, and run by the outbox worker until done or dead.
type Job struct {
	// ID is unique; an insert of an existing ID changes nothing, so a
	// change retried after a crash does not queue its jobs twice.
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	OrderID string    `json:"order_id,omitempty"`
	Status  JobStatus `json:"status"`
	// Payload is the kind's own data (a webhook's event, say), fixed when
	// the job is queued: every attempt does the same thing.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Attempts counts the runs started; NextRunAt is when the job is due;
	// LastError says why the last run failed.
	Attempts  int       `json:"attempts"`
	NextRunAt time.Time `json:"next_run_at"`
	LastError string    `json:"last_error,omitempty"`
	// Token and LeaseUntil describe a claim: a worker that claimed the job
	// owns it until LeaseUntil, and only its token can finish it. A job
	// whose lease passed (its worker died) can be claimed again.
	Token      string    `json:"-"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// JobStatus is where a job stands.
type JobStatus string

// Job statuses. Pending jobs run when due; done, dead and canceled jobs
// never run again unless retried by hand (JobRetry).
const (
	JobPending  JobStatus = "pending"
	JobDone     JobStatus = "done"
	JobDead     JobStatus = "dead"
	JobCanceled JobStatus = "canceled"
)

// JobFilter selects jobs to list; zero fields match all.
type JobFilter struct {
	Status  JobStatus
	OrderID string
	Kind    string
	Limit   int
}

// ErrRejected marks a failure no retry can change (an agent answering 422
// to a webhook, say): a job that fails with it stops at once instead of
// retrying until its horizon.
var ErrRejected = errors.New("rejected for good")

// ErrJobBusy is returned by SetJob while a worker runs the job, or once it
// is done or canceled.
var ErrJobBusy = errors.New("job is running or finished")

// ErrLeaseLost is returned when a job's claim was taken over (its lease
// passed and another worker claimed it): the result of the run is dropped.
var ErrLeaseLost = errors.New("job lease lost")

// Outbox keeps jobs. Jobs are queued with Change.Jobs; the worker claims due
// jobs, runs them and records the result with its claim's token.
type Outbox interface {
	// ClaimJobs claims up to limit pending jobs due at now (or whose claim
	// expired), oldest due first, for lease; each gets a fresh Token and
	// one more attempt.
	ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// FinishJob records a claimed job's end: its Status, Attempts,
	// NextRunAt and LastError as given, the claim released. It fails with
	// ErrLeaseLost when j.Token no longer holds the claim. Change (may be
	// empty) is committed in the same transaction, so a job and what it
	// did to its order land together.
	FinishJob(ctx context.Context, j Job, c Change) error
	// ClaimJob claims one job by id, like ClaimJobs; ErrNotFound when it
	// does not exist or is not claimable now (not pending, not due, or
	// claimed by someone else).
	ClaimJob(ctx context.Context, id string, now time.Time, lease time.Duration) (Job, error)
	// Job returns a job by id; ErrNotFound if none.
	Job(ctx context.Context, id string) (Job, error)
	// Jobs lists jobs matching f, most recently updated first.
	Jobs(ctx context.Context, f JobFilter) ([]Job, error)
	// SetJob sets a pending or dead job's status and next run by hand (the
	// CLI's retry); a retry starts its attempts and retry horizon afresh.
	// ErrJobBusy while a worker runs it or once it is done or canceled.
	SetJob(ctx context.Context, id string, status JobStatus, next time.Time) error
	// NextDue returns when the earliest pending job is due (zero: none).
	NextDue(ctx context.Context) (time.Time, error)
}
