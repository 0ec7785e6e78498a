package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// The checkout half of the suite: bridge.CheckoutStore. What it pins down
// beyond the interface's comments:
//
//   - A session and an order come back exactly as committed, times in UTC.
//   - A session of another owner is "not found", for reads and writes alike.
//   - Revision 1 inserts and never overwrites, whoever owns the id; revision
//     n writes only over n−1 of the same owner; both fail with ErrStale.
//   - An idempotency record whose ExpiresAt is at or before now does not
//     exist: reads miss it, IdemInsert and IdemTakeover replace it.
//   - IdemTakeover succeeds from a claim's LockedUntil on (at it, not only
//     after), and with no record at all inserts: nobody holds the key.
//   - Expiry and locks are judged by the store's clock when the store
//     applies the change (drivers may let tests set that clock; the suite
//     uses the wall clock and margins of seconds).
//   - IdemFinish and IdemRelease work for the token's holder while the claim
//     is unfinished, even after its LockedUntil, until another request took
//     it over.
//   - A Change is all or nothing, and when its idempotency operation fails,
//     that is the error it reports (not ErrStale).
//   - ReleaseOrderID is applied before Hold; a Change with no Hold lines
//     holds nothing, whatever HoldOrderID says.
//   - PurgeExpired deletes expired idempotency records and sessions expired
//     more than keep ago, except sessions in complete_in_progress (a payment
//     whose outcome is unknown); never orders or reservations. (Jobs: see
//     outbox.go.)
//   - Concurrent Commits behave as if applied one at a time in some order
//     (drivers may share a transaction between them, as SQLite's group
//     commit does): a failing change affects no other, two changes to one
//     session see each other's revisions, and a Commit that returns nil is
//     stored whole while one that fails, canceled or not, left nothing.
//   - Sessions read and sessions committed share no memory with the
//     caller's: changing one after the call changes nothing stored.

func runCheckout(t *testing.T, open func(t *testing.T) bridge.Storage) {
	t.Run("CheckoutEmpty", func(t *testing.T) { testCheckoutEmpty(t, open(t)) })
	t.Run("SessionRoundTrip", func(t *testing.T) { testSessionRoundTrip(t, open(t)) })
	t.Run("SessionOwner", func(t *testing.T) { testSessionOwner(t, open(t)) })
	t.Run("SessionRevisions", func(t *testing.T) { testSessionRevisions(t, open(t)) })
	t.Run("SessionInvalid", func(t *testing.T) { testSessionInvalid(t, open(t)) })
	t.Run("ConcurrentSessionUpdate", func(t *testing.T) { testConcurrentSessionUpdate(t, open(t)) })
	t.Run("OrderUpsert", func(t *testing.T) { testOrderUpsert(t, open(t)) })
	t.Run("IdemRoundTrip", func(t *testing.T) { testIdemRoundTrip(t, open(t)) })
	t.Run("IdemInsert", func(t *testing.T) { testIdemInsert(t, open(t)) })
	t.Run("IdemFinish", func(t *testing.T) { testIdemFinish(t, open(t)) })
	t.Run("IdemRelease", func(t *testing.T) { testIdemRelease(t, open(t)) })
	t.Run("IdemTakeover", func(t *testing.T) { testIdemTakeover(t, open(t)) })
	t.Run("IdemInvalid", func(t *testing.T) { testIdemInvalid(t, open(t)) })
	t.Run("ChangeAtomic", func(t *testing.T) { testChangeAtomic(t, open) })
	t.Run("ChangeHoldRelease", func(t *testing.T) { testChangeHoldRelease(t, open(t)) })
	t.Run("PurgeExpired", func(t *testing.T) { testPurgeExpired(t, open(t)) })
	t.Run("ConcurrentIdemInsert", func(t *testing.T) { testConcurrentIdemInsert(t, []bridge.Storage{open(t)}) })
	t.Run("ConcurrentMixedChanges", func(t *testing.T) { testConcurrentMixedChanges(t, open(t)) })
	t.Run("ConcurrentSessionChain", func(t *testing.T) { testConcurrentSessionChain(t, []bridge.Storage{open(t)}) })
	t.Run("ConcurrentCancel", func(t *testing.T) { testConcurrentCancel(t, open(t)) })
	t.Run("ExpiryChanges", func(t *testing.T) { testExpiryChanges(t, open(t)) })
	t.Run("SessionNotShared", func(t *testing.T) { testSessionNotShared(t, open(t)) })
}

// cest is a zone other than UTC: stores must return the same instants in UTC.
var cest = time.FixedZone("CEST", 2*60*60)

// at is a time in microseconds, the precision every SQL database keeps, in a
// zone other than UTC.
func at(day, hour, minute int) time.Time {
	return time.Date(2026, 6, day, hour, minute, 7, 123456000, cest)
}

// fullSession returns a session that sets every field of bridge.Session,
// including the distinctions a careless encoding loses: a nil Available next
// to a zero one, a zero delivery bound next to a set one, non-ASCII text and
// HTML-ish characters.
func fullSession(id, owner string) bridge.Session {
	zero, seven := int64(0), int64(7)
	return bridge.Session{
		ID:       id,
		Owner:    owner,
		Rev:      1,
		Status:   bridge.StatusReady,
		Currency: "EUR",
		Lines: []bridge.SessionLine{
			{
				ID: "li_1", VariantID: "var-1a", ProductID: "prod-1", Title: "Wool Scarf – Red <b>",
				ImageURL: "https://cdn.example.com/scarf.jpg", URL: "https://shop.example.com/scarf?a=1&b=2",
				Quantity: 2, WeightGrams: 300, Available: &seven,
				UnitAmount: 3990, Base: 7980, Discount: 500, Subtotal: 7480, Tax: 1421, Total: 8901,
			},
			{
				ID: "li_2", VariantID: "var-3", Title: "抹茶 Gift Card", Quantity: 1, Digital: true,
				Available: &zero, UnitAmount: 5000, Base: 5000, Subtotal: 5000, Total: 5000,
			},
			{ID: "li_3", VariantID: "var-9", Quantity: 1, UnitAmount: 100, Base: 100, Subtotal: 100, Total: 100},
		},
		Buyer:   &bridge.Buyer{Name: "Ada Lovelace", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0000"},
		ShipTo:  &bridge.Address{Name: "Ada Lovelace", Company: "Engines Ltd", Line1: "12 St James's Sq", Line2: "Flat 1", City: "London", Region: "LND", PostalCode: "SW1Y 4JH", Country: "GB"},
		Contact: &bridge.Buyer{Email: "ops@example.com"},
		Options: []bridge.FulfillmentOption{
			{ID: "ship_std", Type: "shipping", Title: "Standard", Subtitle: "3–5 days", Carrier: "DHL",
				Earliest: at(10, 9, 0), Latest: at(12, 18, 0), Subtotal: 495, Tax: 94, Total: 589},
			{ID: "digital", Type: "digital", Title: "E-mail"}, // no delivery bounds
		},
		Selected: "ship_std",
		Totals:   bridge.Totals{ItemsBase: 13080, ItemsDiscount: 500, Subtotal: 12080, Discount: 1000, Fulfillment: 495, Tax: 1515, TaxIncluded: 12, Total: 13090},
		Messages: []bridge.Message{
			{Type: bridge.MessageWarning, Code: bridge.MsgLowStock, Param: "$.line_items[0]", Content: "Only 7 left", Resolution: "recoverable"},
			{Type: bridge.MessageInfo, Content: "Gift cards are e-mailed."},
		},
		Links:         []bridge.Link{{Type: "terms_of_use", URL: "https://shop.example.com/terms"}},
		Interventions: []string{"3ds"},
		Auth: &bridge.AuthChallenge{
			AcquirerBIN: "411111", AcquirerCountry: "GB", AcquirerMerchantID: "m-1", MerchantName: "Shop",
			DirectoryServer: "visa", PaymentRef: "pi_123",
		},
		OrderID:         "ord_" + id,
		Order:           &bridge.SessionOrder{ID: "ord_" + id, PermalinkURL: "https://shop.example.com/orders/ord_" + id},
		PaymentAttempts: 2,
		StockFallback:   true,
		CreatedAt:       at(1, 10, 0),
		UpdatedAt:       at(1, 10, 5),
		ExpiresAt:       at(1, 16, 0),
	}
}

// session returns a small session of owner at revision 1.
func session(id, owner string) bridge.Session {
	return bridge.Session{
		ID: id, Owner: owner, Rev: 1, Status: bridge.StatusNotReady, Currency: "USD",
		Lines:     []bridge.SessionLine{{ID: "li_1", VariantID: "v1", Quantity: 1, UnitAmount: 100, Base: 100, Subtotal: 100, Total: 100}},
		CreatedAt: at(1, 10, 0), UpdatedAt: at(1, 10, 0), ExpiresAt: at(1, 16, 0),
	}
}

// fullOrder returns an order that sets every field of bridge.Order but Rev
// (the store's), with its times in a zone other than UTC: stores return
// them in UTC, nested ones included.
func fullOrder(id, sessionID, owner string) bridge.Order {
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	one := int64(1)
	return bridge.Order{
		ID: id, SessionID: sessionID, Owner: owner, APIVersion: "2026-04-17", Status: bridge.OrderCreated,
		PermalinkURL: "https://shop.example.com/orders/" + id,
		CreatedAt:    at(2, 11, 30),
		UpdatedAt:    at(2, 11, 31),
		Currency:     "USD",
		Lines: []bridge.OrderLine{
			{ID: "li_1", VariantID: "v1", ProductID: "p1", Title: "Tee – M", Quantity: 2, Current: &one, Fulfilled: 1,
				UnitPrice: usd(1999), Total: usd(3998)},
			{ID: "li_2", VariantID: "v2", ProductID: "p1", Title: "Tee – L", Quantity: 1, UnitPrice: usd(1999), Total: usd(1999)},
		},
		Subtotal: usd(5997), Shipping: usd(495), Tax: usd(0), Total: usd(6492),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: "+1 555 0100"},
		ShipTo:         &bridge.Address{Line1: "1 Main St", City: "Springfield", Region: "IL", PostalCode: "62701", Country: "US"},
		ShippingMethod: &bridge.ShippingMethod{ID: "ship_std", Title: "Standard", Type: "shipping"},
		PaymentRef:     "pi_" + id,
		Payment:        bridge.PaymentStateCaptured,
		StoreID:        "store-" + id,
		StoreURL:       "https://shop.example.com/admin/orders/" + id,
		Fulfillments: []bridge.Fulfillment{{
			ID: "ful_1", Type: "shipping", Status: "shipped", Lines: []bridge.LineRef{{ID: "li_1", Quantity: 1}},
			Carrier: "UPS", TrackingNumber: "1Z999", TrackingURL: "https://ups.example.com/1Z999",
			Events: []bridge.FulfillmentEvent{{ID: "fe_1", Type: "shipped", OccurredAt: at(3, 9, 0)}},
		}},
		Adjustments: []bridge.Adjustment{{
			ID: "adj_1", Type: "refund", Status: "completed", OccurredAt: at(4, 9, 0), Amount: 1999, Currency: "USD",
			Reason: "returned – too small", Lines: []bridge.LineRef{{ID: "li_2", Quantity: 1}},
		}},
		Token: "tok_" + id,
		History: []bridge.OrderEvent{
			{At: at(2, 11, 30), Status: "pending_payment"},
			{At: at(2, 11, 31), Status: bridge.OrderCreated, Note: "paid <card>"},
		},
	}
}

// orderAt returns o as a store gives it back at revision rev: every time in
// UTC.
func orderAt(o bridge.Order, rev int64) bridge.Order {
	o.Rev = rev
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	o.Fulfillments = slices.Clone(o.Fulfillments)
	for i := range o.Fulfillments {
		f := &o.Fulfillments[i]
		f.Events = slices.Clone(f.Events)
		for j := range f.Events {
			f.Events[j].OccurredAt = f.Events[j].OccurredAt.UTC()
		}
	}
	o.Adjustments = slices.Clone(o.Adjustments)
	for i := range o.Adjustments {
		o.Adjustments[i].OccurredAt = o.Adjustments[i].OccurredAt.UTC()
	}
	o.History = slices.Clone(o.History)
	for i := range o.History {
		o.History[i].At = o.History[i].At.UTC()
	}
	return o
}

// wantOrder checks that the order id is want at revision rev.
func wantOrder(t *testing.T, s bridge.Storage, want bridge.Order, rev int64) {
	t.Helper()
	got, err := s.Order(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Order(%q): %v", want.ID, err)
	}
	wantUTC(t, "Order "+want.ID, got.CreatedAt, got.UpdatedAt)
	same(t, "Order "+want.ID, got, orderAt(want, rev))
}

// claim returns an unfinished idempotency record held by token, locked
// until lockedFor from now and expiring in a day.
func claim(scope, key, token string, lockedFor time.Duration) bridge.IdempotencyRecord {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return bridge.IdempotencyRecord{
		Scope: scope, Key: key, RequestHash: "hash-" + key, Token: token,
		LockedUntil: now.Add(lockedFor), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
}

// finished returns r answered with outcome.
func finished(r bridge.IdempotencyRecord, outcome string) bridge.IdempotencyRecord {
	r.Done = true
	r.Outcome = []byte(outcome)
	r.LockedUntil = time.Time{}
	return r
}

func commitOK(t *testing.T, s bridge.Storage, c bridge.Change) {
	t.Helper()
	if err := s.Commit(t.Context(), c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want one wrapping %v", what, err, want)
	}
}

func utcIdem(r bridge.IdempotencyRecord) bridge.IdempotencyRecord {
	r.LockedUntil, r.CreatedAt, r.ExpiresAt = r.LockedUntil.UTC(), r.CreatedAt.UTC(), r.ExpiresAt.UTC()
	return r
}

// same fails unless got deep-equals want; the message shows both as JSON.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s differs\n got: %s\nwant: %s", what, g, w)
	}
}

func wantUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for i, tm := range ts {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: time %d (%v) is in %v, want UTC", what, i, tm, tm.Location())
		}
	}
}

// wantSession checks that owner's session id is want.
func wantSession(t *testing.T, s bridge.Storage, owner, id string, want bridge.Session) {
	t.Helper()
	got, err := s.Session(t.Context(), owner, id)
	if err != nil {
		t.Fatalf("Session(%q, %q): %v", owner, id, err)
	}
	wantUTC(t, "Session "+id, got.CreatedAt, got.UpdatedAt, got.ExpiresAt)
	same(t, "Session "+id, got, want.UTC())
}

func wantNoSession(t *testing.T, s bridge.Storage, owner, id string) {
	t.Helper()
	_, err := s.Session(t.Context(), owner, id)
	wantNotFound(t, fmt.Sprintf("Session(%q, %q)", owner, id), err)
}

func wantIdem(t *testing.T, s bridge.Storage, want bridge.IdempotencyRecord) {
	t.Helper()
	got, err := s.Idempotency(t.Context(), want.Scope, want.Key)
	if err != nil {
		t.Fatalf("Idempotency(%q, %q): %v", want.Scope, want.Key, err)
	}
	wantUTC(t, "Idempotency "+want.Key, got.LockedUntil, got.CreatedAt, got.ExpiresAt)
	same(t, "Idempotency "+want.Key, got, utcIdem(want))
}

func wantNoIdem(t *testing.T, s bridge.Storage, scope, key string) {
	t.Helper()
	_, err := s.Idempotency(t.Context(), scope, key)
	wantNotFound(t, fmt.Sprintf("Idempotency(%q, %q)", scope, key), err)
}

func testCheckoutEmpty(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	wantNoSession(t, s, "alice", "s1")
	wantNoIdem(t, s, "alice POST /checkout_sessions", "k1")
	_, err := s.Order(ctx, "o1")
	wantNotFound(t, "Order", err)
	if n, err := s.PurgeExpired(ctx, time.Now(), 0); err != nil || n != 0 {
		t.Errorf("PurgeExpired on an empty store = %d, %v; want 0, nil", n, err)
	}
	// A Change that changes nothing is not an error.
	commitOK(t, s, bridge.Change{})
}

func testSessionRoundTrip(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	sess := fullSession("s1", "alice")
	order := fullOrder("ord_s1", "s1", "alice")
	commitOK(t, s, bridge.Change{Session: &sess, Order: &order})
	wantSession(t, s, "alice", "s1", sess)
	wantOrder(t, s, order, 1)

	// The distinctions checked by name, so a failure says what broke.
	back, _ := s.Session(ctx, "alice", "s1")
	if a := back.Lines[0].Available; a == nil || *a != 7 {
		t.Errorf("Available 7 came back as %v", a)
	}
	if a := back.Lines[1].Available; a == nil || *a != 0 {
		t.Errorf("Available 0 came back as %v", a)
	}
	if a := back.Lines[2].Available; a != nil {
		t.Errorf("nil Available came back as %d", *a)
	}
	if !back.Options[1].Earliest.IsZero() || !back.Options[0].Earliest.Equal(sess.Options[0].Earliest) {
		t.Errorf("delivery bounds did not survive: %v, %v", back.Options[0].Earliest, back.Options[1].Earliest)
	}

	// Nanoseconds and times far ahead survive too (the body is exact).
	sess.Rev = 2
	sess.UpdatedAt = time.Date(2026, 6, 1, 10, 6, 0, 123456789, time.UTC)
	sess.ExpiresAt = time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	sess.Lines, sess.Options, sess.Messages, sess.Links = nil, nil, nil, nil // nil stays nil
	sess.Buyer, sess.Auth, sess.Order = nil, nil, nil
	commitOK(t, s, bridge.Change{Session: &sess})
	wantSession(t, s, "alice", "s1", sess)
	sess.Rev = 3
	sess.Lines, sess.Options, sess.Messages, sess.Links = []bridge.SessionLine{}, []bridge.FulfillmentOption{}, []bridge.Message{}, []bridge.Link{} // empty stays empty
	commitOK(t, s, bridge.Change{Session: &sess})
	wantSession(t, s, "alice", "s1", sess)
}

// A session exists only for its owner: another owner can neither read it nor
// write over it, and the error does not tell it apart from a missing one.
func testSessionOwner(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	sess := session("s1", "alice")
	commitOK(t, s, bridge.Change{Session: &sess})

	_, errOther := s.Session(ctx, "mallory", "s1")
	_, errMissing := s.Session(ctx, "mallory", "s2")
	wantNotFound(t, "Session of another owner", errOther)
	wantNotFound(t, "missing Session", errMissing)
	if errOther != nil && strings.Contains(errOther.Error(), "alice") {
		t.Errorf("the error for another owner's session names the owner: %v", errOther)
	}
	if errOther != nil && errMissing != nil && strings.ReplaceAll(errOther.Error(), "s1", "s2") != errMissing.Error() {
		t.Errorf("another owner's session and a missing one fail differently:\n%v\n%v", errOther, errMissing)
	}
	wantNoSession(t, s, "", "s1")
	wantNoSession(t, s, "ALICE", "s1")

	// Writes: an update by another owner is stale; an insert of the same
	// id by another owner is refused, not an overwrite.
	steal := session("s1", "mallory")
	steal.Rev = 2
	steal.Status = bridge.StatusCanceled
	wantErr(t, "update of another owner's session", s.Commit(ctx, bridge.Change{Session: &steal}), bridge.ErrStale)
	steal.Rev = 1
	if err := s.Commit(ctx, bridge.Change{Session: &steal}); err == nil {
		t.Error("inserting an existing session id for another owner succeeded")
	} else {
		wantErr(t, "insert over another owner's session", err, bridge.ErrStale)
	}
	wantSession(t, s, "alice", "s1", sess)
	wantNoSession(t, s, "mallory", "s1")
}

func testSessionRevisions(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	sess := session("s1", "alice")
	commitOK(t, s, bridge.Change{Session: &sess})

	// Revision 1 again: an insert over an existing session is refused.
	again := sess
	again.Status = bridge.StatusCanceled
	wantErr(t, "second insert", s.Commit(ctx, bridge.Change{Session: &again}), bridge.ErrStale)
	wantSession(t, s, "alice", "s1", sess)

	// Skipping a revision is stale.
	skip := sess
	skip.Rev = 3
	wantErr(t, "write of rev 3 over rev 1", s.Commit(ctx, bridge.Change{Session: &skip}), bridge.ErrStale)

	next := sess
	next.Rev = 2
	next.Status = bridge.StatusReady
	next.UpdatedAt = at(1, 10, 9)
	commitOK(t, s, bridge.Change{Session: &next})
	wantSession(t, s, "alice", "s1", next)

	// The same write again (a writer that read rev 1 too) is stale.
	late := sess
	late.Rev = 2
	late.Status = bridge.StatusCanceled
	wantErr(t, "second write of rev 2", s.Commit(ctx, bridge.Change{Session: &late}), bridge.ErrStale)
	wantSession(t, s, "alice", "s1", next)

	// Updating a session that does not exist is stale, not an insert.
	ghost := session("ghost", "alice")
	ghost.Rev = 2
	wantErr(t, "update of a missing session", s.Commit(ctx, bridge.Change{Session: &ghost}), bridge.ErrStale)
	wantNoSession(t, s, "alice", "ghost")
}

func testSessionInvalid(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		mod  func(*bridge.Session)
	}{
		{"rev 0", func(s *bridge.Session) { s.Rev = 0 }},
		{"negative rev", func(s *bridge.Session) { s.Rev = -1 }},
		{"empty id", func(s *bridge.Session) { s.ID = "" }},
	} {
		sess := session("s1", "alice")
		tt.mod(&sess)
		if err := s.Commit(ctx, bridge.Change{Session: &sess}); err == nil {
			t.Errorf("%s: Commit succeeded", tt.name)
		} else if errors.Is(err, bridge.ErrStale) {
			t.Errorf("%s: err = %v; an invalid session is not a concurrent change", tt.name, err)
		}
	}
	wantNoSession(t, s, "alice", "s1")
	wantNoSession(t, s, "alice", "")
}

// Writers that read the same revision race: exactly one wins, the others get
// ErrStale, and the stored session is the winner's.
func testConcurrentSessionUpdate(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	base := session("s1", "alice")
	commitOK(t, s, bridge.Change{Session: &base})
	const writers = 10
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			next := base
			next.Rev = 2
			next.Selected = fmt.Sprintf("writer-%d", i)
			<-start
			errs[i] = s.Commit(ctx, bridge.Change{Session: &next})
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both committed revision 2", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, bridge.ErrStale):
			t.Errorf("writer %d: err = %v, want ErrStale", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer committed revision 2")
	}
	got, err := s.Session(ctx, "alice", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != 2 || got.Selected != fmt.Sprintf("writer-%d", winner) {
		t.Errorf("stored session is rev %d by %q, want rev 2 by writer-%d", got.Rev, got.Selected, winner)
	}
}

func testOrderUpsert(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	o := fullOrder("o1", "s1", "alice")
	o.Status = "pending_payment"
	o.PaymentRef = ""
	commitOK(t, s, bridge.Change{Order: &o})
	// Replaced by id: the paid order over the pending one.
	paid := fullOrder("o1", "s1", "alice")
	commitOK(t, s, bridge.Change{Order: &paid})
	other := fullOrder("o2", "s2", "bob")
	other.ShipTo = nil
	other.Lines = nil
	commitOK(t, s, bridge.Change{Order: &other})
	// Revision 0 replaces and moves the stored revision on.
	wantOrder(t, s, paid, 2)
	wantOrder(t, s, other, 1)
	_, err := s.Order(ctx, "o3")
	wantNotFound(t, "Order(o3)", err)
	if err := s.Commit(ctx, bridge.Change{Order: &bridge.Order{}}); err == nil {
		t.Error("an order without id was committed")
	}
}

func testIdemRoundTrip(t *testing.T, s bridge.Storage) {
	now := time.Now().In(cest).Truncate(time.Microsecond)
	r := bridge.IdempotencyRecord{
		Scope: "alice POST /checkout_sessions", Key: "k-ü 1", RequestHash: "sha256:abc",
		Token: "tok-1", LockedUntil: now.Add(30 * time.Second),
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r})
	wantIdem(t, s, r)

	done := r
	done.Done = true
	done.Outcome = []byte{0, 1, 2, 0xff, '{', '}'} // binary-safe
	done.LockedUntil = time.Time{}
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &done})
	wantIdem(t, s, done)

	// A record inserted done, with no claim at all.
	direct := bridge.IdempotencyRecord{Scope: r.Scope, Key: "k2", RequestHash: "h", Done: true,
		Outcome: []byte(`{"status":201}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &direct})
	wantIdem(t, s, direct)
}

func testIdemInsert(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const scope = "alice POST /checkout_sessions"
	first := claim(scope, "k1", "tok-1", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &first})

	// Taken, in flight or answered.
	second := claim(scope, "k1", "tok-2", time.Minute)
	second.RequestHash = "other"
	wantErr(t, "insert of a taken key", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &second}), bridge.ErrIdempotencyExists)
	wantIdem(t, s, first)
	// An unfinished claim whose lock passed is still taken: that is for
	// IdemTakeover to decide.
	stale := claim(scope, "k2", "tok-1", -time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &stale})
	again := claim(scope, "k2", "tok-2", time.Minute)
	wantErr(t, "insert over a claim whose lock passed", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &again}), bridge.ErrIdempotencyExists)
	done := finished(first, "answer")
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &done})
	wantErr(t, "insert of an answered key", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &second}), bridge.ErrIdempotencyExists)
	wantIdem(t, s, done)

	// The same key in another scope is another record.
	other := claim("bob POST /checkout_sessions", "k1", "tok-3", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &other})
	wantIdem(t, s, other)
	wantIdem(t, s, done)

	// An expired record is gone: reads miss it and an insert replaces it.
	old := finished(claim(scope, "k3", "tok-1", 0), "old answer")
	old.CreatedAt = old.CreatedAt.Add(-48 * time.Hour)
	old.ExpiresAt = time.Now().Add(-time.Second)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &old})
	wantNoIdem(t, s, scope, "k3")
	fresh := claim(scope, "k3", "tok-2", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &fresh})
	wantIdem(t, s, fresh)
}

func testIdemFinish(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const scope = "alice POST /checkout_sessions/s1/complete"
	r := claim(scope, "k1", "tok-1", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r})

	// Another token cannot finish the claim.
	wrong := finished(r, "theirs")
	wrong.Token = "tok-2"
	wantErr(t, "finish with another token", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &wrong}), bridge.ErrIdempotencyLost)
	wantIdem(t, s, r)

	done := finished(r, "ours")
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &done})
	wantIdem(t, s, done)
	// Done is done: a second finish, even by the holder, is lost.
	twice := finished(r, "again")
	wantErr(t, "second finish", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &twice}), bridge.ErrIdempotencyLost)
	wantIdem(t, s, done)

	// No record at all.
	ghost := finished(claim(scope, "ghost", "tok-1", time.Minute), "x")
	wantErr(t, "finish of a missing record", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &ghost}), bridge.ErrIdempotencyLost)
	wantNoIdem(t, s, scope, "ghost")

	// A holder whose lock passed but whom nobody took over still finishes.
	slow := claim(scope, "k2", "tok-1", -time.Second)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &slow})
	slowDone := finished(slow, "late but ours")
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &slowDone})
	wantIdem(t, s, slowDone)
}

func testIdemRelease(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const scope = "alice POST /checkout_sessions"
	r := claim(scope, "k1", "tok-1", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r})

	wrong := r
	wrong.Token = "tok-2"
	wantErr(t, "release with another token", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemRelease, Idempotency: &wrong}), bridge.ErrIdempotencyLost)
	wantIdem(t, s, r)

	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemRelease, Idempotency: &r})
	wantNoIdem(t, s, scope, "k1")
	wantErr(t, "second release", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemRelease, Idempotency: &r}), bridge.ErrIdempotencyLost)
	// Released, the key is free for the retry.
	retry := claim(scope, "k1", "tok-3", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &retry})
	wantIdem(t, s, retry)

	// An answered record is never released, not even by its holder.
	done := finished(retry, "answer")
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &done})
	wantErr(t, "release of an answered record", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemRelease, Idempotency: &retry}), bridge.ErrIdempotencyLost)
	wantIdem(t, s, done)
}

func testIdemTakeover(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const scope = "alice POST /checkout_sessions/s1/complete"

	// Still locked: no takeover.
	live := claim(scope, "k1", "tok-1", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &live})
	grab := claim(scope, "k1", "tok-2", time.Minute)
	wantErr(t, "takeover of a locked claim", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &grab}), bridge.ErrIdempotencyExists)
	wantIdem(t, s, live)

	// The holder crashed: its lock passed, the next request takes over.
	crashed := claim(scope, "k2", "tok-1", -time.Second)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &crashed})
	next := claim(scope, "k2", "tok-2", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &next})
	wantIdem(t, s, next)
	// The first holder wakes up: its claim is lost, whatever it tries.
	late := finished(crashed, "late")
	wantErr(t, "finish after takeover", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &late}), bridge.ErrIdempotencyLost)
	wantErr(t, "release after takeover", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemRelease, Idempotency: &crashed}), bridge.ErrIdempotencyLost)
	wantIdem(t, s, next)
	// A third request cannot take over the fresh claim.
	third := claim(scope, "k2", "tok-3", time.Minute)
	wantErr(t, "takeover of a fresh takeover", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &third}), bridge.ErrIdempotencyExists)
	done := finished(next, "answer")
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &done})
	wantIdem(t, s, done)

	// Answered: never taken over, however old its (cleared) lock.
	wantErr(t, "takeover of an answered record", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &third}), bridge.ErrIdempotencyExists)
	wantIdem(t, s, done)

	// Expired, answered or not: gone, so taken over like nothing.
	old := finished(claim(scope, "k3", "tok-1", 0), "old")
	old.ExpiresAt = time.Now().Add(-time.Second)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &old})
	fresh := claim(scope, "k3", "tok-2", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &fresh})
	wantIdem(t, s, fresh)

	// Nothing to take over (released, purged meanwhile): the claim is made.
	none := claim(scope, "k4", "tok-1", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &none})
	wantIdem(t, s, none)
}

func testIdemInvalid(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const scope = "alice POST /checkout_sessions"
	good := claim(scope, "k1", "tok-1", time.Minute)
	for _, tt := range []struct {
		name string
		op   bridge.IdempotencyOp
		rec  *bridge.IdempotencyRecord
	}{
		{"insert without record", bridge.IdemInsert, nil},
		{"finish without record", bridge.IdemFinish, nil},
		{"unknown op", bridge.IdempotencyOp(99), &good},
		{"empty key", bridge.IdemInsert, func() *bridge.IdempotencyRecord { r := good; r.Key = ""; return &r }()},
		{"empty scope", bridge.IdemInsert, func() *bridge.IdempotencyRecord { r := good; r.Scope = ""; return &r }()},
		{"no expiry", bridge.IdemInsert, func() *bridge.IdempotencyRecord { r := good; r.ExpiresAt = time.Time{}; return &r }()},
		{"takeover without token", bridge.IdemTakeover, func() *bridge.IdempotencyRecord { r := good; r.Token = ""; return &r }()},
	} {
		sess := session("s-"+tt.name, "alice")
		if err := s.Commit(ctx, bridge.Change{Session: &sess, IdemOp: tt.op, Idempotency: tt.rec}); err == nil {
			t.Errorf("%s: Commit succeeded", tt.name)
		}
		wantNoSession(t, s, "alice", sess.ID)
	}
	wantNoIdem(t, s, scope, "k1")
}

// wantNothingOf checks that no trace of a failed change is left: no session,
// order, hold or idempotency record.
func wantNothingOf(t *testing.T, s bridge.Storage, owner, sessionID, orderID, variantID, scope, key string) {
	t.Helper()
	if sessionID != "" {
		wantNoSession(t, s, owner, sessionID)
	}
	if orderID != "" {
		_, err := s.Order(t.Context(), orderID)
		wantNotFound(t, "Order of a failed change", err)
	}
	if variantID != "" {
		wantReserved(t, s, variantID, 0)
	}
	if key != "" {
		wantNoIdem(t, s, scope, key)
	}
}

// Every way a Change can fail leaves everything as it was.
func testChangeAtomic(t *testing.T, open func(t *testing.T) bridge.Storage) {
	const scope = "alice POST /checkout_sessions/s1/complete"
	hold := []bridge.Reservation{{VariantID: "v1", Quantity: 2}}

	t.Run("stale session", func(t *testing.T) {
		s := open(t)
		base := session("s1", "alice")
		commitOK(t, s, bridge.Change{Session: &base})
		stale := base
		stale.Rev = 3
		stale.Status = bridge.StatusCompleted
		order := fullOrder("o1", "s1", "alice")
		r := claim(scope, "k1", "tok-1", time.Minute)
		err := s.Commit(t.Context(), bridge.Change{Session: &stale, Order: &order,
			HoldOrderID: "o1", Hold: hold, IdemOp: bridge.IdemInsert, Idempotency: &r})
		wantErr(t, "Commit", err, bridge.ErrStale)
		wantSession(t, s, "alice", "s1", base)
		wantNothingOf(t, s, "", "", "o1", "v1", scope, "k1")
	})
	t.Run("session insert over existing", func(t *testing.T) {
		s := open(t)
		base := session("s1", "alice")
		commitOK(t, s, bridge.Change{Session: &base})
		dup := session("s1", "alice")
		dup.Status = bridge.StatusReady
		order := fullOrder("o1", "s1", "alice")
		r := claim(scope, "k1", "tok-1", time.Minute)
		err := s.Commit(t.Context(), bridge.Change{Session: &dup, Order: &order,
			HoldOrderID: "o1", Hold: hold, IdemOp: bridge.IdemInsert, Idempotency: &r})
		wantErr(t, "Commit", err, bridge.ErrStale)
		wantSession(t, s, "alice", "s1", base)
		wantNothingOf(t, s, "", "", "o1", "v1", scope, "k1")
	})
	t.Run("idempotency key taken", func(t *testing.T) {
		s := open(t)
		taken := claim(scope, "k1", "tok-1", time.Minute)
		commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &taken})
		sess := session("s2", "alice")
		order := fullOrder("o1", "s2", "alice")
		r := claim(scope, "k1", "tok-2", time.Minute)
		err := s.Commit(t.Context(), bridge.Change{Session: &sess, Order: &order,
			HoldOrderID: "o1", Hold: hold, IdemOp: bridge.IdemInsert, Idempotency: &r})
		wantErr(t, "Commit", err, bridge.ErrIdempotencyExists)
		wantNothingOf(t, s, "alice", "s2", "o1", "v1", "", "")
		wantIdem(t, s, taken)
	})
	t.Run("claim lost", func(t *testing.T) {
		s := open(t)
		base := session("s1", "alice")
		r := claim(scope, "k1", "tok-1", -time.Second)
		commitOK(t, s, bridge.Change{Session: &base, IdemOp: bridge.IdemInsert, Idempotency: &r})
		thief := claim(scope, "k1", "tok-2", time.Minute)
		commitOK(t, s, bridge.Change{IdemOp: bridge.IdemTakeover, Idempotency: &thief})
		// The first holder finishes: session, order, hold and answer must
		// all stay out.
		next := base
		next.Rev = 2
		next.Status = bridge.StatusCompleted
		order := fullOrder("o1", "s1", "alice")
		done := finished(r, "paid")
		err := s.Commit(t.Context(), bridge.Change{Session: &next, Order: &order,
			HoldOrderID: "o1", Hold: hold, IdemOp: bridge.IdemFinish, Idempotency: &done})
		wantErr(t, "Commit", err, bridge.ErrIdempotencyLost)
		wantSession(t, s, "alice", "s1", base)
		wantNothingOf(t, s, "", "", "o1", "v1", "", "")
		wantIdem(t, s, thief)
	})
	t.Run("stale session reports the idempotency error first", func(t *testing.T) {
		s := open(t)
		base := session("s1", "alice")
		taken := claim(scope, "k1", "tok-1", time.Minute)
		commitOK(t, s, bridge.Change{Session: &base, IdemOp: bridge.IdemInsert, Idempotency: &taken})
		stale := base
		stale.Rev = 5
		r := claim(scope, "k1", "tok-2", time.Minute)
		err := s.Commit(t.Context(), bridge.Change{Session: &stale, IdemOp: bridge.IdemInsert, Idempotency: &r})
		wantErr(t, "Commit", err, bridge.ErrIdempotencyExists)
	})
	t.Run("stale session keeps the released hold", func(t *testing.T) {
		s := open(t)
		base := session("s1", "alice")
		commitOK(t, s, bridge.Change{Session: &base, HoldOrderID: "o1", Hold: hold})
		wantReserved(t, s, "v1", 2)
		stale := base
		stale.Rev = 3
		stale.Status = bridge.StatusCanceled
		done := claim(scope, "k1", "tok-1", time.Minute)
		err := s.Commit(t.Context(), bridge.Change{Session: &stale, ReleaseOrderID: "o1", IdemOp: bridge.IdemInsert, Idempotency: &done})
		wantErr(t, "Commit", err, bridge.ErrStale)
		wantReserved(t, s, "v1", 2)
		wantNoIdem(t, s, scope, "k1")
	})
	t.Run("invalid hold", func(t *testing.T) {
		s := open(t)
		for i, bad := range [][]bridge.Reservation{
			{{VariantID: "v1", Quantity: 1}, {VariantID: "v2", Quantity: 0}},
			{{VariantID: "v1", Quantity: 1}, {VariantID: "", Quantity: 1}},
		} {
			sess := session("s1", "alice")
			order := fullOrder("o1", "s1", "alice")
			r := claim(scope, "k1", "tok-1", time.Minute)
			if err := s.Commit(t.Context(), bridge.Change{Session: &sess, Order: &order,
				HoldOrderID: "o1", Hold: bad, IdemOp: bridge.IdemInsert, Idempotency: &r}); err == nil {
				t.Errorf("hold %d: Commit succeeded", i)
			}
			wantNothingOf(t, s, "alice", "s1", "o1", "v1", scope, "k1")
		}
		// Lines without an order id to hold them under.
		sess := session("s1", "alice")
		if err := s.Commit(t.Context(), bridge.Change{Session: &sess, Hold: hold}); err == nil {
			t.Error("hold without order id: Commit succeeded")
		}
		wantNothingOf(t, s, "alice", "s1", "", "v1", "", "")
	})
	t.Run("canceled context", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		sess := session("s1", "alice")
		r := claim(scope, "k1", "tok-1", time.Minute)
		if err := s.Commit(ctx, bridge.Change{Session: &sess, HoldOrderID: "o1", Hold: hold, IdemOp: bridge.IdemInsert, Idempotency: &r}); err == nil {
			t.Error("Commit with a canceled context succeeded")
		}
		wantNothingOf(t, s, "alice", "s1", "", "v1", scope, "k1")
	})
}

func testChangeHoldRelease(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	sess := session("s1", "alice")
	order := fullOrder("o1", "s1", "alice")
	order.Status = "pending_payment"
	commitOK(t, s, bridge.Change{Session: &sess, Order: &order, HoldOrderID: "o1",
		Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 2}, {VariantID: "v2", Quantity: 1}}})
	wantReserved(t, s, "v1", 2)
	wantReserved(t, s, "v2", 1)

	// A retried complete holds again under the same order: nothing changes,
	// whatever lines it brings.
	sess.Rev = 2
	commitOK(t, s, bridge.Change{Session: &sess, HoldOrderID: "o1",
		Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 5}}})
	wantReserved(t, s, "v1", 2)
	// The hold a Change makes is the one Reserve/Release know.
	reserve(t, s, "o1", bridge.Reservation{VariantID: "v1", Quantity: 9})
	wantReserved(t, s, "v1", 2)

	// No lines: nothing to hold, not an error.
	sess.Rev = 3
	commitOK(t, s, bridge.Change{Session: &sess, HoldOrderID: "o9"})
	reserve(t, s, "o9", bridge.Reservation{VariantID: "v3", Quantity: 1}) // o9 still free
	wantReserved(t, s, "v3", 1)

	// Release one order and hold another in one change.
	sess.Rev = 4
	commitOK(t, s, bridge.Change{Session: &sess, ReleaseOrderID: "o1", HoldOrderID: "o2",
		Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 3}}})
	wantReserved(t, s, "v1", 3)
	wantReserved(t, s, "v2", 0)

	// Release and hold of the same order: the hold is replaced.
	sess.Rev = 5
	commitOK(t, s, bridge.Change{Session: &sess, ReleaseOrderID: "o2", HoldOrderID: "o2",
		Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}})
	wantReserved(t, s, "v1", 1)

	// Releasing what holds nothing is not an error (cancel retries).
	sess.Rev = 6
	sess.Status = bridge.StatusCanceled
	commitOK(t, s, bridge.Change{Session: &sess, ReleaseOrderID: "never"})
	commitOK(t, s, bridge.Change{ReleaseOrderID: "o2"})
	commitOK(t, s, bridge.Change{ReleaseOrderID: "o2"})
	wantReserved(t, s, "v1", 0)
	// The order itself is not touched by releasing its stock.
	if _, err := s.Order(ctx, "o1"); err != nil {
		t.Errorf("Order after release: %v", err)
	}
}

func testPurgeExpired(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	const keep = 24 * time.Hour
	type want int
	const (
		gone want = iota
		kept
	)
	sessions := []struct {
		id      string
		status  bridge.SessionStatus
		expires time.Time
		want    want
	}{
		{"completed-old", bridge.StatusCompleted, now.Add(-keep - time.Hour), gone},
		{"canceled-old", bridge.StatusCanceled, now.Add(-keep - time.Nanosecond*1000), gone},
		{"expired-old", bridge.StatusExpired, now.Add(-3 * keep), gone},
		{"abandoned-old", bridge.StatusReady, now.Add(-keep - time.Minute), gone},
		{"auth-old", bridge.StatusAuthRequired, now.Add(-keep - time.Minute), gone},
		// A payment whose outcome is unknown is never purged.
		{"paying-old", bridge.StatusCompleteInProgress, now.Add(-3 * keep), kept},
		// Expired, but not keep ago: kept for late lookups.
		{"completed-recent", bridge.StatusCompleted, now.Add(-keep + time.Minute), kept},
		{"canceled-at-cut", bridge.StatusCanceled, now.Add(-keep), kept},
		{"open", bridge.StatusNotReady, now.Add(time.Hour), kept},
		{"never-expires", bridge.StatusReady, time.Time{}, kept},
	}
	for i, ss := range sessions {
		sess := session(ss.id, "alice")
		sess.Status = ss.status
		sess.ExpiresAt = ss.expires
		order := fullOrder(fmt.Sprintf("o%d", i), ss.id, "alice")
		commitOK(t, s, bridge.Change{Session: &sess, Order: &order, HoldOrderID: order.ID,
			Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}})
	}
	const scope = "alice POST /checkout_sessions"
	records := []struct {
		key     string
		expires time.Time
		want    want
	}{
		{"old", now.Add(-time.Hour), gone},
		{"at-now", now, gone},
		{"soon", now.Add(time.Microsecond), kept},
		{"later", now.Add(time.Hour), kept},
	}
	for _, rr := range records {
		// Whether the wall clock has passed these expiries does not matter:
		// the keys are new, so each insert stores its record.
		r := finished(claim(scope, rr.key, "tok", 0), "answer")
		r.ExpiresAt = rr.expires
		commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r})
	}

	n, err := s.PurgeExpired(ctx, now, keep)
	if err != nil {
		t.Fatalf("PurgeExpired: %v", err)
	}
	wantN := 0
	for _, ss := range sessions {
		if ss.want == gone {
			wantN++
		}
		_, err := s.Session(ctx, "alice", ss.id)
		switch {
		case ss.want == gone && !errors.Is(err, bridge.ErrNotFound):
			t.Errorf("session %s was not purged (err %v)", ss.id, err)
		case ss.want == kept && err != nil:
			t.Errorf("session %s was purged: %v", ss.id, err)
		}
	}
	for _, rr := range records {
		if rr.want == gone {
			wantN++
		}
	}
	if n != int64(wantN) {
		t.Errorf("PurgeExpired = %d, want %d", n, wantN)
	}
	// Orders and holds are never purged.
	for i := range sessions {
		if _, err := s.Order(ctx, fmt.Sprintf("o%d", i)); err != nil {
			t.Errorf("order o%d after purge: %v", i, err)
		}
	}
	wantReserved(t, s, "v1", int64(len(sessions)))

	// A second purge at the same time finds nothing; two hours later the
	// two records and the two sessions that were just short of the cut go.
	if n, err := s.PurgeExpired(ctx, now, keep); err != nil || n != 0 {
		t.Errorf("second PurgeExpired = %d, %v; want 0", n, err)
	}
	if n, err := s.PurgeExpired(ctx, now.Add(2*time.Hour), keep); err != nil || n != 4 {
		t.Errorf("PurgeExpired two hours later = %d, %v; want 4 (soon, later, completed-recent, canceled-at-cut)", n, err)
	}
	for _, id := range []string{"paying-old", "open", "never-expires"} {
		if _, err := s.Session(ctx, "alice", id); err != nil {
			t.Errorf("session %s after the second purge: %v", id, err)
		}
	}
	if _, err := s.PurgeExpired(ctx, now, -time.Hour); err == nil {
		t.Error("PurgeExpired with a negative keep succeeded")
	}
}

// Fifty requests with the same Idempotency-Key, each creating its own
// session: exactly one commits, and only its session exists. Request i is
// sent to stores[i % len(stores)] (RunShared: replicas of one database).
func testConcurrentIdemInsert(t *testing.T, stores []bridge.Storage) {
	ctx := t.Context()
	const n = 50
	const scope = "alice POST /checkout_sessions"
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			sess := session(fmt.Sprintf("s%d", i), "alice")
			r := claim(scope, "same-key", fmt.Sprintf("tok-%d", i), time.Minute)
			<-start
			errs[i] = stores[i%len(stores)].Commit(ctx, bridge.Change{Session: &sess, IdemOp: bridge.IdemInsert, Idempotency: &r})
		})
	}
	close(start)
	wg.Wait()
	s := stores[len(stores)-1] // the one that committed last, or another
	winner, exists := -1, 0
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("requests %d and %d both committed", winner, i)
		case err == nil:
			winner = i
		case errors.Is(err, bridge.ErrIdempotencyExists):
			exists++
		default:
			t.Errorf("request %d: err = %v, want ErrIdempotencyExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no request committed")
	}
	if exists != n-1 {
		t.Errorf("%d requests got ErrIdempotencyExists, want %d", exists, n-1)
	}
	found := 0
	for i := range n {
		_, err := s.Session(ctx, "alice", fmt.Sprintf("s%d", i))
		switch {
		case err == nil:
			found++
			if i != winner {
				t.Errorf("session s%d of a losing request exists", i)
			}
		case !errors.Is(err, bridge.ErrNotFound):
			t.Errorf("Session(s%d): %v", i, err)
		}
	}
	if found != 1 {
		t.Errorf("%d sessions exist, want 1", found)
	}
	r, err := s.Idempotency(ctx, scope, "same-key")
	if err != nil {
		t.Fatal(err)
	}
	if r.Token != fmt.Sprintf("tok-%d", winner) {
		t.Errorf("the record is held by %q, want the winner's tok-%d", r.Token, winner)
	}
}

// Concurrent changes where some fail (taken key, stale revision, duplicate
// session) and the others succeed: each gets its own outcome, and the
// failures leave nothing while the successes are stored whole.
func testConcurrentMixedChanges(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	const scope = "alice POST /checkout_sessions"
	taken := claim(scope, "taken", "tok-0", time.Minute)
	base := session("shared", "alice")
	commitOK(t, s, bridge.Change{Session: &base, IdemOp: bridge.IdemInsert, Idempotency: &taken})
	const n = 60
	type kind int
	const (
		fresh     kind = iota // new session and key: commits
		keyTaken              // the taken key: ErrIdempotencyExists
		stale                 // revision 5 of "shared", which is at 1: ErrStale
		duplicate             // revision 1 of "shared" again: ErrStale
	)
	kindOf := func(i int) kind { return kind(i % 4) }
	recs := make([]bridge.IdempotencyRecord, n)
	for i := range recs {
		recs[i] = claim(scope, fmt.Sprintf("k%d", i), fmt.Sprintf("tok-%d", i), time.Minute)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			var c bridge.Change
			switch kindOf(i) {
			case fresh, keyTaken:
				sess := session(fmt.Sprintf("s%d", i), "alice")
				order := fullOrder(fmt.Sprintf("o%d", i), sess.ID, "alice")
				r := recs[i]
				if kindOf(i) == keyTaken {
					r.Key = "taken"
				}
				c = bridge.Change{Session: &sess, Order: &order, HoldOrderID: order.ID,
					Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}, IdemOp: bridge.IdemInsert, Idempotency: &r}
			case stale:
				next := base
				next.Rev = 5
				c = bridge.Change{Session: &next, HoldOrderID: fmt.Sprintf("o%d", i),
					Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}}
			case duplicate:
				dup := session("shared", "alice")
				dup.Selected = fmt.Sprintf("dup-%d", i)
				c = bridge.Change{Session: &dup}
			}
			<-start
			errs[i] = s.Commit(ctx, c)
		})
	}
	close(start)
	wg.Wait()
	fresher := 0
	for i, err := range errs {
		switch kindOf(i) {
		case fresh:
			fresher++
			if err != nil {
				t.Errorf("change %d (new session): %v", i, err)
			}
			sess := session(fmt.Sprintf("s%d", i), "alice")
			wantSession(t, s, "alice", sess.ID, sess)
			wantIdem(t, s, recs[i])
			if _, err := s.Order(ctx, fmt.Sprintf("o%d", i)); err != nil {
				t.Errorf("order of change %d: %v", i, err)
			}
		case keyTaken:
			wantErr(t, fmt.Sprintf("change %d (taken key)", i), err, bridge.ErrIdempotencyExists)
			wantNothingOf(t, s, "alice", fmt.Sprintf("s%d", i), fmt.Sprintf("o%d", i), "", "", "")
		case stale, duplicate:
			wantErr(t, fmt.Sprintf("change %d (stale)", i), err, bridge.ErrStale)
			if errors.Is(err, bridge.ErrIdempotencyExists) || errors.Is(err, bridge.ErrIdempotencyLost) {
				t.Errorf("change %d: err = %v also names an idempotency failure", i, err)
			}
		}
	}
	wantSession(t, s, "alice", "shared", base)
	wantReserved(t, s, "v1", int64(fresher))
	got, err := s.Idempotency(ctx, scope, "taken")
	if err != nil || got.Token != "tok-0" {
		t.Errorf("the taken key = %+v, %v; want tok-0's", got, err)
	}
}

// Writers that each read, change and write one session, retrying on
// ErrStale, lose no update: every committed change saw the one before.
// Writer w uses stores[w % len(stores)].
func testConcurrentSessionChain(t *testing.T, stores []bridge.Storage) {
	ctx := t.Context()
	base := session("s1", "alice")
	commitOK(t, stores[0], bridge.Change{Session: &base})
	const writers, each = 8, 10
	var wg sync.WaitGroup
	for w := range writers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for range each {
				for {
					cur, err := s.Session(ctx, "alice", "s1")
					if err != nil {
						t.Errorf("writer %d: Session: %v", w, err)
						return
					}
					cur.Rev++
					cur.PaymentAttempts++ // the counter every change increments
					cur.Messages = append(cur.Messages, bridge.Message{Type: bridge.MessageInfo, Content: fmt.Sprintf("w%d", w)})
					err = s.Commit(ctx, bridge.Change{Session: &cur})
					if errors.Is(err, bridge.ErrStale) {
						continue
					}
					if err != nil {
						t.Errorf("writer %d: Commit: %v", w, err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	got, err := stores[len(stores)-1].Session(ctx, "alice", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != 1+writers*each || got.PaymentAttempts != writers*each || len(got.Messages) != writers*each {
		t.Errorf("after %d changes: rev %d, counter %d, %d messages; want rev %d and %d of each",
			writers*each, got.Rev, got.PaymentAttempts, len(got.Messages), 1+writers*each, writers*each)
	}
}

// Commits whose contexts end at arbitrary moments: each either returns nil
// and is stored whole, or fails and left nothing (for a canceled context,
// with an error wrapping context.Canceled).
func testConcurrentCancel(t *testing.T, s bridge.Storage) {
	const n = 60
	const scope = "alice POST /checkout_sessions"
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if i%3 == 0 {
				cancel() // before the call
			} else if i%3 == 1 {
				time.AfterFunc(time.Duration(i*20)*time.Microsecond, cancel) // during it, maybe
			}
			sess := session(fmt.Sprintf("s%d", i), "alice")
			r := claim(scope, fmt.Sprintf("k%d", i), "tok", time.Minute)
			errs[i] = s.Commit(ctx, bridge.Change{Session: &sess, HoldOrderID: fmt.Sprintf("o%d", i),
				Hold: []bridge.Reservation{{VariantID: "v1", Quantity: 1}}, IdemOp: bridge.IdemInsert, Idempotency: &r})
		})
	}
	wg.Wait()
	var stored int64
	for i, err := range errs {
		id, key := fmt.Sprintf("s%d", i), fmt.Sprintf("k%d", i)
		if err == nil {
			stored++
			wantSession(t, s, "alice", id, session(id, "alice"))
			if _, err := s.Idempotency(t.Context(), scope, key); err != nil {
				t.Errorf("change %d committed without its key: %v", i, err)
			}
			continue
		}
		if i%3 != 2 && !errors.Is(err, context.Canceled) {
			t.Errorf("change %d: err = %v, want nil or one wrapping context.Canceled", i, err)
		}
		if i%3 == 2 {
			t.Errorf("change %d (not canceled): %v", i, err)
		}
		wantNothingOf(t, s, "alice", id, "", "", scope, key)
	}
	wantReserved(t, s, "v1", stored)
}

// A session's expiry and a claim's expiry may change with a later write;
// reads and the purge follow the new one.
func testExpiryChanges(t *testing.T, s bridge.Storage) {
	ctx := t.Context()
	sess := session("s1", "alice")
	commitOK(t, s, bridge.Change{Session: &sess})
	sess.Rev = 2
	sess.Status = bridge.StatusCanceled
	commitOK(t, s, bridge.Change{Session: &sess}) // same expiry
	sess.Rev = 3
	sess.ExpiresAt = sess.ExpiresAt.Add(48 * time.Hour) // moved
	commitOK(t, s, bridge.Change{Session: &sess})
	wantSession(t, s, "alice", "s1", sess)
	stale := sess
	stale.Rev = 3
	stale.ExpiresAt = stale.ExpiresAt.Add(time.Hour)
	wantErr(t, "stale write with another expiry", s.Commit(ctx, bridge.Change{Session: &stale}), bridge.ErrStale)
	// The purge goes by the stored expiry: not purged a day after the first.
	if _, err := s.PurgeExpired(ctx, at(1, 16, 0).Add(25*time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	wantSession(t, s, "alice", "s1", sess)
	if _, err := s.PurgeExpired(ctx, sess.ExpiresAt.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	wantNoSession(t, s, "alice", "s1")

	const scope = "alice POST /checkout_sessions/s1/complete"
	r := claim(scope, "k1", "tok-1", time.Minute)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemInsert, Idempotency: &r})
	done := finished(r, "answer")
	done.ExpiresAt = done.ExpiresAt.Add(time.Hour)
	commitOK(t, s, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &done})
	wantIdem(t, s, done)
	n, err := s.PurgeExpired(ctx, r.ExpiresAt.Add(time.Minute), time.Hour)
	if err != nil || n != 0 {
		t.Errorf("PurgeExpired past the claim's first expiry = %d, %v; want 0 (it was moved)", n, err)
	}
	wantIdem(t, s, done)
	lost := finished(r, "late")
	lost.Token = "tok-2"
	wantErr(t, "finish by another token", s.Commit(ctx, bridge.Change{IdemOp: bridge.IdemFinish, Idempotency: &lost}), bridge.ErrIdempotencyLost)
}

// What Session returns and what Commit was given are the caller's: changing
// them afterwards changes nothing stored or read later.
func testSessionNotShared(t *testing.T, s bridge.Storage) {
	want := fullSession("s1", "alice")
	sess := fullSession("s1", "alice")
	commitOK(t, s, bridge.Change{Session: &sess})
	scribble := func(x *bridge.Session) {
		x.Lines[0].Title = "changed"
		*x.Lines[0].Available = 99
		x.Buyer.Name = "changed"
		x.ShipTo.City = "changed"
		x.Contact.Email = "changed"
		x.Options[0].Title = "changed"
		x.Messages[0].Content = "changed"
		x.Links[0].URL = "changed"
		x.Interventions[0] = "changed"
		x.Auth.PaymentRef = "changed"
		x.Order.ID = "changed"
	}
	scribble(&sess)
	wantSession(t, s, "alice", "s1", want)
	for range 2 { // the second read may come from a driver's cache
		got, err := s.Session(t.Context(), "alice", "s1")
		if err != nil {
			t.Fatal(err)
		}
		scribble(&got)
		wantSession(t, s, "alice", "s1", want)
	}
}
