package shopify

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/fakeshopify"
)

// shopWithCatalog fills a fake shop with the cases the mapping must get
// right: a product with more variants than one page holds, a sale price,
// a compare-at price that is no sale, untracked and oversellable
// variants, a video beside images, a draft product that must not show.
func shopWithCatalog(t testing.TB, cfg fakeshopify.Config) (*fakeshopify.Server, fakeshopify.Product, fakeshopify.Product) {
	t.Helper()
	s := fakeshopify.New(t, cfg)
	s.AddLocation(fakeshopify.Location{ID: 2, Name: "Shop floor"})
	big := fakeshopify.Product{Title: "Tee", Handle: "tee", Description: "<p>Soft <b>cotton</b></p>", Vendor: "Acme", ProductType: "Shirts",
		Tags:   []string{"summer"},
		Images: []fakeshopify.Image{{URL: "https://cdn.example/tee.jpg", Alt: "front"}, {URL: "https://cdn.example/tee-back.jpg"}}}
	for i := range 60 {
		big.Variants = append(big.Variants, &fakeshopify.Variant{Title: fmt.Sprintf("Red / %d", i), SKU: fmt.Sprintf("TEE-%02d", i),
			Price: "20.00", CompareAtPrice: "25.00", Tracked: true, Options: []fakeshopify.Option{{Name: "Color", Value: "Red"}, {Name: "Size", Value: fmt.Sprint(i)}},
			Available: map[int64]int64{1: 3, 2: 4}})
	}
	big = s.AddProduct(big)
	small := s.AddProduct(fakeshopify.Product{Title: "Mug", Handle: "mug", Description: "<p>Mug</p>", Vendor: "Acme",
		Variants: []*fakeshopify.Variant{
			{Title: "Default Title", SKU: "MUG", Price: "9.50", CompareAtPrice: "9.50", Tracked: false},
			{Title: "Big", SKU: "MUG-B", Price: "12.00", Tracked: true, Policy: "CONTINUE", Available: map[int64]int64{1: 0}},
			{Title: "Gone", SKU: "MUG-G", Price: "12.00", Tracked: true, Available: map[int64]int64{1: 0}},
		}})
	s.AddProduct(fakeshopify.Product{Title: "Secret", Status: "DRAFT", Variants: []*fakeshopify.Variant{{Title: "Default Title", Price: "1.00"}}})
	return s, big, small
}

func TestReadCatalog(t *testing.T) {
	for _, mode := range []string{BulkNever, BulkAlways} {
		t.Run(mode, func(t *testing.T) {
			s, big, small := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = mode })
			recs, probs := readAll(t, a)
			if len(probs) > 0 {
				t.Errorf("problems: %v", probs)
			}
			if len(recs) != 2 {
				t.Fatalf("read %d products, want 2 (the draft left out)", len(recs))
			}
			tee := recs[fmt.Sprint(big.ID)]
			if len(tee.Variants) != 60 {
				t.Fatalf("tee has %d variants, want 60 (nested paging)", len(tee.Variants))
			}
			wantProduct := map[string]any{"title": "Tee", "vendor": "Acme", "product_type": "Shirts", "handle": "tee",
				"url":   "https://fake-shop.myshopify.com/products/tee", // its onlineStoreUrl
				"image": "https://cdn.example/tee.jpg", "images": []any{"https://cdn.example/tee-back.jpg"},
				"description_html": "<p>Soft <b>cotton</b></p>", "tags": []any{"summer"}, "status": "active"}
			for k, want := range wantProduct {
				if got := tee.Product[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("product %s = %#v, want %#v", k, got, want)
				}
			}
			v0 := big.Variants[0]
			id := fmt.Sprint(v0.ID)
			for _, tc := range []struct {
				variant, field string
				want           any
			}{
				{id, "price", "20.00"},
				{id, "compare_at_price", "25.00"},
				{id, "currency", "USD"},
				{id, "quantity", int64(7)}, // both locations
				{id, "availability", "in_stock"},
				{id, "url", "https://fake-shop.myshopify.com/products/tee?variant=" + id},
				{id, "title", "Tee - Red / 0"},
				{id, "option_color", "Red"},
				{id, "option_size", "0"},
				{id, "sku", "TEE-00"},
				{fmt.Sprint(small.Variants[0].ID), "title", "Mug"},
				{fmt.Sprint(small.Variants[0].ID), "compare_at_price", nil}, // equal to the price: no sale
				{fmt.Sprint(small.Variants[0].ID), "quantity", nil},         // untracked
				{fmt.Sprint(small.Variants[0].ID), "availability", "in_stock"},
				{fmt.Sprint(small.Variants[1].ID), "availability", "backorder"}, // CONTINUE at 0
				{fmt.Sprint(small.Variants[1].ID), "quantity", nil},
				{fmt.Sprint(small.Variants[2].ID), "availability", "out_of_stock"},
				{fmt.Sprint(small.Variants[2].ID), "quantity", int64(0)},
			} {
				rec := tee
				if tc.variant != id {
					rec = recs[fmt.Sprint(small.ID)]
				}
				if got := variant(t, rec, tc.variant)[tc.field]; !reflect.DeepEqual(got, tc.want) {
					t.Errorf("variant %s %s = %#v, want %#v", tc.variant, tc.field, got, tc.want)
				}
			}
			calls := s.Calls()
			if mode == BulkAlways {
				if calls["bulkOperationRunQuery"] != 1 || calls["products"] != 0 || calls["download"] != 1 {
					t.Errorf("bulk read calls %v, want one run, no pages, one download", calls)
				}
				for _, h := range s.DownloadHeaders() {
					if h.Get("X-Shopify-Access-Token") != "" {
						t.Error("the access token was sent to the bulk result's storage URL")
					}
				}
			} else if calls["product"] == 0 {
				t.Errorf("paged read calls %v: the tee's variants needed nested pages", calls)
			}
		})
	}
}

func TestReadCatalogLocations(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
	for _, mode := range []string{BulkNever, BulkAlways} {
		a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = mode; o.Locations = []string{"2"} })
		recs, _ := readAll(t, a)
		id := fmt.Sprint(big.Variants[0].ID)
		if got := variant(t, recs[fmt.Sprint(big.ID)], id)["quantity"]; got != int64(4) {
			t.Errorf("%s: quantity at location 2 = %v, want 4", mode, got)
		}
	}
}

// TestIncrementalRead: after the first (full) read, a read asks only for
// products updated since and those webhooks marked, and still emits the
// whole catalog with the changes merged in.
func TestIncrementalRead(t *testing.T) {
	s, big, small := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, nil)
	readAll(t, a)
	if c := s.Calls(); c["bulkOperationRunQuery"] != 1 {
		t.Fatalf("first read calls %v, want a bulk run (auto mode)", c)
	}
	time.Sleep(1100 * time.Millisecond) // updatedAt has whole seconds
	s.UpdateProduct(small.ID, func(p *fakeshopify.Product) { p.Title = "Big mug" })
	s.SetAvailable(big.Variants[1].ID, 1, 0)
	s.SetAvailable(big.Variants[1].ID, 2, 0)
	a.MarkInventoryItems(fmt.Sprint(big.Variants[1].InventoryItem))
	gone := s.AddProduct(fakeshopify.Product{Title: "Soon gone", Variants: []*fakeshopify.Variant{{Title: "Default Title", Price: "3.00"}}})
	readAll(t, a) // picks the new product up by updated_at
	s.DeleteProduct(gone.ID)
	a.MarkProducts(fmt.Sprint(gone.ID))

	before := s.Calls()
	recs, _ := readAll(t, a)
	after := s.Calls()
	if after["bulkOperationRunQuery"] != before["bulkOperationRunQuery"] {
		t.Error("an incremental read started a bulk operation")
	}
	if n, m := after["products"]-before["products"], after["nodes"]-before["nodes"]; n != 1 || m != 1 {
		t.Errorf("incremental read made %d products and %d nodes queries, want 1 (updated since) and 1 (marked)", n, m)
	}
	if _, ok := recs[fmt.Sprint(gone.ID)]; ok {
		t.Error("a deleted product is still emitted")
	}
	if got := recs[fmt.Sprint(small.ID)].Product["title"]; got != "Big mug" {
		t.Errorf("updated title = %v", got)
	}
	if got := variant(t, recs[fmt.Sprint(big.ID)], fmt.Sprint(big.Variants[1].ID))["availability"]; got != "out_of_stock" {
		t.Errorf("stock change from an inventory webhook: availability %v, want out_of_stock", got)
	}
	if len(recs) != 2 {
		t.Errorf("%d products emitted, want 2", len(recs))
	}
}

func TestFullReadAgainAfterInterval(t *testing.T) {
	s, _, _ := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever; o.FullReadEvery = time.Millisecond })
	readAll(t, a)
	time.Sleep(5 * time.Millisecond)
	readAll(t, a)
	if n := s.Calls()["shop"]; n != 2 {
		t.Errorf("%d full reads (shop currency asked), want 2", n)
	}
}

// TestThrottledWaits: a THROTTLED answer (HTTP 200) is waited out and the
// query asked again; it does not reach the breaker.
func TestThrottledWaits(t *testing.T) {
	s, _, _ := shopWithCatalog(t, fakeshopify.Config{RestoreRate: 2000})
	a, logs := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever })
	s.DrainBucket()
	recs, _ := readAll(t, a)
	if len(recs) != 2 {
		t.Fatalf("read %d products after throttling", len(recs))
	}
	if !strings.Contains(logs.String(), "throttled") {
		t.Error("no throttle wait logged: the drained bucket was not hit")
	}
	if st := a.gql.up.BreakerState(); st != "closed" {
		t.Errorf("breaker %s after throttling", st)
	}
}

// TestRateLimitedAndServerErrors: 429 and 5xx go through the shared
// client's retries.
func TestRateLimitedAndServerErrors(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s, _, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever })
			s.Fail(2, status, "2.0")
			if recs, _ := readAll(t, a); len(recs) != 2 {
				t.Fatalf("read %d products", len(recs))
			}
		})
	}
}

// TestQueryTyposFail: the fake checks documents against the schema, so a
// misspelt field, argument, or input field is refused.
func TestQueryTyposFail(t *testing.T) {
	s := fakeshopify.New(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, nil)
	for _, tc := range []struct {
		name, query string
		vars        map[string]any
		want        string
	}{
		{"field", `{ shop { currencyKode } }`, nil, "currencyKode"},
		{"nested field", `{ products(first: 1) { nodes { variants(first: 1) { nodes { inventoryQty } } } } }`, nil, "inventoryQty"},
		{"argument", `{ products(frist: 1) { nodes { id } } }`, nil, "frist"},
		{"enum", `{ products(first: 1, sortKey: UPDATED) { nodes { id } } }`, nil, "UPDATED"},
		{"input field", `mutation($o: OrderCreateOrderInput!) { orderCreate(order: $o) { userErrors { message } } }`,
			map[string]any{"o": map[string]any{"lineItems": []any{map[string]any{"variantID": "gid://shopify/ProductVariant/1", "quantity": 1}}}}, "variantID"},
		{"cost", `{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }`, nil, "MAX_COST_EXCEEDED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.gql.query(context.Background(), tc.query, tc.vars, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestVersionWarning(t *testing.T) {
	s := fakeshopify.New(t, fakeshopify.Config{})
	a, logs := newAdapter(t, s, func(o *Options) { o.APIVersion = "2024-01" })
	for range 2 {
		if _, err := a.shopCurrency(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "served another API version"); n != 1 {
		t.Errorf("%d version warnings, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "served=2025-10") {
		t.Errorf("warning does not name the served version:\n%s", logs)
	}
	b, logs2 := newAdapter(t, s, nil)
	if _, err := b.shopCurrency(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs2.String(), "served another") {
		t.Error("warning for the version asked for")
	}
}

func TestAuth(t *testing.T) {
	s := fakeshopify.New(t, fakeshopify.Config{ClientID: "cid", ClientSecret: "csecret-123"})
	t.Run("bad static token", func(t *testing.T) {
		a, logs := newAdapter(t, s, func(o *Options) { o.AccessToken = "shpat_wrong" })
		_, err := a.shopCurrency(context.Background())
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("error %v, want a 401", err)
		}
		if strings.Contains(err.Error()+logs.String(), "shpat_wrong") {
			t.Error("the token appears in an error or a log")
		}
	})
	t.Run("client credentials", func(t *testing.T) {
		a, _ := newAdapter(t, s, func(o *Options) { o.AccessToken = ""; o.ClientID = "cid"; o.ClientSecret = "csecret-123" })
		for range 2 {
			if _, err := a.shopCurrency(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Calls()["oauth"]; n != 1 {
			t.Fatalf("%d grants for two calls, want 1", n)
		}
		s.ExpireTokens() // revoked before its time: a 401 brings a new one
		if _, err := a.shopCurrency(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := s.Calls()["oauth"]; n != 2 {
			t.Fatalf("%d grants after expiry, want 2", n)
		}
	})
	t.Run("bad client secret", func(t *testing.T) {
		a, logs := newAdapter(t, s, func(o *Options) { o.AccessToken = ""; o.ClientID = "cid"; o.ClientSecret = "wrong-secret" })
		_, err := a.shopCurrency(context.Background())
		if err == nil || !strings.Contains(err.Error(), "client_id") {
			t.Fatalf("error %v", err)
		}
		if strings.Contains(err.Error()+logs.String(), "wrong-secret") {
			t.Error("the client secret appears in an error or a log")
		}
	})
}

func TestStock(t *testing.T) {
	s, big, small := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, nil)
	for _, tc := range []struct {
		id      int64
		tracked bool
		onHand  int64
	}{
		{big.Variants[0].ID, true, 7},
		{small.Variants[0].ID, false, 0}, // untracked
		{small.Variants[1].ID, false, 0}, // may be oversold
		{small.Variants[2].ID, true, 0},
	} {
		l, err := a.Stock(context.Background(), fmt.Sprint(tc.id))
		if err != nil {
			t.Fatal(err)
		}
		if l.Tracked != tc.tracked || l.OnHand != tc.onHand || !l.HoldsSince.IsZero() {
			t.Errorf("variant %d: %+v, want tracked %v on hand %d", tc.id, l, tc.tracked, tc.onHand)
		}
	}
	if _, err := a.Stock(context.Background(), "999999"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown variant: %v", err)
	}
}

// TestPacing: a query whose last cost the bucket cannot cover now waits
// (cost − available) / restoreRate before it is sent, instead of being
// sent to be throttled.
func TestPacing(t *testing.T) {
	s := fakeshopify.New(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, nil)
	var waited []time.Duration
	a.sleep = func(_ context.Context, d time.Duration) error { waited = append(waited, d); return nil }
	q := `query Shop { shop { currencyCode } }`
	a.gql.mu.Lock()
	a.gql.lastCost[q] = 500
	a.gql.bucket = throttleStatus{MaximumAvailable: 1000, CurrentlyAvailable: 300, RestoreRate: 100}
	a.gql.bucketAt = time.Now()
	a.gql.mu.Unlock()
	if _, err := a.shopCurrency(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(waited) != 1 || waited[0] < 1900*time.Millisecond || waited[0] > 2*time.Second {
		t.Errorf("waited %v, want one wait of ~2s ((500 − 300) / 100)", waited)
	}
}

// TestGrantedTokenRenewedBeforeExpiry: a granted token is replaced before
// it is used near its expiry (10 minutes before, or halfway through a
// shorter lifetime), not after a 401, and not on every call when its
// lifetime is short.
func TestGrantedTokenRenewedBeforeExpiry(t *testing.T) {
	for _, tc := range []struct {
		ttl    time.Duration
		pause  time.Duration // between the first three calls and a fourth
		grants int
	}{
		{24 * time.Hour, 0, 1},
		{10 * time.Minute, 0, 1},
		{5 * time.Minute, 0, 1},
		{2 * time.Second, 0, 1},
		{2 * time.Second, 1100 * time.Millisecond, 2}, // past half its life
	} {
		t.Run(fmt.Sprint(tc.ttl, "+", tc.pause), func(t *testing.T) {
			s := fakeshopify.New(t, fakeshopify.Config{ClientID: "cid", ClientSecret: "csecret-123", TokenTTL: tc.ttl})
			a, _ := newAdapter(t, s, func(o *Options) { o.AccessToken = ""; o.ClientID = "cid"; o.ClientSecret = "csecret-123" })
			for i := range 4 {
				if i == 3 {
					time.Sleep(tc.pause)
				}
				if _, err := a.shopCurrency(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if n := s.Calls()["oauth"]; n != tc.grants {
				t.Errorf("%d grants for four calls, want %d", n, tc.grants)
			}
			if req, _ := s.Requests(); req != 4 {
				t.Errorf("%d GraphQL requests, want 4 (no 401 round trip)", req)
			}
		})
	}
}

// TestPagedReadIsPaced: a paged read whose pages each ask for nearly the
// whole bucket waits for it to refill before each page instead of being
// throttled page after page.
func TestPagedReadIsPaced(t *testing.T) {
	s := fakeshopify.New(t, fakeshopify.Config{BucketSize: 1000, RestoreRate: 20000})
	s.Generate(300, 10)
	a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever })
	recs, _ := readAll(t, a)
	if len(recs) != 300 {
		t.Fatalf("read %d products", len(recs))
	}
	if n := s.Throttled(); n > 1 {
		t.Errorf("%d throttled answers in a paced read, want at most 1 (before the first cost is known)", n)
	}
}

func TestStorefrontURL(t *testing.T) {
	s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
	a, _ := newAdapter(t, s, func(o *Options) { o.StorefrontURL = "https://shop.example/" })
	recs, _ := readAll(t, a)
	id := fmt.Sprint(big.Variants[0].ID)
	if got := variant(t, recs[fmt.Sprint(big.ID)], id)["url"]; got != "https://shop.example/products/tee?variant="+id {
		t.Errorf("variant url %v", got)
	}
}

// TestStockLocations: with locations configured, live stock is the sum
// available there but never more than Shopify's total over every
// location, which is what orderCreate draws on (it routes the order where
// it likes) and what counts every written order once the bridge's hold
// has ended (CountsWrittenOrders).
func TestStockLocations(t *testing.T) {
	for _, tc := range []struct {
		name      string
		elsewhere int64 // available at location 1, not configured
		onHand    int64
	}{
		{"configured location holds less", 3, 4},
		{"another location oversold", -3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{})
			a, _ := newAdapter(t, s, func(o *Options) { o.Locations = []string{"2"} })
			v := big.Variants[0]
			s.SetAvailable(v.ID, 1, tc.elsewhere)
			l, err := a.Stock(context.Background(), fmt.Sprint(v.ID))
			if err != nil {
				t.Fatal(err)
			}
			if !l.Tracked || l.OnHand != tc.onHand {
				t.Fatalf("stock %+v, want %d on hand", l, tc.onHand)
			}
			if !a.CountsWrittenOrders() {
				t.Error("CountsWrittenOrders false: holds would be counted again once Shopify takes the units")
			}
			// What the figure allows, Shopify takes.
			o := paidOrder("ord_l", v.ID)
			o.Lines[0].Quantity = l.OnHand
			if _, err := a.WriteOrder(context.Background(), o); err != nil {
				t.Errorf("an order of the %d units the live figure allows: %v", l.OnHand, err)
			}
		})
	}
}

// TestMarkedProductsReadDirectly: a marked product is read by its id
// (nodes), not through the search index, which lags behind updates: a
// product the index does not list yet is not a deleted one. A null node
// is.
func TestMarkedProductsReadDirectly(t *testing.T) {
	s, big, small := shopWithCatalog(t, fakeshopify.Config{ProductSearchLag: time.Hour})
	// The products exist from before the lag: the first read sees them.
	s.SetUpdatedAt(big.ID, time.Now().Add(-2*time.Hour))
	s.SetUpdatedAt(small.ID, time.Now().Add(-2*time.Hour))
	a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever })
	if recs, _ := readAll(t, a); len(recs) != 2 {
		t.Fatalf("first read: %d products, want 2", len(recs))
	}
	s.UpdateProduct(big.ID, func(p *fakeshopify.Product) { p.Title = "Big tee" }) // not in the index for an hour
	s.DeleteProduct(small.ID)
	a.MarkProducts(fmt.Sprint(big.ID), fmt.Sprint(small.ID))
	recs, _ := readAll(t, a)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"updated product's title", recs[fmt.Sprint(big.ID)].Product["title"], "Big tee"},
		{"deleted product kept", recs[fmt.Sprint(small.ID)].Key != "", false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestIncrementalReadsSkewedClock: Shopify's clock runs behind the
// bridge's; incremental reads (products, order news) start from the latest
// updatedAt Shopify reported, so a change stamped by Shopify's clock
// before the bridge's "now" is still read.
func TestIncrementalReadsSkewedClock(t *testing.T) {
	for _, skew := range []time.Duration{0, -10 * time.Minute} {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, fakeshopify.Config{ClockSkew: skew})
			a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever })
			readAll(t, a)
			if _, err := a.WriteOrder(context.Background(), paidOrder("ord_k", big.Variants[0].ID)); err != nil {
				t.Fatal(err)
			}
			if _, err := a.OrderUpdates(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1100 * time.Millisecond) // updatedAt has whole seconds
			s.UpdateProduct(big.ID, func(p *fakeshopify.Product) { p.Title = "Skewed tee" })
			s.Fulfill(s.Orders()[0].ID, "UPS", "1Z1", "")
			recs, _ := readAll(t, a)
			if got := recs[fmt.Sprint(big.ID)].Product["title"]; got != "Skewed tee" {
				t.Errorf("title after an update = %v, want Skewed tee", got)
			}
			ups, err := a.OrderUpdates(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(ups) == 0 || ups[0].Status != "shipped" {
				t.Errorf("order news after a fulfillment: %+v, want the shipment", ups)
			}
		})
	}
}

// TestBulkFallbacks: a bulk result that is not whole (fewer lines than the
// operation's objectCount), a line over the size limit, or a run past the
// bulk timeout (canceled, so the next run is not refused) make the full
// read page through the catalog instead of failing or coming up short.
func TestBulkFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     fakeshopify.Config
		setup   func(s *fakeshopify.Server, a *Adapter)
		cancels int // bulkOperationCancel calls after two full reads
	}{
		{"download cut short", fakeshopify.Config{}, func(s *fakeshopify.Server, _ *Adapter) { s.CutDownloads(2) }, 0},
		{"line over the limit", fakeshopify.Config{}, func(_ *fakeshopify.Server, a *Adapter) { a.maxBulkLine = 300 }, 0},
		{"run past the timeout", fakeshopify.Config{BulkDelay: time.Hour}, func(*fakeshopify.Server, *Adapter) {}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, big, _ := shopWithCatalog(t, tc.cfg)
			a, _ := newAdapter(t, s, func(o *Options) {
				o.Bulk, o.BulkTimeout, o.FullReadEvery = BulkAlways, 30*time.Millisecond, time.Nanosecond
			})
			tc.setup(s, a)
			for range 2 {
				before := s.Calls()
				recs, _ := readAll(t, a)
				after := s.Calls()
				if len(recs) != 2 || len(recs[fmt.Sprint(big.ID)].Variants) != 60 {
					t.Fatalf("read %d products (tee: %d variants), want the whole catalog", len(recs), len(recs[fmt.Sprint(big.ID)].Variants))
				}
				if after["bulkOperationRunQuery"] == before["bulkOperationRunQuery"] || after["products"] == before["products"] {
					t.Errorf("calls %v → %v: want a bulk run, then pages", before, after)
				}
			}
			if n := s.Calls()["bulkOperationCancel"]; n != tc.cancels {
				t.Errorf("%d bulk runs canceled, want %d", n, tc.cancels)
			}
		})
	}
}

// TestIncrementalReadEmptyShop: a shop read empty has no latest change to
// start from; the next read asks for everything and finds a new product.
func TestIncrementalReadEmptyShop(t *testing.T) {
	for _, skew := range []time.Duration{0, -10 * time.Minute} {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			s := fakeshopify.New(t, fakeshopify.Config{ClockSkew: skew})
			a, _ := newAdapter(t, s, func(o *Options) { o.Bulk = BulkNever })
			if recs, _ := readAll(t, a); len(recs) != 0 {
				t.Fatalf("%d products in an empty shop", len(recs))
			}
			p := s.AddProduct(fakeshopify.Product{Title: "New", Variants: []*fakeshopify.Variant{{Title: "Default Title", Price: "3.00"}}})
			if recs, _ := readAll(t, a); len(recs) != 1 || recs[fmt.Sprint(p.ID)].Key == "" {
				t.Errorf("read %d products after one was added, want it", len(recs))
			}
		})
	}
}
