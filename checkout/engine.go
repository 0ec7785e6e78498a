package checkout

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// Catalog is the snapshot the engine prices from.
type Catalog interface {
	CatalogEntryByVariant(ctx context.Context, variantID string) (bridge.CatalogEntry, error)
}

// Merchant is what the engine needs to know about the seller beyond its
// pricing (which holds the currency and country).
type Merchant struct {
	Links []bridge.Link
	// PermalinkURL returns the page where the buyer follows an order; token
	// is the order's secret that opens it.
	PermalinkURL func(orderID, token string) string
}

// Engine runs checkout sessions. Its zero value is not usable; fill every
// field but Stock and Holds (nil: the snapshot's stock figures) and Log.
type Engine struct {
	Catalog Catalog
	// Stock is the store's live stock; Holds counts what the bridge's
	// orders hold of it (the storage Store commits holds to). Both or
	// neither.
	Stock    bridge.StockReader
	Holds    bridge.HoldCounter
	Store    bridge.CheckoutStore
	Payments bridge.PaymentProvider
	Pricing  *Pricing
	Merchant Merchant
	// SessionTTL is how long a session stays open; IdempotencyTTL how long
	// an idempotency key is remembered; StockTimeout the live stock check's
	// budget before the snapshot's figures are used instead.
	SessionTTL     time.Duration
	IdempotencyTTL time.Duration
	StockTimeout   time.Duration
	// ClaimLease is how long an in-flight complete holds its key before a
	// retry may take over (the first request's process died).
	ClaimLease time.Duration
	Log        *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Tax, when set, computes tax instead of the rate tables (within
	// TaxTimeout, default 3s); PricesIncludeTax says how it counts.
	Tax              TaxSource
	TaxTimeout       time.Duration
	PricesIncludeTax bool
	// Started is when this process began serving (zero: unknown). With a
	// single process per database, payments started before it are not
	// running any more, and their retries need not wait out the lease.
	Started time.Time
	// Orders takes over paid orders (the write to the store, the agent's
	// webhooks); nil leaves them in storage only.
	Orders Fulfiller
	// AuthorizeOnly holds the buyer's money at checkout instead of taking
	// it (capture after_store): Orders captures it once the store has
	// accepted the order.
	AuthorizeOnly bool
}

// Fulfiller takes over a paid order. PlacedJobs are committed with the
// order in the transaction that records the payment, so the order's further
// life cannot be lost; Place then tries the first of them at once, within
// its own budget.
type Fulfiller interface {
	PlacedJobs(o bridge.Order) []bridge.Job
	Place(ctx context.Context, orderID string)
}

// Interventions the bridge can run with an agent.
var supportedInterventions = []string{"3ds"}

// Caller is who asks and, for changes, the request's idempotency facts.
type Caller struct {
	Owner string
	// Version is the ACP API version of the request; a session keeps the
	// one it was created with for its order's webhooks.
	Version string
	// Key is the Idempotency-Key ("" = none); Op names the operation and
	// path ("POST /checkout_sessions/cs_1/complete"); BodyHash identifies
	// the request body semantically.
	Key      string
	Op       string
	BodyHash string
}

// Result is the answer to one operation: a session, or an error when no
// session can be returned.
type Result struct {
	Session *bridge.Session
	Err     *Error
	// Created is true when the operation made the session (201).
	Created bool
	// Replayed is true when the answer is a stored one (Idempotent-Replayed).
	Replayed bool
	// RetryAfter is set with KindInFlight and KindConflict.
	RetryAfter time.Duration
}

// outcome is the stored, version-independent answer of an idempotent request.
type outcome struct {
	Session *bridge.Session `json:"session,omitempty"`
	Err     *Error          `json:"error,omitempty"`
	Created bool            `json:"created,omitempty"`
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

func fail(err *Error) Result { return Result{Err: err} }

func internal(op string, err error) *Error {
	return &Error{Kind: KindInternal, Code: "internal_error", Message: op + ": " + err.Error()}
}

// Get returns a session as it stands, expired if its time is up.
func (e *Engine) Get(ctx context.Context, owner, id string) Result {
	s, err := e.Store.Session(ctx, owner, id)
	if err != nil {
		return fail(e.lookupError(id, err))
	}
	e.expire(&s)
	return Result{Session: &s}
}

func (e *Engine) lookupError(id string, err error) *Error {
	if errors.Is(err, bridge.ErrNotFound) {
		return errorf(KindNotFound, "session_not_found", "", "no checkout session %q", id)
	}
	return internal("read session", err)
}

// expire marks an open session whose time is up. A session whose payment is
// running never expires under it.
func (e *Engine) expire(s *bridge.Session) bool {
	if s.Status.Final() || s.Status == bridge.StatusCompleteInProgress || e.now().Before(s.ExpiresAt) {
		return false
	}
	s.Status = bridge.StatusExpired
	s.Messages = []bridge.Message{{Type: bridge.MessageError, Code: "expired", Content: "This checkout session has expired; start a new one."}}
	return true
}

// Create opens a session for the requested items.
func (e *Engine) Create(ctx context.Context, c Caller, req CreateRequest) Result {
	return e.idempotent(ctx, c, func(ctx context.Context, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
		if r := e.checkCreate(req); r != nil {
			return e.answerError(ctx, r, idem, op)
		}
		now := e.now()
		s := &bridge.Session{
			ID:         newID("cs_"),
			Owner:      c.Owner,
			APIVersion: c.Version,
			Rev:        1,
			Currency:   e.Pricing.Currency(),
			Buyer:      req.Buyer,
			ShipTo:     req.ShipTo,
			Contact:    req.Contact,
			Links:      slices.Clone(e.Merchant.Links),
			CreatedAt:  now,
			UpdatedAt:  now,
			ExpiresAt:  now.Add(e.SessionTTL),
		}
		if req.Interventions != nil {
			s.Interventions = intersect(req.Interventions, supportedInterventions)
		}
		e.setItems(ctx, s, req.Items)
		e.refresh(ctx, s)
		return e.commitAnswer(ctx, s, true, idem, op)
	})
}

func (e *Engine) checkCreate(req CreateRequest) *Error {
	if len(req.Items) == 0 {
		return errorf(KindInvalid, "missing", "$.line_items", "a checkout needs at least one item")
	}
	if req.Currency != "" && !strings.EqualFold(req.Currency, e.Pricing.Currency()) {
		return errorf(KindInvalid, "unsupported_currency", "$.currency", "this shop sells in %s, not %s", e.Pricing.Currency(), strings.ToUpper(req.Currency))
	}
	return nil
}

// Update changes what the request names and reprices the session.
func (e *Engine) Update(ctx context.Context, c Caller, id string, req UpdateRequest) Result {
	return e.change(ctx, c, id, func(ctx context.Context, s *bridge.Session) *Error {
		if err := openForChange(s, "updated"); err != nil {
			return err
		}
		// A payment waiting for 3-D Secure was for the cart as it was.
		abandonAuth(s)
		if req.Buyer != nil {
			s.Buyer = req.Buyer
		}
		if req.Contact != nil {
			s.Contact = req.Contact
		}
		if req.ShipTo != nil {
			s.ShipTo = req.ShipTo
		}
		if req.SelectedOption != nil {
			s.Selected = *req.SelectedOption
		}
		items := req.Items
		if items == nil {
			items = itemsOf(s.Lines)
		}
		if len(items) == 0 {
			return errorf(KindInvalid, "missing", "$.line_items", "a checkout needs at least one item; cancel the session to drop them all")
		}
		e.setItems(ctx, s, items)
		e.refresh(ctx, s)
		if req.SelectedOption != nil && s.Selected != *req.SelectedOption {
			return errorf(KindInvalid, "invalid_fulfillment_option", "$.selected_fulfillment_options[0].option_id",
				"fulfillment option %q is not offered for this cart and address; choose one of fulfillment_options", *req.SelectedOption)
		}
		return nil
	})
}

// Cancel ends an open session.
func (e *Engine) Cancel(ctx context.Context, c Caller, id string, req CancelRequest) Result {
	return e.change(ctx, c, id, func(_ context.Context, s *bridge.Session) *Error {
		switch {
		case s.Status.Final():
			return errorf(KindNotAllowed, "session_not_cancelable", "", "the checkout session is already %s", s.Status)
		case s.Status == bridge.StatusCompleteInProgress:
			return errorf(KindConflict, "complete_in_progress", "", "the session's payment is running; try again in a moment")
		}
		s.Status = bridge.StatusCanceled
		s.Messages = []bridge.Message{}
		e.log().Info("checkout canceled", "session", s.ID, "reason", req.ReasonCode)
		return nil
	})
}

// openForChange refuses changes to a session that can no longer change.
func openForChange(s *bridge.Session, verb string) *Error {
	switch {
	case s.Status.Final():
		return errorf(KindNotAllowed, "session_"+string(s.Status), "", "the checkout session is %s and cannot be %s", s.Status, verb)
	case s.Status == bridge.StatusCompleteInProgress:
		return errorf(KindConflict, "complete_in_progress", "", "the session's payment is running; try again in a moment")
	}
	return nil
}

// change runs fn on the stored session and commits the result; when
// another request changed the session meanwhile, idempotent runs it again
// from a fresh read.
func (e *Engine) change(ctx context.Context, c Caller, id string, fn func(context.Context, *bridge.Session) *Error) Result {
	return e.idempotent(ctx, c, func(ctx context.Context, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
		s, err := e.Store.Session(ctx, c.Owner, id)
		if err != nil {
			return e.answerError(ctx, e.lookupError(id, err), idem, op)
		}
		if e.expire(&s) {
			// Record the expiry and refuse the change, in one transaction
			// with the key's answer: a used key must write nothing.
			expired := errorf(KindNotAllowed, "session_expired", "", "the checkout session expired at %s", s.ExpiresAt.Format(time.RFC3339))
			s.Rev++
			s.UpdatedAt = e.now()
			ch := bridge.Change{Session: &s}
			if idem != nil {
				rec, err := e.finished(idem, outcome{Err: expired})
				if err != nil {
					return fail(internal("encode outcome", err)), nil
				}
				ch.IdemOp, ch.Idempotency = op, rec
			}
			if err := e.Store.Commit(ctx, ch); err != nil {
				if lostRace(err) {
					return Result{}, err
				}
				return fail(internal("expire session", err)), nil
			}
			return fail(expired), nil
		}
		if ferr := fn(ctx, &s); ferr != nil {
			return e.answerError(ctx, ferr, idem, op)
		}
		s.Rev++
		s.UpdatedAt = e.now()
		return e.commitAnswer(ctx, &s, false, idem, op)
	})
}

// commitAnswer writes s together with the idempotency record of its answer.
func (e *Engine) commitAnswer(ctx context.Context, s *bridge.Session, created bool, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
	ch := bridge.Change{Session: s}
	if idem != nil {
		rec, err := e.finished(idem, outcome{Session: s, Created: created})
		if err != nil {
			return fail(internal("encode outcome", err)), nil
		}
		ch.IdemOp, ch.Idempotency = op, rec
	}
	if err := e.Store.Commit(ctx, ch); err != nil {
		if lostRace(err) {
			return Result{}, err
		}
		return fail(internal("save session", err)), nil
	}
	return Result{Session: s, Created: created}, nil
}

// lostRace reports a commit refused because another request got there
// first (the session moved on, or the key was used): nothing was written,
// and idempotent looks again.
func lostRace(err error) bool {
	return errors.Is(err, bridge.ErrStale) || errors.Is(err, bridge.ErrIdempotencyExists) || errors.Is(err, bridge.ErrIdempotencyLost)
}

// answerError answers with err, stored for replay when it is the kind a
// retry must get again.
func (e *Engine) answerError(ctx context.Context, err *Error, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
	if idem == nil || !err.Stored() {
		return fail(err), nil
	}
	rec, encErr := e.finished(idem, outcome{Err: err})
	if encErr != nil {
		return fail(internal("encode outcome", encErr)), nil
	}
	if cerr := e.Store.Commit(ctx, bridge.Change{IdemOp: op, Idempotency: rec}); cerr != nil {
		if lostRace(cerr) {
			return Result{}, cerr
		}
		return fail(internal("save idempotency record", cerr)), nil
	}
	return fail(err), nil
}

// setItems rebuilds the lines from the requested items: prices from the
// snapshot, stock live (or from the snapshot when the store does not
// answer in time), problems as messages on the lines.
func (e *Engine) setItems(ctx context.Context, s *bridge.Session, items []Item) {
	merged := mergeItems(items)
	s.Lines = make([]bridge.SessionLine, 0, len(merged))
	s.Messages = []bridge.Message{}
	s.StockFallback = false
	for i, it := range merged {
		line, msgs := e.line(ctx, s, i, it)
		s.Lines = append(s.Lines, line)
		s.Messages = append(s.Messages, msgs...)
	}
}

// mergeItems adds up repeated ids so stock is checked on the whole quantity.
func mergeItems(items []Item) []Item {
	out := make([]Item, 0, len(items))
	at := map[string]int{}
	for _, it := range items {
		if i, ok := at[it.ID]; ok {
			out[i].Quantity += it.Quantity
			continue
		}
		at[it.ID] = len(out)
		out = append(out, it)
	}
	return out
}

func itemsOf(lines []bridge.SessionLine) []Item {
	items := make([]Item, len(lines))
	for i, l := range lines {
		items[i] = Item{ID: l.VariantID, Quantity: l.Quantity}
	}
	return items
}

// lineID is stable for a variant, so lines keep their ids across updates.
func lineID(variantID string) string {
	h := sha256.Sum256([]byte(variantID))
	return "li_" + hex.EncodeToString(h[:8])
}

func (e *Engine) line(ctx context.Context, s *bridge.Session, i int, it Item) (bridge.SessionLine, []bridge.Message) {
	l := bridge.SessionLine{ID: lineID(it.ID), VariantID: it.ID, Quantity: it.Quantity}
	param := fmt.Sprintf("$.line_items[%d]", i)
	errMsg := func(code, format string, a ...any) []bridge.Message {
		return []bridge.Message{{Type: bridge.MessageError, Code: code, Param: param, Content: fmt.Sprintf(format, a...), Resolution: "requires_buyer_input"}}
	}
	entry, err := e.Catalog.CatalogEntryByVariant(ctx, it.ID)
	if err != nil {
		if !errors.Is(err, bridge.ErrNotFound) {
			e.log().Error("reading catalog", "variant", it.ID, "error", err)
		}
		return l, errMsg(bridge.MsgNotFound, "Item %q is not sold here; remove it or choose another item.", it.ID)
	}
	var v *bridge.Variant
	for k := range entry.Product.Variants {
		if entry.Product.Variants[k].ID == it.ID {
			v = &entry.Product.Variants[k]
		}
	}
	if v == nil {
		return l, errMsg(bridge.MsgNotFound, "Item %q is not sold here; remove it or choose another item.", it.ID)
	}
	l.ProductID = entry.Product.ID
	l.Title = v.Title
	if l.Title == "" {
		l.Title = entry.Product.Title
	}
	l.URL = firstNonEmpty(v.URL, entry.Product.URL)
	if len(v.Media) > 0 {
		l.ImageURL = v.Media[0].URL
	} else if len(entry.Product.Media) > 0 {
		l.ImageURL = entry.Product.Media[0].URL
	}
	l.Digital = v.Digital
	l.WeightGrams = VariantWeightGrams(*v)
	if !entry.VariantValid(v.ID) || !v.EligibleCheckout {
		return l, errMsg(bridge.MsgInvalid, "%s cannot be bought through this checkout; buy it on the shop's website.", l.Title)
	}
	if v.Price.Currency != s.Currency {
		e.log().Error("catalog price in another currency", "variant", v.ID, "currency", v.Price.Currency, "shop_currency", s.Currency)
		return l, errMsg(bridge.MsgInvalid, "%s cannot be bought through this checkout right now.", l.Title)
	}
	l.UnitAmount = v.Price.Amount
	avail, tracked := e.available(ctx, s, *v)
	if tracked {
		a := avail
		l.Available = &a
	}
	switch {
	case v.Availability == bridge.OutOfStock || (tracked && avail <= 0 && v.Availability != bridge.Backorder && v.Availability != bridge.Preorder):
		return l, errMsg(bridge.MsgOutOfStock, "%s is out of stock.", l.Title)
	case tracked && it.Quantity > avail && v.Availability != bridge.Backorder && v.Availability != bridge.Preorder:
		m := errMsg(bridge.MsgQuantityExceeded, "Only %d of %s left; lower the quantity to %d or less.", avail, l.Title, avail)
		m[0].Param = param + ".quantity"
		return l, m
	}
	return l, nil
}

// available asks the store for live stock within StockTimeout; on failure it
// falls back to the snapshot's figure and flags the session.
func (e *Engine) available(ctx context.Context, s *bridge.Session, v bridge.Variant) (int64, bool) {
	if e.Stock != nil {
		sctx, cancel := context.WithTimeout(ctx, e.StockTimeout)
		level, err := e.Stock.Stock(sctx, v.ID)
		var n int64
		if err == nil {
			n, err = level.Available(sctx, e.Holds, v.ID)
		}
		cancel()
		if err == nil {
			return n, level.Tracked
		}
		e.log().Warn("live stock check failed; using the catalog snapshot", "variant", v.ID, "error", err)
		s.StockFallback = true
	}
	if v.Quantity == nil {
		return 0, false
	}
	return *v.Quantity, true
}

// liveStock asks the store for variantID's stock within StockTimeout.
func (e *Engine) liveStock(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	sctx, cancel := context.WithTimeout(ctx, e.StockTimeout)
	defer cancel()
	return e.Stock.Stock(sctx, variantID)
}

// refresh recomputes options, selection, totals and readiness after a change.
func (e *Engine) refresh(ctx context.Context, s *bridge.Session) {
	s.Options = e.Pricing.Options(s.Lines, s.ShipTo, e.now())
	if s.Options == nil {
		s.Options = []bridge.FulfillmentOption{}
	}
	if s.Selected != "" && !slices.ContainsFunc(s.Options, func(o bridge.FulfillmentOption) bool { return o.ID == s.Selected }) {
		s.Selected = ""
	}
	if s.Selected == "" && len(s.Options) > 0 {
		// The first option (the admin lists the default first) is chosen
		// until the agent picks another: an address alone makes a session
		// ready, as agents expect.
		s.Selected = s.Options[0].ID
	}
	_ = e.Pricing.Apply(s) // a session that cannot be priced carries the error as a message
	e.externalTax(ctx, s)
	physical := slices.ContainsFunc(s.Lines, func(l bridge.SessionLine) bool { return !l.Digital })
	switch {
	case physical && s.ShipTo == nil:
		s.Messages = append(s.Messages, bridge.Message{Type: bridge.MessageError, Code: bridge.MsgMissing, Param: "$.fulfillment_details.address",
			Content: "A shipping address is needed to offer delivery options and a total.", Resolution: "requires_buyer_input"})
	case len(s.Options) == 0:
		s.Messages = append(s.Messages, bridge.Message{Type: bridge.MessageError, Code: bridge.MsgRegionRestricted, Param: "$.fulfillment_details.address",
			Content: "This shop does not deliver to that address.", Resolution: "requires_buyer_input"})
	}
	if s.StockFallback {
		s.Messages = append(s.Messages, bridge.Message{Type: bridge.MessageInfo,
			Content: "Stock could not be checked with the shop just now; availability is from the last catalog update and is confirmed at payment."})
	}
	s.Status = bridge.StatusReady
	if slices.ContainsFunc(s.Messages, func(m bridge.Message) bool { return m.Type == bridge.MessageError }) {
		s.Status = bridge.StatusNotReady
	}
}

// Complete pays for a ready session and makes its order.
func (e *Engine) Complete(ctx context.Context, c Caller, id string, req CompleteRequest) Result {
	return e.idempotent(ctx, c, func(ctx context.Context, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
		return e.complete(ctx, c, id, req, idem, op)
	})
}

func (e *Engine) complete(ctx context.Context, c Caller, id string, req CompleteRequest, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
	s, err := e.Store.Session(ctx, c.Owner, id)
	if err != nil {
		return e.answerError(ctx, e.lookupError(id, err), idem, op)
	}
	if req.Payment.Token == "" {
		return e.answerError(ctx, errorf(KindInvalid, "missing", "$.payment_data", "payment data with a token is required"), idem, op)
	}
	if s.Status == bridge.StatusCompleteInProgress {
		return e.resume(ctx, s, req, idem, op)
	}
	if e.expire(&s) {
		return e.answerError(ctx, errorf(KindNotAllowed, "session_expired", "", "the checkout session expired at %s", s.ExpiresAt.Format(time.RFC3339)), idem, op)
	}
	if s.Status.Final() {
		return e.answerError(ctx, errorf(KindNotAllowed, "session_"+string(s.Status), "", "the checkout session is already %s", s.Status), idem, op)
	}
	if s.Status == bridge.StatusAuthRequired {
		if s.Auth == nil || s.Auth.TokenHash != TokenHash(req.Payment.Token) {
			// Another card instead of authenticating (the only way on for
			// versions without authentication_result): the waiting payment
			// is abandoned and a fresh attempt starts.
			abandonAuth(&s)
		} else if req.Auth == nil {
			return e.answerError(ctx, errorf(KindInvalid, "requires_3ds", "$.authentication_result",
				"the payment needs 3-D Secure: complete again with authentication_result"), idem, op)
		}
	}
	if req.Buyer != nil {
		s.Buyer = req.Buyer
	}
	// Prices and stock are confirmed now, not trusted from the last update:
	// the catalog may have changed since.
	shown := s.Totals.Total
	e.setItems(ctx, &s, itemsOf(s.Lines))
	e.refresh(ctx, &s)
	if s.Status == bridge.StatusReady && s.Totals.Total != shown {
		s.Messages = append(s.Messages, bridge.Message{Type: bridge.MessageWarning, Code: "price_change",
			Content: "The total changed since the buyer last saw it; confirm the new total and complete again.", Resolution: "requires_buyer_review"})
	}
	if s.Status != bridge.StatusReady || s.Totals.Total != shown {
		// Nothing charged: the buyer sees what to fix. A payment waiting
		// for 3-D Secure was for the old total, so it is dropped.
		abandonAuth(&s)
		s.Rev++
		s.UpdatedAt = e.now()
		return e.commitAnswer(ctx, &s, false, idem, op)
	}
	if s.OrderID == "" {
		s.OrderID = newID("ord_")
		s.OrderToken = newID("")
	}
	key := fmt.Sprintf("%s_%d", s.OrderID, s.PaymentAttempts)
	if s.Auth != nil {
		// Each answer to a challenge is its own request to the provider: a
		// second challenge must not replay the first.
		s.AuthRounds++
		key = fmt.Sprintf("%s_3ds%d", key, s.AuthRounds)
	}
	s.Pending = &bridge.PendingPayment{Key: key, Amount: s.Totals.Total, TokenHash: TokenHash(req.Payment.Token)}
	if s.Auth != nil {
		s.Pending.PaymentRef = s.Auth.PaymentRef
	}
	return e.charge(ctx, s, req, idem, op, false)
}

// resume answers a complete on a session whose payment started before: it
// is running now (in flight), or its outcome is unknown (the provider did
// not answer, or the process died), and then it is retried under the same
// payment key and amount, so the provider settles it without a second
// charge.
func (e *Engine) resume(ctx context.Context, s bridge.Session, req CompleteRequest, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp) (Result, error) {
	p := s.Pending
	// A payment started before this process is not running any more: the
	// process that ran it is gone.
	running := p == nil || (op != bridge.IdemTakeover && e.paymentRunning(s))
	if running {
		if idem != nil {
			// This key's own first request, which claimed the key after we
			// looked (and may have finished since): look again, to answer
			// "in flight" or replay its answer.
			if _, err := e.Store.Idempotency(ctx, idem.Scope, idem.Key); err == nil {
				return Result{}, bridge.ErrIdempotencyExists
			}
		}
		return Result{Err: errorf(KindConflict, "complete_in_progress", "", "the session's payment is running; try again in a moment"), RetryAfter: time.Second}, nil
	}
	if p.TokenHash != TokenHash(req.Payment.Token) {
		return fail(errorf(KindConflict, "payment_unresolved", "$.payment_data",
			"an earlier payment attempt of this session has no known outcome yet; retry with the same payment data to settle it")), nil
	}
	return e.charge(ctx, s, req, idem, op, true)
}

// paymentRunning reports whether s's pending payment is still being run by
// a complete (of this process, within its lease) rather than left with no
// known outcome.
func (e *Engine) paymentRunning(s bridge.Session) bool {
	return !s.Pending.Unknown && e.now().Sub(s.UpdatedAt) < e.ClaimLease && !s.UpdatedAt.Before(e.Started)
}

// abandonAuth drops a payment waiting for 3-D Secure; the next attempt gets
// a new payment key.
func abandonAuth(s *bridge.Session) {
	if s.Auth != nil {
		s.Auth = nil
		s.PaymentAttempts++
	}
}

// paymentTimeout bounds one charge well inside the claim's lease, so a
// retry never takes over a claim whose charge is still running.
func (e *Engine) paymentTimeout() time.Duration {
	if e.ClaimLease <= 0 {
		return 30 * time.Second
	}
	return e.ClaimLease / 2
}

// charge runs the payment in three durable steps: (1) session in
// complete_in_progress with the pending payment, order row, stock held and
// the key claimed, in one transaction; (2) the charge, under a payment key
// derived from the order id; (3) the outcome, the order and the key's
// answer, in one transaction. If the provider does not answer, or the
// process dies, the session stays in complete_in_progress with its hold,
// and a retry resumes with the same payment key and amount: the provider
// replays instead of charging twice.
func (e *Engine) charge(ctx context.Context, s bridge.Session, req CompleteRequest, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp, resume bool) (Result, error) {
	order := e.order(&s, "pending_payment")
	claim := idem
	if claim != nil {
		claim = e.inFlight(idem)
	}
	s.Status = bridge.StatusCompleteInProgress
	s.Rev++
	s.UpdatedAt = e.now()
	// Release first, then hold: the order's hold always matches its lines.
	ch := bridge.Change{Session: &s, Order: &order, ReleaseOrderID: order.ID, HoldOrderID: order.ID, Hold: holds(s.Lines)}
	if claim != nil {
		ch.IdemOp, ch.Idempotency = op, claim
	}
	if res, started, err := e.startPayment(ctx, &s, ch, idem, op, resume); !started {
		return res, err
	}

	p := *s.Pending
	pr := bridge.PaymentRequest{
		IdempotencyKey: p.Key, OrderID: s.OrderID, SessionID: s.ID,
		HandlerID: req.Payment.HandlerID, Token: req.Payment.Token,
		Amount: p.Amount, Currency: s.Currency, PaymentRef: p.PaymentRef, Auth: req.Auth,
		AuthorizeOnly: e.AuthorizeOnly,
	}
	// The charge and what follows must finish even if the agent hangs up
	// (money may move), but within the claim's lease.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.paymentTimeout())
	defer cancel()
	var result bridge.PaymentResult
	var perr error
	if p.Amount == 0 {
		result = bridge.PaymentResult{Status: bridge.PaymentSucceeded} // nothing to charge
	} else {
		result, perr = e.Payments.Charge(pctx, pr)
	}
	s.Rev++
	s.UpdatedAt = e.now()
	ch = bridge.Change{Session: &s, Order: &order}
	switch {
	case perr != nil && (errors.Is(perr, bridge.ErrPaymentUnavailable) || errors.Is(perr, context.DeadlineExceeded)):
		// Unknown outcome: the money may have moved. The session keeps its
		// payment, hold and order; only the key's claim goes (5xx is not
		// stored), and the retry settles the payment under the same key.
		e.log().Warn("payment outcome unknown; the next complete retries it", "session", s.ID, "order", s.OrderID, "payment_key", p.Key, "error", perr)
		s.Pending.Unknown = true
		order.Status = "payment_unknown"
		if claim != nil {
			ch.IdemOp, ch.Idempotency = bridge.IdemRelease, claim
		}
		if err := e.Store.Commit(pctx, ch); err != nil {
			e.log().Error("recording unknown payment outcome", "session", s.ID, "error", err)
		}
		return fail(errorf(KindUnavailable, "payment_unavailable", "", "the payment provider did not answer; retry the request with the same payment data")), nil
	case perr != nil:
		// The provider refused the request itself: nothing was charged.
		e.log().Error("payment request refused by the provider", "session", s.ID, "order", s.OrderID, "error", perr)
		result = bridge.PaymentResult{Status: bridge.PaymentDeclined, DeclineCode: "processing_error",
			DeclineMessage: "The payment could not be processed."}
	}
	switch {
	case result.Status == bridge.PaymentSucceeded:
		e.paid(&s, &order, &ch, result)
		e.log().Info("order created", "session", s.ID, "order", order.ID, "total", p.Amount, "currency", s.Currency)
	case result.Status == bridge.PaymentRequiresAction && (s.Interventions == nil || slices.Contains(s.Interventions, "3ds")) && result.Challenge != nil:
		s.Status = bridge.StatusAuthRequired
		s.Auth = result.Challenge
		s.Auth.TokenHash = p.TokenHash
		s.Messages = []bridge.Message{{Type: bridge.MessageError, Code: bridge.MsgRequires3DS, Param: "$.authentication_result",
			Content: "The card issuer asks for 3-D Secure; authenticate the buyer and complete again with authentication_result.", Resolution: "requires_buyer_input"}}
		order.Status = "requires_authentication"
		// No stock is held while the buyer authenticates: the continuation
		// checks and holds it again, so an abandoned challenge holds nothing.
		ch.ReleaseOrderID = order.ID
	default:
		msg := bridge.Message{Type: bridge.MessageError, Code: bridge.MsgPaymentDeclined, Param: "$.payment_data",
			Content: declineText(result), Resolution: "requires_buyer_input"}
		if result.Status == bridge.PaymentRequiresAction {
			msg.Code = bridge.MsgInterventionRequired
			msg.Content = "The card issuer asks for 3-D Secure, which this agent does not support; use another card."
		}
		unpaid(&s, &order, &ch, msg)
		e.log().Info("payment declined", "session", s.ID, "order", order.ID, "code", result.DeclineCode)
	}
	s.Pending = nil
	if claim != nil {
		rec, err := e.finished(claim, outcome{Session: &s})
		if err != nil {
			return fail(internal("encode outcome", err)), nil
		}
		ch.IdemOp, ch.Idempotency = bridge.IdemFinish, rec
	}
	if err := e.Store.Commit(pctx, ch); err != nil {
		// The money may have moved but the record did not: log loudly with
		// the ids. The session stays in complete_in_progress with its
		// pending payment; once the lease passes a retry resumes it with
		// the same payment key (the provider replays, no second charge).
		e.log().Error("recording payment outcome failed", "session", s.ID, "order", order.ID, "payment_key", p.Key, "payment_ref", result.Ref, "error", err)
		return fail(internal("record payment", err)), nil
	}
	e.place(ctx, &order)
	return Result{Session: &s}, nil
}

// startPayment confirms the stock and commits step one. The stock checks
// travel in the commit that holds the stock, so "is the last unit still
// there" and "hold it" are one step for storage, across every process
// sharing it: of two completes racing for the last unit, one commits and
// the other is told it sold out, and nothing of it is written.
func (e *Engine) startPayment(ctx context.Context, s *bridge.Session, ch bridge.Change, idem *bridge.IdempotencyRecord, op bridge.IdempotencyOp, resume bool) (Result, bool, error) {
	var short *bridge.Message
	if !resume {
		checks, msg, err := e.stockChecks(ctx, s)
		if err != nil {
			e.log().Warn("stock could not be confirmed before payment", "session", s.ID, "error", err)
			return fail(errorf(KindUnavailable, "stock_unconfirmed", "", "the shop's stock could not be confirmed just now; nothing was charged, retry shortly")), false, nil
		}
		ch.StockChecks, short = checks, msg
		for _, c := range checks {
			// A line the snapshot called untracked (stock fallback) that
			// the store tracks after all is held too: a check limits a hold.
			if !slices.ContainsFunc(ch.Hold, func(r bridge.Reservation) bool { return r.VariantID == c.VariantID }) {
				for _, l := range s.Lines {
					if l.VariantID == c.VariantID {
						ch.Hold = append(ch.Hold, bridge.Reservation{VariantID: l.VariantID, Quantity: l.Quantity})
					}
				}
			}
		}
	}
	if short == nil {
		err := e.Store.Commit(ctx, ch)
		var se *bridge.ShortStockError
		switch {
		case err == nil:
			return Result{}, true, nil
		case errors.As(err, &se):
			short = soldOut(s, se.VariantID)
		case lostRace(err):
			return Result{}, false, err
		default:
			return fail(internal("start payment", err)), false, nil
		}
	}
	s.Status = bridge.StatusNotReady
	s.Pending = nil
	s.Messages = append(s.Messages, *short)
	res, err := e.commitAnswer(ctx, s, false, idem, op)
	return res, false, err
}

// soldOut is the message for the line of variantID, which ran out while
// the buyer was paying.
func soldOut(s *bridge.Session, variantID string) *bridge.Message {
	i := slices.IndexFunc(s.Lines, func(l bridge.SessionLine) bool { return l.VariantID == variantID })
	title := variantID
	if i >= 0 {
		title = s.Lines[i].Title
	}
	return &bridge.Message{Type: bridge.MessageError, Code: bridge.MsgOutOfStock, Param: fmt.Sprintf("$.line_items[%d]", max(i, 0)),
		Content: fmt.Sprintf("%s sold out while paying; nothing was charged.", title), Resolution: "requires_buyer_input"}
}

// paid completes s and its order: the money was taken or, with
// AuthorizeOnly, is held (r is the provider's answer). The order's jobs join
// the change.
func (e *Engine) paid(s *bridge.Session, o *bridge.Order, ch *bridge.Change, r bridge.PaymentResult) {
	s.Status = bridge.StatusCompleted
	s.Auth = nil
	s.Messages = []bridge.Message{}
	s.Order = &bridge.SessionOrder{ID: o.ID, PermalinkURL: e.Merchant.PermalinkURL(o.ID, o.Token)}
	o.SetStatus(e.now(), bridge.OrderCreated, "paid")
	o.PaymentRef = r.Ref
	switch {
	case r.Ref == "":
		o.Payment = "" // a free order: no payment to capture or refund
	case r.Authorized:
		o.Payment = bridge.PaymentStateAuthorized
	default:
		o.Payment = bridge.PaymentStateCaptured
	}
	if e.Orders != nil {
		ch.Jobs = append(ch.Jobs, e.Orders.PlacedJobs(*o)...)
	}
}

// place hands a just-paid order to Orders, after its commit.
func (e *Engine) place(ctx context.Context, o *bridge.Order) {
	if e.Orders != nil && o.Status == bridge.OrderCreated {
		e.Orders.Place(ctx, o.ID)
	}
}

// unpaid puts s back to ready with msg saying why the payment failed; the
// next attempt gets a new payment key, and the order's stock is released
// in the same change.
func unpaid(s *bridge.Session, o *bridge.Order, ch *bridge.Change, msg bridge.Message) {
	s.Status = bridge.StatusReady
	s.Auth = nil
	s.Messages = []bridge.Message{msg}
	s.PaymentAttempts++
	o.Status = "payment_declined"
	ch.ReleaseOrderID = o.ID
}

func declineText(r bridge.PaymentResult) string {
	if r.DeclineMessage != "" {
		return "The payment was declined: " + r.DeclineMessage + " Use another payment method."
	}
	return "The payment was declined. Use another payment method."
}

// stockChecks reads the store's stock of the lines that can run out, right
// before they are held, for the hold's commit to check (Change.StockChecks);
// a line that can no longer be served at all gets its message instead. An
// error means stock cannot be confirmed (fail closed: no sale on a guess).
// Without a live stock reader (tests; serve always has one) the snapshot's
// figures are compared with the line here, holds not counted: a check
// that is not one step with the hold.
func (e *Engine) stockChecks(ctx context.Context, s *bridge.Session) ([]bridge.StockCheck, *bridge.Message, error) {
	var checks []bridge.StockCheck
	for i, l := range s.Lines {
		if l.Available == nil && !s.StockFallback {
			// The store said untracked a moment ago, when this complete
			// priced the line: nothing to run out of.
			continue
		}
		entry, err := e.Catalog.CatalogEntryByVariant(ctx, l.VariantID)
		if err != nil {
			if errors.Is(err, bridge.ErrNotFound) {
				return nil, &bridge.Message{Type: bridge.MessageError, Code: bridge.MsgNotFound, Param: fmt.Sprintf("$.line_items[%d]", i),
					Content: fmt.Sprintf("%s is no longer sold; nothing was charged.", l.Title), Resolution: "requires_buyer_input"}, nil
			}
			return nil, nil, fmt.Errorf("catalog entry of %q: %w", l.VariantID, err)
		}
		vi := slices.IndexFunc(entry.Product.Variants, func(v bridge.Variant) bool { return v.ID == l.VariantID })
		if vi < 0 {
			continue
		}
		v := entry.Product.Variants[vi]
		if v.Availability == bridge.Backorder || v.Availability == bridge.Preorder {
			continue
		}
		if e.Stock == nil {
			if v.Quantity != nil && l.Quantity > *v.Quantity {
				return nil, soldOut(s, l.VariantID), nil
			}
			continue
		}
		level, err := e.liveStock(ctx, v.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("stock of %q: %w", v.ID, err)
		}
		if level.Tracked && !slices.ContainsFunc(checks, func(c bridge.StockCheck) bool { return c.VariantID == v.ID }) {
			checks = append(checks, bridge.StockCheck{VariantID: v.ID, Shared: level.Shared, OnHand: level.OnHand, Since: level.HoldsSince})
		}
	}
	return checks, nil, nil
}

func holds(lines []bridge.SessionLine) []bridge.Reservation {
	out := make([]bridge.Reservation, 0, len(lines))
	for _, l := range lines {
		if l.Available != nil {
			out = append(out, bridge.Reservation{VariantID: l.VariantID, Quantity: l.Quantity})
		}
	}
	return out
}

// order is the store-facing order of s.
func (e *Engine) order(s *bridge.Session, status string) bridge.Order {
	o := bridge.Order{
		ID: s.OrderID, SessionID: s.ID, Owner: s.Owner, Status: status,
		APIVersion: s.APIVersion, Token: s.OrderToken,
		PermalinkURL: e.Merchant.PermalinkURL(s.OrderID, s.OrderToken),
		CreatedAt:    e.now(), Currency: s.Currency, ShipTo: s.ShipTo,
		Subtotal:    bridge.Money{Amount: s.Totals.Subtotal, Currency: s.Currency},
		Shipping:    bridge.Money{Amount: s.Totals.Fulfillment, Currency: s.Currency},
		Tax:         bridge.Money{Amount: s.Totals.Tax + s.Totals.TaxIncluded, Currency: s.Currency},
		Total:       bridge.Money{Amount: s.Totals.Total, Currency: s.Currency},
		TaxIncluded: e.PricesIncludeTax,
	}
	if s.Buyer != nil {
		o.Buyer = *s.Buyer
	}
	for _, opt := range s.Options {
		if opt.ID == s.Selected {
			o.ShippingMethod = &bridge.ShippingMethod{ID: opt.ID, Title: opt.Title, Type: opt.Type}
		}
	}
	for _, l := range s.Lines {
		o.Lines = append(o.Lines, bridge.OrderLine{ID: l.ID, VariantID: l.VariantID, ProductID: l.ProductID, Title: l.Title, Quantity: l.Quantity,
			UnitPrice: bridge.Money{Amount: l.UnitAmount, Currency: s.Currency}, Total: bridge.Money{Amount: l.Total, Currency: s.Currency},
			Tax: bridge.Money{Amount: l.Tax, Currency: s.Currency}})
	}
	return o
}

func intersect(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// TokenHash identifies a payment token without keeping it: tokens are
// credentials and never stored.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:16])
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
