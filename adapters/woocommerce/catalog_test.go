package woocommerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/feed"
	"github.com/acp-bridge/bridge/internal/fakewoo"
	"github.com/acp-bridge/bridge/mapping"
	"gopkg.in/yaml.v3"
)

func TestReadCatalogRecords(t *testing.T) {
	shop := newShop(t)
	a := newAdapter(t, shop, nil)
	recs, probs, keys := readAll(t, a)

	// Drafts, grouped and external products are not for sale here; the
	// external one is reported.
	if got, want := strings.Join(keys, ","), "10,20,30,70,80"; got != want {
		t.Errorf("records %s, want %s", got, want)
	}
	if len(probs) != 1 || probs[0].Key != "50" || !strings.Contains(probs[0].Message, "external") {
		t.Errorf("problems: %+v", probs)
	}
	shirt := recs["10"]
	if len(shirt.Variants) != 2 {
		t.Fatalf("shirt variants: %+v (the private variation must be left out)", shirt.Variants)
	}
	blue, white := shirt.Variants[0], shirt.Variants[1]
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"parent stock resolved", blue["stock_quantity"], int64(7)},
		{"own stock", white["stock_quantity"], int64(2)},
		{"price exact", blue["price"], "49.90"},
		{"sale price is the price", white["price"], "39.90"},
		{"regular price is the list price", white["list_price"], "49.90"},
		{"no list price without a sale", blue["list_price"], nil},
		{"variation image", blue["image"], "https://cdn.example/linen-blue.jpg"},
		{"variation option", blue["options"].(map[string]any)["color"], "Blue"},
		{"availability", blue["availability"], "in_stock"},
		{"category", shirt.Product["category"], "Shirts"},
		{"brand attribute", shirt.Product["attributes"].(map[string]any)["brand"], "Acme"},
		{"image list", len(shirt.Product["images"].([]any)), 2},
		{"digital", recs["20"].Variants[0]["digital"], true},
		{"untracked has no quantity", recs["20"].Variants[0]["stock_quantity"], nil},
		{"backorder", recs["30"].Variants[0]["availability"], "backorder"},
		{"simple product is its own variant", recs["70"].Variants[0]["id"], "70"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

// The default mapping turns the records into valid products: exact prices,
// the sale price with its list price, stock from the parent.
func TestDefaultMapping(t *testing.T) {
	shop := newShop(t)
	a := newAdapter(t, shop, nil)
	recs, _, _ := readAll(t, a)
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(DefaultMapping), &node); err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Compile(mapping.MerchantFields{Name: "Shop", URL: "https://shop.example", Currency: "USD", Country: "US"},
		mapping.Source{File: "default", Node: &node, Builtin: true})
	if err != nil {
		t.Fatal(err)
	}
	// Every product of the fixture makes a valid feed product: the
	// default mapping alone must not keep a shop out of the feeds.
	settings := feed.Settings{Merchant: bridge.Merchant{Name: "Shop", URL: "https://shop.example", Currency: "USD", Country: "US",
		ReturnPolicyURL: "https://shop.example/returns"}}
	for key, r := range recs {
		p, issues := m.Apply(r)
		for _, is := range append(issues, feed.Validate(&p, settings)...) {
			if is.Severity == bridge.SeverityError {
				t.Errorf("product %s: %+v", key, is)
			}
		}
	}
	p, issues := m.Apply(recs["10"])
	if len(issues) > 0 {
		t.Fatalf("issues: %+v", issues)
	}
	if p.ID != "10" || p.Title != "Linen Shirt" || p.Category != "Shirts" || p.Description.Plain != "Cool linen." || len(p.Media) != 2 {
		t.Errorf("product: %+v", p)
	}
	white := p.Variants[1]
	if white.ID != "12" || white.Price.Amount != 3990 || white.ListPrice == nil || white.ListPrice.Amount != 4990 ||
		white.Quantity == nil || *white.Quantity != 2 || white.Options[0] != (bridge.Option{Name: "Color", Value: "White"}) {
		t.Errorf("white variant: %+v", white)
	}
	if q := p.Variants[0].Quantity; q == nil || *q != 7 {
		t.Errorf("parent stock: %v", q)
	}
	gift, issues := m.Apply(recs["20"])
	if len(issues) > 0 {
		t.Fatalf("issues: %+v", issues)
	}
	if gift.Brand != "Giftly" {
		t.Errorf("brand from WooCommerce's brands: %q", gift.Brand)
	}
	if p.Brand != "Acme" {
		t.Errorf("brand from the Brand attribute: %q", p.Brand)
	}
	if tea, _ := m.Apply(recs["70"]); tea.Brand != "Shop" {
		t.Errorf("brand falls back to the shop's name: %q", tea.Brand)
	}
	if !gift.Variants[0].Digital || gift.Variants[0].Price.Amount != 2500 {
		t.Errorf("gift card: %+v", gift.Variants[0])
	}
	tea, issues := m.Apply(recs["70"])
	if len(issues) > 0 || tea.Variants[0].Weight != "0.25" || tea.Variants[0].WeightUnit != "kg" {
		t.Errorf("weight: %+v %+v", tea.Variants[0], issues)
	}
}

// A catalog over several pages is read with per_page=100 and as many pages
// as X-WP-TotalPages says; each variable product costs one variations call.
// Weights carry the shop's unit; a shop that will not tell its unit gets
// no weights rather than wrong ones.
func TestWeightUnit(t *testing.T) {
	tests := []struct {
		shopUnit   string
		wantWeight any
		wantUnit   any
	}{
		{"kg", "0.2", "kg"},
		{"lbs", "0.2", "lb"},
		{"", nil, nil},
	}
	for _, tt := range tests {
		t.Run("unit="+tt.shopUnit, func(t *testing.T) {
			shop := fakewoo.New(t)
			shop.AddCatalog(1, 2)
			shop.SetWeightUnit(tt.shopUnit)
			recs, _, _ := readAll(t, newAdapter(t, shop, nil))
			for _, r := range recs {
				v := r.Variants[0]
				if v["weight"] != tt.wantWeight || v["weight_unit"] != tt.wantUnit {
					t.Errorf("weight %#v %#v, want %#v %#v", v["weight"], v["weight_unit"], tt.wantWeight, tt.wantUnit)
				}
			}
		})
	}
}

// A shop selling in another currency than the bridge is not read: its
// prices would be taken for the wrong money.
func TestCurrencyMismatch(t *testing.T) {
	shop := newShop(t)
	shop.SetCurrency("JPY")
	a := newAdapter(t, shop, nil, func(o *Options) { o.Currency = "USD" })
	err := a.ReadCatalog(context.Background(), func(bridge.Record) error { return nil }, func(bridge.Problem) {})
	if err == nil || !strings.Contains(err.Error(), "the shop's prices are in JPY but merchant.currency is USD") {
		t.Fatalf("got %v", err)
	}
	shop.SetCurrency("USD")
	if recs, _, _ := readAll(t, a); len(recs) != 5 {
		t.Errorf("%d records", len(recs))
	}
}

func TestReadCatalogPages(t *testing.T) {
	shop := fakewoo.New(t)
	shop.AddCatalog(250, 3)
	a := newAdapter(t, shop, nil)
	recs, _, keys := readAll(t, a)
	if len(recs) != 250 || len(keys) != 250 {
		t.Fatalf("%d records", len(recs))
	}
	req := shop.Requests()
	if req["GET /products"] != 3 || req["GET /products/{id}/variations"] != 250 {
		t.Errorf("requests: %v", req)
	}
	for _, r := range recs {
		if len(r.Variants) != 3 {
			t.Fatalf("product %s has %d variants", r.Key, len(r.Variants))
		}
	}
}

func TestReadCatalogFailsWhole(t *testing.T) {
	shop := newShop(t)
	a := newAdapter(t, shop, nil)
	// Three 500s in a row outlast the retries (RetryMax 2).
	shop.FailNext(500, 500, 500)
	err := a.ReadCatalog(context.Background(), func(bridge.Record) error { return nil }, func(bridge.Problem) {})
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("want the outage, got %v", err)
	}
	// The next read works (and is full: there was no complete read).
	recs, _, _ := readAll(t, a)
	if len(recs) != 5 {
		t.Errorf("%d records", len(recs))
	}
}

// Between full reads only modified products (and those webhooks named) are
// asked for, and merged over the last read.
func TestIncrementalRead(t *testing.T) {
	shop := fakewoo.New(t)
	clock := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	shop.SetClock(now)
	loadShop(t, shop, "testdata/shop.json")
	// The newest change before the first read is re-read by the next one
	// (the overlap); make it a product the test does not count.
	clock = clock.Add(30 * time.Minute)
	shop.UpdateProduct(70, func(*fakewoo.Product) {})
	clock = clock.Add(30 * time.Minute)
	a := newAdapter(t, shop, nil, func(o *Options) { o.Now = now; o.FullSyncInterval = time.Hour })
	readAll(t, a)
	full := shop.Requests()

	clock = clock.Add(10 * time.Minute)
	shop.UpdateProduct(20, func(p *fakewoo.Product) { p.RegularPrice = "30.00" })
	shop.UpdateProduct(30, func(p *fakewoo.Product) { p.Status = "draft" })
	shop.UpdateProduct(80, func(p *fakewoo.Product) { p.Status = "trash" }) // no webhook
	// A variation's stock changed: WooCommerce does not move the parent's
	// modification date, but its webhook names it.
	shop.UpdateProduct(12, func(p *fakewoo.Product) { p.StockQuantity = i64(9) })
	a.MarkChanged(10, false)
	shop.DeleteProduct(70)
	a.MarkChanged(70, true) // its webhook
	clock = clock.Add(time.Minute)

	recs, _, keys := readAll(t, a)
	if got := strings.Join(keys, ","); got != "10,20" {
		t.Errorf("records after changes: %s", got)
	}
	if p := recs["20"].Variants[0]["price"]; p != "30.00" {
		t.Errorf("changed price: %v", p)
	}
	if q := recs["10"].Variants[1]["stock_quantity"]; q != int64(9) {
		t.Errorf("variation stock: %v", q)
	}
	after := shop.Requests()
	// Modified products, the trash, one include= list; one variations call.
	if n := after["GET /products"] - full["GET /products"]; n != 3 {
		t.Errorf("product list calls for the incremental read: %d", n)
	}
	if n := after["GET /products/{id}/variations"] - full["GET /products/{id}/variations"]; n != 1 {
		t.Errorf("variation calls: %d", n)
	}

	// Nothing changed: a read costs two calls.
	before := shop.TotalRequests()
	readAll(t, a)
	if n := shop.TotalRequests() - before; n != 2 {
		t.Errorf("an idle incremental read made %d calls", n)
	}

	// Past the interval, the read is full again.
	clock = clock.Add(2 * time.Hour)
	before = shop.Requests()["GET /products/{id}/variations"]
	readAll(t, a)
	if shop.Requests()["GET /products/{id}/variations"] == before {
		t.Error("no full read after the interval")
	}
}

// A failed incremental read keeps what webhooks reported for the next one.
func TestIncrementalKeepsMarksOnFailure(t *testing.T) {
	shop := newShop(t)
	a := newAdapter(t, shop, nil, func(o *Options) { o.FullSyncInterval = time.Hour })
	readAll(t, a)
	shop.UpdateProduct(12, func(p *fakewoo.Product) { p.StockQuantity = i64(1) })
	a.MarkChanged(10, false)
	shop.FailNext(503, 503, 503)
	if err := a.ReadCatalog(context.Background(), func(bridge.Record) error { return nil }, func(bridge.Problem) {}); err == nil {
		t.Fatal("want an error")
	}
	recs, _, _ := readAll(t, a)
	if q := recs["10"].Variants[1]["stock_quantity"]; q != int64(1) {
		t.Errorf("the mark was lost: stock %v", q)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"plain http", Options{URL: "http://shop.example", ConsumerKey: "ck", ConsumerSecret: "cs"}, "plain http"},
		{"no scheme", Options{URL: "shop.example", ConsumerKey: "ck", ConsumerSecret: "cs"}, "absolute https URL"},
		{"user info", Options{URL: "https://u:p@shop.example", ConsumerKey: "ck", ConsumerSecret: "cs"}, "user info"},
		{"no keys", Options{URL: "https://shop.example"}, "consumer key and secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{URL: "http://shop.example", ConsumerKey: "ck", ConsumerSecret: "cs", AllowHTTP: true}, nil); err != nil {
		t.Errorf("development mode: %v", err)
	}
}

// Wrong credentials are WooCommerce's 401 with its code, never the secret;
// query-string keys work where Basic auth is stripped.
func TestAuth(t *testing.T) {
	tests := []struct {
		name        string
		key, secret string
		query       bool
		want        string // "" for success
	}{
		{"basic", fakewoo.DefaultKey, fakewoo.DefaultSecret, false, ""},
		{"query string", fakewoo.DefaultKey, fakewoo.DefaultSecret, true, ""},
		{"wrong key", "ck_wrong", fakewoo.DefaultSecret, false, "Consumer key is invalid"},
		{"wrong secret", fakewoo.DefaultKey, "cs_wrong_secret_value", true, "Consumer secret is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShop(t)
			a := newAdapter(t, shop, nil, func(o *Options) { o.ConsumerKey, o.ConsumerSecret, o.QueryStringAuth = tt.key, tt.secret, tt.query })
			err := a.ReadCatalog(context.Background(), func(bridge.Record) error { return nil }, func(bridge.Problem) {})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != 401 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v", err)
			}
			if strings.Contains(err.Error(), tt.secret) || strings.Contains(err.Error(), fakewoo.DefaultSecret) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

// BenchmarkFullSync reads 10k variants (1000 variable products × 10
// variations): with the fake answering at once, and with 50 ms a call, a
// fast shop's latency.
func BenchmarkFullSync(b *testing.B) {
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("1000x10/latency=%s", latency), func(b *testing.B) {
			benchFullSync(b, 1000, 10, latency)
		})
	}
}

// The next incremental read starts from the shop's time when the last read
// began, not from the newest product it saw: a product saved during a long
// read, after its page was read, is older than a product saved later and
// read later, and must not be skipped.
func TestIncrementalCursorIsTheShopsClock(t *testing.T) {
	shop := fakewoo.New(t)
	clock := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	shop.SetClock(func() time.Time { return clock })
	loadShop(t, shop, "testdata/shop.json")
	// Y (70) is saved at 9:50, while the read below, which began at 9:10,
	// was still running (modelled by reading with the shop's clock at 9:10).
	clock = clock.Add(50 * time.Minute)
	shop.UpdateProduct(70, func(p *fakewoo.Product) { p.RegularPrice = "1600" })
	clock = clock.Add(-40 * time.Minute)
	a := newAdapter(t, shop, nil, func(o *Options) { o.FullSyncInterval = time.Hour })
	readAll(t, a)
	// X (20) was saved at 9:20, after its page had been read.
	clock = clock.Add(10 * time.Minute)
	shop.UpdateProduct(20, func(p *fakewoo.Product) { p.RegularPrice = "31.00" })
	recs, _, _ := readAll(t, a)
	if p := recs["20"].Variants[0]["price"]; p != "31.00" {
		t.Errorf("the change saved during the read was missed: price %v", p)
	}
}

// Pages are offsets: a product leaving the list between two pages shifts
// the rest, and without a second look the product at the page boundary
// would vanish from the catalog until the next full read. The same holds
// for orders polled by modification date, where an order changed during
// the poll moves to the end.
func TestListShiftsWhileRead(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *fakewoo.Server, ids []int64)
		want   int // products in the catalog after the read
	}{
		{"nothing changes", func(*fakewoo.Server, []int64) {}, 150},
		// Read before it left: the read is a picture taken over time.
		{"a product of page 1 deleted", func(s *fakewoo.Server, ids []int64) { s.DeleteProduct(ids[4]) }, 150},
		{"a product of page 1 unpublished", func(s *fakewoo.Server, ids []int64) {
			s.UpdateProduct(ids[4], func(p *fakewoo.Product) { p.Status = "draft" })
		}, 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := fakewoo.New(t)
			var ids []int64
			for i := range 150 {
				ids = append(ids, shop.AddProduct(fakewoo.Product{Name: fmt.Sprintf("Mug %d", i), RegularPrice: "9.00"}))
			}
			once := false
			shop.AfterServe(func(route string, q url.Values) {
				if route == "GET /products" && q.Get("page") == "1" && !once {
					once = true
					tt.change(shop, ids)
				}
			})
			recs, _, _ := readAll(t, newAdapter(t, shop, nil))
			if len(recs) != tt.want {
				t.Errorf("%d products read, want %d", len(recs), tt.want)
			}
			if _, ok := recs[idString(ids[100])]; !ok {
				t.Errorf("product %d (first of page 2 before the shift) is missing", ids[100])
			}
		})
	}
}

// A variation deleted while a long variation list is read shifts its pages
// too: the first variation of page 2 is read all the same.
func TestVariationListShiftsWhileRead(t *testing.T) {
	shop := fakewoo.New(t)
	var children []fakewoo.Product
	for i := range 150 {
		children = append(children, fakewoo.Product{SKU: fmt.Sprintf("V-%d", i), RegularPrice: "9.00",
			Attributes: []fakewoo.Attribute{{Name: "Size", Option: fmt.Sprint(i)}}})
	}
	pid := shop.AddProduct(fakewoo.Product{Name: "Mug", Type: "variable", Children: children,
		Attributes: []fakewoo.Attribute{{Name: "Size", Variation: true}}})
	p, _ := shop.Product(pid)
	vids := p.Variations
	once := false
	shop.AfterServe(func(route string, q url.Values) {
		if route == "GET /products/{id}/variations" && q.Get("page") == "1" && !once {
			once = true
			shop.DeleteProduct(vids[4])
		}
	})
	recs, _, _ := readAll(t, newAdapter(t, shop, nil))
	rec, ok := recs[idString(pid)]
	if !ok {
		t.Fatalf("product %d not read", pid)
	}
	raw, _ := json.Marshal(rec)
	if !strings.Contains(string(raw), idString(vids[100])) {
		t.Errorf("variation %d (first of page 2 before the shift) is missing from the product", vids[100])
	}
}

func TestOrderUpdatesListShifts(t *testing.T) {
	shop := newShop(t)
	a := newAdapter(t, shop, nil)
	var clockMu sync.Mutex // the shop reads its clock on its own goroutines
	clock := time.Now().Add(-10 * time.Minute)
	shop.SetClock(func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock })
	var ids []int64
	for i := range 150 {
		ids = append(ids, shop.AddOrder(fakewoo.Order{Status: "completed", Total: "1.00",
			MetaData: []fakewoo.Meta{{Key: metaKey, Value: fmt.Sprintf("ord_%d", i)}}}))
	}
	once := false
	shop.AfterServe(func(route string, q url.Values) {
		if route == "GET /orders" && q.Get("page") == "1" && !once {
			once = true
			// Changed during the poll: it moves to the end of the list.
			clockMu.Lock()
			clock = clock.Add(5 * time.Minute)
			clockMu.Unlock()
			shop.SetOrderStatus(ids[3], "completed")
		}
	})
	ups, err := a.OrderUpdates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, u := range ups {
		got[u.OrderID] = true
	}
	if len(got) != 150 {
		t.Errorf("%d orders reported, want 150", len(got))
	}
}
