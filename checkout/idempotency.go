package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/acp-bridge/bridge"
)

// step does the work of one idempotent request. idem is the record to
// write with the change (nil without a key) and op how to write it. A
// returned error is one of storage's idempotency or staleness errors: the
// change was not made and the request is looked at again.
type step func(ctx context.Context, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error)

// idempotent runs do at most once per (owner, operation, key): a retry with
// the same body gets the stored answer, another body a conflict, and a retry
// while the first request still runs "in flight". The record is written in
// the same transaction as the change it guards, so the two cannot part.
func (e *Engine) idempotent(ctx context.Context, c Caller, do step) Result {
	if c.Key == "" {
		for range 5 {
			res, err := do(ctx, nil, bridge.IdemNone)
			switch {
			case err == nil:
				return res
			case !errors.Is(err, bridge.ErrStale):
				return fail(internal("checkout", err))
			}
			// Another request changed the session: start again from it.
		}
		return fail(errorf(KindConflict, "concurrent_update", "", "the session is being changed by other requests; retry"))
	}
	scope := c.Owner + " " + c.Op
	for attempt := range 5 {
		// Most keys are new: the first attempt does not look the key up but
		// lets the insert, in the change's own transaction, find a used one;
		// nothing is written then, and the next attempt looks.
		var rec bridge.IdempotencyRecord
		err := bridge.ErrNotFound
		if attempt > 0 {
			rec, err = e.Store.Idempotency(ctx, scope, c.Key)
		}
		op := bridge.IdemInsert
		switch {
		case err == nil:
			if rec.RequestHash != c.BodyHash {
				return fail(errorf(KindIdemConflict, "idempotency_conflict", "",
					"Idempotency-Key %q was already used with a different request body; use a new key for a new request", c.Key))
			}
			if rec.Done {
				return e.replay(rec)
			}
			if e.now().Before(rec.LockedUntil) {
				wait := max(rec.LockedUntil.Sub(e.now()).Round(time.Second), time.Second)
				return Result{Err: errorf(KindInFlight, "idempotency_in_flight", "",
					"a request with Idempotency-Key %q is still being processed; retry after it finishes", c.Key), RetryAfter: min(wait, 5*time.Second)}
			}
			// The first request's process died holding the key: take over.
			op = bridge.IdemTakeover
		case errors.Is(err, bridge.ErrNotFound):
		default:
			return fail(internal("read idempotency record", err))
		}
		now := e.now()
		fresh := &bridge.IdempotencyRecord{Scope: scope, Key: c.Key, RequestHash: c.BodyHash, Token: newID("tok_"),
			CreatedAt: now, ExpiresAt: now.Add(e.IdempotencyTTL)}
		res, err := do(ctx, fresh, op)
		switch {
		case err == nil && attempt == 0 && res.Err != nil && !res.Err.Stored():
			// An answer that writes nothing (a 5xx, "in progress") says
			// nothing about the key: if it was used, answer as it says.
			if _, rerr := e.Store.Idempotency(ctx, scope, c.Key); rerr == nil {
				continue
			}
			return res
		case err == nil:
			return res
		case errors.Is(err, bridge.ErrIdempotencyExists), errors.Is(err, bridge.ErrIdempotencyLost), errors.Is(err, bridge.ErrStale):
			// Another request got there first: look again, and answer as
			// it did (same key) or work on the session it left.
			continue
		default:
			return fail(internal("checkout", err))
		}
	}
	return Result{Err: errorf(KindInFlight, "idempotency_in_flight", "", "requests with Idempotency-Key %q are racing; retry", c.Key), RetryAfter: time.Second}
}

func (e *Engine) replay(rec bridge.IdempotencyRecord) Result {
	var o outcome
	if err := json.Unmarshal(rec.Outcome, &o); err != nil || (o.Session == nil && o.Err == nil) {
		return fail(internal("replay", errors.New("stored answer unreadable")))
	}
	return Result{Session: o.Session, Err: o.Err, Created: o.Created, Replayed: true}
}

// finished is idem carrying its answer.
func (e *Engine) finished(idem *bridge.IdempotencyRecord, o outcome) (*bridge.IdempotencyRecord, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	rec := *idem
	rec.Done = true
	rec.Outcome = b
	rec.LockedUntil = time.Time{}
	return &rec, nil
}

// inFlight is idem as a claim held while a payment runs.
func (e *Engine) inFlight(idem *bridge.IdempotencyRecord) *bridge.IdempotencyRecord {
	rec := *idem
	rec.Done = false
	rec.Outcome = nil
	rec.LockedUntil = e.now().Add(e.ClaimLease)
	return &rec
}
