package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/agenthook"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/config"
	"github.com/acp-bridge/bridge/httpapi"
	"github.com/acp-bridge/bridge/mcpapi"
	"github.com/acp-bridge/bridge/orders"
	"github.com/acp-bridge/bridge/payments/sandbox"
	"github.com/acp-bridge/bridge/payments/stripe"
	"github.com/acp-bridge/bridge/storage/postgres"
	"github.com/acp-bridge/bridge/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// checkoutParts is the checkout assembled from the config.
type checkoutParts struct {
	// payments is the provider's capture/release/refund side.
	payments    orders.Payments
	api         *httpapi.Checkout
	mcp         http.Handler // nil unless acp.mcp.enabled
	keys        *httpapi.Keys
	engine      *checkout.Engine
	stripeHooks *httpapi.StripeWebhooks // nil unless payments.provider is stripe
}

// newCheckout builds the engine, the REST door's settings and, when
// enabled, the MCP door over the same checkout.
func (a *app) newCheckout() (*checkoutParts, error) {
	cfg := a.cfg
	pricing, err := newPricing(cfg)
	if err != nil {
		return nil, fmt.Errorf("fulfillment and tax rules: %w", err)
	}
	var payments bridge.PaymentProvider
	var stripeProvider *stripe.Provider
	switch cfg.Payments.Provider {
	case "sandbox":
		payments = sandbox.New(cfg.Merchant.Name)
	case "stripe":
		st := cfg.Payments.Stripe
		var threeDS *stripe.ThreeDS
		if td := st.ThreeDS; td.Enabled() {
			threeDS = &stripe.ThreeDS{AcquirerBIN: td.AcquirerBIN, AcquirerCountry: td.AcquirerCountry,
				AcquirerMerchantID: td.AcquirerMerchantID, MerchantName: td.MerchantName}
		}
		p, err := stripe.New(stripe.Config{SecretKey: st.SecretKey.Value(), APIBase: st.APIBase, StripeVersion: st.StripeVersion, SPTParam: st.SPTParam,
			ThreeDS: threeDS})
		if err != nil {
			return nil, fmt.Errorf("payments.stripe: %w", err)
		}
		payments, stripeProvider = p, p
	default:
		return nil, fmt.Errorf("payments.provider %q is not available", cfg.Payments.Provider)
	}
	stock, _ := a.source.(bridge.StockReader)
	var holds bridge.HoldCounter
	if stock != nil {
		holds = a.storage
	}
	store, ok := a.storage.(bridge.CheckoutStore)
	if !ok {
		return nil, errors.New("the storage driver cannot keep checkout sessions")
	}
	public := strings.TrimRight(cfg.Server.PublicURL, "/")
	m := cfg.Merchant
	var links []bridge.Link
	for _, l := range []bridge.Link{{Type: "terms_of_use", URL: m.TermsURL}, {Type: "privacy_policy", URL: m.PrivacyPolicyURL}, {Type: "return_policy", URL: m.ReturnPolicyURL}} {
		if l.URL != "" {
			links = append(links, l)
		}
	}
	engine := &checkout.Engine{
		Catalog: a.storage, Stock: stock, Holds: holds, Store: store, Payments: payments, Pricing: pricing,
		Merchant: checkout.Merchant{Links: links,
			PermalinkURL: func(id, token string) string { return public + "/orders/" + id + "?t=" + token }},
		SessionTTL: cfg.ACP.SessionTTL, IdempotencyTTL: cfg.ACP.IdempotencyTTL, StockTimeout: cfg.ACP.StockTimeout,
		ClaimLease: cfg.ACP.ClaimLease, Log: a.log, PricesIncludeTax: cfg.Tax.PricesIncludeTax,
	}
	if cfg.Tax.Provider == "stripe" && stripeProvider != nil {
		engine.Tax = stripeTax{stripeProvider}
	}
	keys := httpapi.NewKeys(apiKeys(cfg))
	h := cfg.Payments.Handler
	rate := 0.0
	if cfg.ACP.RateLimit.PerSecond != nil {
		rate = *cfg.ACP.RateLimit.PerSecond
	}
	api := &httpapi.Checkout{
		Engine: engine,
		Codec: &acp.Codec{Handler: acp.TokenizedCard(h.ID, "stripe", h.MerchantID, h.AcceptedBrands...),
			Currencies: []string{m.Currency}},
		Keys:            keys,
		Verifier:        httpapi.HMACVerifier{MaxSkew: cfg.ACP.Signing.MaxSkew},
		SigningRequired: cfg.ACP.Signing.Required,
		RatePerSecond:   rate,
		RateBurst:       cfg.ACP.RateLimit.Burst,
		PublicURL:       public,
		Log:             a.log,
	}
	if err := api.Codec.Validate(); err != nil {
		return nil, fmt.Errorf("payments.handler: %w", err)
	}
	parts := &checkoutParts{api: api, keys: keys, engine: engine}
	if *cfg.ACP.MCP.Enabled {
		if parts.mcp, err = mcpapi.New(mcpapi.Config{Checkout: api, Version: version, Log: a.log}); err != nil {
			return nil, fmt.Errorf("acp.mcp: %w", err)
		}
	}
	if pa, ok := payments.(orders.Payments); ok {
		parts.payments = pa
	}
	if stripeProvider != nil {
		engine.AuthorizeOnly = cfg.Payments.Stripe.Capture == "after_store"
		parts.stripeHooks = &httpapi.StripeWebhooks{Secret: cfg.Payments.Stripe.WebhookSecret.Value(),
			Tolerance: cfg.Payments.Stripe.WebhookTolerance, Events: a.storage, Settle: engine.Settle, Log: a.log}
	}
	return parts, nil
}

func apiKeys(cfg *config.Config) []httpapi.APIKey {
	out := make([]httpapi.APIKey, 0, len(cfg.ACP.APIKeys))
	for _, k := range cfg.ACP.APIKeys {
		out = append(out, httpapi.APIKey{Name: k.Name, Key: k.Key.Value(), SigningSecret: k.SigningSecret.Value()})
	}
	return out
}

// reloadKeys re-reads the config file for its API keys, so a key is rotated
// with SIGHUP instead of a restart. Anything else in the file that changed
// needs a restart; a file with problems changes nothing.
func reloadKeys(path string, keys *httpapi.Keys, log *slog.Logger) {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("SIGHUP: config has problems; API keys unchanged", "err", err)
		return
	}
	keys.Set(apiKeys(cfg))
	log.Info("SIGHUP: API keys reloaded", "keys", keys.Len())
}

// purgeLoop deletes expired idempotency records and long-finished sessions
// every hour; orders are never purged.
func purgeLoop(ctx context.Context, store bridge.CheckoutStore, keep time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := store.PurgeExpired(ctx, time.Now(), keep)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("purging expired checkout data", "err", err)
		case n > 0:
			log.Info("purged expired checkout data", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stripeTax is Stripe Tax as the engine's tax source.
type stripeTax struct{ p *stripe.Provider }

func (t stripeTax) Tax(ctx context.Context, q checkout.TaxQuery) (checkout.TaxAnswer, error) {
	sq := stripe.TaxQuery{Currency: q.Currency, Country: q.ShipTo.Country, Region: q.ShipTo.Region, PostalCode: q.ShipTo.PostalCode,
		City: q.ShipTo.City, Line1: q.ShipTo.Line1, Shipping: q.Shipping, PricesIncludeTax: q.PricesIncludeTax}
	for _, l := range q.Lines {
		sq.Lines = append(sq.Lines, stripe.TaxLine{Ref: l.Ref, Amount: l.Amount})
	}
	a, err := t.p.CalculateTax(ctx, sq)
	if err != nil {
		return checkout.TaxAnswer{}, err
	}
	return checkout.TaxAnswer{Lines: a.Lines, Shipping: a.Shipping}, nil
}

// newOrders builds the order service over the app's storage and store
// adapter. pay is the payment provider's capture/refund side (nil for the
// CLI, which only queues jobs for the server's worker to run); reg, when
// set, receives the service's and the webhook client's metrics.
func (a *app) newOrders(pay orders.Payments, reg prometheus.Registerer) (*orders.Service, error) {
	cfg := a.cfg
	st, ok := a.storage.(orders.Store)
	if !ok {
		return nil, errors.New("the storage driver cannot keep orders and their jobs")
	}
	shop, ok := a.source.(bridge.OrderStore)
	if !ok {
		return nil, fmt.Errorf("the %s adapter cannot write orders", cfg.Store.Adapter)
	}
	svc := &orders.Service{Store: st, Shop: shop, Payments: pay, SyncBudget: cfg.Orders.SyncBudget,
		RetryHorizon: cfg.Orders.RetryHorizon, Lease: cfg.Orders.JobLease, HoldGrace: holdGrace(cfg), Log: a.log, Metrics: orders.NewMetrics(reg)}
	if w := cfg.ACP.Webhooks; w.URL != "" {
		client := upstream.New(upstream.Config{Name: "agent_webhooks", Budget: 15 * time.Second, Logger: a.log, Registerer: reg})
		svc.Notifier = &agenthook.Sender{URL: w.URL, Secret: w.Secret.Value(), Client: client, Log: a.log}
	}
	return svc, nil
}

// holdGrace is how long a written order keeps its hold with a store that
// counts written orders (orders.Service.HoldGrace): longer than a
// checkout's stock read (acp.stock_timeout) and its commit's longest wait
// (about twice the statement timeout, plus 5 s) together, with 30 s for
// the replicas' clock skew; at least a minute. A DSN that sets a longer
// statement_timeout than storage.statement_timeout says is not seen here.
func holdGrace(cfg *config.Config) time.Duration {
	st := cfg.Storage.StatementTimeout
	if st <= 0 {
		st = postgres.DefaultStatementTimeout
	}
	return max(orders.DefaultHoldGrace, cfg.ACP.StockTimeout+2*st+35*time.Second)
}
