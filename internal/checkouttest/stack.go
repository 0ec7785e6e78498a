// Package checkouttest starts the whole checkout for tests, benchmarks and
// the load tool: real SQLite storage with a catalog snapshot, the CSV
// adapter's live stock, pricing rules, the sandbox payment provider, the
// engine and the REST and MCP front doors on an httptest server. Nothing
// is faked but the clock and, on request, a failing stock check.
package checkouttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	csvstore "github.com/acp-bridge/bridge/adapters/csv"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/httpapi"
	"github.com/acp-bridge/bridge/internal/pgtest"
	"github.com/acp-bridge/bridge/mcpapi"
	"github.com/acp-bridge/bridge/orders"
	"github.com/acp-bridge/bridge/payments/sandbox"
	"github.com/acp-bridge/bridge/storage/postgres"
	"github.com/acp-bridge/bridge/storage/sqlite"
)

// Keys the stack accepts.
const (
	AgentKey     = "key_agent_one"
	AgentName    = "agent-one"
	OtherKey     = "key_agent_two"
	OtherName    = "agent-two"
	SignedKey    = "key_signed"
	SignedName   = "signed-agent"
	SigningToken = "whsec_signing_secret"
	// StripeSecret signs the Stripe webhooks the stack accepts.
	StripeSecret = "whsec_test_stripe_endpoint"
)

// Options tune a stack.
type Options struct {
	// SigningRequired refuses unsigned requests.
	SigningRequired bool
	// RatePerSecond and RateBurst limit each key (0 = off).
	RatePerSecond float64
	RateBurst     int
	// Dir holds the database ("" = a test temp dir).
	Dir string
	// Log receives the stack's logs (discarded when nil).
	Log *slog.Logger
	// Payments replaces the sandbox provider.
	Payments bridge.PaymentProvider
	// Notifier receives the agent's order webhooks (none when nil).
	Notifier orders.Notifier
	// NoMCP leaves out the MCP door at /mcp (acp.mcp.enabled: false).
	NoMCP bool
	// PostgresDSN, when set, stores in PostgreSQL instead of SQLite: in a
	// fresh schema of the database it names, created at the start and
	// dropped at cleanup. Stack.DB is then nil; use Stack.Store.
	PostgresDSN string
}

// Stack is a running checkout.
type Stack struct {
	URL    string
	Server *httptest.Server
	// Store is the stack's storage, SQLite or PostgreSQL.
	Store bridge.Storage
	// DB is the SQLite store (nil with Options.PostgresDSN).
	DB     *sqlite.DB
	Engine *checkout.Engine
	// Orders takes paid orders to the CSV adapter's orders file
	// (OrdersPath); its worker runs only when a test starts it.
	Orders     *orders.Service
	OrdersPath string
	Handler    http.Handler
	Keys       *httpapi.Keys
	// Clock is the engine's time; tests move it with Advance.
	clock atomic.Int64
	// StockDown makes live stock checks fail (the engine falls back to
	// the snapshot).
	StockDown atomic.Bool
	stock     bridge.StockReader
}

// Now is the stack's clock.
func (s *Stack) Now() time.Time { return time.Unix(0, s.clock.Load()).UTC() }

// Advance moves the stack's clock.
func (s *Stack) Advance(d time.Duration) { s.clock.Add(int64(d)) }

// Stock implements bridge.StockReader over the CSV adapter, failing on demand.
func (s *Stack) Stock(ctx context.Context, variantID string) (bridge.StockLevel, error) {
	if s.StockDown.Load() {
		return bridge.StockLevel{}, errors.New("store unreachable (test)")
	}
	return s.stock.Stock(ctx, variantID)
}

// TB is what New needs of testing.T and testing.B (and of the load tool's
// stand-in).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// New starts a stack with the Catalog fixture.
func New(t TB, opts Options) *Stack {
	t.Helper()
	ctx := context.Background()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	var (
		db    storage
		sqlDB *sqlite.DB
		err   error
	)
	if opts.PostgresDSN != "" {
		dsn := pgtest.Schema(t, opts.PostgresDSN, "bridge_checkouttest_")
		pg, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { _ = pg.Close() }) // before the schema's drop
		db = pg
	} else {
		if sqlDB, err = sqlite.Open(ctx, filepath.Join(dir, "bridge.db")); err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { _ = sqlDB.Close() })
		db = sqlDB
	}
	w, err := db.BeginCatalog(ctx)
	if err != nil {
		t.Fatalf("begin catalog: %v", err)
	}
	entries := Catalog()
	for _, e := range entries {
		if err := w.Put(ctx, e); err != nil {
			t.Fatalf("put %s: %v", e.Product.ID, err)
		}
	}
	if err := w.Commit(ctx, bridge.CatalogInfo{Version: "test-1", SyncedAt: time.Now().UTC(), Products: len(entries)}); err != nil {
		t.Fatalf("commit catalog: %v", err)
	}
	ordersPath := filepath.Join(dir, "orders.jsonl")
	ad, err := csvstore.New(csvstore.Options{Path: filepath.Join(dir, "unused.csv"), OrdersPath: ordersPath}, db, db)
	if err != nil {
		t.Fatalf("csv adapter: %v", err)
	}
	pricing, err := checkout.NewPricing(Pricing())
	if err != nil {
		t.Fatalf("pricing: %v", err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{Store: db, DB: sqlDB, stock: ad, OrdersPath: ordersPath}
	payments := opts.Payments
	if payments == nil {
		payments = sandbox.New("Demo Outfitters")
	}
	s.clock.Store(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	db.SetClock(s.Now) // expiry and claim leases are judged by one clock
	s.Engine = &checkout.Engine{
		Catalog: db, Stock: s, Holds: db, Store: db, Payments: payments, Pricing: pricing,
		Merchant: checkout.Merchant{
			Links: []bridge.Link{
				{Type: "terms_of_use", URL: "https://shop.example/terms"},
				{Type: "privacy_policy", URL: "https://shop.example/privacy"},
				{Type: "return_policy", URL: "https://shop.example/returns"},
			},
			PermalinkURL: func(id, token string) string { return s.URL + "/orders/" + id + "?t=" + token }},
		SessionTTL: 30 * time.Minute, IdempotencyTTL: 24 * time.Hour, StockTimeout: 200 * time.Millisecond, ClaimLease: time.Minute,
		Log: log, Now: s.Now,
	}
	s.Orders = &orders.Service{Store: db, Shop: ad, Notifier: opts.Notifier, SyncBudget: 2 * time.Second, Log: log, Now: s.Now}
	if pa, ok := payments.(orders.Payments); ok {
		s.Orders.Payments = pa
	}
	s.Engine.Orders = s.Orders
	s.Keys = httpapi.NewKeys([]httpapi.APIKey{
		{Name: AgentName, Key: AgentKey},
		{Name: OtherName, Key: OtherKey},
		{Name: SignedName, Key: SignedKey, SigningSecret: SigningToken},
	})
	co := &httpapi.Checkout{
		Engine: s.Engine, Codec: Codec(), Keys: s.Keys,
		Verifier:        httpapi.HMACVerifier{MaxSkew: 5 * time.Minute, Now: s.Now},
		SigningRequired: opts.SigningRequired, RatePerSecond: opts.RatePerSecond, RateBurst: opts.RateBurst,
		PublicURL: "https://bridge.example", Log: log,
	}
	var mcpDoor http.Handler
	if !opts.NoMCP {
		if mcpDoor, err = mcpapi.New(mcpapi.Config{Checkout: co, Version: "test", Log: log}); err != nil {
			t.Fatalf("mcp door: %v", err)
		}
	}
	s.Handler = httpapi.New(httpapi.Config{Logger: log, MaxBodyBytes: 1 << 20, Orders: db, MerchantName: "Demo Outfitters",
		StripeWebhooks: &httpapi.StripeWebhooks{Secret: StripeSecret, Events: db, Settle: s.Engine.Settle, Orders: s.Orders, Log: log},
		Checkout:       co, MCP: mcpDoor})
	s.Server = httptest.NewServer(s.Handler)
	t.Cleanup(s.Server.Close)
	s.URL = s.Server.URL
	return s
}

// storage is what both stores offer the stack.
type storage interface {
	bridge.Storage
	SetClock(now func() time.Time)
}

// Codec is the codec the stack serves with.
func Codec() *acp.Codec {
	return &acp.Codec{Handler: acp.TokenizedCard("card", "stripe", "acct_demo", "visa", "mastercard", "amex"), Currencies: []string{"USD"}}
}

// Pricing is the stack's shipping and tax: US standard (5.00, free from
// 75.00, 3–5 days) and express (15.00 + 2.00/kg, 1–2 days); Canada 20.00;
// 7.25% tax in California, none elsewhere.
func Pricing() checkout.PricingConfig {
	free := int64(7500)
	return checkout.PricingConfig{
		Currency: "USD", Country: "US", ShippingTaxable: true,
		Zones: []checkout.Zone{
			{Name: "US", Countries: []string{"US"}, Options: []checkout.ShippingOption{
				{ID: "standard", Title: "Standard", Carrier: "USPS", Flat: 500, FreeOver: &free, MinDays: 3, MaxDays: 5},
				{ID: "express", Title: "Express", Carrier: "UPS", Flat: 1500, PerKg: 200, MinDays: 1, MaxDays: 2},
			}},
			{Name: "Canada", Countries: []string{"CA"}, Options: []checkout.ShippingOption{
				{ID: "canada", Title: "Canada Post", Flat: 2000, MinDays: 5, MaxDays: 10},
			}},
		},
		TaxRates: []checkout.TaxRate{{Country: "US", Region: "CA", PPM: 72500}},
	}
}

// Catalog is the fixture: shirts with stock, a last mug, an e-book, an
// out-of-stock lamp, a poster not sold in chat, and a backordered chair.
func Catalog() []bridge.CatalogEntry {
	q := func(n int64) *int64 { return &n }
	v := func(id, title string, price int64, qty *int64, av bridge.Availability) bridge.Variant {
		return bridge.Variant{ID: id, Title: title, Price: bridge.Money{Amount: price, Currency: "USD"}, Quantity: qty, Availability: av,
			URL: "https://shop.example/p/" + id, Weight: "0.3", WeightUnit: "kg", EligibleSearch: true, EligibleCheckout: true,
			Media: []bridge.Media{{Type: "image", URL: "https://cdn.shop.example/" + id + ".jpg"}}}
	}
	ebook := v("ebook", "Field Guide (e-book)", 999, nil, bridge.InStock)
	ebook.Digital, ebook.Weight, ebook.WeightUnit = true, "", ""
	poster := v("poster", "Poster", 1500, q(10), bridge.InStock)
	poster.EligibleCheckout = false
	return []bridge.CatalogEntry{
		{Product: bridge.Product{ID: "shirt", Title: "Tee", URL: "https://shop.example/p/shirt", Variants: []bridge.Variant{
			v("shirt-m", "Tee / M", 2500, q(5), bridge.InStock), v("shirt-l", "Tee / L", 2500, q(3), bridge.InStock)}}},
		{Product: bridge.Product{ID: "mug", Title: "Mug", Variants: []bridge.Variant{v("mug", "Mug", 1200, q(1), bridge.LimitedStock)}}},
		{Product: bridge.Product{ID: "ebook", Title: "Field Guide", Variants: []bridge.Variant{ebook}}},
		{Product: bridge.Product{ID: "lamp", Title: "Lamp", Variants: []bridge.Variant{v("lamp", "Lamp", 4900, q(0), bridge.OutOfStock)}}},
		{Product: bridge.Product{ID: "poster", Title: "Poster", Variants: []bridge.Variant{poster}}},
		{Product: bridge.Product{ID: "chair", Title: "Chair", Variants: []bridge.Variant{v("chair", "Chair", 12000, q(0), bridge.Backorder)}}},
		{Product: bridge.Product{ID: "many", Title: "Sticker", Variants: []bridge.Variant{v("sticker", "Sticker", 100, q(1000000), bridge.InStock)}}},
	}
}

// Response is one HTTP exchange's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r Response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Request is one call to the stack.
type Request struct {
	Method, Path string
	Version      acp.Version
	Key          string // API key; AgentKey when ""
	Body         string
	// Idem is the Idempotency-Key ("" = none).
	Idem   string
	Header http.Header
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// Do sends r.
func (s *Stack) Do(t interface {
	Helper()
	Fatalf(string, ...any)
}, r Request) Response {
	t.Helper()
	resp, err := s.Send(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	return resp
}

// Send is Do without a test.
func (s *Stack) Send(r Request) (Response, error) {
	var body io.Reader
	if r.Body != "" {
		body = bytes.NewBufferString(r.Body)
	}
	req, err := http.NewRequest(r.Method, s.URL+r.Path, body)
	if err != nil {
		return Response{}, err
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if r.Version != "" {
		req.Header.Set("API-Version", string(r.Version))
	}
	key := r.Key
	if key == "" {
		key = AgentKey
	}
	if key != "-" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if r.Body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Idem != "" {
		req.Header.Set("Idempotency-Key", r.Idem)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

var idemSeq atomic.Int64

// NewIdem returns a fresh idempotency key.
func NewIdem() string {
	return fmt.Sprintf("idem-%d-%d", time.Now().UnixNano(), idemSeq.Add(1))
}
