package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/gorilla/mux"
)

// Engine is the checkout engine as the doors use it.
type Engine interface {
	Create(ctx context.Context, c checkout.Caller, req checkout.CreateRequest) checkout.Result
	Update(ctx context.Context, c checkout.Caller, id string, req checkout.UpdateRequest) checkout.Result
	Get(ctx context.Context, owner, id string) checkout.Result
	Complete(ctx context.Context, c checkout.Caller, id string, req checkout.CompleteRequest) checkout.Result
	Cancel(ctx context.Context, c checkout.Caller, id string, req checkout.CancelRequest) checkout.Result
}

// Checkout configures the ACP checkout: the REST endpoints, discovery,
// and the rules other doors share through Serve. Use it by pointer; it
// keeps state once serving.
type Checkout struct {
	Engine Engine
	Codec  *acp.Codec
	Keys   *Keys
	// Verifier checks request signatures (HMACVerifier when nil);
	// SigningRequired refuses unsigned requests.
	Verifier        SignatureVerifier
	SigningRequired bool
	// RatePerSecond and RateBurst limit each API key (0 = no limit).
	RatePerSecond float64
	RateBurst     int
	// PublicURL is the base URL agents reach the API at (discovery).
	PublicURL string
	Log       *slog.Logger

	once sync.Once
	core *checkoutAPI
}

// checkoutAPI is Checkout ready to serve: the state both doors share (the
// rate limiter's buckets, the rendering cache), made once per Checkout.
type checkoutAPI struct {
	*Checkout
	verifier SignatureVerifier
	log      *slog.Logger
	limit    *limiter

	renderMu sync.Mutex
	rendered map[renderKey][]byte
}

// api returns the Checkout's serving state, made on first use, so the REST
// routes and other doors (MCP) share one rate limit per key.
func (c *Checkout) api() *checkoutAPI {
	c.once.Do(func() {
		a := &checkoutAPI{Checkout: c, verifier: c.Verifier, log: c.Log,
			limit: newLimiter(c.RatePerSecond, c.RateBurst), rendered: map[renderKey][]byte{}}
		if a.verifier == nil {
			a.verifier = HMACVerifier{MaxSkew: 5 * time.Minute}
		}
		if a.log == nil {
			a.log = slog.Default()
		}
		c.core = a
	})
	return c.core
}

// routes mounts the REST door and discovery; transports are what
// discovery lists ("rest", and "mcp" when that door is mounted too).
func (c *Checkout) routes(r *mux.Router, transports []string) {
	api := c.api()
	r.HandleFunc("/.well-known/acp.json", api.discovery(transports)).Methods(http.MethodGet, http.MethodHead)
	// The ACP paths, and the same under /api/ as the seed guide mounts them.
	for _, prefix := range []string{"", "/api"} {
		s := r.PathPrefix(prefix + "/checkout_sessions").Subrouter()
		s.Handle("", api.rest(OpCreate)).Methods(http.MethodPost)
		s.Handle("/{id}", api.rest(OpUpdate)).Methods(http.MethodPost)
		s.Handle("/{id}", api.rest(OpGet)).Methods(http.MethodGet)
		s.Handle("/{id}/complete", api.rest(OpComplete)).Methods(http.MethodPost)
		s.Handle("/{id}/cancel", api.rest(OpCancel)).Methods(http.MethodPost)
	}
}

// rest is the REST door of op: the request becomes a Call, its body read
// only once the caller is admitted, and the answer goes back with ACP's
// response headers.
func (a *checkoutAPI) rest(op Op) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoHeaders(w, r)
		call := Call{Op: op, ID: mux.Vars(r)["id"], Header: r.Header, req: r}
		if op != OpGet {
			call.read = func(v acp.Version) ([]byte, *Answer) { return readBody(r, v) }
		}
		a.write(w, a.serve(r.Context(), &call))
	})
}

// readBody reads a POST body: JSON only, within the server's body limit.
func readBody(r *http.Request, v acp.Version) ([]byte, *Answer) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			ans := fail(v, http.StatusUnsupportedMediaType, &acp.Error{Type: acp.InvalidRequest, Code: "unsupported_media_type",
				Message: "send the body as application/json"}, "Content-Type")
			return nil, &ans
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			ans := fail(v, http.StatusRequestEntityTooLarge, &acp.Error{Type: acp.InvalidRequest, Code: "request_too_large",
				Message: "request body exceeds " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}, "")
			return nil, &ans
		}
		ans := fail(v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "unreadable_body", Message: "could not read the request body"}, "")
		return nil, &ans
	}
	return body, nil
}

// echoHeaders returns the caller's Idempotency-Key and Request-Id, as ACP
// asks, so responses can be matched to requests.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	if k := r.Header.Get("Idempotency-Key"); k != "" && validKey(k) {
		w.Header().Set("Idempotency-Key", k)
	}
	if id := r.Header.Get("Request-Id"); saneID(id) {
		w.Header().Set("Request-Id", id)
	}
}

func validKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// write puts an answer on REST's wire: status, ACP's response headers,
// the session or the error.
func (a *checkoutAPI) write(w http.ResponseWriter, ans Answer) {
	if ans.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if ans.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds(ans.RetryAfter)))
	}
	if ans.Err != nil {
		if ans.Status == http.StatusUnauthorized && ans.Header == "Authorization" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="acp"`)
		}
		a.writeError(w, ans.Version, ans.Status, ans.Err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.Status)
	_, _ = w.Write(ans.Session)
}

func (a *checkoutAPI) writeError(w http.ResponseWriter, v acp.Version, status int, e *acp.Error) {
	body, err := e.Encode(v)
	if err != nil {
		body = []byte(`{"type":"processing_error","code":"internal_error","message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// discovery serves /.well-known/acp.json: unauthenticated, cacheable.
func (a *checkoutAPI) discovery(transports []string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		body, err := a.Codec.Discovery(a.PublicURL, transports)
		if err != nil {
			a.log.Error("discovery document", "error", err)
			a.writeError(w, acp.Latest, http.StatusInternalServerError, &acp.Error{Type: acp.ProcessingError, Code: "internal_error", Message: "internal error"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}
