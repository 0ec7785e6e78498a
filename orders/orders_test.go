package orders_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/orders"
	"github.com/acp-bridge/bridge/storage/sqlite"
	"github.com/acp-bridge/bridge/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// metric reads a counter of reg by name and its one label's value.
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// shop is a store whose answers a test scripts. It counts writes per order,
// so a test sees a second order the moment one is made.
type shop struct {
	mu     sync.Mutex
	writes map[string]int
	// fail holds the next WriteOrder answers: errTransient fails before
	// the store commits, errAfterCommit after (the ambiguous case),
	// bridge.ErrOrderRefused refuses for good.
	fail  []error
	finds int
	// entered and gate, when set, hold WriteOrder after it committed the
	// order until the test lets it answer.
	entered, gate chan struct{}
	// discrepancy is what the store reports about its total.
	discrepancy string
	// lag hides an order from FindOrder until lag after its write (a
	// search index); now is the test's clock.
	lag     time.Duration
	now     func() time.Time
	written map[string]time.Time
}

var (
	errTransient   = errors.New("store: 503 service unavailable")
	errAfterCommit = fmt.Errorf("store: connection reset after sending: %w", upstream.ErrAmbiguous)
)

func (s *shop) WriteOrder(ctx context.Context, o bridge.Order) (bridge.StoreOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writes == nil {
		s.writes = map[string]int{}
	}
	if len(s.fail) > 0 {
		err := s.fail[0]
		s.fail = s.fail[1:]
		if errors.Is(err, errAfterCommit) {
			s.record(o.ID)
		}
		return bridge.StoreOrder{}, err
	}
	s.record(o.ID)
	if s.gate != nil {
		s.mu.Unlock()
		s.entered <- struct{}{}
		<-s.gate
		s.mu.Lock()
	}
	return bridge.StoreOrder{StoreID: "S-" + o.ID, URL: "https://store.example/o/" + o.ID, Discrepancy: s.discrepancy}, nil
}

func (s *shop) FindOrder(ctx context.Context, id string) (bridge.StoreOrder, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finds++
	if s.writes[id] > 0 && (s.lag == 0 || !s.now().Before(s.written[id].Add(s.lag))) {
		return bridge.StoreOrder{StoreID: "S-" + id}, nil
	}
	return bridge.StoreOrder{}, fmt.Errorf("order %s: %w", id, bridge.ErrNotFound)
}

// LookupLag makes the shop a bridge.LaggingOrderStore.
func (s *shop) LookupLag() time.Duration { return s.lag }

// record counts a write of order id; the caller holds s.mu.
func (s *shop) record(id string) {
	s.writes[id]++
	if s.now != nil {
		if s.written == nil {
			s.written = map[string]time.Time{}
		}
		s.written[id] = s.now()
	}
}

func (s *shop) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[id]
}

// notifier records the notices it is given; fail makes the next sends fail.
type notifier struct {
	mu   sync.Mutex
	got  []bridge.OrderNotice
	fail int
}

func (n *notifier) Send(ctx context.Context, x bridge.OrderNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail > 0 {
		n.fail--
		return errors.New("agent: 500")
	}
	n.got = append(n.got, x)
	return nil
}

// statuses lists the notices as "type:status".
func (n *notifier) statuses() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.got {
		out = append(out, x.Type+":"+x.Order.Status)
	}
	return out
}

// payments records payment actions; final makes them refused for good.
type payments struct {
	mu      sync.Mutex
	actions []string
	final   bool
	// transient fails the next calls as a provider outage would.
	transient int
}

func (p *payments) do(kind string, a bridge.PaymentAction) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.final {
		return fmt.Errorf("authorization expired: %w", bridge.ErrPaymentFinal)
	}
	if p.transient > 0 {
		p.transient--
		return fmt.Errorf("provider 503: %w", bridge.ErrPaymentUnavailable)
	}
	p.actions = append(p.actions, kind+":"+a.Ref+":"+a.IdempotencyKey)
	return nil
}

func (p *payments) Capture(ctx context.Context, a bridge.PaymentAction) error {
	return p.do("capture", a)
}
func (p *payments) Release(ctx context.Context, a bridge.PaymentAction) error {
	return p.do("release", a)
}
func (p *payments) Refund(ctx context.Context, a bridge.PaymentAction) (string, error) {
	return "re_1", p.do("refund", a)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	db    *sqlite.DB
	svc   *orders.Service
	shop  *shop
	agent *notifier
	pay   *payments
	clock *clock
	logs  *syncbuf.Buffer
	reg   *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, shop: &shop{}, agent: &notifier{}, pay: &payments{},
		clock: &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}, logs: &syncbuf.Buffer{}, reg: prometheus.NewRegistry()}
	f.svc = &orders.Service{Store: db, Shop: f.shop, Payments: f.pay, Notifier: f.agent, SyncBudget: time.Second,
		RetryHorizon: time.Hour, Now: f.clock.Now, Backoff: func(int) time.Duration { return time.Minute },
		Log: slog.New(slog.NewTextHandler(f.logs, nil)), Metrics: orders.NewMetrics(f.reg)}
	return f
}

// place commits a paid order with its jobs, as the checkout does, and
// returns it.
func (f *fixture) place(t *testing.T, id, payment string) bridge.Order {
	t.Helper()
	now := f.clock.Now()
	o := bridge.Order{ID: id, SessionID: "cs_" + id, Owner: "agent", APIVersion: "2026-04-17", CreatedAt: now, Currency: "USD",
		PermalinkURL: "https://shop.example/orders/" + id + "?t=tok", Token: "tok", PaymentRef: "pi_" + id, Payment: payment,
		Lines: []bridge.OrderLine{{ID: "li_1", VariantID: "sku-1", Title: "Mug", Quantity: 2,
			UnitPrice: bridge.Money{Amount: 1000, Currency: "USD"}, Total: bridge.Money{Amount: 2000, Currency: "USD"}}},
		Total: bridge.Money{Amount: 2500, Currency: "USD"}}
	if payment == "" {
		o.PaymentRef = "" // a free order: nothing was charged
	}
	o.SetStatus(now, bridge.OrderCreated, "paid")
	if err := f.db.Commit(t.Context(), bridge.Change{Order: &o, Jobs: f.svc.PlacedJobs(o)}); err != nil {
		t.Fatal(err)
	}
	return o
}

func (f *fixture) order(t *testing.T, id string) bridge.Order {
	t.Helper()
	o, err := f.db.Order(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// drain runs every due job, moving the clock past each backoff until
// nothing is pending or rounds run out.
func (f *fixture) drain(t *testing.T, rounds int) {
	t.Helper()
	for range rounds {
		if _, err := f.svc.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		next, err := f.db.NextDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if next.IsZero() {
			return
		}
		f.clock.Add(max(next.Sub(f.clock.Now()), 0) + time.Millisecond)
	}
}

func TestPlaceWritesToTheStoreAtOnce(t *testing.T) {
	f := newFixture(t)
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.svc.Place(t.Context(), "ord_1")
	if n := f.shop.count("ord_1"); n != 1 {
		t.Fatalf("store has the order %d times, want 1", n)
	}
	o := f.order(t, "ord_1")
	if o.Status != bridge.OrderConfirmed || o.StoreID != "S-ord_1" {
		t.Fatalf("order status %q store id %q, want confirmed S-ord_1", o.Status, o.StoreID)
	}
	f.drain(t, 5)
	want := []string{"order_create:created", "order_update:confirmed"}
	if got := f.agent.statuses(); !slices.Equal(got, want) {
		t.Fatalf("agent heard %v, want %v", got, want)
	}
	j, err := f.db.Job(t.Context(), orders.KindStoreWrite+":ord_1")
	if err != nil || j.Status != bridge.JobDone {
		t.Fatalf("store write job %+v, %v; want done", j, err)
	}
}

// A store total that differs from the charge leaves the order confirmed
// (the buyer paid what they saw) but notes it and raises the alert.
func TestStoreTotalMismatchIsFlagged(t *testing.T) {
	f := newFixture(t)
	f.shop.discrepancy = "the shop's order total is 27.50 USD, the buyer was charged 25.00 USD"
	f.place(t, "ord_m", bridge.PaymentStateCaptured)
	f.svc.Place(t.Context(), "ord_m")
	o := f.order(t, "ord_m")
	if o.Status != bridge.OrderConfirmed || o.StoreID != "S-ord_m" {
		t.Fatalf("status %q store id %q", o.Status, o.StoreID)
	}
	if last := o.History[len(o.History)-1].Note; !strings.Contains(last, "27.50 USD") {
		t.Errorf("history: %+v", o.History)
	}
	if n := metric(t, f.reg, "bridge_orders_manual_review_total", "store_total_mismatch"); n != 1 {
		t.Errorf("alert counted %v times", n)
	}
}

func TestStoreFailuresAreRetriedAndWriteOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fail  []error
		finds bool // a lookup must precede the retry
	}{
		{"transient", []error{errTransient, errTransient, errTransient}, true},
		{"ambiguous create", []error{errAfterCommit}, true},
		{"ambiguous then transient", []error{errAfterCommit, errTransient}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.shop.fail = tc.fail
			f.place(t, "ord_1", bridge.PaymentStateCaptured)
			f.svc.Place(t.Context(), "ord_1")
			if o := f.order(t, "ord_1"); o.Status != bridge.OrderCreated {
				t.Fatalf("after a failed first write the order is %q, want created (queued)", o.Status)
			}
			f.drain(t, 10)
			if n := f.shop.count("ord_1"); n != 1 {
				t.Fatalf("store has the order %d times, want exactly 1", n)
			}
			if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed {
				t.Fatalf("order %q, want confirmed", o.Status)
			}
			if tc.finds && f.shop.finds == 0 {
				t.Fatal("retried without looking the order up first")
			}
		})
	}
}

func TestJobDiesAfterRetryHorizon(t *testing.T) {
	f := newFixture(t)
	for range 200 {
		f.shop.fail = append(f.shop.fail, errTransient)
	}
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.drain(t, 100) // one minute apart: past the hour's horizon
	o := f.order(t, "ord_1")
	if o.Status != bridge.OrderManualReview {
		t.Fatalf("order %q, want manual_review", o.Status)
	}
	j, _ := f.db.Job(t.Context(), orders.KindStoreWrite+":ord_1")
	if j.Status != bridge.JobDead || j.LastError == "" {
		t.Fatalf("job %+v, want dead with its last error", j)
	}
	if v := metric(t, f.reg, "bridge_orders_manual_review_total", "store_write"); v != 1 {
		t.Fatalf("manual review alert metric = %v, want 1", v)
	}
	if got := f.agent.statuses(); got[len(got)-1] != "order_update:manual_review" {
		t.Fatalf("agent heard %v, want manual_review last", got)
	}
	// A person fixes the store and retries: the order goes through.
	f.shop.fail = nil
	n, err := f.svc.Retry(t.Context(), "ord_1")
	if err != nil || n != 1 {
		t.Fatalf("Retry = %d, %v; want 1 job", n, err)
	}
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed || f.shop.count("ord_1") != 1 {
		t.Fatalf("after retry: order %q, %d store orders; want confirmed, 1", o.Status, f.shop.count("ord_1"))
	}
}

func TestCaptureAfterStore(t *testing.T) {
	t.Run("accepted: captured", func(t *testing.T) {
		f := newFixture(t)
		f.place(t, "ord_1", bridge.PaymentStateAuthorized)
		f.drain(t, 5)
		o := f.order(t, "ord_1")
		if o.Payment != bridge.PaymentStateCaptured || o.Status != bridge.OrderConfirmed {
			t.Fatalf("order %q payment %q, want confirmed captured", o.Status, o.Payment)
		}
		if want := []string{"capture:pi_ord_1:payment_capture:ord_1"}; !slices.Equal(f.pay.actions, want) {
			t.Fatalf("payment actions %v, want %v", f.pay.actions, want)
		}
	})
	t.Run("refused: released and canceled", func(t *testing.T) {
		f := newFixture(t)
		f.shop.fail = []error{fmt.Errorf("insufficient stock: %w", bridge.ErrOrderRefused)}
		f.place(t, "ord_1", bridge.PaymentStateAuthorized)
		f.drain(t, 5)
		o := f.order(t, "ord_1")
		if o.Status != bridge.OrderCanceled || o.Payment != bridge.PaymentStateReleased {
			t.Fatalf("order %q payment %q, want canceled released", o.Status, o.Payment)
		}
		if want := []string{"release:pi_ord_1:payment_release:ord_1"}; !slices.Equal(f.pay.actions, want) {
			t.Fatalf("payment actions %v, want %v", f.pay.actions, want)
		}
		if got := f.agent.statuses(); !slices.Contains(got, "order_update:canceled") {
			t.Fatalf("agent heard %v, want a canceled update", got)
		}
	})
	t.Run("refused after immediate capture: manual review", func(t *testing.T) {
		f := newFixture(t)
		f.shop.fail = []error{fmt.Errorf("unknown product: %w", bridge.ErrOrderRefused)}
		f.place(t, "ord_1", bridge.PaymentStateCaptured)
		f.drain(t, 5)
		if o := f.order(t, "ord_1"); o.Status != bridge.OrderManualReview || len(f.pay.actions) != 0 {
			t.Fatalf("order %q, payment actions %v; want manual_review and no refund without a person", o.Status, f.pay.actions)
		}
	})
	t.Run("capture refused: manual review", func(t *testing.T) {
		f := newFixture(t)
		f.pay.final = true
		f.place(t, "ord_1", bridge.PaymentStateAuthorized)
		f.drain(t, 5)
		if o := f.order(t, "ord_1"); o.Status != bridge.OrderManualReview {
			t.Fatalf("order %q, want manual_review", o.Status)
		}
	})
}

func TestStoreUpdatesAreIdempotent(t *testing.T) {
	f := newFixture(t)
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.drain(t, 5)
	ship := bridge.OrderUpdate{OrderID: "ord_1", Status: bridge.OrderShipped, At: f.clock.Now(),
		Fulfillment: &bridge.Fulfillment{ID: "ful_1", Status: "shipped", Carrier: "UPS", TrackingNumber: "1Z999"}}
	for i, want := range []bool{true, false} {
		changed, err := f.svc.Update(t.Context(), ship)
		if err != nil || changed != want {
			t.Fatalf("update %d: changed %v, %v; want %v", i+1, changed, err, want)
		}
	}
	deliver := bridge.OrderUpdate{OrderID: "ord_1", Status: bridge.OrderCompleted, At: f.clock.Now(),
		Fulfillment: &bridge.Fulfillment{ID: "ful_1", Status: "delivered"}}
	if changed, err := f.svc.Update(t.Context(), deliver); err != nil || !changed {
		t.Fatalf("delivered: %v, %v", changed, err)
	}
	if changed, err := f.svc.Update(t.Context(), bridge.OrderUpdate{OrderID: "ord_unknown", Status: "shipped"}); err != nil || changed {
		t.Fatalf("unknown order: %v, %v; want ignored", changed, err)
	}
	f.drain(t, 5)
	o := f.order(t, "ord_1")
	if o.Status != bridge.OrderCompleted || len(o.Fulfillments) != 1 || o.Lines[0].Fulfilled != 2 {
		t.Fatalf("order %q fulfillments %+v lines %+v", o.Status, o.Fulfillments, o.Lines)
	}
	if ev := o.Fulfillments[0].Events; len(ev) != 2 || ev[0].Type != "shipped" || ev[1].Type != "delivered" || o.Fulfillments[0].Carrier != "UPS" {
		t.Fatalf("fulfillment %+v, want shipped then delivered events and the carrier kept", o.Fulfillments[0])
	}
	want := []string{"order_create:created", "order_update:confirmed", "order_update:shipped", "order_update:completed"}
	if got := f.agent.statuses(); !slices.Equal(got, want) {
		t.Fatalf("agent heard %v, want %v", got, want)
	}
}

func TestRefundsBecomeAdjustments(t *testing.T) {
	f := newFixture(t)
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.drain(t, 5)
	re := bridge.Adjustment{ID: "re_9", Type: "refund", Status: "completed", Amount: 2500, OccurredAt: f.clock.Now()}
	for range 2 {
		if err := f.svc.Adjust(t.Context(), "pi_ord_1", re); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Adjust(t.Context(), "pi_someone_else", re); err != nil {
		t.Fatalf("a refund of another payment: %v, want ignored", err)
	}
	o := f.order(t, "ord_1")
	if len(o.Adjustments) != 1 || o.Refunded() != 2500 || o.Payment != bridge.PaymentStateRefunded {
		t.Fatalf("adjustments %+v payment %q", o.Adjustments, o.Payment)
	}
	f.drain(t, 5)
	if got := f.agent.statuses(); len(got) != 3 {
		t.Fatalf("agent heard %v, want create, confirmed and one refund update", got)
	}
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		payment, action string
	}{
		{bridge.PaymentStateCaptured, "refund:pi_ord_1:payment_refund:ord_1:"},
		{bridge.PaymentStateAuthorized, "release:pi_ord_1:payment_release:ord_1"},
	} {
		t.Run(tc.payment, func(t *testing.T) {
			f := newFixture(t)
			f.shop.fail = []error{errTransient} // the store write is still waiting
			f.place(t, "ord_1", tc.payment)
			f.svc.Place(t.Context(), "ord_1")
			if err := f.svc.Cancel(t.Context(), "ord_1", "buyer changed their mind"); err != nil {
				t.Fatal(err)
			}
			f.drain(t, 10)
			o := f.order(t, "ord_1")
			if o.Status != bridge.OrderCanceled || f.shop.count("ord_1") != 0 {
				t.Fatalf("order %q, %d store orders; want canceled before reaching the store", o.Status, f.shop.count("ord_1"))
			}
			if len(f.pay.actions) != 1 || !slicesHasPrefix(f.pay.actions[0], tc.action) {
				t.Fatalf("payment actions %v, want %s…", f.pay.actions, tc.action)
			}
		})
	}
}

func slicesHasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func TestCrashedWorkersJobIsClaimedAgain(t *testing.T) {
	f := newFixture(t)
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	jobs, err := f.db.ClaimJobs(t.Context(), f.clock.Now(), time.Minute, 10)
	if err != nil || len(jobs) == 0 {
		t.Fatalf("claim: %v, %v", jobs, err)
	}
	// The worker that claimed them dies; nothing runs until the lease passes.
	if n, _ := f.svc.Drain(t.Context()); n != 0 {
		t.Fatalf("%d jobs ran while another worker's lease held", n)
	}
	f.clock.Add(2 * time.Minute)
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed || f.shop.count("ord_1") != 1 {
		t.Fatalf("order %q, %d store orders", o.Status, f.shop.count("ord_1"))
	}
	stale := jobs[0]
	stale.Status = bridge.JobDone
	if err := f.db.FinishJob(t.Context(), stale, bridge.Change{}); !errors.Is(err, bridge.ErrLeaseLost) {
		t.Fatalf("the dead worker's late finish: %v, want ErrLeaseLost", err)
	}
}

func TestNoticesKeepTheirOrder(t *testing.T) {
	f := newFixture(t)
	f.agent.fail = 3 // order_create fails a few times; confirmed must wait
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.drain(t, 20)
	want := []string{"order_create:created", "order_update:confirmed"}
	if got := f.agent.statuses(); !slices.Equal(got, want) {
		t.Fatalf("agent heard %v, want %v", got, want)
	}
	// Every delivery of one event carries the same id.
	if ids := f.agent.got; ids[0].ID == ids[1].ID || ids[0].ID == "" {
		t.Fatalf("event ids %q %q", ids[0].ID, ids[1].ID)
	}
}

func TestRunWorksTheOutbox(t *testing.T) {
	f := newFixture(t)
	f.svc.Now = nil // real time for the loop
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.shop.count("ord_1") == 0 || len(f.agent.statuses()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("worker did not write the order: %d store orders, notices %v", f.shop.count("ord_1"), f.agent.statuses())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A cancel that lands while the store write runs: the write wins at the
// store, so the bridge must record where the order is and alert, not
// pretend it never reached the store.
func TestCancelWhileTheStoreWriteRuns(t *testing.T) {
	for _, lag := range []time.Duration{0, 90 * time.Second} {
		t.Run(fmt.Sprint("store lookups lagging ", lag), func(t *testing.T) { testCancelWhileTheStoreWriteRuns(t, lag) })
	}
}

// testCancelWhileTheStoreWriteRuns: with lag, the store's lookups miss the
// order for a while after its write, so the rerun (its first commit lost
// to the cancel) must wait for them rather than take the order as never
// written.
func testCancelWhileTheStoreWriteRuns(t *testing.T, lag time.Duration) {
	f := newFixture(t)
	f.shop.lag, f.shop.now = lag, f.clock.Now
	f.shop.entered, f.shop.gate = make(chan struct{}), make(chan struct{})
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	placed := make(chan struct{})
	go func() { f.svc.Place(context.WithoutCancel(t.Context()), "ord_1"); close(placed) }()
	<-f.shop.entered
	if err := f.svc.Cancel(t.Context(), "ord_1", "buyer changed their mind"); err != nil {
		t.Fatal(err)
	}
	close(f.shop.gate)
	<-placed
	f.svc.Wait()
	f.drain(t, 10)
	o := f.order(t, "ord_1")
	if o.Status != bridge.OrderCanceled || o.StoreID != "S-ord_1" || f.shop.count("ord_1") != 1 {
		t.Fatalf("order %q store id %q, %d store orders; want canceled, recorded as S-ord_1, once", o.Status, o.StoreID, f.shop.count("ord_1"))
	}
	if v := metric(t, f.reg, "bridge_orders_manual_review_total", "canceled_in_store"); v != 1 {
		t.Fatalf("alert for an order canceled here but in the store: %v, want 1", v)
	}
	if len(f.pay.actions) != 1 || !slicesHasPrefix(f.pay.actions[0], "refund:") {
		t.Fatalf("payment actions %v, want the refund", f.pay.actions)
	}
}

// A store write that died after an ambiguous attempt and is retried by
// hand still looks the order up first: one order in the store.
func TestRetryByHandAfterAnAmbiguousWrite(t *testing.T) {
	f := newFixture(t)
	f.shop.fail = []error{errAfterCommit}
	for range 100 {
		f.shop.fail = append(f.shop.fail, errTransient)
	}
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	// The lookups fail too until the horizon: FindOrder of this shop only
	// fails through WriteOrder's script, so make the job die by time.
	f.svc.Place(t.Context(), "ord_1")
	f.clock.Add(2 * time.Hour)
	f.drain(t, 3)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed && o.Status != bridge.OrderManualReview {
		t.Fatalf("order %q", o.Status)
	}
	f.shop.fail = nil
	if _, err := f.svc.Retry(t.Context(), "ord_1"); err != nil {
		t.Fatal(err)
	}
	f.drain(t, 5)
	if n := f.shop.count("ord_1"); n != 1 {
		t.Fatalf("%d store orders after a retry by hand, want 1", n)
	}
}

// Store news that arrives before the write's result is recorded must not
// be undone by it, and a canceled order gives its stock back.
func TestNoStepBackAndCancelReleasesStock(t *testing.T) {
	f := newFixture(t)
	f.shop.fail = []error{errAfterCommit}
	o := f.place(t, "ord_1", bridge.PaymentStateCaptured)
	if err := f.db.Commit(t.Context(), bridge.Change{HoldOrderID: o.ID, Hold: []bridge.Reservation{{VariantID: "sku-1", Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	f.svc.Place(t.Context(), "ord_1") // ambiguous: in the store, not recorded
	if _, err := f.svc.Update(t.Context(), bridge.OrderUpdate{OrderID: "ord_1", Status: bridge.OrderShipped}); err != nil {
		t.Fatal(err)
	}
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderShipped || o.StoreID == "" {
		t.Fatalf("order %q store id %q; want shipped (not back to confirmed) with its store id", o.Status, o.StoreID)
	}
	if n := f.shop.count("ord_1"); n != 1 {
		t.Fatalf("%d store orders, want 1", n)
	}
	if _, err := f.svc.Update(t.Context(), bridge.OrderUpdate{OrderID: "ord_1", Status: bridge.OrderCanceled, Reason: "lost in transit"}); err != nil {
		t.Fatal(err)
	}
	if held, err := f.db.Reserved(t.Context(), "sku-1", time.Time{}); err != nil || held != 0 {
		t.Fatalf("held after the store canceled: %d, %v; want 0", held, err)
	}
	f.drain(t, 5)
	if len(f.pay.actions) != 1 || !slicesHasPrefix(f.pay.actions[0], "refund:") {
		t.Fatalf("payment actions %v, want a refund of a canceled paid order", f.pay.actions)
	}
}

// A refusal that put an order in review can be retried by hand once the
// store is fixed.
func TestRetryAfterRefusal(t *testing.T) {
	f := newFixture(t)
	f.shop.fail = []error{fmt.Errorf("unknown product: %w", bridge.ErrOrderRefused)}
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderManualReview {
		t.Fatalf("order %q, want manual_review", o.Status)
	}
	if n, err := f.svc.Retry(t.Context(), "ord_1"); err != nil || n != 1 {
		t.Fatalf("Retry = %d, %v; want the refused write requeued", n, err)
	}
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed || f.shop.count("ord_1") != 1 {
		t.Fatalf("order %q, %d store orders; want confirmed once", o.Status, f.shop.count("ord_1"))
	}
}

// A refund recorded by the provider's webhook before the refund job
// records its own keeps the provider's amount.
func TestRefundKeepsTheProvidersRecord(t *testing.T) {
	f := newFixture(t)
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.drain(t, 5)
	if err := f.svc.Cancel(t.Context(), "ord_1", ""); err != nil {
		t.Fatal(err)
	}
	// The webhook for the refund the job is about to make (the fake
	// provider answers re_1) lands first.
	if err := f.svc.Adjust(t.Context(), "pi_ord_1", bridge.Adjustment{ID: "re_1", Type: "refund", Status: "completed", Amount: 2500, OccurredAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.drain(t, 5)
	o := f.order(t, "ord_1")
	if len(o.Adjustments) != 1 || o.Adjustments[0].Amount != 2500 || o.Refunded() != 2500 {
		t.Fatalf("adjustments %+v, want the one refund of 2500", o.Adjustments)
	}
	if want := "refund:pi_ord_1:"; len(f.pay.actions) != 1 || !slicesHasPrefix(f.pay.actions[0], want) {
		t.Fatalf("payment actions %v", f.pay.actions)
	}
}

// A free order has no payment to give back.
func TestCancelFreeOrder(t *testing.T) {
	f := newFixture(t)
	f.place(t, "ord_1", "")
	if err := f.svc.Cancel(t.Context(), "ord_1", ""); err != nil {
		t.Fatal(err)
	}
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderCanceled || len(f.pay.actions) != 0 {
		t.Fatalf("order %q, payment actions %v; want canceled with none", o.Status, f.pay.actions)
	}
}

// An order canceled while its capture waits for a retry is never captured:
// its money is released.
func TestCanceledOrderIsNotCaptured(t *testing.T) {
	f := newFixture(t)
	f.pay.transient = 1
	f.place(t, "ord_1", bridge.PaymentStateAuthorized)
	if _, err := f.svc.Drain(t.Context()); err != nil { // store write ok, capture fails
		t.Fatal(err)
	}
	if err := f.svc.Cancel(t.Context(), "ord_1", "buyer changed their mind"); err != nil {
		t.Fatal(err)
	}
	f.drain(t, 10)
	o := f.order(t, "ord_1")
	if o.Status != bridge.OrderCanceled || o.Payment != bridge.PaymentStateReleased {
		t.Fatalf("order %q payment %q, want canceled released", o.Status, o.Payment)
	}
	if want := []string{"release:pi_ord_1:payment_release:ord_1"}; !slices.Equal(f.pay.actions, want) {
		t.Fatalf("payment actions %v, want only the release", f.pay.actions)
	}
}

// A capture that died put the order in review; once retried by hand it
// returns to where it was, not to an earlier status.
func TestCaptureRetryRestoresTheStatus(t *testing.T) {
	f := newFixture(t)
	f.pay.final = true
	f.place(t, "ord_1", bridge.PaymentStateAuthorized)
	f.drain(t, 5)
	if _, err := f.svc.Update(t.Context(), bridge.OrderUpdate{OrderID: "ord_1", Status: bridge.OrderShipped}); err != nil {
		t.Fatal(err)
	}
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderShipped {
		t.Fatalf("order %q, want shipped (the store's news applies over manual review)", o.Status)
	}
	f.pay.final = false
	if _, err := f.svc.Retry(t.Context(), "ord_1"); err != nil {
		t.Fatal(err)
	}
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Payment != bridge.PaymentStateCaptured || o.Status != bridge.OrderShipped {
		t.Fatalf("order %q payment %q, want shipped captured", o.Status, o.Payment)
	}
}

// liveShop is a store whose stock figure takes an order's units when it
// creates the order (a store API).
type liveShop struct{ *shop }

func (liveShop) CountsWrittenOrders() bool { return true }

// An order's hold ends DefaultHoldGrace after its write to a store that counts
// written orders, and stays with one that does not (the CSV export).
func TestHoldEndsWithTheWriteToALiveStore(t *testing.T) {
	for _, tc := range []struct {
		name     string
		live     bool
		wantHeld int64
	}{
		{"store counts written orders", true, 0},
		{"store counts orders only once imported", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.live {
				f.svc.Shop = liveShop{f.shop}
			}
			o := f.place(t, "ord_1", bridge.PaymentStateCaptured)
			if err := f.db.Commit(t.Context(), bridge.Change{HoldOrderID: o.ID, Hold: []bridge.Reservation{{VariantID: "sku-1", Quantity: 2}}}); err != nil {
				t.Fatal(err)
			}
			f.svc.Place(t.Context(), "ord_1")
			if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed {
				t.Fatalf("order %q, want confirmed", o.Status)
			}
			held := func(when string, want int64) {
				t.Helper()
				if n, err := f.db.Reserved(t.Context(), "sku-1", time.Time{}); err != nil || n != want {
					t.Fatalf("held %s: %d, %v; want %d", when, n, err, want)
				}
			}
			// A checkout may have read the store's figure just before the
			// write: the hold stays for a while.
			runDue := func() {
				t.Helper()
				if _, err := f.svc.Drain(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			runDue()
			held("right after the write", 2)
			f.clock.Add(orders.DefaultHoldGrace - time.Second)
			runDue()
			held("just before the grace ends", 2)
			f.clock.Add(2 * time.Second)
			runDue()
			held("after the grace", tc.wantHeld)
		})
	}
}

// An update about another store order carrying the bridge's order id (a
// duplicate, or an admin's copy that kept the meta) must not touch the
// order: canceling the copy would refund the real one.
func TestStoreUpdateOfACopyIsIgnored(t *testing.T) {
	tests := []struct {
		name     string
		storeID  string
		canceled bool
	}{
		{"the order's own store id", "S-ord_1", true},
		{"a source that cannot tell", "", true},
		{"a copy in the store", "S-copy", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.place(t, "ord_1", bridge.PaymentStateCaptured)
			f.drain(t, 5)
			changed, err := f.svc.Update(t.Context(), bridge.OrderUpdate{OrderID: "ord_1", StoreID: tt.storeID, Status: bridge.OrderCanceled, Reason: "canceled in the store"})
			if err != nil || changed != tt.canceled {
				t.Fatalf("changed %v, %v; want %v", changed, err, tt.canceled)
			}
			f.drain(t, 5)
			o := f.order(t, "ord_1")
			if got := o.Status == bridge.OrderCanceled; got != tt.canceled {
				t.Errorf("order %q; canceled %v, want %v", o.Status, got, tt.canceled)
			}
			if refunded := len(f.pay.actions) > 0; refunded != tt.canceled {
				t.Errorf("payment actions %v; refund %v, want %v", f.pay.actions, refunded, tt.canceled)
			}
			if warned := strings.Contains(f.logs.String(), "another store order"); warned == tt.canceled {
				t.Errorf("warning logged: %v, want %v", warned, !tt.canceled)
			}
		})
	}
}

// A write whose answer was lost, to a store whose lookups lag behind its
// writes (a search index): the retries, on this process or after a
// restart (a new service, as another replica would be), wait for the
// settle window before they trust "not found", so the store gets the
// order once.
func TestAmbiguousWriteWaitsForALaggingStore(t *testing.T) {
	f := newFixture(t)
	f.shop.lag, f.shop.now = 90*time.Second, f.clock.Now
	f.shop.fail = []error{errAfterCommit}
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.svc.Place(t.Context(), "ord_1")
	if o := f.order(t, "ord_1"); o.StoreWriteAt.IsZero() {
		t.Fatal("the lost answer is not remembered with the order")
	}
	// A fresh service, as after a restart: the marker is in storage.
	restarted := &orders.Service{Store: f.db, Shop: f.shop, Payments: f.pay, Notifier: f.agent, SyncBudget: time.Second,
		RetryHorizon: time.Hour, Now: f.clock.Now, Backoff: func(int) time.Duration { return time.Minute }, Log: f.svc.Log}
	for range 5 {
		f.clock.Add(20 * time.Second)
		if _, err := restarted.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(2 * time.Minute)
	f.drain(t, 5)
	if n := f.shop.count("ord_1"); n != 1 {
		t.Fatalf("%d store orders, want 1", n)
	}
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderConfirmed || o.StoreID != "S-ord_1" {
		t.Fatalf("order %q store %q; want confirmed in the store", o.Status, o.StoreID)
	}
}

// An alert an adapter raises is counted with the manual reviews and
// logged with its details, and leaves the order as it was.
func TestAlert(t *testing.T) {
	f := newFixture(t)
	o := f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.svc.Alert("ord_1", "shopify_refund_not_at_stripe", "amount", "10.00 USD")
	if n := metric(t, f.reg, "bridge_orders_manual_review_total", "shopify_refund_not_at_stripe"); n != 1 {
		t.Errorf("manual review count %v, want 1", n)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "order=ord_1") || !strings.Contains(logs, `amount="10.00 USD"`) {
		t.Errorf("logs %q", logs)
	}
	if got := f.order(t, "ord_1"); got.Status != o.Status || got.Rev != 1 {
		t.Errorf("order %q rev %d, want it unchanged", got.Status, got.Rev)
	}
}

// A store write that never gets a clear answer, until its retry horizon,
// puts the order in manual review with its alert: a paid order that may
// not be in the store is never left to sit silently.
func TestAmbiguousWritesUntilTheHorizon(t *testing.T) {
	f := newFixture(t)
	for range 200 {
		f.shop.fail = append(f.shop.fail, fmt.Errorf("store: 502 after sending: %w", upstream.ErrAmbiguous))
	}
	f.place(t, "ord_1", bridge.PaymentStateCaptured)
	f.svc.Place(t.Context(), "ord_1")
	f.clock.Add(2 * time.Hour) // past the fixture's one-hour horizon
	f.drain(t, 5)
	if o := f.order(t, "ord_1"); o.Status != bridge.OrderManualReview {
		t.Fatalf("order %q after the horizon, want manual_review", o.Status)
	}
	if v := metric(t, f.reg, "bridge_orders_manual_review_total", orders.KindStoreWrite); v != 1 {
		t.Errorf("manual review alerts %v, want 1", v)
	}
}
