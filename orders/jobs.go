package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// storeWrite writes the order to the store exactly once. Any run but the
// job's very first looks the order up by its id before writing: an earlier
// attempt may have reached the store (a timeout after the store committed,
// a worker that died mid-write), and writing again could make a second
// order there. A canceled order is looked up too, in case a write was
// already running when it was canceled.
func (s *Service) storeWrite(ctx context.Context, j bridge.Job) outcome {
	o, err := s.Store.Order(ctx, j.OrderID)
	if err != nil {
		return retry(fmt.Errorf("read order: %w", err))
	}
	if o.StoreID != "" {
		return done(bridge.Change{}) // written already
	}
	first := j.Attempts <= 1 && j.LastError == "" && o.StoreWriteAt.IsZero()
	var so bridge.StoreOrder
	found := false
	if !first || o.Status == bridge.OrderCanceled {
		so, err = s.Shop.FindOrder(ctx, o.ID)
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, bridge.ErrNotFound):
			return retry(fmt.Errorf("look the order up in the store before writing it: %w", err))
		case !o.StoreWriteAt.IsZero():
			if wait := o.StoreWriteAt.Add(s.storeSettle()).Sub(s.now()); wait > 0 {
				// An earlier write may have reached the store without
				// showing in its lookups yet: look again once they can
				// be trusted, rather than write a second order.
				return postpone(wait)
			}
		}
	}
	if o.Status == bridge.OrderCanceled {
		if !found {
			return done(bridge.Change{}) // canceled before it reached the store
		}
		o.StoreID, o.StoreURL = so.StoreID, so.URL
		byStore := canceledByStore(o)
		if byStore {
			o.Note(s.now(), "the store had taken it as "+so.StoreID+" before canceling it")
		} else {
			// The write raced the cancel and won: the store will ship an
			// order the bridge canceled (and refunded). A person must
			// cancel it there.
			o.Note(s.now(), "canceled, but the store had already taken it as "+so.StoreID+": cancel it in the store")
		}
		c := s.withNotice(o)
		s.endHold(o, &c) // a write that raced the cancel may have held stock again
		if byStore {
			return done(c)
		}
		return outcome{change: c, alert: "canceled_in_store"}
	}
	if !found {
		// Recorded before the write, with the order, not in this
		// process: whatever happens to this run (an answer lost, a commit
		// that loses a race with a cancel, the process dying), the next
		// one, here or on another replica, looks the order up and waits
		// out the store's lookup lag before it writes again.
		o.StoreWriteAt = s.now().UTC()
		o.Rev++
		if err := s.Store.Commit(ctx, bridge.Change{Order: &o}); err != nil {
			return retry(fmt.Errorf("record the store write about to start: %w", err))
		}
		so, err = s.Shop.WriteOrder(ctx, o)
	}
	if errors.Is(err, bridge.ErrOrderRefused) {
		return s.refused(o, err)
	}
	if err != nil {
		return retry(fmt.Errorf("write order to the store: %w", err))
	}
	o.StoreID, o.StoreURL = so.StoreID, so.URL
	if so.Permalink && so.URL != "" {
		o.PermalinkURL = so.URL
	}
	note := "accepted by the store as " + so.StoreID
	// The store may have reported progress (shipped) before this run
	// recorded its write: never move the order back.
	if !forward(o.Status, bridge.OrderConfirmed) || !o.SetStatus(s.now(), bridge.OrderConfirmed, note) {
		o.Note(s.now(), note)
	}
	var alert string
	if so.Discrepancy != "" {
		// The order stands (the buyer paid what they were shown); the
		// shop's books differ and a person must reconcile them.
		o.Note(s.now(), "the store's record differs from the charge: "+so.Discrepancy)
		alert = "store_total_mismatch"
	}
	c := s.withNotice(o)
	if o.Payment == bridge.PaymentStateAuthorized {
		c.Jobs = append(c.Jobs, s.paymentJob(o, KindCapture, 0, ""))
	}
	if s.countsWrittenOrders() {
		s.endHold(o, &c) // the store's figure has the units now
	}
	return outcome{change: c, alert: alert}
}

// countsWrittenOrders reports whether the store's stock figure takes an
// order's units as soon as it is written (bridge.OrderStockCounter).
func (s *Service) countsWrittenOrders() bool {
	sc, ok := s.Shop.(bridge.OrderStockCounter)
	return ok && sc.CountsWrittenOrders()
}

// endHold ends o's stock hold in c, for an order the store has: at once
// with a store whose figure does not count written orders, else a hold
// grace later (a hold_release job), once no checkout can hold on a figure
// it read before the write.
func (s *Service) endHold(o bridge.Order, c *bridge.Change) {
	if !s.countsWrittenOrders() {
		c.ReleaseOrderID = o.ID
		return
	}
	now := s.now().UTC()
	c.Jobs = append(c.Jobs, bridge.Job{ID: KindHoldRelease + ":" + o.ID, Kind: KindHoldRelease, OrderID: o.ID,
		NextRunAt: now.Add(s.holdGrace()), CreatedAt: now})
}

// refused handles a store's final refusal. Money only held is released and
// the order canceled: no paid-but-unfulfillable orders. Money already taken
// stays until a person decides: fix the store and retry (the job is dead,
// so bridge orders retry runs it again), or cancel, which refunds.
func (s *Service) refused(o bridge.Order, cause error) outcome {
	note := "the store refused the order: " + cause.Error()
	if o.Payment == bridge.PaymentStateAuthorized || o.Payment == "" && o.PaymentRef == "" {
		// Money only held, or none at all (a free order): nothing stands
		// in the way of canceling it.
		s.log().Warn("store refused an order; releasing its payment and canceling it", "order", o.ID, "error", cause)
		zeroLines(&o)
		o.SetStatus(s.now(), bridge.OrderCanceled, note)
		c := s.withNotice(o)
		c.Jobs = append(c.Jobs, s.moneyBack(o, "the store refused the order")...)
		c.ReleaseOrderID = o.ID
		return done(c)
	}
	return outcome{change: s.review(o, note), err: cause, dead: true, alert: "store_refused"}
}

// paymentAction is a payment job's payload.
type paymentAction struct {
	Amount int64  `json:"amount,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// paymentJob queues a capture, release or refund of o's payment. Its id is
// also the provider's idempotency key: queued twice, it runs once, and a
// repeated run is replayed by the provider.
func (s *Service) paymentJob(o bridge.Order, kind string, amount int64, reason string) bridge.Job {
	now := s.now().UTC()
	raw, _ := json.Marshal(paymentAction{Amount: amount, Reason: reason})
	id := kind + ":" + o.ID
	if kind == KindRefund {
		id = fmt.Sprintf("%s:%d", id, len(o.History))
	}
	return bridge.Job{ID: id, Kind: kind, OrderID: o.ID, Payload: raw, NextRunAt: now, CreatedAt: now}
}

// payment runs a capture, release or refund.
func (s *Service) payment(ctx context.Context, j bridge.Job) outcome {
	if s.Payments == nil {
		return deadNow(errors.New("the payment provider cannot capture, release or refund"))
	}
	var pa paymentAction
	if len(j.Payload) > 0 {
		if err := json.Unmarshal(j.Payload, &pa); err != nil {
			return deadNow(fmt.Errorf("payment job payload: %w", err))
		}
	}
	o, err := s.Store.Order(ctx, j.OrderID)
	if err != nil {
		return retry(fmt.Errorf("read order: %w", err))
	}
	a := bridge.PaymentAction{IdempotencyKey: j.ID, OrderID: o.ID, Ref: o.PaymentRef, Amount: pa.Amount,
		Currency: o.Currency, Reason: pa.Reason}
	var refundID string
	switch j.Kind {
	case KindCapture:
		if o.Payment != bridge.PaymentStateAuthorized {
			return done(bridge.Change{}) // captured, released or refunded already
		}
		if o.Status == bridge.OrderCanceled {
			// Canceled since the store took it: its release job gives the
			// money back (an earlier run's capture, should one have gone
			// through unrecorded, makes that release turn into a refund).
			return done(bridge.Change{})
		}
		err = s.Payments.Capture(ctx, a)
	case KindRelease:
		if o.Payment != bridge.PaymentStateAuthorized {
			return done(bridge.Change{})
		}
		err = s.Payments.Release(ctx, a)
		if errors.Is(err, bridge.ErrPaymentFinal) && o.Status == bridge.OrderCanceled {
			// The authorization cannot be released: most likely a capture
			// went through whose answer was lost. Refund instead.
			o.Payment = bridge.PaymentStateCaptured
			o.Note(s.now(), "the authorization could not be released ("+err.Error()+"); refunding instead")
			c := s.withNotice(o)
			c.Jobs = append(c.Jobs, s.moneyBack(o, pa.Reason)...)
			return done(c)
		}
	case KindRefund:
		refundID, err = s.Payments.Refund(ctx, a)
	}
	if errors.Is(err, bridge.ErrPaymentFinal) {
		// Dead, not done: once a person has fixed it, bridge orders retry
		// runs it again.
		return outcome{change: s.review(o, fmt.Sprintf("%s refused by the payment provider: %v", j.Kind, err)),
			err: err, dead: true, alert: j.Kind + "_refused"}
	}
	if err != nil {
		return retry(fmt.Errorf("%s: %w", j.Kind, err))
	}
	now := s.now()
	switch j.Kind {
	case KindCapture:
		o.Payment = bridge.PaymentStateCaptured
		if prev := statusBeforeReview(o); o.Status == bridge.OrderManualReview && prev != "" {
			// Retried by hand after the capture failed: back where it was.
			o.SetStatus(now, prev, "payment captured")
		} else {
			o.Note(now, "payment captured")
		}
	case KindRelease:
		o.Payment = bridge.PaymentStateReleased
		o.Note(now, "payment authorization released")
	case KindRefund:
		o.Payment = bridge.PaymentStateRefunded
		if !slices.ContainsFunc(o.Adjustments, func(a bridge.Adjustment) bool { return a.ID == refundID }) {
			// The provider's own news (a refund webhook) may have recorded
			// it already, with its real amount and status: keep that.
			upsertAdjustment(&o, bridge.Adjustment{ID: refundID, Type: "refund", Status: "completed", OccurredAt: now.UTC(),
				Amount: pa.Amount, Currency: o.Currency, Reason: pa.Reason})
		}
		o.Note(now, "refund "+refundID)
	}
	return done(s.withNotice(o))
}

// deliver sends an agent notice. Notices of one order go out in the order
// they happened: one waits while an earlier one is still pending.
func (s *Service) deliver(ctx context.Context, j bridge.Job) outcome {
	if s.Notifier == nil {
		return deadNow(errors.New("no agent webhook is configured"))
	}
	var n bridge.OrderNotice
	if err := json.Unmarshal(j.Payload, &n); err != nil {
		return deadNow(fmt.Errorf("notice payload: %w", err))
	}
	pending, err := s.Store.Jobs(ctx, bridge.JobFilter{Status: bridge.JobPending, OrderID: j.OrderID, Kind: KindNotice, Limit: 1000})
	if err != nil {
		return retry(fmt.Errorf("list earlier notices: %w", err))
	}
	for _, p := range pending {
		if p.ID != j.ID && noticeSeq(p.ID) < noticeSeq(j.ID) {
			// Wait for the earlier one: a little while it runs or is about
			// to, else until its next try.
			wait := max(p.NextRunAt.Sub(s.now()), 0) + 250*time.Millisecond
			if p.LeaseUntil.After(s.now()) {
				wait = 500 * time.Millisecond
			}
			return postpone(wait)
		}
	}
	if err := s.Notifier.Send(ctx, n); err != nil {
		if errors.Is(err, bridge.ErrRejected) {
			return deadNow(err)
		}
		return retry(err)
	}
	return done(bridge.Change{})
}

// canceledByStore reports whether o's cancellation came from the store
// (its news, not the shop's admin or a refusal).
func canceledByStore(o bridge.Order) bool {
	for i := len(o.History) - 1; i >= 0; i-- {
		if h := o.History[i]; h.Status == bridge.OrderCanceled {
			return strings.HasPrefix(h.Note, storeNote)
		}
	}
	return false
}

// statusBeforeReview is the status o had before it went to manual review
// ("" when it never did).
func statusBeforeReview(o bridge.Order) string {
	for i := len(o.History) - 1; i > 0; i-- {
		if o.History[i].Status == bridge.OrderManualReview && o.History[i-1].Status != bridge.OrderManualReview {
			return o.History[i-1].Status
		}
	}
	return ""
}

// noticeSeq is a notice job's place in its order's history (see notice):
// the order in which the agent must hear them.
func noticeSeq(jobID string) int {
	n, err := strconv.Atoi(jobID[strings.LastIndexByte(jobID, '_')+1:])
	if err != nil {
		return -1
	}
	return n
}

// upsertAdjustment adds a, or replaces the adjustment with its id; it
// reports whether anything changed. Providers deliver news out of order, so
// a pending status never replaces a final one.
func upsertAdjustment(o *bridge.Order, a bridge.Adjustment) bool {
	a.Currency = strings.ToLower(a.Currency)
	for i, x := range o.Adjustments {
		if x.ID == a.ID {
			if reflect.DeepEqual(x, a) || (a.Status == "pending" && x.Status != "pending") {
				return false
			}
			o.Adjustments[i] = a
			return true
		}
	}
	o.Adjustments = append(o.Adjustments, a)
	return true
}
