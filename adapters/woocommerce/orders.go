package woocommerce

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// errMappedIDs: the mapping changed the ids, so the shop's products cannot
// be found from the bridge's.
var errMappedIDs = errors.New("the product or variant id is not a WooCommerce id; the mapping's product.id and variant.id must stay product.id and variant.id")

// errFound stops an order scan at the order looked for.
var errFound = errors.New("found")

// newOrder is the body of POST /orders.
type newOrder struct {
	PaymentMethod      string         `json:"payment_method"`
	PaymentMethodTitle string         `json:"payment_method_title"`
	SetPaid            bool           `json:"set_paid"`
	TransactionID      string         `json:"transaction_id,omitempty"`
	Currency           string         `json:"currency"`
	Billing            address        `json:"billing"`
	Shipping           *address       `json:"shipping,omitempty"`
	LineItems          []lineItem     `json:"line_items"`
	ShippingLines      []shippingLine `json:"shipping_lines,omitempty"`
	FeeLines           []feeLine      `json:"fee_lines,omitempty"`
	MetaData           []meta         `json:"meta_data"`
}

type address struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Company   string `json:"company,omitempty"`
	Address1  string `json:"address_1"`
	Address2  string `json:"address_2,omitempty"`
	City      string `json:"city"`
	State     string `json:"state,omitempty"`
	Postcode  string `json:"postcode"`
	Country   string `json:"country"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

type lineItem struct {
	ProductID   int64  `json:"product_id"`
	VariationID int64  `json:"variation_id,omitempty"`
	Quantity    int64  `json:"quantity"`
	Subtotal    string `json:"subtotal"`
	Total       string `json:"total"`
}

type shippingLine struct {
	MethodID    string `json:"method_id"`
	MethodTitle string `json:"method_title"`
	Total       string `json:"total"`
}

type feeLine struct {
	Name      string `json:"name"`
	Total     string `json:"total"`
	TaxStatus string `json:"tax_status"`
}

// orderBody is the create body of o. A line's subtotal and total are its
// price before tax, UnitPrice × Quantity, as WooCommerce means them
// (bridge.OrderLine.Total holds the line's tax too: posting it would book
// the tax as product revenue at an inflated unit price). What the order
// total holds beyond those lines and shipping — the tax the bridge charged
// on top of its prices, o.Tax — goes in one fee line that WooCommerce does
// not tax again, so the shop's total is the amount charged when
// WooCommerce's own tax calculation is off. With prices that include tax
// there is nothing beyond lines and shipping, and no fee. A discount (the
// lines' prices less o.Subtotal; the checkout grants none today) is a
// negative fee line, so the product lines keep their prices.
func orderBody(o bridge.Order) (newOrder, error) {
	if o.ID == "" {
		return newOrder{}, errors.New("the order has no id, so it could never be found again")
	}
	money := func(amount int64) string { return bridge.Money{Amount: amount, Currency: o.Currency}.Decimal() }
	first, last := o.Buyer.FirstName, o.Buyer.LastName
	if first == "" && last == "" {
		first, last = splitName(o.Buyer.Name)
	}
	in := newOrder{
		PaymentMethod: "stripe", PaymentMethodTitle: "Stripe (agentic checkout)", SetPaid: true,
		TransactionID: o.PaymentRef, Currency: o.Currency,
		Billing:  address{FirstName: first, LastName: last, Email: o.Buyer.Email, Phone: o.Buyer.Phone},
		MetaData: []meta{{Key: metaKey, Value: mustJSON(o.ID)}, {Key: metaCharged, Value: mustJSON(charged(o).String())}},
	}
	if a := o.ShipTo; a != nil {
		sf, sl := first, last
		if a.Name != "" {
			sf, sl = splitName(a.Name)
		}
		ship := address{FirstName: sf, LastName: sl, Company: a.Company, Address1: a.Line1, Address2: a.Line2,
			City: a.City, State: a.Region, Postcode: a.PostalCode, Country: a.Country}
		in.Shipping = &ship
		// WooCommerce's emails and tax rules read the billing address; the
		// agent gives one address.
		in.Billing.Company, in.Billing.Address1, in.Billing.Address2 = ship.Company, ship.Address1, ship.Address2
		in.Billing.City, in.Billing.State, in.Billing.Postcode, in.Billing.Country = ship.City, ship.State, ship.Postcode, ship.Country
	}
	var items int64 // Σ UnitPrice × Quantity: the lines before tax and discounts
	for _, l := range o.Lines {
		pid, ok1 := parseID(l.ProductID)
		vid, ok2 := parseID(l.VariantID)
		if !ok1 || !ok2 {
			return newOrder{}, fmt.Errorf("line %q: %w", l.VariantID, errMappedIDs)
		}
		if l.Quantity < 0 || l.UnitPrice.Amount < 0 {
			return newOrder{}, fmt.Errorf("line %q: quantity %d at %d is not an order line", l.VariantID, l.Quantity, l.UnitPrice.Amount)
		}
		base := l.UnitPrice.Amount * l.Quantity
		if l.Quantity != 0 && base/l.Quantity != l.UnitPrice.Amount {
			return newOrder{}, fmt.Errorf("line %q: the line's amount overflows", l.VariantID)
		}
		li := lineItem{ProductID: pid, Quantity: l.Quantity, Subtotal: money(base), Total: money(base)}
		if vid != pid {
			li.VariationID = vid
		}
		in.LineItems = append(in.LineItems, li)
		items += base
	}
	var discount int64
	if o.Subtotal.Currency != "" && o.Subtotal.Amount < items {
		discount = items - o.Subtotal.Amount
		in.FeeLines = append(in.FeeLines, feeLine{Name: "Discount (applied at checkout)", Total: money(-discount), TaxStatus: "none"})
	}
	// The remainder, not o.Tax itself: with prices including tax o.Tax is
	// the tax inside the line prices, and a fee of it would charge it twice.
	rest := o.Total.Amount - o.Shipping.Amount - items + discount
	if o.Shipping.Amount != 0 || o.ShippingMethod != nil {
		sl := shippingLine{MethodID: "acp_bridge", MethodTitle: "Shipping", Total: money(o.Shipping.Amount)}
		if m := o.ShippingMethod; m != nil {
			// method_id is required (400 woocommerce_rest_invalid_shipping_item without).
			sl.MethodID, sl.MethodTitle = m.ID, m.Title
			if sl.MethodTitle == "" {
				sl.MethodTitle = m.ID
			}
		}
		in.ShippingLines = []shippingLine{sl}
	}
	if rest != 0 {
		in.FeeLines = append(in.FeeLines, feeLine{Name: "Tax (charged at checkout)", Total: money(rest), TaxStatus: "none"})
	}
	return in, nil
}

// charged is what the buyer of o paid, in the order's currency.
func charged(o bridge.Order) bridge.Money {
	return bridge.Money{Amount: o.Total.Amount, Currency: o.Currency}
}

func splitName(name string) (first, last string) {
	name = strings.TrimSpace(name)
	if i := strings.LastIndexByte(name, ' '); i > 0 {
		return strings.TrimSpace(name[:i]), name[i+1:]
	}
	return name, ""
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// WriteOrder creates o in the shop with POST /orders (set_paid: the order
// is processing and WooCommerce takes the stock). WooCommerce checks
// neither stock nor product ids, so WriteOrder first reads every line's
// product live and refuses (bridge.ErrOrderRefused) an order whose product
// was deleted or unpublished, or whose stock no longer covers it. The
// create is sent once: it is resent only when upstream proves the shop did
// not process it, else the error wraps upstream.ErrAmbiguous and the outbox
// calls FindOrder before any new attempt (see bridge.OrderStore).
//
// The shop's total is compared with the amount charged; a difference is
// returned in StoreOrder.Discrepancy for the orders service to flag. Once
// the shop holds the order it counts the sold stock itself, so the bridge's
// hold of it ends.
//
// Errors other than refusals (credentials, a 400 about the request, the
// shop down) are retried by the outbox: a wrong key must not cancel every
// paid order.
func (a *Adapter) WriteOrder(ctx context.Context, o bridge.Order) (bridge.StoreOrder, error) {
	fail := func(err error) (bridge.StoreOrder, error) {
		return bridge.StoreOrder{}, fmt.Errorf("woocommerce: write order %s: %w", o.ID, err)
	}
	body, err := orderBody(o)
	if err != nil {
		return fail(err)
	}
	if err := a.checkLines(ctx, body.LineItems); err != nil {
		return fail(err)
	}
	resp, err := a.c.post(ctx, "orders", body)
	if err != nil {
		return fail(err)
	}
	defer upstream.Drain(resp.Body)
	switch code := resp.StatusCode; {
	case code == http.StatusCreated || code == http.StatusOK:
		var so order
		if err := decode(resp.Body, &so); err != nil || so.ID == 0 {
			if err == nil {
				err = errors.New("no order id")
			}
			// Created, but as what we cannot tell: find it, never create again.
			return fail(fmt.Errorf("%w: woocommerce answered %d with an unreadable order: %w", upstream.ErrAmbiguous, code, err))
		}
		// An error here leaves the order in the shop: the outbox's next
		// attempt finds it with FindOrder (which finishes it too), never
		// creates it again.
		so, err := a.ensurePaid(ctx, so, o.PaymentRef)
		if err != nil {
			return fail(err)
		}
		return a.written(o.ID, charged(o), so), nil
	default:
		ae := readAPIError(resp)
		if ae.Code == "woocommerce_rest_invalid_product_id" || ae.Code == "woocommerce_rest_product_invalid_id" {
			return fail(fmt.Errorf("%w: %w", bridge.ErrOrderRefused, ae))
		}
		return fail(ae)
	}
}

// ensurePaid finishes so when its payment did not complete (see
// order.unpaid): PUT /orders/{id} {set_paid, transaction_id}, safe to
// repeat, and checks the answer. An order left unpaid would count as
// written while WooCommerce neither takes its stock nor shows it as paid
// (nothing ships it). Failing, it returns an error the outbox retries.
func (a *Adapter) ensurePaid(ctx context.Context, so order, paymentRef string) (order, error) {
	if !so.unpaid() {
		return so, nil
	}
	a.log.Warn("woocommerce order not paid after set_paid (a plugin failing in its payment hooks?): completing its payment",
		"store_order", so.ID, "status", upstream.Excerpt(so.Status, 20))
	body := map[string]any{"set_paid": true}
	if ref := cmp.Or(paymentRef, so.TransactionID); ref != "" {
		body["transaction_id"] = ref
	}
	var got order
	if err := a.c.put(ctx, "orders/"+idString(so.ID), body, &got); err != nil {
		return so, fmt.Errorf("order %d is %s and unpaid in WooCommerce, and completing its payment failed (retried later): %w",
			so.ID, upstream.Excerpt(so.Status, 20), err)
	}
	if got.ID != so.ID || got.unpaid() {
		return so, fmt.Errorf("order %d is still %s and unpaid in WooCommerce after set_paid: a plugin may be failing in its payment hooks; retried later (see the shop's logs under WooCommerce → Status → Logs)",
			so.ID, upstream.Excerpt(got.Status, 20))
	}
	return got, nil
}

// checkLines reads each line's product live: WooCommerce would take an
// order for a deleted product, and let its stock go negative.
func (a *Adapter) checkLines(ctx context.Context, items []lineItem) error {
	// Quantities per item, in the order's order (two lines may name one).
	want := map[[2]int64]int64{}
	var keys [][2]int64
	for _, li := range items {
		k := [2]int64{li.ProductID, cmp.Or(li.VariationID, li.ProductID)}
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
		want[k] += li.Quantity
	}
	// Then per stock: variations on their parent's stock draw on one
	// figure, so their quantities add up against it.
	type source struct {
		id    int64 // the item, or the parent whose stock it sells from
		stock stock
		need  int64
	}
	var sources []*source
	byID := map[int64]*source{}
	for _, k := range keys {
		it, err := a.lookup(ctx, k[0], k[1])
		if itemGone(err) {
			return fmt.Errorf("%w: product %d is no longer in the shop", bridge.ErrOrderRefused, k[1])
		}
		if err != nil {
			return fmt.Errorf("check product %d before writing: %w", k[1], err)
		}
		if why := it.forSale(); why != "" {
			return fmt.Errorf("%w: product %d: %s", bridge.ErrOrderRefused, k[1], why)
		}
		id := k[1]
		if it.stock.FromParent {
			id = k[0]
		}
		src := byID[id]
		if src == nil {
			src = &source{id: id, stock: it.stock}
			byID[id] = src
			sources = append(sources, src)
		}
		src.need += want[k]
	}
	for _, src := range sources {
		switch st := src.stock; {
		case st.Managed && !st.Backorders && st.Quantity < src.need:
			return fmt.Errorf("%w: product %d: %d in stock, the order needs %d", bridge.ErrOrderRefused, src.id, max(st.Quantity, 0), src.need)
		case !st.Managed && st.Status == "outofstock":
			return fmt.Errorf("%w: product %d is marked out of stock in the shop", bridge.ErrOrderRefused, src.id)
		}
	}
	return nil
}

// written is the bridge's record of the shop's order so, once the shop has
// it: the shop's total is checked against what the buyer paid (zero Money:
// not known, not checked).
func (a *Adapter) written(orderID string, paid bridge.Money, so order) bridge.StoreOrder {
	out := bridge.StoreOrder{StoreID: idString(so.ID)}
	if paid.Currency != "" {
		out.Discrepancy = discrepancy(paid, so)
	}
	if out.Discrepancy != "" {
		a.log.Error("woocommerce order total differs from the amount charged", "order", orderID, "store_order", so.ID, "discrepancy", out.Discrepancy)
	}
	return out
}

// CountsWrittenOrders is true: WooCommerce takes an order's units from
// stock_quantity when it creates the order, so the orders service ends the
// order's hold (after a grace, see orders.HoldGrace).
func (a *Adapter) CountsWrittenOrders() bool { return true }

// discrepancy says how the shop's order so differs from what was paid, or
// "" when they agree.
func discrepancy(paid bridge.Money, so order) string {
	return bridge.TotalDiscrepancy("the shop", paid, so.Currency, so.Total)
}

// FindOrder scans the shop's orders created in the last OrderLookback,
// newest first, for the one whose meta_data carries orderID: GET /orders has
// no filter by meta, so this is the only lookup WooCommerce allows. An
// order not found is an error wrapping bridge.ErrNotFound.
func (a *Adapter) FindOrder(ctx context.Context, orderID string) (bridge.StoreOrder, error) {
	if orderID == "" {
		return bridge.StoreOrder{}, errors.New("woocommerce: find order: the order id is empty")
	}
	var found *order
	q := url.Values{"orderby": {"date"}, "order": {"desc"}, "dates_are_gmt": {"true"}, "_fields": {orderFields},
		"after": {a.now().Add(-a.opts.OrderLookback).UTC().Format(wooTime)}}
	scan := func(page []order) error {
		for _, so := range page {
			if so.bridgeOrderID() == orderID {
				found = &so
				return errFound
			}
		}
		return nil
	}
	// status=any leaves the trash out (WP_Query's "any"), so the trash is
	// scanned too: an order made by a lost create and trashed since must
	// not be written again as if it had never reached the shop.
	for _, status := range []string{"any", "trash"} {
		q.Set("status", status)
		if _, err := listAll(ctx, a, "orders", q, storeOrderID, scan); err != nil && !errors.Is(err, errFound) {
			return bridge.StoreOrder{}, fmt.Errorf("woocommerce: find order %s: %w", orderID, err)
		}
		if found != nil {
			break
		}
	}
	if found == nil {
		return bridge.StoreOrder{}, fmt.Errorf("woocommerce: find order %s: %w", orderID, bridge.ErrNotFound)
	}
	if found.Status == "trash" {
		// Neither written (nothing would ship it, and the polls, which
		// read status=any, would never report it) nor absent (writing it
		// again would undo someone's decision): a person decides. The
		// error is retried, then the order goes to manual review.
		return bridge.StoreOrder{}, fmt.Errorf("woocommerce: find order %s: the shop's order %d carrying it is in the trash: restore it (then it counts as written) or delete it permanently (then it is written again)",
			orderID, found.ID)
	}
	// The create may have saved the order and failed in payment_complete
	// (a PHP fatal answers 500 after the save): finish it before the
	// outbox counts it as written.
	paidOrder, err := a.ensurePaid(ctx, *found, "")
	if err != nil {
		return bridge.StoreOrder{}, fmt.Errorf("woocommerce: find order %s: %w", orderID, err)
	}
	found = &paidOrder
	// What was charged travels with the order (meta), so the order found
	// after a lost answer is checked like one just written.
	var paid bridge.Money
	if v := found.meta(metaCharged); v != "" {
		if _, cur, ok := strings.Cut(v, " "); ok {
			if m, err := bridge.ParseMoney(v, cur); err == nil {
				paid = m
			}
		}
	}
	return a.written(orderID, paid, *found), nil
}

// OrderUpdates returns what changed on the bridge's orders in the shop since
// the last call: GET /orders?modified_after=… (the first call looks back a
// day). WooCommerce never retries a failed webhook, so this poll is what
// makes order.updated reliable. Orders without the bridge's meta are not the
// bridge's and are left out; statuses that say nothing new (pending,
// processing, on-hold) too.
func (a *Adapter) OrderUpdates(ctx context.Context) ([]bridge.OrderUpdate, error) {
	a.updMu.Lock()
	defer a.updMu.Unlock()
	if a.updCursor.IsZero() {
		a.updCursor = a.now().Add(-24 * time.Hour)
	}
	newest := a.updCursor
	q := url.Values{"orderby": {"modified"}, "order": {"asc"}, "dates_are_gmt": {"true"}, "_fields": {orderFields},
		"modified_after": {a.updCursor.Add(-overlap).UTC().Format(wooTime)}}
	var out []bridge.OrderUpdate
	// By modification date: an order changed during the poll moves to the
	// end and shifts the rest; listAll reads again what that skipped.
	info, err := listAll(ctx, a, "orders", q, storeOrderID, func(page []order) error {
		for _, so := range page {
			if t, err := time.Parse(wooTime, so.DateModifiedGMT); err == nil && t.After(newest) {
				newest = t
			}
			if u, ok := so.update(); ok {
				out = append(out, u)
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("woocommerce: order updates: %w", err)
	}
	// The shop's time of the poll (see snapshot.cursor), else the newest
	// change seen.
	a.updCursor = cmp.Or(info.served, newest)
	return out, nil
}

func storeOrderID(o order) int64 { return o.ID }

// update is the bridge's news of o, if o is the bridge's and says something.
func (o order) update() (bridge.OrderUpdate, bool) {
	id := o.bridgeOrderID()
	if id == "" {
		return bridge.OrderUpdate{}, false
	}
	u := bridge.OrderUpdate{OrderID: id}
	if o.ID > 0 {
		u.StoreID = idString(o.ID) // lets the orders service tell a copy of the order from it
	}
	if t, err := time.Parse(wooTime, o.DateModifiedGMT); err == nil {
		u.At = t.UTC()
	}
	switch o.Status {
	case "completed", "delivered":
		// WooCommerce's "completed": fulfilled, nothing left to do.
		u.Status = bridge.OrderCompleted
	case "shipped": // a common plugin status
		u.Status = bridge.OrderShipped
	case "cancelled":
		u.Status, u.Reason = bridge.OrderCanceled, "canceled in WooCommerce"
	case "refunded":
		u.Status, u.Reason = bridge.OrderCanceled, "refunded in WooCommerce"
	default:
		return bridge.OrderUpdate{}, false
	}
	return u, true
}

// DecodeOrderUpdate reads an order.* webhook body (the order as GET
// /orders/{id} returns it). ok is false for an order that is not the
// bridge's or whose status says nothing new.
func DecodeOrderUpdate(body []byte) (u bridge.OrderUpdate, ok bool, err error) {
	var o order
	if err := json.Unmarshal(body, &o); err != nil {
		return bridge.OrderUpdate{}, false, fmt.Errorf("woocommerce: order webhook body: %w", err)
	}
	u, ok = o.update()
	return u, ok, nil
}
