package woocommerce

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakewoo"
	"github.com/acp-bridge/bridge/upstream"
)

func usd(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }

// paidOrder buys qty of the white linen shirt (sale price 39.90) with
// 5.00 shipping and 4% tax on top, built the way checkout.Engine.order
// builds orders from a priced session: a line's Total is its Subtotal plus
// its tax (checkout.Pricing: Total = Subtotal + Tax, tax rounded half up),
// and the order's Tax is the lines' tax plus the shipping's. Two shirts:
// 79.80 + 3.19 line tax, 5.00 + 0.20 shipping tax, 88.19 in all.
func paidOrder(id string, qty int64) bridge.Order {
	const ratePct, ship int64 = 4, 500
	base := 3990 * qty
	lineTax := (base*ratePct + 50) / 100
	shipTax := (ship*ratePct + 50) / 100
	tax := lineTax + shipTax
	return bridge.Order{ID: id, Currency: "USD", PaymentRef: "pi_" + id, Status: bridge.OrderCreated,
		Lines: []bridge.OrderLine{{ID: "l1", VariantID: "12", ProductID: "10", Title: "Linen Shirt - White", Quantity: qty,
			UnitPrice: usd(3990), Total: usd(base + lineTax)}},
		Subtotal: usd(base), Shipping: usd(ship), Tax: usd(tax), Total: usd(base + ship + tax),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo:         &bridge.Address{Line1: "1 Main St", City: "Albany", Region: "NY", PostalCode: "12207", Country: "US"},
		ShippingMethod: &bridge.ShippingMethod{ID: "flat_rate", Title: "Standard"}}
}

func TestWriteOrder(t *testing.T) {
	shop := newShop(t)
	a := newAdapter(t, shop, nil)
	so, err := a.WriteOrder(context.Background(), paidOrder("ord_1", 2))
	if err != nil {
		t.Fatal(err)
	}
	orders := shop.Orders()
	if len(orders) != 1 {
		t.Fatalf("%d orders", len(orders))
	}
	o := orders[0]
	if so.StoreID == "" || so.StoreID != idString(o.ID) || so.Discrepancy != "" {
		t.Errorf("store order %+v (shop's %d)", so, o.ID)
	}
	li := o.LineItems[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"status after set_paid", o.Status, "processing"},
		{"payment method", o.PaymentMethod, "stripe"},
		{"transaction id", o.TransactionID, "pi_ord_1"},
		{"product id", li.ProductID, int64(10)},
		{"variation id", li.VariationID, int64(12)},
		{"line subtotal (before tax)", li.Subtotal, "79.80"},
		{"line total (before tax)", li.Total, "79.80"},
		{"fee lines", len(o.FeeLines), 1},
		{"shipping method", o.ShippingLines[0].MethodID, "flat_rate"},
		{"tax fee: all the order's tax", o.FeeLines[0].Total, "3.39"},
		{"total", o.Total, "88.19"},
		{"billing name", o.Billing.FirstName + "|" + o.Billing.LastName, "Ada|Lovelace"},
		{"shipping city", o.Shipping.City, "Albany"},
		{"bridge id", o.MetaData[0].Key + "=" + o.MetaData[0].Value.(string), metaKey + "=ord_1"},
		{"charged", o.MetaData[1].Key + "=" + o.MetaData[1].Value.(string), metaCharged + "=88.19 USD"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if v, _ := shop.Product(12); *v.StockQuantity != 0 {
		t.Errorf("stock after the order: %d", *v.StockQuantity)
	}
	if !a.CountsWrittenOrders() {
		t.Error("WooCommerce takes the stock when it creates the order: its holds must end after the write")
	}
	found, err := a.FindOrder(context.Background(), "ord_1")
	if err != nil || found.StoreID != so.StoreID {
		t.Errorf("FindOrder: %+v %v", found, err)
	}
}

// WooCommerce takes any order; the adapter refuses what the shop could not
// fill, and only that (a wrong key is not the order's fault).
func TestWriteOrderRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakewoo.Server)
		order   bridge.Order
		refused bool
		want    string
		opts    func(*Options)
	}{
		{"stock gone", func(s *fakewoo.Server) { s.UpdateProduct(12, func(p *fakewoo.Product) { p.StockQuantity = i64(1) }) },
			paidOrder("o", 2), true, "1 in stock, the order needs 2", nil},
		{"parent stock gone", nil, func() bridge.Order {
			o := paidOrder("o", 8)
			o.Lines[0].VariantID = "11"
			return o
		}(), true, "7 in stock, the order needs 8", nil},
		// Two variations on the parent's stock draw on one figure: 4 + 4 of 7.
		{"siblings exceed the parent's stock together", func(s *fakewoo.Server) {
			s.UpdateProduct(12, func(p *fakewoo.Product) { p.ManageStock, p.StockQuantity = "parent", nil })
		}, func() bridge.Order {
			o := paidOrder("o", 4)
			l := o.Lines[0]
			l.ID, l.VariantID = "l2", "11"
			o.Lines = append(o.Lines, l)
			return o
		}(), true, "product 10: 7 in stock, the order needs 8", nil},
		{"product deleted", func(s *fakewoo.Server) { s.DeleteProduct(10) }, paidOrder("o", 1), true, "no longer in the shop", nil},
		{"product unpublished", func(s *fakewoo.Server) { s.UpdateProduct(10, func(p *fakewoo.Product) { p.Status = "draft" }) },
			paidOrder("o", 1), true, "no longer published", nil},
		{"variation disabled", func(s *fakewoo.Server) { s.UpdateProduct(12, func(p *fakewoo.Product) { p.Status = "private" }) },
			paidOrder("o", 1), true, "no longer published", nil},
		{"marked out of stock", func(s *fakewoo.Server) {
			s.UpdateProduct(70, func(p *fakewoo.Product) { p.ManageStock, p.StockStatus = false, "outofstock" })
		}, func() bridge.Order {
			o := paidOrder("o", 1)
			o.Lines[0].VariantID, o.Lines[0].ProductID = "70", "70"
			return o
		}(), true, "marked out of stock", nil},
		{"read-only key", func(s *fakewoo.Server) { s.SetReadOnly(true) }, paidOrder("o", 1), false, "write permissions", nil},
		{"mapped ids", nil, func() bridge.Order {
			o := paidOrder("o", 1)
			o.Lines[0].VariantID = "LIN-WHT"
			return o
		}(), false, "must stay", nil},
		// A 404 of the whole API (a wrong path, permalinks off, WooCommerce
		// deactivated) says nothing about the product: retried, never refused.
		{name: "API not at this URL", order: paidOrder("o", 1), refused: false, want: "rest_no_route",
			opts: func(o *Options) { o.URL += "/shop" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			if tt.setup != nil {
				tt.setup(shop)
			}
			var edit []func(*Options)
			if tt.opts != nil {
				edit = append(edit, tt.opts)
			}
			a := newAdapter(t, shop, nil, edit...)
			_, err := a.WriteOrder(context.Background(), tt.order)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if errors.Is(err, bridge.ErrOrderRefused) != tt.refused {
				t.Errorf("refused = %v, want %v: %v", !tt.refused, tt.refused, err)
			}
			if n := len(shop.Orders()); n != 0 {
				t.Errorf("%d orders written", n)
			}
		})
	}
}

// A create whose answer is lost is ambiguous: it is not resent, and
// FindOrder finds the order it made, so the outbox never writes it twice.
func TestWriteOrderAmbiguous(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(*fakewoo.Server)
		created int
	}{
		{"dropped after commit", func(s *fakewoo.Server) { s.DropAfterCommitNext(1) }, 1},
		// A 500 may come after the shop committed: ambiguous too.
		{"500", func(*fakewoo.Server) {}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			a := newAdapter(t, shop, nil)
			tt.fault(shop)
			if tt.created == 0 {
				failCreate(t, shop)
			}
			_, err := a.WriteOrder(context.Background(), paidOrder("ord_x", 1))
			if !errors.Is(err, upstream.ErrAmbiguous) {
				t.Fatalf("want ErrAmbiguous, got %v", err)
			}
			if n := shop.Requests()["POST /orders"]; n != 1 {
				t.Errorf("the create was sent %d times", n)
			}
			so, err := a.FindOrder(context.Background(), "ord_x")
			switch {
			case tt.created == 1 && (err != nil || so.StoreID == ""):
				t.Errorf("the order made is not found: %v", err)
			case tt.created == 0 && !errors.Is(err, bridge.ErrNotFound):
				t.Errorf("want ErrNotFound, got %+v %v", so, err)
			}
			if n := len(shop.Orders()); n != tt.created {
				t.Errorf("%d orders, want %d", n, tt.created)
			}
		})
	}
}

// failCreate makes the next POST /orders answer 500: the stock checks
// before it make two reads for a variation.
func failCreate(t *testing.T, shop *fakewoo.Server) {
	t.Helper()
	shop.FailNext(0, 0, 500)
}

func TestWriteOrderTotalMismatch(t *testing.T) {
	shop := newShop(t)
	shop.SetTaxRate(10) // WooCommerce computes its own tax on top
	a := newAdapter(t, shop, nil)
	so, err := a.WriteOrder(context.Background(), paidOrder("ord_t", 1))
	if err != nil {
		t.Fatal(err)
	}
	// 39.90 line + 3.99 WooCommerce's tax + 5.00 shipping + 1.80 tax fee.
	if !strings.Contains(so.Discrepancy, "50.69") || !strings.Contains(so.Discrepancy, "46.70") {
		t.Errorf("discrepancy: %q", so.Discrepancy)
	}
	// Found again (after a lost answer), the order is checked the same way.
	found, err := a.FindOrder(context.Background(), "ord_t")
	if err != nil || found.Discrepancy != so.Discrepancy {
		t.Errorf("found: %+v %v", found, err)
	}
}

// FindOrder scans past the first page, with or without the pagination
// headers (a proxy may strip them), asking only for the fields it reads.
func TestFindOrderScansPages(t *testing.T) {
	tests := []struct {
		name     string
		strip    bool
		orders   int
		pages    int // GET /orders calls to find the oldest
		notFound int // calls to learn an order is not there (the trash: one more)
	}{
		{"with X-WP-TotalPages", false, 150, 2, 3},
		{"headers stripped", true, 150, 2, 3},
		// 200 orders: two full pages, then an empty one says the end.
		{"headers stripped, full last page", true, 200, 2, 4},
		{"headers stripped, 101", true, 101, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			a := newAdapter(t, shop, nil)
			for i := range tt.orders {
				shop.AddOrder(fakewoo.Order{Total: "1.00", MetaData: []fakewoo.Meta{{Key: metaKey, Value: "ord_" + idString(int64(i))}}})
			}
			shop.StripPageHeaders(tt.strip)
			before := shop.Requests()["GET /orders"]
			so, err := a.FindOrder(context.Background(), "ord_0") // the oldest: the last page
			if err != nil || so.StoreID == "" {
				t.Fatalf("%+v %v", so, err)
			}
			if n := shop.Requests()["GET /orders"] - before; n != tt.pages {
				t.Errorf("%d pages read, want %d", n, tt.pages)
			}
			if f := shop.LastQuery("GET /orders").Get("_fields"); !strings.Contains(f, "meta_data") || strings.Contains(f, "line_items") {
				t.Errorf("_fields=%q: the scan must ask for the order's id, status, total and meta only", f)
			}
			before = shop.Requests()["GET /orders"]
			if _, err := a.FindOrder(context.Background(), "ord_nope"); !errors.Is(err, bridge.ErrNotFound) {
				t.Errorf("want ErrNotFound, got %v", err)
			}
			if n := shop.Requests()["GET /orders"] - before; n != tt.notFound {
				t.Errorf("%d pages read for an order not there, want %d", n, tt.notFound)
			}
		})
	}
}

func TestOrderUpdates(t *testing.T) {
	shop := newShop(t)
	shop.UpdateProduct(12, func(p *fakewoo.Product) { p.StockQuantity = i64(100) })
	a := newAdapter(t, shop, nil)
	var ids []int64
	for _, id := range []string{"ord_a", "ord_b", "ord_c"} {
		so, err := a.WriteOrder(context.Background(), paidOrder(id, 1))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := parseID(so.StoreID)
		ids = append(ids, n)
	}
	shop.SetOrderStatus(ids[0], "completed")
	shop.SetOrderStatus(ids[1], "cancelled")
	// An admin's copy of ord_c (a "duplicate order" plugin keeps the meta),
	// then canceled: its update must name the copy, so the orders service
	// can tell it from ord_c.
	cp := shop.AddOrder(fakewoo.Order{Status: "cancelled", Total: "46.70", MetaData: []fakewoo.Meta{{Key: metaKey, Value: "ord_c"}}})
	ups, err := a.OrderUpdates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // store id → order id and status
	for _, u := range ups {
		got[u.StoreID] = u.OrderID + " " + u.Status
	}
	want := map[string]string{idString(ids[0]): "ord_a " + bridge.OrderCompleted, idString(ids[1]): "ord_b " + bridge.OrderCanceled,
		idString(cp): "ord_c " + bridge.OrderCanceled}
	if !maps.Equal(got, want) {
		t.Errorf("updates by store id: %v, want %v", got, want)
	}
}

func TestDecodeOrderUpdate(t *testing.T) {
	body, _ := json.Marshal(map[string]any{"id": 5, "status": "refunded", "date_modified_gmt": "2026-11-27T10:00:00",
		"meta_data": []any{map[string]any{"id": 1, "key": metaKey, "value": "ord_9"}}})
	u, ok, err := DecodeOrderUpdate(body)
	if err != nil || !ok || u.OrderID != "ord_9" || u.StoreID != "5" || u.Status != bridge.OrderCanceled || u.At.IsZero() {
		t.Errorf("%+v %v %v", u, ok, err)
	}
	if _, ok, err := DecodeOrderUpdate([]byte(`{"id":6,"status":"completed"}`)); ok || err != nil {
		t.Errorf("an order that is not the bridge's: %v %v", ok, err)
	}
	if _, _, err := DecodeOrderUpdate([]byte(`{"id":`)); err == nil {
		t.Error("truncated body accepted")
	}
}

// The shop books lines at their price before tax and the bridge's tax in
// one fee, whatever the pricing: WooCommerce's revenue per product must not
// hold tax, and its total must be what was charged.
func TestOrderBodyAmounts(t *testing.T) {
	tests := []struct {
		name       string
		order      func() bridge.Order
		lineTotals []string
		fees       map[string]string // name → total
	}{
		{"tax on top", func() bridge.Order { return paidOrder("o", 2) },
			[]string{"79.80"}, map[string]string{"Tax (charged at checkout)": "3.39"}},
		{"two lines, tax on top", func() bridge.Order {
			o := paidOrder("o", 1) // 39.90 + 1.60 tax
			o.Lines = append(o.Lines, bridge.OrderLine{VariantID: "70", ProductID: "70", Quantity: 3, UnitPrice: usd(1000), Total: usd(3120)})
			o.Subtotal, o.Tax = usd(3990+3000), usd(160+120+20)
			o.Total = usd(3990 + 3000 + 500 + 300)
			return o
		}, []string{"39.90", "30.00"}, map[string]string{"Tax (charged at checkout)": "3.00"}},
		// Prices including tax: Tax is what the prices hold (Totals.TaxIncluded),
		// not something charged on top: no fee.
		{"prices include tax", func() bridge.Order {
			o := paidOrder("o", 2)
			o.Lines[0].Total = usd(7980)
			o.Tax, o.Total = usd(307+19), usd(7980+500)
			return o
		}, []string{"79.80"}, map[string]string{}},
		{"no shipping, no tax", func() bridge.Order {
			o := paidOrder("o", 1)
			o.Lines[0].Total, o.Shipping, o.ShippingMethod, o.Tax, o.Total = usd(3990), usd(0), nil, usd(0), usd(3990)
			return o
		}, []string{"39.90"}, map[string]string{}},
		// A discount (none exists yet) keeps the lines' prices and shows as a
		// negative fee; the tax fee is still all the tax.
		{"discount", func() bridge.Order {
			o := paidOrder("o", 2)
			o.Subtotal = usd(7980 - 500)
			o.Lines[0].Total = usd(7980 - 500 + 299)
			o.Tax = usd(299 + 20)
			o.Total = usd(7980 - 500 + 500 + 319)
			return o
		}, []string{"79.80"}, map[string]string{"Discount (applied at checkout)": "-5.00", "Tax (charged at checkout)": "3.19"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.order()
			body, err := orderBody(o)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			sum := int64(0)
			for _, li := range body.LineItems {
				if li.Subtotal != li.Total {
					t.Errorf("line subtotal %s, total %s: no discount on lines", li.Subtotal, li.Total)
				}
				lines = append(lines, li.Total)
				m, _ := bridge.ParseMoney(li.Total, "USD")
				sum += m.Amount
			}
			if strings.Join(lines, ",") != strings.Join(tt.lineTotals, ",") {
				t.Errorf("line totals %v, want %v", lines, tt.lineTotals)
			}
			fees := map[string]string{}
			for _, f := range body.FeeLines {
				fees[f.Name] = f.Total
				if f.TaxStatus != "none" {
					t.Errorf("fee %q is taxable", f.Name)
				}
				m, _ := bridge.ParseMoney(f.Total, "USD")
				sum += m.Amount
			}
			if len(fees) != len(tt.fees) {
				t.Errorf("fees %v, want %v", fees, tt.fees)
			}
			for k, v := range tt.fees {
				if fees[k] != v {
					t.Errorf("fee %q = %q, want %q (all fees %v)", k, fees[k], v, fees)
				}
			}
			for _, sl := range body.ShippingLines {
				m, _ := bridge.ParseMoney(sl.Total, "USD")
				sum += m.Amount
			}
			if sum != o.Total.Amount {
				t.Errorf("the body adds up to %d, the buyer paid %d", sum, o.Total.Amount)
			}
		})
	}
}

// Lines that are not order lines are an error, never a panic.
func TestOrderBodyBadLines(t *testing.T) {
	tests := []struct {
		name string
		line bridge.OrderLine
	}{
		{"negative quantity", bridge.OrderLine{VariantID: "12", ProductID: "10", Quantity: -1, UnitPrice: usd(100)}},
		{"negative price", bridge.OrderLine{VariantID: "12", ProductID: "10", Quantity: 1, UnitPrice: usd(-100)}},
		{"overflow", bridge.OrderLine{VariantID: "12", ProductID: "10", Quantity: 1 << 40, UnitPrice: usd(1 << 40)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := paidOrder("o", 1)
			o.Lines = []bridge.OrderLine{tt.line}
			if _, err := orderBody(o); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// An order WooCommerce saved but left pending (a plugin failing in its
// payment_complete hooks) is unpaid there and its stock not taken: the
// adapter completes it (PUT set_paid) before counting it as written, and
// fails (retried, never refused) while it cannot.
func TestWriteOrderFinishesUnpaid(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(*fakewoo.Server)
		writeOK bool
		// ambiguous: the create's answer is lost, so WriteOrder fails with
		// ErrAmbiguous.
		ambiguous bool
		puts      int // PUT /orders/{id} sent by WriteOrder
	}{
		{"paid at once", func(*fakewoo.Server) {}, true, false, 0},
		{"pending after the create", func(s *fakewoo.Server) { s.StallPaymentNext(1) }, true, false, 1},
		{"still pending after set_paid", func(s *fakewoo.Server) { s.StallPaymentNext(2) }, false, false, 1},
		{"pending, answer lost", func(s *fakewoo.Server) { s.StallPaymentNext(1); s.DropAfterCommitNext(1) }, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			a := newAdapter(t, shop, nil)
			tt.fault(shop)
			so, err := a.WriteOrder(context.Background(), paidOrder("ord_p", 1))
			switch {
			case tt.writeOK && (err != nil || so.StoreID == ""):
				t.Fatalf("write: %+v %v", so, err)
			case !tt.writeOK && err == nil:
				t.Fatalf("an unpaid order counted as written: %+v", so)
			case !tt.writeOK && errors.Is(err, bridge.ErrOrderRefused):
				t.Fatalf("refused: %v", err)
			case errors.Is(err, upstream.ErrAmbiguous) != tt.ambiguous:
				t.Fatalf("ambiguous = %v, want %v: %v", !tt.ambiguous, tt.ambiguous, err)
			}
			if n := shop.Requests()["PUT /orders/{id}"]; n != tt.puts {
				t.Errorf("%d PUTs, want %d", n, tt.puts)
			}
			if !tt.writeOK {
				// The outbox's next attempt looks the order up first.
				if so, err = a.FindOrder(context.Background(), "ord_p"); err != nil || so.StoreID == "" {
					t.Fatalf("find: %+v %v", so, err)
				}
			}
			orders := shop.Orders()
			if len(orders) != 1 {
				t.Fatalf("%d orders", len(orders))
			}
			o := orders[0]
			if o.Status != "processing" || o.DatePaidGMT == nil || o.TransactionID != "pi_ord_p" {
				t.Errorf("the shop's order: status %s, paid %v, transaction %q", o.Status, o.DatePaidGMT, o.TransactionID)
			}
			if v, _ := shop.Product(12); *v.StockQuantity != 1 {
				t.Errorf("stock after the order: %d, want 1 (taken once)", *v.StockQuantity)
			}
		})
	}
}

// status=any leaves WooCommerce's trash out; FindOrder looks there too, and
// an order found in the trash is neither written nor absent: an error (a
// person decides), never ErrNotFound, which would write it again.
func TestFindOrderTrash(t *testing.T) {
	tests := []struct {
		name     string
		status   string
		found    bool
		notFound bool
	}{
		{"processing", "processing", true, false},
		{"cancelled", "cancelled", true, false},
		{"trashed", "trash", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			a := newAdapter(t, shop, nil)
			paid := "2026-11-27T10:00:00"
			id := shop.AddOrder(fakewoo.Order{Status: tt.status, DatePaidGMT: &paid, Total: "46.70", Currency: "USD",
				MetaData: []fakewoo.Meta{{Key: metaKey, Value: "ord_t"}}})
			so, err := a.FindOrder(context.Background(), "ord_t")
			if tt.found {
				if err != nil || so.StoreID != idString(id) {
					t.Fatalf("%+v %v", so, err)
				}
				return
			}
			if err == nil || errors.Is(err, bridge.ErrNotFound) != tt.notFound || !strings.Contains(err.Error(), "trash") {
				t.Fatalf("got %+v %v", so, err)
			}
		})
	}
}
