// Package orders takes a paid order from the checkout to the store and keeps
// the agent told: it writes the order to the store (at once within a budget,
// else through the durable outbox), captures or releases its payment,
// applies what the store and the payment provider report later, and queues
// an agent webhook for every change. Every step is a job of the outbox,
// committed with the change that needs it, so none is lost when the bridge,
// the store or the network fail; a job that keeps failing past the retry
// horizon is dead and its order goes to manual review.
package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/prometheus/client_golang/prometheus"
)

// Job kinds.
const (
	KindStoreWrite = "store_write"
	KindCapture    = "payment_capture"
	KindRelease    = "payment_release"
	KindRefund     = "payment_refund"
	KindNotice     = "agent_notice"
	// KindHoldRelease ends an order's stock hold some time after a store
	// that counts written orders took it (see HoldGrace).
	KindHoldRelease = "hold_release"
)

// DefaultHoldGrace is Service.HoldGrace's default.
const DefaultHoldGrace = time.Minute

// Store is the storage the service needs.
type Store interface {
	Order(ctx context.Context, id string) (bridge.Order, error)
	Orders(ctx context.Context, status string, limit int) ([]bridge.Order, error)
	OrderByPaymentRef(ctx context.Context, ref string) (bridge.Order, error)
	Commit(ctx context.Context, c bridge.Change) error
	bridge.Outbox
}

// Payments captures, releases and refunds payments made at checkout.
type Payments interface {
	Capture(ctx context.Context, a bridge.PaymentAction) error
	Release(ctx context.Context, a bridge.PaymentAction) error
	Refund(ctx context.Context, a bridge.PaymentAction) (refundID string, err error)
}

// Notifier delivers an order notice to the agent. Errors wrapping
// bridge.ErrRejected are not retried.
type Notifier interface {
	Send(ctx context.Context, n bridge.OrderNotice) error
}

// Service runs orders after the checkout. Fill Store and Shop; the rest
// has defaults.
type Service struct {
	Store Store
	// Shop is the store the orders are written to.
	Shop bridge.OrderStore
	// Payments may be nil when the provider cannot capture or refund
	// (then after_store capture and refunds are unavailable).
	Payments Payments
	// Notifier is nil when no agent webhook is configured: no notices are
	// queued.
	Notifier Notifier
	// SyncBudget is how long Place waits for the store (0: it does not).
	SyncBudget time.Duration
	// RetryHorizon is how long a failing job is retried before it is dead
	// (default 24h).
	RetryHorizon time.Duration
	// StoreSettle is how long after a store write with no clear answer
	// (bridge.Order.StoreWriteAt) the store's "not found" is not trusted
	// (default: the shop's bridge.LaggingOrderStore lag, else none): a
	// store whose lookups go through a search index (Shopify) shows a new
	// order only after a while, and writing again meanwhile would make a
	// second order.
	StoreSettle time.Duration
	// HoldGrace is how long an order written to a store that counts
	// written orders (bridge.OrderStockCounter) keeps its hold (default
	// DefaultHoldGrace). A checkout on any replica may have read the
	// store's figure just before the write and commit its hold just
	// after: were the order's hold gone by then, its units would be
	// counted nowhere and sold twice. It must exceed the longest time
	// from such a read to the end of its commit (the stock timeout plus a
	// commit's longest wait) and the replicas' clock skew; meanwhile the
	// units count twice, which errs low.
	HoldGrace time.Duration
	// Lease is how long a claimed job is its worker's (default 2m); a run
	// is cut off at half of it, so it never outlives its claim.
	Lease time.Duration
	// Concurrency is how many jobs run at once (default 8).
	Concurrency int
	// Backoff returns the delay before attempt n+1 after n failed ones
	// (default: exponential from 2s, capped at 30m, with full jitter).
	Backoff func(attempts int) time.Duration
	Log     *slog.Logger
	Now     func() time.Time
	Metrics *Metrics

	wake     chan struct{}
	wakeOnce sync.Once
	// running counts store writes Place left running in the background.
	running sync.WaitGroup
	// mu guards unapplied (store updates that failed to apply) and
	// closing (set by Wait).
	mu        sync.Mutex
	unapplied []bridge.OrderUpdate
	closing   bool
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Service) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return 2 * time.Minute
}

func (s *Service) storeSettle() time.Duration {
	if s.StoreSettle > 0 {
		return s.StoreSettle
	}
	if l, ok := s.Shop.(bridge.LaggingOrderStore); ok {
		return l.LookupLag()
	}
	return 0
}

func (s *Service) holdGrace() time.Duration {
	if s.HoldGrace > 0 {
		return s.HoldGrace
	}
	return DefaultHoldGrace
}

func (s *Service) horizon() time.Duration {
	if s.RetryHorizon > 0 {
		return s.RetryHorizon
	}
	return 24 * time.Hour
}

// Metrics are the service's Prometheus series.
type Metrics struct {
	jobs *prometheus.CounterVec
	dead *prometheus.CounterVec
}

// NewMetrics registers bridge_outbox_jobs_total{kind,result} (result: done,
// retry, dead, later, rerun, lost) and bridge_orders_manual_review_total{reason}, the alert
// series: alert on any increase.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_outbox_jobs_total",
			Help: "Outbox job runs by kind and result (done, retry, dead, later, rerun, lost)."}, []string{"kind", "result"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bridge_orders_manual_review_total",
			Help: "Orders put in manual review, by reason; any increase needs a person."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.jobs, m.dead)
	}
	return m
}

func (m *Metrics) job(kind, result string) {
	if m != nil {
		m.jobs.WithLabelValues(kind, result).Inc()
	}
}

func (m *Metrics) review(reason string) {
	if m != nil {
		m.dead.WithLabelValues(reason).Inc()
	}
}

// Alert tells a person about an order that needs them for something the
// bridge cannot do itself (a refund made in the store that moved no money
// at the payment provider): counted in
// bridge_orders_manual_review_total{reason} and logged as an error with
// detail's key-value pairs. The order is not changed.
func (s *Service) Alert(orderID, reason string, detail ...any) {
	s.Metrics.review(reason)
	s.log().Error("order needs manual review", append([]any{"order", orderID, "reason", reason}, detail...)...)
}

// PlacedJobs are the jobs a newly paid order needs, to be committed with it:
// the write to the store and the agent's order_create.
func (s *Service) PlacedJobs(o bridge.Order) []bridge.Job {
	now := s.now().UTC()
	jobs := []bridge.Job{{ID: KindStoreWrite + ":" + o.ID, Kind: KindStoreWrite, OrderID: o.ID, NextRunAt: now, CreatedAt: now}}
	if n, ok := s.notice(o, bridge.NoticeOrderCreate); ok {
		jobs = append(jobs, n)
	}
	return jobs
}

// notice is the job that tells the agent about o as it is now.
func (s *Service) notice(o bridge.Order, typ string) (bridge.Job, bool) {
	if s.Notifier == nil || !o.Placed() {
		return bridge.Job{}, false
	}
	now := s.now().UTC()
	// One event per history entry: the id is stable, so the same change
	// queued twice (a retried commit) is one job.
	id := fmt.Sprintf("evt_%s_%d", o.ID, len(o.History))
	n := bridge.OrderNotice{ID: id, Type: typ, At: now, Order: o}
	n.Order.Token = "" // the webhook needs the permalink, not the token alone
	raw, err := json.Marshal(n)
	if err != nil {
		// An Order always encodes; this would be a programming error.
		s.log().Error("encoding order notice", "order", o.ID, "error", err)
		return bridge.Job{}, false
	}
	return bridge.Job{ID: KindNotice + ":" + id, Kind: KindNotice, OrderID: o.ID, Payload: raw, NextRunAt: now, CreatedAt: now}, true
}

// Place starts the order's store write now and waits for it up to
// SyncBudget. A write still running then is not cut short (a store that
// took the order but was stopped before answering is the ambiguous case):
// it goes on in the background, bounded by its lease, and records its
// outcome itself. Place never fails the caller: the order is durable
// either way, and the worker retries what did not succeed.
func (s *Service) Place(ctx context.Context, orderID string) {
	if s.SyncBudget <= 0 {
		s.poke()
		return
	}
	bg := context.WithoutCancel(ctx)
	j, err := s.Store.ClaimJob(bg, KindStoreWrite+":"+orderID, s.now(), s.lease())
	if err != nil {
		if !errors.Is(err, bridge.ErrNotFound) {
			s.log().Warn("claiming an order's store write", "order", orderID, "error", err)
		}
		s.poke()
		return
	}
	finished := make(chan struct{})
	s.mu.Lock()
	if s.closing {
		// Shutting down: the worker of the next start runs it.
		s.mu.Unlock()
		return
	}
	s.running.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.running.Done()
		defer close(finished)
		s.run(bg, j)
		s.poke() // the notices it queued
	}()
	t := time.NewTimer(s.SyncBudget)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		s.log().Info("the store is slow; the order's write goes on in the background", "order", orderID, "budget", s.SyncBudget)
	}
}

// Wait returns once the store writes Place left running have recorded
// their outcome. Place starts no new background write after Wait was
// called (the claimed job waits for the next start's worker).
func (s *Service) Wait() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.running.Wait()
}

// poke wakes the worker.
func (s *Service) poke() {
	select {
	case s.wakeup() <- struct{}{}:
	default:
	}
}
