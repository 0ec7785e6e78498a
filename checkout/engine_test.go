package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/checkout"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/acp-bridge/bridge/payments/sandbox"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// payments records every charge and fails or blocks on demand, around the
// sandbox provider.
type payments struct {
	mu      sync.Mutex
	calls   []bridge.PaymentRequest
	failing int           // the next n charges fail as unavailable
	block   chan struct{} // when set, charges wait for it to close
	inner   *sandbox.Provider
}

func (p *payments) Charge(ctx context.Context, r bridge.PaymentRequest) (bridge.PaymentResult, error) {
	p.mu.Lock()
	p.calls = append(p.calls, r)
	block := p.block
	fail := p.failing > 0
	if fail {
		p.failing--
	}
	p.mu.Unlock()
	if block != nil {
		<-block
	}
	if fail {
		return bridge.PaymentResult{}, fmt.Errorf("%w: timeout (test)", bridge.ErrPaymentUnavailable)
	}
	return p.inner.Charge(ctx, r)
}

func (p *payments) keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, c := range p.calls {
		out = append(out, c.IdempotencyKey)
	}
	return out
}

func newStack(t *testing.T) (*ct.Stack, *payments) {
	t.Helper()
	p := &payments{inner: sandbox.New("Demo")}
	return ct.New(t, ct.Options{Payments: p}), p
}

var addr = &bridge.Address{Name: "Ada", Line1: "1 Main St", City: "Albany", Region: "NY", PostalCode: "12207", Country: "US"}

func caller(key, op string) checkout.Caller {
	return checkout.Caller{Owner: ct.AgentName, Key: key, Op: op, BodyHash: "h-" + op}
}

// ready opens a session for one shirt with an address.
func ready(t *testing.T, e *checkout.Engine) *bridge.Session {
	t.Helper()
	ctx := t.Context()
	res := e.Create(ctx, caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 1}}, ShipTo: addr})
	if res.Err != nil || res.Session.Status != bridge.StatusReady {
		t.Fatalf("create: %+v %+v", res.Err, res.Session)
	}
	return res.Session
}

func pay(token string) checkout.CompleteRequest {
	return checkout.CompleteRequest{Payment: checkout.Payment{HandlerID: "card", Token: token}}
}

// A provider that does not answer gets a 503 that is not stored. The money
// may have moved, so the session keeps its payment and stock until a retry
// settles it under the same payment key and amount; meanwhile it cannot be
// changed, canceled or paid with other data.
func TestUnknownPaymentOutcomeIsSettledUnderTheSameKey(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	s := ready(t, e)
	p.failing = 1
	c := caller("k1", "complete "+s.ID)
	res := e.Complete(t.Context(), c, s.ID, pay("spt_4242"))
	if res.Err == nil || res.Err.Kind != checkout.KindUnavailable {
		t.Fatalf("first complete: %+v", res.Err)
	}
	got := e.Get(t.Context(), ct.AgentName, s.ID)
	if got.Session.Status != bridge.StatusCompleteInProgress || got.Session.Pending == nil || !got.Session.Pending.Unknown {
		t.Fatalf("after no answer: %s %+v", got.Session.Status, got.Session.Pending)
	}
	if held, _ := st.DB.Reserved(t.Context(), "shirt-m", time.Time{}); held != 1 {
		t.Fatalf("stock held while the outcome is unknown: %d", held)
	}
	if r := e.Update(t.Context(), caller("", "update"), s.ID, checkout.UpdateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 3}}}); r.Err == nil {
		t.Fatal("cart changed while a payment's outcome is unknown")
	}
	if r := e.Cancel(t.Context(), caller("", "cancel"), s.ID, checkout.CancelRequest{}); r.Err == nil {
		t.Fatal("canceled while a payment's outcome is unknown")
	}
	st.Advance(time.Hour) // past the session's expiry: a payment in doubt does not expire
	if r := e.Complete(t.Context(), caller("k2", "complete "+s.ID), s.ID, pay("spt_other_4242")); r.Err == nil || r.Err.Code != "payment_unresolved" {
		t.Fatalf("other payment data: %+v", r.Err)
	}
	res = e.Complete(t.Context(), c, s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted || res.Replayed {
		t.Fatalf("retry: %+v replayed=%v", res.Err, res.Replayed)
	}
	keys := p.keys()
	if len(keys) != 2 || keys[0] != keys[1] || p.calls[0].Amount != p.calls[1].Amount {
		t.Fatalf("payment calls %+v, want the same key and amount twice", p.calls)
	}
}

// A provider that refuses the request itself (not a decline, not a
// timeout) charged nothing: the session says so and can be paid again.
func TestRefusedPaymentRequest(t *testing.T) {
	st, _ := newStack(t)
	e := st.Engine
	s := ready(t, e)
	refusing := &payments{inner: sandbox.New("Demo")}
	e.Payments = refusingProvider{refusing}
	res := e.Complete(t.Context(), caller("", "complete"), s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusReady || !hasCode(res.Session, bridge.MsgPaymentDeclined) {
		t.Fatalf("refused request: %+v", res)
	}
	e.Payments = refusing
	res = e.Complete(t.Context(), caller("", "complete"), s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("after a refused request: %+v", res)
	}
	if k := refusing.keys(); len(k) != 1 || !strings.HasSuffix(k[0], "_1") {
		t.Fatalf("keys %v: the attempt after a refusal needs a new key", k)
	}
}

type refusingProvider struct{ p *payments }

func (r refusingProvider) Charge(context.Context, bridge.PaymentRequest) (bridge.PaymentResult, error) {
	return bridge.PaymentResult{}, fmt.Errorf("payment request invalid (test)")
}

// An order with nothing to pay completes without a charge.
func TestZeroTotalCompletesWithoutCharge(t *testing.T) {
	st, p := newStack(t)
	reprice(t, st, "ebook", 0)
	e := st.Engine
	res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "ebook", Quantity: 1}}})
	if res.Err != nil || res.Session.Status != bridge.StatusReady || res.Session.Totals.Total != 0 {
		t.Fatalf("free cart: %+v", res)
	}
	res = e.Complete(t.Context(), caller("", "complete"), res.Session.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted || len(p.keys()) != 0 {
		t.Fatalf("free order: %+v charges %v", res, p.keys())
	}
}

// Stock that cannot be confirmed at payment time stops the sale (fail
// closed): the snapshot does not know what other sessions hold.
func TestStockUnconfirmedAtPaymentSellsNothing(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	var ids []string
	for range 2 {
		res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "mug", Quantity: 1}}, ShipTo: addr})
		ids = append(ids, res.Session.ID)
	}
	if res := e.Complete(t.Context(), caller("", "complete"), ids[0], pay("spt_4242")); res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("first mug: %+v", res)
	}
	st.StockDown.Store(true)
	res := e.Complete(t.Context(), caller("", "complete"), ids[1], pay("spt_4242"))
	if res.Err == nil || res.Err.Code != "stock_unconfirmed" || len(p.keys()) != 1 {
		t.Fatalf("second mug with the store down: %+v charges %v", res, p.keys())
	}
}

// 3-D Secure holds no stock while the buyer authenticates, and the answer
// to the challenge is checked and held afresh: the last unit can be bought
// with 3DS, and an abandoned challenge holds nothing.
func TestThreeDSAndTheLastUnit(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "mug", Quantity: 1}}, ShipTo: addr})
	id := res.Session.ID
	res = e.Complete(t.Context(), caller("", "complete"), id, pay("spt_3155"))
	if res.Session.Status != bridge.StatusAuthRequired {
		t.Fatalf("3DS: %+v", res.Session)
	}
	if held, _ := st.DB.Reserved(t.Context(), "mug", time.Time{}); held != 0 {
		t.Fatalf("held during 3DS: %d", held)
	}
	auth := &bridge.AuthResult{Outcome: "authenticated", Cryptogram: "c", ECI: "05", TransactionID: "t", Version: "2.2.0"}
	res = e.Complete(t.Context(), caller("", "complete"), id, checkout.CompleteRequest{Payment: checkout.Payment{Token: "spt_3155"}, Auth: auth})
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("after 3DS: %+v", res)
	}
	if held, _ := st.DB.Reserved(t.Context(), "mug", time.Time{}); held != 1 {
		t.Fatalf("held after the order: %d", held)
	}
	if k := p.keys(); len(k) != 2 || k[0] == k[1] {
		t.Fatalf("payment keys %v", k)
	}
}

// Changing the cart while 3-D Secure waits drops that payment: the next
// complete charges the new total under a new key, never the old intent.
func TestUpdateDuringThreeDSAbandonsThePayment(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	s := ready(t, e)
	res := e.Complete(t.Context(), caller("", "complete"), s.ID, pay("spt_3155"))
	if res.Session.Status != bridge.StatusAuthRequired {
		t.Fatalf("3DS: %+v", res.Session)
	}
	res = e.Update(t.Context(), caller("", "update"), s.ID, checkout.UpdateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 3}}})
	if res.Err != nil || res.Session.Status != bridge.StatusReady || res.Session.Auth != nil {
		t.Fatalf("update during 3DS: %+v", res)
	}
	res = e.Complete(t.Context(), caller("", "complete"), s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("complete after update: %+v", res)
	}
	if len(p.calls) != 2 || p.calls[0].IdempotencyKey == p.calls[1].IdempotencyKey || p.calls[1].Amount != res.Session.Totals.Total || p.calls[1].PaymentRef != "" {
		t.Fatalf("payment calls %+v", p.calls)
	}
	if held, _ := st.DB.Reserved(t.Context(), "shirt-m", time.Time{}); held != 3 {
		t.Fatalf("held %d, want the order's 3", held)
	}
}

// A bridge that died between claiming the key and recording the charge
// leaves the session in complete_in_progress; once the claim's lease has
// passed, the agent's retry takes it over and finishes with the same
// payment key.
func TestCompleteResumesAfterACrash(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	s := ready(t, e)
	diedMidPayment(t, st, s, "ord_crashed")
	c := caller("k1", "complete "+s.ID)
	res := e.Complete(t.Context(), c, s.ID, pay("spt_4242"))
	if res.Err == nil || res.Err.Kind != checkout.KindInFlight || res.RetryAfter <= 0 {
		t.Fatalf("within the lease: %+v", res)
	}
	other := e.Complete(t.Context(), caller("k2", "complete "+s.ID), s.ID, pay("spt_4242"))
	if other.Err == nil || other.Err.Code != "complete_in_progress" {
		t.Fatalf("another key within the lease: %+v", other.Err)
	}
	st.Advance(2 * time.Minute)
	res = e.Complete(t.Context(), c, s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted || res.Session.Order.ID != "ord_crashed" {
		t.Fatalf("after the lease: %+v %+v", res.Err, res.Session)
	}
	if keys := p.keys(); len(keys) != 1 || keys[0] != "ord_crashed_0" {
		t.Fatalf("payment keys %v", keys)
	}
	o, err := st.DB.Order(t.Context(), "ord_crashed")
	// Paid, then written to the store within the sync budget.
	if err != nil || o.Status != bridge.OrderConfirmed || o.StoreID != "ord_crashed" {
		t.Fatalf("order %+v %v", o, err)
	}
}

// A retry while the first complete still runs is told to wait, and nothing
// is charged twice.
func TestCompleteInFlight(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	s := ready(t, e)
	p.block = make(chan struct{})
	c := caller("k1", "complete "+s.ID)
	done := make(chan checkout.Result)
	go func() { done <- e.Complete(context.Background(), c, s.ID, pay("spt_4242")) }()
	for len(p.keys()) == 0 {
		time.Sleep(time.Millisecond)
	}
	res := e.Complete(t.Context(), c, s.ID, pay("spt_4242"))
	if res.Err == nil || res.Err.Kind != checkout.KindInFlight || res.RetryAfter <= 0 {
		t.Fatalf("retry in flight: %+v", res)
	}
	if up := e.Update(t.Context(), caller("", "update"), s.ID, checkout.UpdateRequest{ShipTo: addr}); up.Err == nil || up.Err.Code != "complete_in_progress" {
		t.Fatalf("update during payment: %+v", up.Err)
	}
	if cn := e.Cancel(t.Context(), caller("", "cancel"), s.ID, checkout.CancelRequest{}); cn.Err == nil || cn.Err.Code != "complete_in_progress" {
		t.Fatalf("cancel during payment: %+v", cn.Err)
	}
	close(p.block)
	first := <-done
	if first.Err != nil || first.Session.Status != bridge.StatusCompleted {
		t.Fatalf("first: %+v", first.Err)
	}
	again := e.Complete(t.Context(), c, s.ID, pay("spt_4242"))
	if !again.Replayed || again.Session.Order.ID != first.Session.Order.ID {
		t.Fatalf("replay: %+v", again)
	}
	if n := len(p.keys()); n != 1 {
		t.Fatalf("%d charges", n)
	}
}

// Prices come from the snapshot at complete time: a price change since the
// buyer's last look stops the charge and shows the new total.
func TestPriceChangeStopsTheCharge(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	s := ready(t, e)
	reprice(t, st, "shirt-m", 2700)
	res := e.Complete(t.Context(), caller("", "complete"), s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusReady || len(p.keys()) != 0 {
		t.Fatalf("complete after a price change: %+v charges %v", res, p.keys())
	}
	if !hasCode(res.Session, "price_change") || res.Session.Totals.Total <= s.Totals.Total {
		t.Fatalf("messages %+v totals %+v", res.Session.Messages, res.Session.Totals)
	}
	res = e.Complete(t.Context(), caller("", "complete"), s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("second complete: %+v", res)
	}
}

// Stock sold elsewhere between update and complete is caught before the
// charge.
func TestStockGoneBeforeCharge(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "mug", Quantity: 1}}, ShipTo: addr})
	if res.Err != nil || res.Session.Status != bridge.StatusReady {
		t.Fatalf("create %+v", res)
	}
	if err := st.DB.Reserve(t.Context(), "ord_elsewhere", []bridge.Reservation{{VariantID: "mug", Quantity: 1}}); err != nil {
		t.Fatal(err)
	}
	res = e.Complete(t.Context(), caller("", "complete"), res.Session.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusNotReady || !hasCode(res.Session, bridge.MsgOutOfStock) || len(p.keys()) != 0 {
		t.Fatalf("complete without stock: %+v charges %v", res.Session, p.keys())
	}
}

// racingStock is the store's stock read by a checkout while another
// bridge takes the last unit: from its nth read on it reports the figure
// it read, and then another order holds the unit (committed before this
// checkout's hold).
type racingStock struct {
	inner bridge.StockReader
	db    *sqlite.DB
	n     atomic.Int64
	at    int64
}

func (r *racingStock) Stock(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	level, err := r.inner.Stock(ctx, variantID)
	if err == nil && r.n.Add(1) == r.at {
		if err := r.db.Reserve(ctx, "ord_other_replica", []bridge.Reservation{{VariantID: variantID, Quantity: 1}}); err != nil {
			return level, err
		}
	}
	return level, err
}

// The last unit taken between the stock read at payment and the hold's
// commit: the commit's stock check refuses the hold, the session is not
// ready with "sold out while paying", nothing is charged and nothing of
// the attempt (order, hold) is written.
func TestStockTakenBetweenCheckAndHold(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "mug", Quantity: 1}}, ShipTo: addr})
	if res.Err != nil || res.Session.Status != bridge.StatusReady {
		t.Fatalf("create %+v", res)
	}
	// Complete reads the mug's stock twice: re-pricing, then right before
	// the hold. The unit goes after the second read.
	e.Stock = &racingStock{inner: e.Stock, db: st.DB, at: 2}
	res = e.Complete(t.Context(), caller("k1", "complete"), res.Session.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusNotReady || !hasCode(res.Session, bridge.MsgOutOfStock) {
		t.Fatalf("complete: %+v %+v", res.Err, res.Session)
	}
	if msg := res.Session.Messages[len(res.Session.Messages)-1].Content; !strings.Contains(msg, "sold out while paying") {
		t.Errorf("message %q: want the refusal at the hold (sold out while paying), not at re-pricing", msg)
	}
	if keys := p.keys(); len(keys) != 0 {
		t.Errorf("charged %v", keys)
	}
	if held, err := st.DB.Reserved(t.Context(), "mug", time.Time{}); err != nil || held != 1 {
		t.Errorf("held %d, %v; want only the other order's 1", held, err)
	}
	if _, err := st.DB.Order(t.Context(), res.Session.OrderID); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("order of the refused attempt: %v; want none", err)
	}
}

// A declined card releases the stock it held; the next attempt gets a new
// payment key (a provider would replay the decline under the old one).
func TestDeclineReleasesHoldAndNewAttemptKey(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "mug", Quantity: 1}}, ShipTo: addr})
	id := res.Session.ID
	res = e.Complete(t.Context(), caller("", "complete"), id, pay("spt_9995"))
	if !hasCode(res.Session, bridge.MsgPaymentDeclined) {
		t.Fatalf("decline: %+v", res.Session.Messages)
	}
	if held, err := st.DB.Reserved(t.Context(), "mug", time.Time{}); err != nil || held != 0 {
		t.Fatalf("held after decline: %d %v", held, err)
	}
	res = e.Complete(t.Context(), caller("", "complete"), id, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("second attempt: %+v", res)
	}
	if held, _ := st.DB.Reserved(t.Context(), "mug", time.Time{}); held != 1 {
		t.Fatalf("held after the order: %d", held)
	}
	keys := p.keys()
	if len(keys) != 2 || keys[0] == keys[1] || !strings.HasSuffix(keys[1], "_1") {
		t.Fatalf("payment keys %v", keys)
	}
}

func hasCode(s *bridge.Session, code string) bool {
	for _, m := range s.Messages {
		if m.Code == code {
			return true
		}
	}
	return false
}

// diedMidPayment commits what a process that died in the middle of a
// complete (key "k1", token spt_4242) leaves behind: the session in
// complete_in_progress with its pending payment, and the key's claim.
func diedMidPayment(t *testing.T, st *ct.Stack, s *bridge.Session, orderID string) {
	t.Helper()
	s.Status = bridge.StatusCompleteInProgress
	s.OrderID = orderID
	s.Pending = &bridge.PendingPayment{Key: orderID + "_0", Amount: s.Totals.Total, TokenHash: checkout.TokenHash("spt_4242")}
	s.Rev++
	now := st.Now()
	claim := &bridge.IdempotencyRecord{Scope: ct.AgentName + " complete " + s.ID, Key: "k1", RequestHash: "h-complete " + s.ID,
		Token: "tok_dead", LockedUntil: now.Add(time.Minute), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := st.DB.Commit(t.Context(), bridge.Change{Session: s, IdemOp: bridge.IdemInsert, Idempotency: claim}); err != nil {
		t.Fatal(err)
	}
}

// reprice commits a snapshot in which variant costs amount.
func reprice(t *testing.T, st *ct.Stack, variant string, amount int64) {
	t.Helper()
	ctx := t.Context()
	w, err := st.DB.BeginCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries := ct.Catalog()
	for _, e := range entries {
		for i := range e.Product.Variants {
			if e.Product.Variants[i].ID == variant {
				e.Product.Variants[i].Price.Amount = amount
			}
		}
		if err := w.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "test-2", SyncedAt: time.Now().UTC(), Products: len(entries)}); err != nil {
		t.Fatal(err)
	}
}

// A retry of an answered request writes nothing, even when the session
// expired since: the expiry is recorded only with a new request's answer.
func TestReplayAfterExpiryWritesNothing(t *testing.T) {
	st, _ := newStack(t)
	e := st.Engine
	s := ready(t, e)
	c := caller("k1", "update "+s.ID)
	if r := e.Update(t.Context(), c, s.ID, checkout.UpdateRequest{ShipTo: addr}); r.Err != nil {
		t.Fatal(r.Err)
	}
	before, err := st.DB.Session(t.Context(), ct.AgentName, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Advance(time.Hour)
	r := e.Update(t.Context(), c, s.ID, checkout.UpdateRequest{ShipTo: addr})
	if !r.Replayed || r.Err != nil {
		t.Fatalf("retry: %+v", r)
	}
	after, _ := st.DB.Session(t.Context(), ct.AgentName, s.ID)
	if after.Rev != before.Rev {
		t.Fatalf("a replay wrote the session: rev %d → %d", before.Rev, after.Rev)
	}
	// A new request records the expiry and is refused.
	r = e.Update(t.Context(), caller("k2", "update "+s.ID), s.ID, checkout.UpdateRequest{ShipTo: addr})
	if r.Err == nil || r.Err.Code != "session_expired" {
		t.Fatalf("new request on an expired session: %+v", r)
	}
	if after, _ = st.DB.Session(t.Context(), ct.AgentName, s.ID); after.Status != bridge.StatusExpired {
		t.Fatalf("expiry not recorded: %s", after.Status)
	}
}

// The provider's later word (a webhook) settles a payment whose outcome
// the complete call never learned: success completes the session and its
// order, failure releases the stock; repeats change nothing.
func TestSettleUnknownOutcome(t *testing.T) {
	for _, succeeded := range []bool{true, false} {
		st, p := newStack(t)
		e := st.Engine
		res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "mug", Quantity: 1}}, ShipTo: addr})
		id := res.Session.ID
		p.failing = 1
		if r := e.Complete(t.Context(), caller("k", "complete"), id, pay("spt_4242")); r.Err == nil || r.Err.Kind != checkout.KindUnavailable {
			t.Fatalf("complete: %+v", r)
		}
		orderID := e.Get(t.Context(), ct.AgentName, id).Session.OrderID
		if ok, err := e.Settle(t.Context(), checkout.Settlement{OrderID: "ord_unknown", Succeeded: true}); ok || err != nil {
			t.Fatalf("unknown order: %v %v", ok, err)
		}
		if ok, err := e.Settle(t.Context(), checkout.Settlement{OrderID: orderID, PaymentKey: orderID + "_9", Succeeded: false}); ok || err != nil {
			t.Fatalf("another attempt's news: %v %v", ok, err)
		}
		ok, err := e.Settle(t.Context(), checkout.Settlement{OrderID: orderID, PaymentKey: orderID + "_0", Succeeded: succeeded, Ref: "pi_1", Reason: "Your card was declined."})
		if !ok || err != nil {
			t.Fatalf("settle: %v %v", ok, err)
		}
		s := e.Get(t.Context(), ct.AgentName, id).Session
		o, _ := st.DB.Order(t.Context(), orderID)
		held, _ := st.DB.Reserved(t.Context(), "mug", time.Time{})
		if succeeded {
			if s.Status != bridge.StatusCompleted || s.Order == nil || o.Status != bridge.OrderConfirmed || o.PaymentRef != "pi_1" || held != 1 {
				t.Fatalf("settled paid: %s %+v %+v held %d", s.Status, s.Order, o, held)
			}
		} else if s.Status != bridge.StatusReady || !hasCode(s, bridge.MsgPaymentDeclined) || o.Status != "payment_declined" || held != 0 {
			t.Fatalf("settled failed: %s %+v %+v held %d", s.Status, s.Messages, o, held)
		}
		if ok, err := e.Settle(t.Context(), checkout.Settlement{OrderID: orderID, PaymentKey: orderID + "_0", Succeeded: !succeeded}); ok || err != nil {
			t.Fatalf("a second settlement changed the session: %v %v", ok, err)
		}
	}
}

// After a restart, a payment the dead process started is resumed at once by
// the agent's retry, with the same payment key: no waiting out the lease.
func TestCompleteResumesAtOnceAfterRestart(t *testing.T) {
	st, p := newStack(t)
	e := st.Engine
	s := ready(t, e)
	diedMidPayment(t, st, s, "ord_restart")
	// The restart: the new process starts and releases the old claims.
	st.Advance(time.Second)
	e.Started = st.Now()
	if n, err := st.DB.ReleaseClaims(t.Context()); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	res := e.Complete(t.Context(), caller("k1", "complete "+s.ID), s.ID, pay("spt_4242"))
	if res.Err != nil || res.Session.Status != bridge.StatusCompleted {
		t.Fatalf("retry after restart: %+v", res)
	}
	if k := p.keys(); len(k) != 1 || k[0] != "ord_restart_0" {
		t.Fatalf("payment keys %v", k)
	}
}

// taxTable is a tax source for tests: 10% of every line, 50 on shipping,
// or an error.
type taxTable struct {
	fail  bool
	calls int
}

func (t *taxTable) Tax(_ context.Context, q checkout.TaxQuery) (checkout.TaxAnswer, error) {
	t.calls++
	if t.fail {
		return checkout.TaxAnswer{}, fmt.Errorf("tax service down (test)")
	}
	var a checkout.TaxAnswer
	for _, l := range q.Lines {
		a.Lines = append(a.Lines, l.Amount/10)
	}
	if q.Shipping > 0 {
		a.Shipping = 50
	}
	return a, nil
}

// An external tax source replaces the rate tables; when it cannot answer,
// the session cannot be paid (fail closed) until a later change succeeds.
func TestExternalTax(t *testing.T) {
	st, _ := newStack(t)
	e := st.Engine
	src := &taxTable{}
	e.Tax = src
	res := e.Create(t.Context(), caller("", "create"), checkout.CreateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 2}}, ShipTo: addr})
	s := res.Session
	if res.Err != nil || s.Status != bridge.StatusReady {
		t.Fatalf("create: %+v", res)
	}
	// 2 × 25.00 = 50.00, 10% = 5.00; standard shipping 5.00 with 0.50 tax.
	if s.Lines[0].Tax != 500 || s.Totals.Tax != 550 || s.Totals.Total != 5000+500+550 {
		t.Fatalf("lines %+v totals %+v", s.Lines, s.Totals)
	}
	var lineSum int64
	for _, l := range s.Lines {
		lineSum += l.Total
	}
	if lineSum+s.Totals.Fulfillment+50 != s.Totals.Total {
		t.Fatalf("lines (%d) + shipping (%d) + its tax ≠ total %d", lineSum, s.Totals.Fulfillment, s.Totals.Total)
	}
	src.fail = true
	res = e.Update(t.Context(), caller("", "update"), s.ID, checkout.UpdateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 1}}})
	if res.Err != nil || res.Session.Status != bridge.StatusNotReady || !hasCode(res.Session, bridge.MsgInvalid) {
		t.Fatalf("tax source down: %+v", res.Session)
	}
	src.fail = false
	res = e.Update(t.Context(), caller("", "update"), s.ID, checkout.UpdateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 1}}})
	if res.Err != nil || res.Session.Status != bridge.StatusReady || res.Session.Totals.Tax != 250+50 {
		t.Fatalf("tax source back: %+v", res.Session.Totals)
	}
}
