package rowcodec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// The checkout tables keep a session and an order whole, as the JSON of the
// domain type, with copies of the fields the WHERE clauses need in columns
// of their own. An order's Rev is not in its body: it is the row's
// revision, kept in the rev column and filled in by every read.
// Idempotency records are all columns: their lookups and guards read every
// field.
//
// Times are written in UTC. A time int64 nanoseconds cannot hold is clamped
// in a session's or an order's columns, whose body keeps the exact value,
// and refused in an idempotency record or a job, which have no body.

// Change is a bridge.Change checked and encoded for the tables, so that
// nothing that can fail without the database reaches it. The driver writes
// its parts in its own statements, in the order Commit documents.
type Change struct {
	Session *SessionRow
	Order   *OrderRow
	Jobs    []JobRow
	// Release is the order whose hold goes (ReleaseOrderID); HoldID the
	// order Hold is for. Hold is nil when there is nothing to hold.
	Release string
	HoldID  string
	Hold    []bridge.Reservation
	// Checks are the hold's stock checks (Change.StockChecks), one per
	// variant, in variant order (the order a driver takes their locks in).
	Checks []StockCheckRow
	IdemOp bridge.IdempotencyOp
	// Idem is set unless IdemOp is IdemNone.
	Idem *IdemRow
}

// SessionRow is a session with the copies of its fields that the columns
// keep in step with the body.
type SessionRow struct {
	ID, Owner, Status string
	Rev               int64
	// Expires is MaxInt64 for a session without expiry: never purged.
	Expires, UpdatedAt int64
	Body               []byte
	// Session is what Body encodes (times in UTC). It shares memory with
	// the caller's session: a driver that keeps it (a cache) copies it.
	Session bridge.Session
}

// OrderRow is an order with the copies of its fields that the columns
// keep in step with the body (status, payment_ref, created_at, updated_at).
type OrderRow struct {
	ID, SessionID, Owner, Status, PaymentRef string
	// Rev is Order.Rev: 0 replaces whatever is stored, 1 inserts, n
	// writes over n − 1.
	Rev                  int64
	CreatedAt, UpdatedAt int64
	Body                 []byte
}

// IdemRow is an idempotency record's columns. Outcome is packed
// (PackOutcome); nil is NULL.
type IdemRow struct {
	Scope, Key, Hash, Token  string
	Locked, Created, Expires int64
	Done                     bool
	Outcome                  []byte
}

// EncodeChange checks c and encodes it for the tables.
func EncodeChange(c bridge.Change) (*Change, error) {
	w := &Change{Release: c.ReleaseOrderID, IdemOp: c.IdemOp}
	if s := c.Session; s != nil {
		if s.ID == "" {
			return nil, errors.New("session without id")
		}
		if s.Rev < 1 {
			return nil, fmt.Errorf("session %q: revision %d, want 1 or more", s.ID, s.Rev)
		}
		u := s.UTC()
		body, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("session %q: %w", s.ID, err)
		}
		expires := int64(math.MaxInt64) // no expiry: never purged
		if !u.ExpiresAt.IsZero() {
			expires = ClampNano(u.ExpiresAt)
		}
		w.Session = &SessionRow{
			ID: u.ID, Owner: u.Owner, Status: string(u.Status), Rev: u.Rev,
			Expires: expires, UpdatedAt: ClampNano(u.UpdatedAt), Body: body, Session: u,
		}
	}
	if o := c.Order; o != nil {
		if o.ID == "" {
			return nil, errors.New("order without id")
		}
		if o.Rev < 0 {
			return nil, fmt.Errorf("order %q: revision %d, want 0 (replace) or 1 or more", o.ID, o.Rev)
		}
		u := orderUTC(*o)
		body, err := json.Marshal(u)
		if err != nil {
			return nil, fmt.Errorf("order %q: %w", o.ID, err)
		}
		w.Order = &OrderRow{
			ID: u.ID, SessionID: u.SessionID, Owner: u.Owner, Status: u.Status, PaymentRef: u.PaymentRef,
			Rev: u.Rev, CreatedAt: ClampNano(u.CreatedAt), UpdatedAt: ClampNano(u.UpdatedAt), Body: body,
		}
	}
	for i := range c.Jobs {
		r, err := encodeJob(&c.Jobs[i])
		if err != nil {
			return nil, err
		}
		w.Jobs = append(w.Jobs, r)
	}
	if len(c.Hold) > 0 {
		if err := CheckHold(c.HoldOrderID, c.Hold); err != nil {
			return nil, fmt.Errorf("hold: %w", err)
		}
		w.HoldID, w.Hold = c.HoldOrderID, c.Hold
	}
	if len(c.StockChecks) > 0 {
		checks, err := encodeChecks(c.Hold, c.StockChecks)
		if err != nil {
			return nil, fmt.Errorf("order %q: stock check: %w", c.HoldOrderID, err)
		}
		w.Checks = checks
	}
	switch c.IdemOp {
	case bridge.IdemNone:
		return w, nil
	case bridge.IdemInsert, bridge.IdemFinish, bridge.IdemRelease, bridge.IdemTakeover:
	default:
		return nil, fmt.Errorf("unknown idempotency operation %d", c.IdemOp)
	}
	r := c.Idempotency
	if r == nil {
		return nil, fmt.Errorf("idempotency operation %d without a record", c.IdemOp)
	}
	if r.Scope == "" || r.Key == "" {
		return nil, fmt.Errorf("idempotency record without scope or key (%q, %q)", r.Scope, r.Key)
	}
	if r.Token == "" && c.IdemOp != bridge.IdemInsert {
		// Finish and Release match the claim by token, Takeover makes a new
		// claim: an empty token would match or make anyone's.
		return nil, fmt.Errorf("idempotency key %q: operation %d without a claim token", r.Key, c.IdemOp)
	}
	if r.ExpiresAt.IsZero() && c.IdemOp != bridge.IdemRelease {
		// It would be expired, hence invisible, from the start.
		return nil, fmt.Errorf("idempotency key %q: record without expiry", r.Key)
	}
	w.Idem = &IdemRow{Scope: r.Scope, Key: r.Key, Hash: r.RequestHash, Token: r.Token, Done: r.Done, Outcome: PackOutcome(r.Outcome)}
	for _, t := range []struct {
		name string
		t    time.Time
		dst  *int64
	}{
		{"locked_until", r.LockedUntil, &w.Idem.Locked},
		{"created_at", r.CreatedAt, &w.Idem.Created},
		{"expires_at", r.ExpiresAt, &w.Idem.Expires},
	} {
		n, err := ToNano(t.t)
		if err != nil {
			return nil, fmt.Errorf("idempotency key %q: %s: %w", r.Key, t.name, err)
		}
		*t.dst = n
	}
	return w, nil
}

// Empty reports whether the change writes nothing.
func (w *Change) Empty() bool {
	return w.Session == nil && w.Order == nil && w.Jobs == nil && w.Release == "" && w.Hold == nil && w.IdemOp == bridge.IdemNone
}

// orderUTC returns o with every time in UTC, the form it is stored and
// read back in, sharing no slice it changes with o (the caller's).
func orderUTC(o bridge.Order) bridge.Order {
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if o.Fulfillments != nil {
		fs := slices.Clone(o.Fulfillments)
		for i := range fs {
			if fs[i].Events != nil {
				evs := slices.Clone(fs[i].Events)
				for j := range evs {
					evs[j].OccurredAt = evs[j].OccurredAt.UTC()
				}
				fs[i].Events = evs
			}
		}
		o.Fulfillments = fs
	}
	if o.Adjustments != nil {
		as := slices.Clone(o.Adjustments)
		for i := range as {
			as[i].OccurredAt = as[i].OccurredAt.UTC()
		}
		o.Adjustments = as
	}
	if o.History != nil {
		hs := slices.Clone(o.History)
		for i := range hs {
			hs[i].At = hs[i].At.UTC()
		}
		o.History = hs
	}
	return o
}

// DecodeOrder is an order's body with the revision from its column (the
// body does not carry it: Rev is the row's, not the order's).
func DecodeOrder(rev int64, body []byte) (bridge.Order, error) {
	var o bridge.Order
	if err := json.Unmarshal(body, &o); err != nil {
		return bridge.Order{}, err
	}
	o.Rev = rev
	return o, nil
}

// IdemColumns are the columns of idempotency_keys IdemScanner reads, in
// its order (scope and key are the lookup's).
const IdemColumns = `request_hash, token, locked_until, done, outcome, created_at, expires_at`

// IdemScanner reads a row of IdemColumns into a bridge.IdempotencyRecord.
type IdemScanner struct {
	r                        bridge.IdempotencyRecord
	locked, created, expires int64
}

// Dest returns the scan destinations of IdemColumns.
func (s *IdemScanner) Dest() []any {
	return []any{&s.r.RequestHash, &s.r.Token, &s.locked, &s.r.Done, &s.r.Outcome, &s.created, &s.expires}
}

// Record returns the record of scope and key scanned, times in UTC.
func (s *IdemScanner) Record(scope, key string) (bridge.IdempotencyRecord, error) {
	r := s.r
	r.Scope, r.Key = scope, key
	var err error
	if r.Outcome, err = UnpackOutcome(r.Outcome); err != nil {
		return bridge.IdempotencyRecord{}, fmt.Errorf("outcome: %w", err)
	}
	r.LockedUntil, r.CreatedAt, r.ExpiresAt = FromNano(s.locked), FromNano(s.created), FromNano(s.expires)
	return r, nil
}

// StockCheckRow is a bridge.StockCheck with the variants whose holds it
// counts (VariantID and those it shares its figure with, sorted, once
// each), what the hold takes of them (its lines added up) and Since in
// nanoseconds (0: every order).
type StockCheckRow struct {
	VariantID        string
	Variants         []string
	OnHand, Quantity int64
	Since            int64
}

// encodeChecks pairs each check with what hold takes of its variant. A
// check without a hold, of a variant the hold does not take, or twice for
// one variant is the caller's mistake: refused, not guessed at.
func encodeChecks(hold []bridge.Reservation, checks []bridge.StockCheck) ([]StockCheckRow, error) {
	if len(hold) == 0 {
		return nil, errors.New("stock checks without a hold")
	}
	held := map[string]int64{}
	for _, l := range hold {
		held[l.VariantID] += l.Quantity
	}
	rows := make([]StockCheckRow, 0, len(checks))
	for _, c := range checks {
		if _, ok := held[c.VariantID]; !ok {
			return nil, fmt.Errorf("variant %q is checked but not held", c.VariantID)
		}
		group := slices.Sorted(slices.Values(append([]string{c.VariantID}, c.Shared...)))
		group = slices.Compact(group)
		var q int64
		for _, v := range group {
			if v == "" {
				return nil, fmt.Errorf("variant %q shares its stock with an empty variant id", c.VariantID)
			}
			q += held[v]
		}
		var since int64
		if !c.Since.IsZero() {
			since = ClampNano(c.Since)
		}
		rows = append(rows, StockCheckRow{VariantID: c.VariantID, Variants: group, OnHand: c.OnHand, Quantity: q, Since: since})
	}
	slices.SortFunc(rows, func(a, b StockCheckRow) int { return strings.Compare(a.VariantID, b.VariantID) })
	for i := 1; i < len(rows); i++ {
		if rows[i].VariantID == rows[i-1].VariantID {
			return nil, fmt.Errorf("variant %q is checked twice", rows[i].VariantID)
		}
	}
	return rows, nil
}

// CheckHold refuses what Reserve and a Change's hold must not record.
func CheckHold(orderID string, lines []bridge.Reservation) error {
	if orderID == "" {
		return errors.New("empty order id")
	}
	if len(lines) == 0 {
		// Recording an order with no lines would make every later Reserve
		// of it a no-op; that is never what the caller meant.
		return fmt.Errorf("order %q: no lines", orderID)
	}
	for _, l := range lines {
		if l.VariantID == "" {
			return fmt.Errorf("order %q: line without variant id", orderID)
		}
		if l.Quantity <= 0 {
			return fmt.Errorf("order %q: variant %q: quantity %d is not positive", orderID, l.VariantID, l.Quantity)
		}
	}
	return nil
}
