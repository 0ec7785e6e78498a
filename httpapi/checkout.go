package httpapi

import (
	"context"
	"errors"
	"github.com/acp-bridge/bridge"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/gorilla/mux"
)

// Engine is the checkout engine as the REST door uses it.
type Engine interface {
	Create(ctx context.Context, c checkout.Caller, req checkout.CreateRequest) checkout.Result
	Update(ctx context.Context, c checkout.Caller, id string, req checkout.UpdateRequest) checkout.Result
	Get(ctx context.Context, owner, id string) checkout.Result
	Complete(ctx context.Context, c checkout.Caller, id string, req checkout.CompleteRequest) checkout.Result
	Cancel(ctx context.Context, c checkout.Caller, id string, req checkout.CancelRequest) checkout.Result
}

// Checkout configures the ACP checkout endpoints.
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
}

// checkoutAPI is Checkout ready to serve.
type checkoutAPI struct {
	Checkout
	limit *limiter

	renderMu sync.Mutex
	rendered map[renderKey][]byte
}

// caller is what the middleware established about a request.
type caller struct {
	version acp.Version
	name    string
	body    []byte
}

func (c *Checkout) routes(r *mux.Router) {
	api := &checkoutAPI{Checkout: *c, limit: newLimiter(c.RatePerSecond, c.RateBurst), rendered: map[renderKey][]byte{}}
	if api.Verifier == nil {
		api.Verifier = HMACVerifier{MaxSkew: 5 * time.Minute}
	}
	if api.Log == nil {
		api.Log = slog.Default()
	}
	r.HandleFunc("/.well-known/acp.json", api.discovery).Methods(http.MethodGet, http.MethodHead)
	// The ACP paths, and the same under /api/ as the seed guide mounts them.
	for _, prefix := range []string{"", "/api"} {
		s := r.PathPrefix(prefix + "/checkout_sessions").Subrouter()
		s.Handle("", api.guard(post(api, "create", acp.DecodeCreate, api.create))).Methods(http.MethodPost)
		s.Handle("/{id}", api.guard(post(api, "update", acp.DecodeUpdate, api.Engine.Update))).Methods(http.MethodPost)
		s.Handle("/{id}", api.guard(api.get)).Methods(http.MethodGet)
		s.Handle("/{id}/complete", api.guard(post(api, "complete", api.decodeComplete, api.Engine.Complete))).Methods(http.MethodPost)
		s.Handle("/{id}/cancel", api.guard(post(api, "cancel", acp.DecodeCancel, api.Engine.Cancel))).Methods(http.MethodPost)
	}
}

// guard runs the checks every checkout request passes, in the order that
// leaks least: version (so errors take the caller's shape), key, rate,
// body, signature, idempotency key.
func (a *checkoutAPI) guard(h func(http.ResponseWriter, *http.Request, *caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echoHeaders(w, r)
		v, err := acp.ParseVersion(r.Header.Get("API-Version"))
		if err != nil {
			a.writeError(w, acp.Latest, http.StatusBadRequest, acp.VersionError(err))
			return
		}
		key, ok := a.Keys.lookup(bearer(r))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="acp"`)
			a.writeError(w, v, http.StatusUnauthorized, &acp.Error{Type: acp.InvalidRequest, Code: "unauthorized",
				Message: "missing or unknown API key: send Authorization: Bearer <key>"})
			return
		}
		if ok, wait := a.limit.allow(key.name); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(max(wait.Round(time.Second), time.Second)/time.Second)))
			a.writeError(w, v, http.StatusTooManyRequests, &acp.Error{Type: acp.InvalidRequest, Code: "rate_limited",
				Message: "too many requests for this API key; retry after the Retry-After delay"})
			return
		}
		c := &caller{version: v, name: key.name}
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); ct != "" {
				if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
					a.writeError(w, v, http.StatusUnsupportedMediaType, &acp.Error{Type: acp.InvalidRequest, Code: "unsupported_media_type",
						Message: "send the body as application/json"})
					return
				}
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					a.writeError(w, v, http.StatusRequestEntityTooLarge, &acp.Error{Type: acp.InvalidRequest, Code: "request_too_large",
						Message: "request body exceeds " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"})
					return
				}
				a.writeError(w, v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "unreadable_body", Message: "could not read the request body"})
				return
			}
			c.body = body
		}
		// A key with a signing secret must sign every request (a leaked
		// bearer key alone is not enough); keys without one sign only
		// when the merchant requires it of all.
		switch err := a.Verifier.Verify(r, c.body, key.secret); {
		case err == nil:
		case errors.Is(err, ErrUnsigned) && !a.SigningRequired && len(key.secret) == 0:
		default:
			if errors.Is(err, ErrUnsigned) {
				err = errors.New("requests with this key must be signed: send Signature and Timestamp headers")
			}
			a.writeError(w, v, http.StatusUnauthorized, &acp.Error{Type: acp.InvalidRequest, Code: "invalid_signature", Message: err.Error()})
			return
		}
		if r.Method == http.MethodPost {
			k := r.Header.Get("Idempotency-Key")
			switch {
			case k == "" && !v.Before(acp.V20260417):
				a.writeError(w, v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "idempotency_key_required",
					Message: "Idempotency-Key header is required on POST requests"})
				return
			case k != "" && !validKey(k):
				a.writeError(w, v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "invalid_idempotency_key",
					Message: "Idempotency-Key must be 1 to 255 visible ASCII characters"})
				return
			}
		}
		h(w, r, c)
	})
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

// call is the engine's view of the request: who, which operation, which key.
func (c *caller) call(r *http.Request, op string) (checkout.Caller, *acp.Error) {
	cc := checkout.Caller{Owner: c.name, Version: string(c.version), Key: r.Header.Get("Idempotency-Key"), Op: op}
	if cc.Key != "" {
		h, err := acp.BodyHash(c.body)
		if err != nil {
			return cc, &acp.Error{Type: acp.InvalidRequest, Code: "invalid_json", Message: "the body is not valid JSON", Param: "$"}
		}
		cc.BodyHash = h
	}
	return cc, nil
}

// opPath names the operation without the /api prefix, so a key used on
// /api/checkout_sessions and /checkout_sessions is one key.
func opPath(r *http.Request) string {
	return r.Method + " " + strings.TrimPrefix(r.URL.Path, "/api")
}

// post is every POST operation: decode the body at the caller's version,
// establish the idempotency facts, run the operation, answer.
func post[T any](a *checkoutAPI, op string, decode func(acp.Version, []byte) (T, *acp.Error),
	run func(context.Context, checkout.Caller, string, T) checkout.Result) func(http.ResponseWriter, *http.Request, *caller) {
	return func(w http.ResponseWriter, r *http.Request, c *caller) {
		req, derr := decode(c.version, c.body)
		if derr != nil {
			a.writeError(w, c.version, http.StatusBadRequest, derr)
			return
		}
		cc, derr := c.call(r, opPath(r))
		if derr != nil {
			a.writeError(w, c.version, http.StatusBadRequest, derr)
			return
		}
		a.answer(w, c, op, run(r.Context(), cc, mux.Vars(r)["id"], req))
	}
}

func (a *checkoutAPI) create(ctx context.Context, c checkout.Caller, _ string, req checkout.CreateRequest) checkout.Result {
	return a.Engine.Create(ctx, c, req)
}

func (a *checkoutAPI) get(w http.ResponseWriter, r *http.Request, c *caller) {
	a.answer(w, c, "get", a.Engine.Get(r.Context(), c.name, mux.Vars(r)["id"]))
}

// decodeComplete also refuses a payment handler the shop does not offer.
func (a *checkoutAPI) decodeComplete(v acp.Version, body []byte) (checkout.CompleteRequest, *acp.Error) {
	req, derr := acp.DecodeComplete(v, body)
	if derr == nil && req.Payment.HandlerID != "" && req.Payment.HandlerID != a.Codec.Handler.ID {
		derr = &acp.Error{Type: acp.InvalidRequest, Code: acp.CodeInvalid, Param: "$.payment_data.handler_id",
			Message: "unknown payment handler " + strconv.Quote(req.Payment.HandlerID) + "; use one of capabilities.payment.handlers"}
	}
	return req, derr
}

// answer encodes the engine's result for the caller's version.
func (a *checkoutAPI) answer(w http.ResponseWriter, c *caller, op string, res checkout.Result) {
	if res.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if res.Err != nil {
		status, e := statusOf(res.Err, op, c.version)
		if res.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(max(res.RetryAfter.Round(time.Second), time.Second)/time.Second)))
		}
		if status >= 500 {
			a.Log.Error("checkout failed", "op", op, "code", res.Err.Code, "error", res.Err.Message)
			e.Message = "the request could not be processed; retry later"
			if status == http.StatusServiceUnavailable {
				e.Message = res.Err.Message
			}
		}
		a.writeError(w, c.version, status, e)
		return
	}
	body, err := a.encode(c.version, op, res.Session)
	if err != nil {
		a.Log.Error("encoding session", "session", res.Session.ID, "version", c.version, "error", err)
		a.writeError(w, c.version, http.StatusInternalServerError, &acp.Error{Type: acp.ProcessingError, Code: "internal_error", Message: "internal error"})
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// encode renders a session for the caller's version. A revision never
// changes once written, so reads — most of the traffic while agents poll a
// session — reuse the rendering of the same revision, version and status
// (expiry changes the status of a stored revision).
func (a *checkoutAPI) encode(v acp.Version, op string, s *bridge.Session) ([]byte, error) {
	if op != "get" {
		return a.Codec.EncodeSession(v, s)
	}
	k := renderKey{id: s.ID, rev: s.Rev, status: s.Status, version: v}
	a.renderMu.Lock()
	body, ok := a.rendered[k]
	a.renderMu.Unlock()
	if ok {
		return body, nil
	}
	body, err := a.Codec.EncodeSession(v, s)
	if err != nil {
		return nil, err
	}
	a.renderMu.Lock()
	if len(a.rendered) >= maxRendered {
		clear(a.rendered) // crude but bounded; hot sessions come back at once
	}
	a.rendered[k] = body
	a.renderMu.Unlock()
	return body, nil
}

type renderKey struct {
	id      string
	rev     int64
	status  bridge.SessionStatus
	version acp.Version
}

const maxRendered = 4096

// statusOf maps an engine error to the status and protocol error the
// caller's version defines.
func statusOf(e *checkout.Error, op string, v acp.Version) (int, *acp.Error) {
	out := &acp.Error{Type: acp.InvalidRequest, Code: e.Code, Message: e.Message, Param: e.Param}
	switch e.Kind {
	case checkout.KindInvalid:
		return http.StatusBadRequest, out
	case checkout.KindNotFound:
		return http.StatusNotFound, out
	case checkout.KindNotAllowed:
		if op == "cancel" {
			return http.StatusMethodNotAllowed, out
		}
		return http.StatusConflict, out
	case checkout.KindIdemConflict:
		// 2026-04-17 made a reused key with another body a permanent 422;
		// earlier versions answer 409.
		if v.Before(acp.V20260417) {
			return http.StatusConflict, out
		}
		return http.StatusUnprocessableEntity, out
	case checkout.KindInFlight, checkout.KindConflict:
		return http.StatusConflict, out
	case checkout.KindUnavailable:
		out.Type = acp.ServiceUnavailable
		return http.StatusServiceUnavailable, out
	default:
		out.Type = acp.ProcessingError
		out.Code = "internal_error"
		return http.StatusInternalServerError, out
	}
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
func (a *checkoutAPI) discovery(w http.ResponseWriter, _ *http.Request) {
	body, err := a.Codec.Discovery(a.PublicURL, []string{"rest"})
	if err != nil {
		a.writeError(w, acp.Latest, http.StatusInternalServerError, &acp.Error{Type: acp.ProcessingError, Code: "internal_error", Message: "internal error"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
