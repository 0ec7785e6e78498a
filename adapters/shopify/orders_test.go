package shopify

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/fakeshopify"
	"github.com/acp-bridge/bridge/upstream"
)

// paidOrder is an order of two units of variant v at 20.00, 5.00
// shipping and 2.00 tax, paid by PaymentIntent pi_1.
func paidOrder(id string, v int64) bridge.Order {
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	return bridge.Order{ID: id, SessionID: "cs_1", Currency: "USD", Status: bridge.OrderCreated,
		Lines:    []bridge.OrderLine{{ID: "li_1", VariantID: fmt.Sprint(v), Title: "Tee", Quantity: 2, UnitPrice: usd(2000), Total: usd(4000)}},
		Subtotal: usd(4000), Shipping: usd(500), Tax: usd(200), Total: usd(4700),
		Buyer:          bridge.Buyer{Name: "Ada Lovelace", Email: "ada@example.com"},
		ShipTo:         &bridge.Address{Name: "Ada Lovelace", Line1: "1 Main St", City: "Austin", Region: "TX", PostalCode: "78701", Country: "US"},
		ShippingMethod: &bridge.ShippingMethod{ID: "standard", Title: "Standard"},
		PaymentRef:     "pi_1", Payment: bridge.PaymentStateCaptured}
}

func TestWriteOrder(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, func(o *Options) { o.StatusPagePermalink = true })
	v := big.Variants[0]
	so, err := a.WriteOrder(context.Background(), paidOrder("ord_1", v.ID))
	if err != nil {
		t.Fatal(err)
	}
	orders := s.Orders()
	if len(orders) != 1 {
		t.Fatalf("%d orders in the shop, want 1", len(orders))
	}
	o := orders[0]
	if so.StoreID != fmt.Sprintf("gid://shopify/Order/%d", o.ID) || !so.Permalink || !strings.HasPrefix(so.URL, "https://") {
		t.Errorf("store order %+v", so)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"tags", o.Tags, []string{"bridge:ord_1", "acp-bridge"}},
		{"source identifier", o.SourceIdentifier, "ord_1"},
		{"email", o.Email, "ada@example.com"},
		{"financial status", o.FinancialStatus, "PAID"},
		{"inventory behaviour", o.Inventory, "DECREMENT_OBEYING_POLICY"},
		{"lines", o.Lines[0].Quantity, int64(2)},
		{"line price", o.Lines[0].Price, "20.00"},
		{"total", o.Total, "47.00"},
		{"transaction", o.Transactions[0], fakeshopify.Transaction{ID: o.Transactions[0].ID, Kind: "SALE", Status: "SUCCESS", Gateway: "stripe", AuthorizationCode: "pi_1", Amount: "47.00"}},
		{"ship to", o.ShippingAddress["lastName"], "Lovelace"},
		{"province", o.ShippingAddress["provinceCode"], "TX"},
		{"stock taken", s.Available(v.ID), int64(5)},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
	found, err := a.FindOrder(context.Background(), "ord_1")
	if err != nil || found.StoreID != so.StoreID {
		t.Fatalf("FindOrder = %+v, %v", found, err)
	}
	if _, err := a.FindOrder(context.Background(), "ord_12"); !errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("FindOrder of another id: %v, want not found", err)
	}
	if _, err := a.FindOrder(context.Background(), "ord' OR tag:x"); err == nil || errors.Is(err, bridge.ErrNotFound) {
		t.Errorf("FindOrder with a quote: %v, want a refusal", err)
	}
}

func TestWriteOrderAuthorized(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, nil)
	o := paidOrder("ord_a", big.Variants[0].ID)
	o.Payment = bridge.PaymentStateAuthorized
	so, err := a.WriteOrder(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if so.Permalink || so.URL != "" {
		t.Errorf("status page used without status_page_permalink: %+v", so)
	}
	got := s.Orders()[0]
	if got.FinancialStatus != "AUTHORIZED" || got.Transactions[0].Kind != "AUTHORIZATION" {
		t.Errorf("financial status %s, transaction %s", got.FinancialStatus, got.Transactions[0].Kind)
	}
}

// TestWriteOrderRefusals: userErrors refuse the order for good only when
// they are about the items (stock gone, an invalid variant or quantity);
// errors about the bridge's own data or the shop's state are retried,
// and an invalid phone or province code is dropped once (kept in the
// note) and the order sent again.
// An order in orderCreate's answer is the order, whatever userErrors come
// beside it: not sent again without a field, not refused.
func TestWriteOrderUserErrorsBesideTheOrder(t *testing.T) {
	for _, e := range []fakeshopify.UserError{
		{Code: "INVALID", Message: "Phone is invalid", Field: []string{"order", "phone"}},
		{Code: "INVALID", Message: "Variant is invalid", Field: []string{"order", "lineItems", "0", "variantId"}},
	} {
		t.Run(e.Message, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, nil)
			s.ErrorsBesideNextOrder(e)
			so, err := a.WriteOrder(context.Background(), paidOrder("ord_b", big.Variants[0].ID))
			if err != nil || so.StoreID == "" {
				t.Fatalf("WriteOrder = %+v, %v; want the order Shopify created", so, err)
			}
			if n := s.Calls()["orderCreate"]; n != 1 || len(s.Orders()) != 1 {
				t.Errorf("orderCreate sent %d times, %d orders; want 1 and 1", n, len(s.Orders()))
			}
		})
	}
}

func TestWriteOrderRefusals(t *testing.T) {
	invalid := func(msg string, field ...string) []fakeshopify.UserError {
		return []fakeshopify.UserError{{Code: "INVALID", Message: msg, Field: append([]string{"order"}, field...)}}
	}
	for _, tc := range []struct {
		name    string
		refuse  []fakeshopify.UserError
		qty     int64
		refused bool
		want    string // in the error; "" for an order created
		creates int    // orderCreate calls
		note    string // in the created order's note
	}{
		{"stock gone", nil, 99, true, "stock gone", 1, ""},
		{"invalid variant", invalid("Variant is invalid", "lineItems", "0", "variantId"), 1, true, "lineItems.*.variantId: Variant is invalid", 1, ""},
		{"invalid quantity", invalid("Quantity is invalid", "lineItems", "0", "quantity"), 1, true, "Quantity is invalid", 1, ""},
		{"invalid without a field", invalid("Something is invalid"), 1, false, "Something is invalid", 1, ""},
		{"invalid email", invalid("Email is invalid", "email"), 1, false, "email: Email is invalid (INVALID)", 1, ""},
		{"currency not the shop's", invalid("Currency is invalid", "currency"), 1, false, "currency: Currency is invalid", 1, ""},
		{"invalid province code", invalid("Province is invalid", "shippingAddress", "provinceCode"), 1, false, "", 2, "shippingAddress.provinceCode (refused by Shopify: Province is invalid): TX"},
		{"invalid phone, none sent", invalid("Phone is invalid", "phone"), 1, false, "phone: Phone is invalid", 1, ""},
		{"invalid province code twice", append(invalid("Province is invalid", "shippingAddress", "provinceCode"), invalid("Province is invalid", "shippingAddress", "provinceCode")...), 1, false, "Province is invalid", 2, ""},
		{"dormant shop", []fakeshopify.UserError{{Code: "SHOP_DORMANT", Message: "Shop is dormant"}}, 1, false, "dormant", 1, ""},
		{"no code", []fakeshopify.UserError{{Message: "Something"}}, 1, false, "Something", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, nil)
			for _, e := range tc.refuse {
				s.RefuseNextOrder(e)
			}
			o := paidOrder("ord_r", big.Variants[0].ID)
			o.Lines[0].Quantity = tc.qty
			_, err := a.WriteOrder(context.Background(), o)
			if n := s.Calls()["orderCreate"]; n != tc.creates {
				t.Errorf("orderCreate sent %d times, want %d", n, tc.creates)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				orders := s.Orders()
				if len(orders) != 1 || orders[0].ShippingAddress["provinceCode"] != nil || !strings.Contains(orders[0].Note, tc.note) {
					t.Fatalf("orders %+v; want one without the province code, noting %q", orders, tc.note)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if errors.Is(err, bridge.ErrOrderRefused) != tc.refused {
				t.Errorf("refused = %v, want %v: %v", !tc.refused, tc.refused, err)
			}
			if n := len(s.Orders()); n != 0 {
				t.Errorf("%d orders created", n)
			}
		})
	}
}

// TestWriteOrderAnswerLost: Shopify commits the order and the connection
// drops before the answer. The create is not resent; the adapter finds the
// order by its tag once the search index has it: one order, found.
func TestWriteOrderAnswerLost(t *testing.T) {
	for _, fault := range []string{"drop", "internal error"} {
		t.Run(fault, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{SearchLag: 700 * time.Millisecond, LagUnfiltered: true})
			a, _ := newAdapter(t, s, nil)
			if fault == "drop" {
				s.DropAfterCommit(1)
			} else {
				s.ErrorAfterCommit(1)
			}
			so, err := a.WriteOrder(context.Background(), paidOrder("ord_d", big.Variants[0].ID))
			if err != nil {
				t.Fatalf("WriteOrder: %v", err)
			}
			orders := s.Orders()
			if len(orders) != 1 || so.StoreID != fmt.Sprintf("gid://shopify/Order/%d", orders[0].ID) {
				t.Fatalf("%d orders, store order %+v", len(orders), so)
			}
			if n := s.Calls()["orderCreate"]; n != 1 {
				t.Errorf("orderCreate sent %d times, want 1", n)
			}
		})
	}
}

// TestWriteOrderServerError: a 500 to orderCreate may have been
// processed: it is never resent. When Shopify committed the order, the
// lookup finds it (one order); when it did not, the error is ambiguous,
// not a refusal, names the order, and for unsureFor the outbox's lookup
// hears "not known yet" rather than "not found".
func TestWriteOrderServerError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     func(s *fakeshopify.Server)
		committed bool
	}{
		{"500 before running", func(s *fakeshopify.Server) { s.Fail(1, 500, "") }, false},
		{"500 after commit", func(s *fakeshopify.Server) { s.Fail500AfterCommit(1) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, func(o *Options) { o.LookupWait = 600 * time.Millisecond })
			tc.fault(s)
			so, err := a.WriteOrder(context.Background(), paidOrder("ord_5", big.Variants[0].ID))
			// Every request but the lookups is the one orderCreate.
			lookups := s.Calls()["orders"] + s.Calls()["order"]
			if req, _ := s.Requests(); req != 1+lookups {
				t.Errorf("%d requests with %d lookups: orderCreate was sent again", req, lookups)
			}
			orders := s.Orders()
			if tc.committed {
				if err != nil || len(orders) != 1 || so.StoreID != fmt.Sprintf("gid://shopify/Order/%d", orders[0].ID) || so.Discrepancy != "" {
					t.Fatalf("WriteOrder = %+v, %v with %d orders; want the committed order found, agreeing with the charge", so, err, len(orders))
				}
				if _, err := a.FindOrder(context.Background(), "ord_5"); err != nil {
					t.Errorf("FindOrder after the order was found: %v", err)
				}
				return
			}
			if !errors.Is(err, upstream.ErrAmbiguous) || errors.Is(err, bridge.ErrOrderRefused) || !strings.Contains(err.Error(), "ord_5") {
				t.Fatalf("error %v, want ambiguous, naming the order", err)
			}
			if strings.Contains(err.Error(), fakeshopify.DefaultToken) {
				t.Error("the access token is in the error")
			}
			if n := s.Calls()["orders"]; n < 4 {
				t.Errorf("%d order lookups in 600ms: the order was not looked for while the index catches up", n)
			}
			if len(orders) != 0 {
				t.Error("an order was created")
			}
			// Right after, the outbox's lookup must not hear "not found": that
			// would write the order a second time if Shopify had it after all.
			if _, err := a.FindOrder(context.Background(), "ord_5"); err == nil || errors.Is(err, bridge.ErrNotFound) {
				t.Errorf("FindOrder right after a create without an answer: %v, want a retryable error", err)
			}
			a.unsureMu.Lock()
			a.unsure["ord_5"] = time.Now().Add(-unsureFor)
			a.unsureMu.Unlock()
			if _, err := a.FindOrder(context.Background(), "ord_5"); !errors.Is(err, bridge.ErrNotFound) {
				t.Errorf("FindOrder %v after the hold: %v, want not found", unsureFor, err)
			}
		})
	}
}

// TestDevStoreLimit: a development store takes 5 orders a minute; the
// sixth is answered 429, which proves it was not taken, so it fails
// without being refused or ambiguous, and is not created.
func TestDevStoreLimit(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{OrdersPerMinute: 5})
	a, _ := newAdapter(t, s, nil)
	for i := range 5 {
		o := paidOrder(fmt.Sprintf("ord_%d", i), big.Variants[i].ID)
		o.Lines[0].Quantity = 1
		if _, err := a.WriteOrder(context.Background(), o); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	_, err := a.WriteOrder(context.Background(), paidOrder("ord_6", big.Variants[9].ID))
	if err == nil || errors.Is(err, bridge.ErrOrderRefused) || errors.Is(err, upstream.ErrAmbiguous) {
		t.Fatalf("sixth order: %v, want a plain failure to retry later", err)
	}
	if n := len(s.Orders()); n != 5 {
		t.Errorf("%d orders, want 5", n)
	}
}

func TestOrderUpdates(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, nil)
	if _, err := a.WriteOrder(context.Background(), paidOrder("ord_u", big.Variants[0].ID)); err != nil {
		t.Fatal(err)
	}
	id := s.Orders()[0].ID
	f := s.Fulfill(id, "UPS", "1Z999", "https://ups.example/1Z999")
	ups, err := a.OrderUpdates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := bridge.Fulfillment{ID: fmt.Sprintf("shopify_%d", f.ID), Type: "shipping", Status: "shipped", Carrier: "UPS", TrackingNumber: "1Z999", TrackingURL: "https://ups.example/1Z999"}
	if len(ups) != 1 || ups[0].OrderID != "ord_u" || ups[0].Status != bridge.OrderShipped || !reflect.DeepEqual(*ups[0].Fulfillment, want) {
		t.Fatalf("updates %+v", ups)
	}
	s.Cancel(id, "CUSTOMER")
	ups, err = a.OrderUpdates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last := ups[len(ups)-1]
	if last.Status != bridge.OrderCanceled || !strings.Contains(last.Reason, "customer") {
		t.Errorf("last update %+v, want the cancellation", last)
	}
}

// taxedOrder is an order shaped the way the checkout engine makes one:
// each line's Total includes its tax, Tax is the tax in Total. One unit
// at 12.00 with 2.00 tax in it (inclusive) or 10.00 + 2.00 (exclusive),
// 6.00 shipping with 1.00 tax in it or 5.00 + 1.00: 18.00 charged.
func taxedOrder(id string, v int64, included bool) bridge.Order {
	usd := func(n int64) bridge.Money { return bridge.Money{Amount: n, Currency: "USD"} }
	o := paidOrder(id, v)
	o.TaxIncluded = included
	o.Lines = []bridge.OrderLine{{ID: "li_1", VariantID: fmt.Sprint(v), Title: "Tee", Quantity: 1, UnitPrice: usd(1200), Total: usd(1200), Tax: usd(200)}}
	o.Subtotal, o.Shipping, o.Tax, o.Total = usd(1200), usd(600), usd(300), usd(1800)
	if !included {
		o.Lines[0].UnitPrice = usd(1000)
		o.Subtotal, o.Shipping = usd(1000), usd(500)
	}
	return o
}

// TestWriteOrderTax: Shopify is told whether prices include the tax, gets
// the tax per line and on shipping, and makes an order of the total
// charged; a total it computes otherwise is reported as a discrepancy.
func TestWriteOrderTax(t *testing.T) {
	for _, tc := range []struct {
		name        string
		included    bool
		total       int64 // charged, 0: as built; −1: as built, with no tax on the lines (today's checkout, prices including tax)
		wantTotal   string
		discrepancy string
	}{
		{"tax included", true, 0, "18.00", ""},
		{"tax included, lines without their tax", true, -1, "18.00", ""},
		{"tax added", false, 0, "18.00", ""},
		{"charged otherwise", true, 1700, "18.00", "Shopify's order total is 18.00 USD, the buyer was charged 17.00 USD"},
		// The order found after a lost answer is checked too, against the
		// stripe transaction the bridge wrote on it.
		{"charged otherwise, answer lost", true, 1700, "18.00", "Shopify's order total is 18.00 USD, the buyer was charged 17.00 USD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, logs := newAdapter(t, s, nil)
			if strings.HasSuffix(tc.name, "answer lost") {
				s.DropAfterCommit(1)
			}
			o := taxedOrder("ord_t", big.Variants[0].ID, tc.included)
			switch {
			case tc.total < 0:
				o.Lines[0].Tax.Amount = 0
			case tc.total > 0:
				o.Total.Amount = tc.total
			}
			so, err := a.WriteOrder(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Orders()[0]
			if got.Total != tc.wantTotal || got.TotalTax != "3.00" || got.TaxesIncluded != tc.included {
				t.Errorf("Shopify order total %s, tax %s, taxes included %v; want %s, 3.00, %v", got.Total, got.TotalTax, got.TaxesIncluded, tc.wantTotal, tc.included)
			}
			if so.Discrepancy != tc.discrepancy {
				t.Errorf("discrepancy %q, want %q", so.Discrepancy, tc.discrepancy)
			}
			if logged := strings.Contains(logs.String(), "differs from the amount charged"); logged != (tc.discrepancy != "") {
				t.Errorf("discrepancy logged = %v", logged)
			}
		})
	}
}

// TestWriteOrderGraphQLErrors: for orderCreate, only errors that prove
// Shopify ran nothing are plain failures; an order in the data wins over
// the errors beside it; any other error, or a 200 that cannot be read, is
// ambiguous and the order is looked for, never created twice.
func TestWriteOrderGraphQLErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     func(s *fakeshopify.Server)
		created   bool // the fault commits the order
		ambiguous bool // with no order found, the error is ambiguous
	}{
		{"unknown code after commit", func(s *fakeshopify.Server) { s.CodeAfterCommit(1, "SOMETHING_NEW", false) }, true, true},
		{"order in the data beside an error", func(s *fakeshopify.Server) { s.CodeAfterCommit(1, "SOMETHING_NEW", true) }, true, false},
		{"access denied on a field, order in the data", func(s *fakeshopify.Server) { s.CodeAfterCommit(1, "ACCESS_DENIED", true) }, true, false},
		{"unreadable 200 after commit", func(s *fakeshopify.Server) { s.GarbleAfterCommit(1) }, true, true},
		{"unknown code, nothing created", func(s *fakeshopify.Server) { s.RejectNext(1, "SOMETHING_NEW") }, false, true},
		{"access denied", func(s *fakeshopify.Server) { s.RejectNext(1, "ACCESS_DENIED") }, false, false},
		{"cost over the limit", func(s *fakeshopify.Server) { s.RejectNext(1, "MAX_COST_EXCEEDED") }, false, false},
		{"validation failed", func(s *fakeshopify.Server) { s.RejectNext(1, "GRAPHQL_VALIDATION_FAILED") }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, func(o *Options) { o.LookupWait = 300 * time.Millisecond })
			tc.fault(s)
			so, err := a.WriteOrder(context.Background(), paidOrder("ord_g", big.Variants[0].ID))
			orders := s.Orders()
			if n := s.Calls()["orderCreate"]; n > 1 {
				t.Errorf("orderCreate sent %d times", n)
			}
			if tc.created {
				if err != nil || len(orders) != 1 || so.StoreID != fmt.Sprintf("gid://shopify/Order/%d", orders[0].ID) {
					t.Fatalf("WriteOrder = %+v, %v with %d orders; want the created order", so, err, len(orders))
				}
				return
			}
			if len(orders) != 0 {
				t.Fatalf("%d orders created", len(orders))
			}
			if err == nil || errors.Is(err, upstream.ErrAmbiguous) != tc.ambiguous || errors.Is(err, bridge.ErrOrderRefused) {
				t.Fatalf("error %v; want ambiguous = %v, not refused", err, tc.ambiguous)
			}
			if looked := s.Calls()["orders"] > 0; looked != tc.ambiguous {
				t.Errorf("order looked up = %v, want %v", looked, tc.ambiguous)
			}
		})
	}
}

// TestFindOrderAmongLooseMatches: Shopify's tag search matches loosely, so
// a lookup for bridge:ord_1 also finds bridge:ord_10 … ; older loose
// matches must not push the order out of the answer, nor 250 newer orders
// out of the unfiltered scan.
func TestFindOrderAmongLooseMatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		loose int // older orders the search also matches
		newer int // newer unrelated orders
	}{
		{"a few loose matches", 3, 0},
		{"more loose matches than a page of 5", 8, 260},
		{"many loose matches", 40, 260},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeshopify.New(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, nil)
			for i := range tc.loose {
				s.AddOrder(fakeshopify.Order{Tags: []string{fmt.Sprintf("bridge:ord_1%d", i), "acp-bridge"}})
			}
			want := s.AddOrder(fakeshopify.Order{Tags: []string{"bridge:ord_1", "acp-bridge"}})
			for range tc.newer {
				s.AddOrder(fakeshopify.Order{Tags: []string{"pos"}})
			}
			so, err := a.FindOrder(context.Background(), "ord_1")
			if err != nil || so.StoreID != fmt.Sprintf("gid://shopify/Order/%d", want.ID) {
				t.Fatalf("FindOrder = %+v, %v; want order %d", so, err, want.ID)
			}
		})
	}
}
