package orders

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/acp-bridge/bridge"
)

// modify applies fn to the order and commits it with a notice for the agent
// when fn reports a change, retrying on a concurrent change of the order.
// It returns whether anything changed.
func (s *Service) modify(ctx context.Context, load func(context.Context) (bridge.Order, error), fn func(o *bridge.Order) (bool, []bridge.Job, error)) (bool, error) {
	for range 8 {
		o, err := load(ctx)
		if err != nil {
			return false, err
		}
		changed, jobs, err := fn(&o)
		if err != nil || !changed {
			return false, err
		}
		c := s.withNotice(o)
		c.Jobs = append(c.Jobs, jobs...)
		if o.Status == bridge.OrderCanceled {
			// Its stock is sold no more: the hold goes with the order.
			c.ReleaseOrderID = o.ID
		}
		err = s.Store.Commit(ctx, c)
		if errors.Is(err, bridge.ErrStale) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("order %s: %w", o.ID, err)
		}
		s.poke()
		return true, nil
	}
	return false, errors.New("the order keeps changing; try again")
}

func (s *Service) byID(id string) func(context.Context) (bridge.Order, error) {
	return func(ctx context.Context) (bridge.Order, error) { return s.Store.Order(ctx, id) }
}

// Update applies news from the store (an adapter's webhook or status file).
// Updates for orders the bridge does not know, or that are not placed, are
// ignored (reported as unchanged); applying the same update again changes
// nothing and tells the agent nothing.
//
// An update naming another store order than the one the bridge wrote (both
// StoreIDs set and different) is about a copy of the order in the store —
// a duplicate, or an admin's copy that kept the bridge's order id — and is
// ignored with a warning: canceling that copy must not refund the order.
func (s *Service) Update(ctx context.Context, u bridge.OrderUpdate) (bool, error) {
	var foreign string
	changed, err := s.modify(ctx, s.byID(u.OrderID), func(o *bridge.Order) (bool, []bridge.Job, error) {
		if !o.Placed() {
			return false, nil, nil
		}
		if u.StoreID != "" && o.StoreID != "" && u.StoreID != o.StoreID {
			foreign = o.StoreID
			return false, nil, nil
		}
		return s.applyUpdate(o, u)
	})
	if foreign != "" {
		// No note on the order: a note is a change the agent is told of,
		// and the poll would report the copy again and again.
		s.log().Warn("store update ignored: it is about another store order carrying this order's id (a copy or duplicate); check it in the store",
			"order", u.OrderID, "store_order", foreign, "update_store_order", u.StoreID, "status", u.Status)
		return false, err
	}
	if err == nil && !changed && u.Status == bridge.OrderCanceled {
		// Canceled already: make sure no stock stays held for it (a write
		// that raced the cancel may have held it again). Idempotent.
		err = s.Store.Commit(ctx, bridge.Change{ReleaseOrderID: u.OrderID})
	}
	if errors.Is(err, bridge.ErrNotFound) {
		s.log().Warn("store reported an update for an order the bridge does not know", "order", u.OrderID)
		return false, nil
	}
	return changed, err
}

// storeNote begins the history note of every change the store reported.
const storeNote = "store update"

// errInvalidUpdate marks an update no retry can apply.
var errInvalidUpdate = errors.New("invalid order update")

func (s *Service) applyUpdate(o *bridge.Order, u bridge.OrderUpdate) (bool, []bridge.Job, error) {
	at := u.At
	if at.IsZero() {
		at = s.now()
	}
	var jobs []bridge.Job
	changed := false
	if f := u.Fulfillment; f != nil {
		if f.ID == "" {
			return false, nil, fmt.Errorf("%w: fulfillment without an id", errInvalidUpdate)
		}
		if upsertFulfillment(o, *f, at) {
			changed = true
		}
	}
	switch {
	case u.Status == "" || !forward(o.Status, u.Status):
	case u.Status == bridge.OrderShipped || u.Status == bridge.OrderCompleted:
		// Shipped or delivered without a fulfillment of its own: the whole
		// order went out.
		if u.Fulfillment == nil {
			for i := range o.Lines {
				o.Lines[i].Fulfilled = o.Lines[i].CurrentQuantity()
			}
		}
	case u.Status == bridge.OrderCanceled:
		zero := int64(0)
		for i := range o.Lines {
			if o.Lines[i].Fulfilled == 0 {
				o.Lines[i].Current = &zero
			}
		}
		// The shop will not ship it: the buyer's money goes back.
		jobs = append(jobs, s.moneyBack(*o, "the store canceled the order")...)
	}
	note := storeNote
	if u.Reason != "" {
		note += ": " + u.Reason
	}
	if u.Status != "" && forward(o.Status, u.Status) && o.SetStatus(at, u.Status, note) {
		changed = true
	} else if changed {
		o.Note(at, note)
	}
	return changed, jobs, nil
}

// progress orders the statuses an order moves through; manual_review is
// off the path and may move anywhere.
var progress = map[string]int{
	bridge.OrderCreated: 1, bridge.OrderConfirmed: 2, bridge.OrderProcessing: 3,
	bridge.OrderShipped: 4, bridge.OrderCompleted: 5,
}

// forward reports whether the store may move an order from status from to
// to. Sources replay old news (a status file is read again after a
// restart), so an order never moves back along its path, and a canceled
// order stays canceled.
func forward(from, to string) bool {
	if from == to || from == bridge.OrderCanceled {
		return false
	}
	f, okf := progress[from]
	t, okt := progress[to]
	return !okf || !okt || t > f
}

// upsertFulfillment adds f or merges it into the fulfillment with its id,
// recording a status change as an event, and marks the lines it covers as
// fulfilled (all of them when it names none).
func upsertFulfillment(o *bridge.Order, f bridge.Fulfillment, at time.Time) bool {
	if f.Type == "" {
		f.Type = "shipping"
	}
	i := -1
	for k := range o.Fulfillments {
		if o.Fulfillments[k].ID == f.ID {
			i = k
		}
	}
	var old bridge.Fulfillment
	if i >= 0 {
		old = o.Fulfillments[i]
		f.Events = old.Events
		if f.Carrier == "" {
			f.Carrier = old.Carrier
		}
		if f.TrackingNumber == "" {
			f.TrackingNumber = old.TrackingNumber
		}
		if f.TrackingURL == "" {
			f.TrackingURL = old.TrackingURL
		}
		if len(f.Lines) == 0 {
			f.Lines = old.Lines
		}
	}
	if len(f.Lines) == 0 {
		for _, l := range o.Lines {
			if q := l.CurrentQuantity(); q > 0 {
				f.Lines = append(f.Lines, bridge.LineRef{ID: l.ID, Quantity: q})
			}
		}
	}
	if f.Status != "" && f.Status != old.Status {
		f.Events = append(f.Events, bridge.FulfillmentEvent{ID: fmt.Sprintf("%s_e%d", f.ID, len(f.Events)+1), Type: f.Status, OccurredAt: at.UTC()})
	}
	if i >= 0 && reflect.DeepEqual(old, f) {
		return false
	}
	if i >= 0 {
		o.Fulfillments[i] = f
	} else {
		o.Fulfillments = append(o.Fulfillments, f)
	}
	if f.Status != "canceled" && f.Status != "failed" && f.Status != "pending" {
		for _, r := range f.Lines {
			for k := range o.Lines {
				if o.Lines[k].ID == r.ID {
					o.Lines[k].Fulfilled = min(max(o.Lines[k].Fulfilled, r.Quantity), o.Lines[k].CurrentQuantity())
				}
			}
		}
	}
	return true
}

// Adjust records what the payment provider reports about an order's payment
// (a refund, a dispute), found by the provider's payment id. Idempotent by
// the adjustment's id.
func (s *Service) Adjust(ctx context.Context, paymentRef string, a bridge.Adjustment) error {
	if a.ID == "" || a.Type == "" {
		return errors.New("adjustment without id or type")
	}
	_, err := s.modify(ctx, func(ctx context.Context) (bridge.Order, error) { return s.Store.OrderByPaymentRef(ctx, paymentRef) },
		func(o *bridge.Order) (bool, []bridge.Job, error) {
			if !o.Placed() {
				return false, nil, nil
			}
			if a.Currency == "" {
				a.Currency = o.Currency
			}
			if !upsertAdjustment(o, a) {
				return false, nil, nil
			}
			if a.Type == "refund" && a.Status == "completed" && o.Refunded() >= o.Total.Amount {
				o.Payment = bridge.PaymentStateRefunded
			}
			o.Note(s.now(), fmt.Sprintf("%s %s: %s", a.Type, a.ID, a.Status))
			return true, nil, nil
		})
	if errors.Is(err, bridge.ErrNotFound) {
		s.log().Info("payment news for a payment no order of this bridge made", "payment_ref", paymentRef, "adjustment", a.ID)
		return nil
	}
	return err
}

// Cancel cancels an order by hand (bridge orders cancel): a pending store
// write stops, money held is released and money taken is refunded, and the
// agent is told. An order already in the store must be canceled there too;
// the note says so.
func (s *Service) Cancel(ctx context.Context, orderID, reason string) error {
	if reason == "" {
		reason = "canceled by the shop"
	}
	changed, err := s.modify(ctx, s.byID(orderID), func(o *bridge.Order) (bool, []bridge.Job, error) {
		if !o.Placed() {
			return false, nil, fmt.Errorf("order %s is not placed (status %s): nothing to cancel", o.ID, o.Status)
		}
		if o.Status == bridge.OrderCanceled {
			return false, nil, nil
		}
		jobs := s.moneyBack(*o, reason)
		note := reason
		if o.StoreID != "" {
			note += " (the order is in the store as " + o.StoreID + ": cancel it there too)"
		}
		zeroLines(o)
		o.SetStatus(s.now(), bridge.OrderCanceled, note)
		return true, jobs, nil
	})
	if err != nil || !changed {
		return err
	}
	// A store write still pending runs now rather than at its backoff: it
	// sees the order canceled and only checks that the store did not get
	// it after all (an earlier attempt's answer may have been lost),
	// recording it if it did. One running right now (ErrJobBusy) sees the
	// cancel when it records its result.
	if j, err := s.Store.Job(ctx, KindStoreWrite+":"+orderID); err == nil && j.Status == bridge.JobPending && j.Attempts > 0 {
		if err := s.Store.SetJob(ctx, j.ID, bridge.JobPending, s.now()); err != nil && !errors.Is(err, bridge.ErrJobBusy) {
			s.log().Warn("bringing a canceled order's store check forward", "order", orderID, "error", err)
		}
	}
	s.poke()
	return nil
}

// moneyBack is the payment job that gives o's money back: release what is
// held, refund what was taken and not refunded yet.
func (s *Service) moneyBack(o bridge.Order, reason string) []bridge.Job {
	payment := o.Payment
	if payment == "" && o.PaymentRef != "" {
		// Paid before the bridge recorded payment states: always charged
		// in full then.
		payment = bridge.PaymentStateCaptured
	}
	switch payment {
	case bridge.PaymentStateAuthorized:
		return []bridge.Job{s.paymentJob(o, KindRelease, 0, reason)}
	case bridge.PaymentStateCaptured:
		if left := o.Total.Amount - o.Refunded(); left > 0 {
			return []bridge.Job{s.paymentJob(o, KindRefund, left, reason)}
		}
	}
	return nil
}

// Retry puts an order's dead (or failed, waiting) jobs back to run now
// (bridge orders retry); an order in manual review returns to created or
// confirmed as its jobs succeed. It returns how many jobs it requeued.
func (s *Service) Retry(ctx context.Context, orderID string) (int, error) {
	if _, err := s.Store.Order(ctx, orderID); err != nil {
		return 0, err
	}
	jobs, err := s.Store.Jobs(ctx, bridge.JobFilter{OrderID: orderID, Limit: 1000})
	if err != nil {
		return 0, fmt.Errorf("jobs of order %s: %w", orderID, err)
	}
	n := 0
	for _, j := range jobs {
		if j.Status == bridge.JobDead || (j.Status == bridge.JobPending && j.Attempts > 0) {
			err := s.Store.SetJob(ctx, j.ID, bridge.JobPending, s.now())
			if errors.Is(err, bridge.ErrJobBusy) {
				continue // running right now: it needs no nudge
			}
			if err != nil {
				return n, fmt.Errorf("requeue job %s: %w", j.ID, err)
			}
			n++
		}
	}
	if n > 0 {
		s.poke()
	}
	return n, nil
}

// Poll applies the updates src reports, every interval until ctx ends.
func (s *Service) Poll(ctx context.Context, src bridge.OrderUpdateSource, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.PollOnce(ctx, src)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxUnapplied bounds the updates kept for the next poll while storage
// fails.
const maxUnapplied = 10000

// PollOnce reads and applies src's updates once; it returns how many
// changed an order. A source reports an update once, so one that could not
// be applied (storage busy) is kept and tried again at the next poll.
func (s *Service) PollOnce(ctx context.Context, src bridge.OrderUpdateSource) int {
	ups, err := src.OrderUpdates(ctx)
	if err != nil && ctx.Err() == nil {
		s.log().Warn("reading the store's order updates", "error", err)
	}
	s.mu.Lock()
	ups = append(s.unapplied, ups...)
	s.unapplied = nil
	s.mu.Unlock()
	n := 0
	for _, u := range ups {
		changed, err := s.Update(ctx, u)
		if errors.Is(err, errInvalidUpdate) {
			s.log().Warn("skipping an order update that cannot be applied", "order", u.OrderID, "error", err)
			continue
		}
		if err != nil {
			s.log().Warn("applying a store order update; trying again at the next poll", "order", u.OrderID, "status", u.Status, "error", err)
			s.mu.Lock()
			if len(s.unapplied) < maxUnapplied {
				s.unapplied = append(s.unapplied, u)
			} else {
				s.log().Error("too many store order updates could not be applied; dropping one (a restart reads the status file again)", "order", u.OrderID)
			}
			s.mu.Unlock()
			continue
		}
		if changed {
			n++
		}
	}
	return n
}

// zeroLines marks every line of a canceled order as no longer ordered.
func zeroLines(o *bridge.Order) {
	zero := int64(0)
	for i := range o.Lines {
		o.Lines[i].Current = &zero
	}
}
