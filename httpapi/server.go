// Package httpapi is the bridge's HTTP front door: the router, the middleware
// every request passes (request id, panic recovery, body limit, access log,
// metrics), health and readiness probes, Prometheus metrics and the product
// feed URLs. The ACP checkout endpoints mount on the same router; their
// rules are transport-neutral (Checkout.Serve takes a Call and gives an
// Answer), so the MCP door (package mcpapi, mounted at /mcp) runs the
// same ones.
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/catalog"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger is the storage check /readyz runs.
type Pinger interface {
	Ping(ctx context.Context) error
}

// SyncStatus reports the catalog sync for /readyz.
type SyncStatus interface {
	Status() catalog.Status
}

// PushStatus reports the feed push targets for /readyz.
type PushStatus interface {
	Status(ctx context.Context) ([]bridge.FeedPushState, error)
}

// Config wires the server's dependencies.
type Config struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Storage  Pinger
	Catalog  bridge.CatalogStore
	Sync     SyncStatus
	// Pushes, when set, adds each push target's last push to /readyz
	// (details only: an agent that is down does not make the bridge
	// unready, the catalog and checkout still serve).
	Pushes   PushStatus
	Feeds    *FeedFiles
	Checkout *Checkout
	// MCP, when set, is served at /mcp: ACP's MCP binding of the same
	// checkout (package mcpapi), listed in discovery's transports. It
	// needs Checkout.
	MCP http.Handler
	// StripeWebhooks, when set, receives Stripe's events.
	StripeWebhooks *StripeWebhooks
	// StoreWebhooks are the store adapter's webhook receivers, served at
	// POST /webhooks/<name> (each verifies and deduplicates its own).
	StoreWebhooks map[string]http.Handler
	// Orders backs the order status pages at /orders/{id}, the orders'
	// permalink_url; MerchantName heads them.
	Orders       OrderReader
	MerchantName string
	MaxBodyBytes int64
}

// New builds the handler with every route and middleware.
func New(c Config) http.Handler {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	m := newMetrics(c.Registry)
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusNotFound, acp.InvalidRequest, "not_found", "no such endpoint")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusMethodNotAllowed, acp.InvalidRequest, "method_not_allowed", "method not allowed on this endpoint")
	})
	// Metrics need the matched route, so they run inside the router; the rest
	// wraps the router so that 404s are logged and carry a request id too.
	r.Use(m.middleware)

	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", c.ready).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(c.Registry, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	if c.Feeds != nil {
		c.Feeds.routes(r)
	}
	if c.Checkout != nil {
		transports := []string{"rest"}
		if c.MCP != nil {
			// Every method: the Streamable HTTP transport answers the
			// ones it does not use itself.
			r.Handle("/mcp", c.MCP)
			transports = append(transports, "mcp")
		}
		c.Checkout.routes(r, transports)
	}
	if c.StripeWebhooks != nil {
		if c.StripeWebhooks.Log == nil {
			c.StripeWebhooks.Log = c.Logger
		}
		c.StripeWebhooks.routes(r)
	}
	for name, h := range c.StoreWebhooks {
		r.Handle("/webhooks/"+name, h).Methods(http.MethodPost)
	}
	if c.Orders != nil {
		r.HandleFunc("/orders/{id}", c.order).Methods(http.MethodGet, http.MethodHead)
	}
	return chain(c.Logger, c.MaxBodyBytes, r)
}

// chain wraps h in the middleware every request passes. The access log wraps
// recovery and the body limit, so panics (500) and oversized bodies (413)
// get their log line too.
func chain(log *slog.Logger, maxBody int64, h http.Handler) http.Handler {
	return requestID(accessLog(log)(recoverer(log)(bodyLimit(maxBody)(h))))
}

// ready answers 200 only when the bridge can serve: storage answers, a
// catalog snapshot exists and the feeds are rendered. A failed latest sync
// alone does not make it unready: the last good snapshot still serves.
func (c Config) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	fail := func(name, msg string) { checks[name], ok = msg, false }
	if c.Storage != nil {
		if err := c.Storage.Ping(ctx); err != nil {
			fail("storage", "unreachable: "+err.Error())
		} else {
			checks["storage"] = "ok"
		}
	}
	if c.Catalog != nil {
		if info, err := c.Catalog.CatalogInfo(ctx); err != nil {
			fail("catalog", "no snapshot yet")
		} else {
			checks["catalog"] = "ok: " + info.SyncedAt.Format(time.RFC3339)
		}
	}
	if c.Sync != nil {
		st := c.Sync.Status()
		switch {
		case st.LastError != "":
			checks["last_sync"] = "failed: " + st.LastError
		case st.LastSuccess.IsZero():
			checks["last_sync"] = "not yet"
		case st.Following:
			checks["last_sync"] = "ok (by another replica): " + st.LastSuccess.UTC().Format(time.RFC3339)
		default:
			checks["last_sync"] = "ok: " + st.LastSuccess.UTC().Format(time.RFC3339)
		}
	}
	if c.Feeds != nil {
		if c.Feeds.Ready() {
			checks["feeds"] = "ok"
		} else {
			fail("feeds", "not rendered yet")
		}
	}
	body := map[string]any{"checks": checks}
	// /readyz is public: a push target shows one short line. Its details
	// (the feed id, refused products with the agent's words, the server's
	// address, the error text) are for `bridge feed status` and the
	// metrics, not for anyone who can reach the port.
	if c.Pushes != nil {
		if sts, err := c.Pushes.Status(ctx); err != nil {
			checks["push"] = "unknown"
			c.Logger.Warn("readyz: push status unavailable", "err", err)
		} else {
			for _, st := range sts {
				checks["push."+st.Target] = pushCheck(st)
			}
		}
	}
	code := http.StatusOK
	body["status"] = "ready"
	if !ok {
		code, body["status"] = http.StatusServiceUnavailable, "not_ready"
	}
	writeJSON(w, code, body)
}

// WriteError sends an error in ACP's error shape (type, code, message), the
// one every bridge endpoint uses, so agents parse one shape everywhere.
// Endpoints outside the versioned API answer in the latest version's shape.
func WriteError(w http.ResponseWriter, status int, typ acp.ErrorType, code, msg string) {
	body, err := (&acp.Error{Type: typ, Code: code, Message: msg}).Encode(acp.Latest)
	if err != nil {
		body = []byte(`{"type":"processing_error","code":"internal_error","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pushCheck is a push target's one-line state in /readyz's checks: ok
// with the last push's time, failing since when it last succeeded, or not
// yet — never the error text or what was pushed (see ready).
func pushCheck(st bridge.FeedPushState) string {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case st.LastAttempt.IsZero():
		return "not yet"
	case st.Error == "":
		return "ok: " + at(st.LastSuccess)
	case st.LastSuccess.IsZero():
		return "failing: never succeeded, last attempt " + at(st.LastAttempt)
	}
	return "failing since " + at(st.LastSuccess) + " (last success), last attempt " + at(st.LastAttempt)
}
