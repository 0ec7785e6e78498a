package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/checkout"
)

// Op is one of the five checkout operations.
type Op string

// The checkout operations. ACP's MCP binding names its tools after them
// (OpCreate is create_checkout_session).
const (
	OpCreate   Op = "create"
	OpGet      Op = "get"
	OpUpdate   Op = "update"
	OpComplete Op = "complete"
	OpCancel   Op = "cancel"
)

// Ops lists the operations in the order of a checkout.
var Ops = []Op{OpCreate, OpGet, OpUpdate, OpComplete, OpCancel}

// REST returns the method and path of the REST request op stands for on
// session id. The binding maps every MCP tool call to one, and the
// idempotency scope is that request, so a key is one key on either door.
func (op Op) REST(id string) (method, path string) {
	const base = "/checkout_sessions"
	switch op {
	case OpCreate:
		return http.MethodPost, base
	case OpGet:
		return http.MethodGet, base + "/" + id
	case OpUpdate:
		return http.MethodPost, base + "/" + id
	default: // complete, cancel
		return http.MethodPost, base + "/" + id + "/" + string(op)
	}
}

// Call is one checkout operation, whichever door it came through: REST
// carries it in a method, a path, headers and a body; MCP in a tool call
// whose meta the binding maps onto the same headers. Both doors hand it
// to Checkout.Serve, so each rule — version, key, rate limit, signature,
// idempotency key, decoding, the engine, status mapping — exists once.
type Call struct {
	Op Op
	// ID is the session's id (every operation but create).
	ID string
	// Header holds the protocol headers of the call: Authorization,
	// API-Version, Idempotency-Key, Signature, Timestamp (others are
	// ignored).
	Header http.Header
	// Body is the request body: nil for get and for a cancel without one.
	Body []byte
	// ReEncoded says the body reached the bridge re-encoded (an MCP
	// client serializes the tool arguments itself, so an agent cannot
	// sign the exact bytes): a signature over the body's canonical form
	// (acp.Canonical) is accepted as well as one over its bytes.
	ReEncoded bool

	// req is REST's own request, which signature verifiers read; other
	// doors get the REST request the call stands for.
	req *http.Request
	// read, when set, reads Body after the key and rate checks, so REST
	// reads a body off the wire only for callers it admits.
	read func(acp.Version) ([]byte, *Answer)
}

// Answer is the outcome of a Call, for the door to put on its wire.
type Answer struct {
	// Version is the API version the answer is written in: the call's, or
	// the latest when the call's is missing or unknown.
	Version acp.Version
	// Status is the REST status code: 201 or 200 with a session, 4xx or
	// 5xx with an error.
	Status int
	// Session is the session in Version's shape (a CheckoutSession, or a
	// CheckoutSessionWithOrder once completed) when Err is nil.
	Session []byte
	// Err is the protocol error otherwise.
	Err *acp.Error
	// Header names the request header the error is about
	// ("Idempotency-Key"), when one is: MCP points at the meta field the
	// binding maps it from.
	Header string
	// Replayed is set when the answer is the stored one of an earlier
	// request with the same idempotency key.
	Replayed bool
	// RetryAfter is when to try again (rate limit, a request with the same
	// key still in flight, a concurrent change).
	RetryAfter time.Duration
}

// Serve runs one checkout call through the rules every door shares and
// the engine. It never panics on input and always answers.
func (c *Checkout) Serve(ctx context.Context, call Call) Answer {
	return c.api().serve(ctx, &call)
}

// RequireKey lets through only HTTP requests bearing a key of c.Keys, and
// answers the others 401 with ACP's error (latest version) and a
// WWW-Authenticate challenge. For doors that authenticate the connection
// rather than each call (MCP); the calls they make are checked again by
// Serve, so a key removed mid-session stops working at once.
func (c *Checkout) RequireKey(next http.Handler) http.Handler {
	a := c.api()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.Keys.lookup(bearer(r.Header)); !ok {
			a.write(w, unauthorized(acp.Latest))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func fail(v acp.Version, status int, e *acp.Error, header string) Answer {
	return Answer{Version: v, Status: status, Err: e, Header: header}
}

func unauthorized(v acp.Version) Answer {
	return fail(v, http.StatusUnauthorized, &acp.Error{Type: acp.InvalidRequest, Code: "unauthorized",
		Message: "missing or unknown API key: send Authorization: Bearer <key>"}, "Authorization")
}

// serve runs the checks every checkout call passes, in the order that
// leaks least: version (so errors take the caller's shape), key, rate,
// body, signature, idempotency key; then the operation.
func (a *checkoutAPI) serve(ctx context.Context, call *Call) Answer {
	v, err := acp.ParseVersion(call.Header.Get("API-Version"))
	if err != nil {
		return fail(acp.Latest, http.StatusBadRequest, acp.VersionError(err), "API-Version")
	}
	key, ok := a.Keys.lookup(bearer(call.Header))
	if !ok {
		return unauthorized(v)
	}
	if ok, wait := a.limit.allow(key.name); !ok {
		ans := fail(v, http.StatusTooManyRequests, &acp.Error{Type: acp.InvalidRequest, Code: "rate_limited",
			Message: "too many requests for this API key; retry after the Retry-After delay"}, "")
		ans.RetryAfter = wait
		return ans
	}
	if call.read != nil {
		body, failed := call.read(v)
		if failed != nil {
			return *failed
		}
		call.Body = body
	}
	// A key with a signing secret must sign every request (a leaked
	// bearer key alone is not enough); keys without one sign only when
	// the merchant requires it of all.
	switch err := a.verify(ctx, call, key); {
	case err == nil:
	case errors.Is(err, ErrUnsigned) && !a.SigningRequired && len(key.secret) == 0:
	default:
		if errors.Is(err, ErrUnsigned) {
			err = errors.New("requests with this key must be signed: send Signature and Timestamp headers")
		}
		return fail(v, http.StatusUnauthorized, &acp.Error{Type: acp.InvalidRequest, Code: "invalid_signature", Message: err.Error()}, "Signature")
	}
	if call.Op != OpGet {
		k := call.Header.Get("Idempotency-Key")
		switch {
		case k == "" && !v.Before(acp.V20260417):
			return fail(v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "idempotency_key_required",
				Message: "Idempotency-Key header is required on POST requests"}, "Idempotency-Key")
		case k != "" && !validKey(k):
			return fail(v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "invalid_idempotency_key",
				Message: "Idempotency-Key must be 1 to 255 visible ASCII characters"}, "Idempotency-Key")
		}
	}
	return a.run(ctx, v, key.name, call)
}

// verify checks the call's signature with the configured verifier, which
// reads REST's request, or for other doors the REST request the call
// stands for.
func (a *checkoutAPI) verify(ctx context.Context, call *Call, key hashedKey) error {
	r := call.req
	if r == nil {
		method, path := call.Op.REST(call.ID)
		r = (&http.Request{Method: method, URL: &url.URL{Path: path}, Header: call.Header}).WithContext(ctx)
	}
	err := a.verifier.Verify(r, call.Body, key.secret)
	if errors.Is(err, ErrBadSignature) && call.ReEncoded {
		if c, cerr := acp.Canonical(call.Body); cerr == nil && a.verifier.Verify(r, c, key.secret) == nil {
			return nil
		}
	}
	return err
}

// run decodes the body at the caller's version, establishes the
// idempotency facts and runs the operation.
func (a *checkoutAPI) run(ctx context.Context, v acp.Version, owner string, call *Call) Answer {
	if strings.Contains(call.ID, "/") {
		// No session id has one, and the idempotency scope (the REST
		// path) must name one operation on one session.
		return fail(v, http.StatusNotFound, &acp.Error{Type: acp.InvalidRequest, Code: "session_not_found",
			Message: "no checkout session " + strconv.Quote(call.ID)}, "")
	}
	switch call.Op {
	case OpGet:
		return a.answer(v, call.Op, a.Engine.Get(ctx, owner, call.ID))
	case OpCreate:
		return execute(ctx, a, v, owner, call, acp.DecodeCreate, func(ctx context.Context, c checkout.Caller, _ string, req checkout.CreateRequest) checkout.Result {
			return a.Engine.Create(ctx, c, req)
		})
	case OpUpdate:
		return execute(ctx, a, v, owner, call, acp.DecodeUpdate, a.Engine.Update)
	case OpComplete:
		return execute(ctx, a, v, owner, call, a.decodeComplete, a.Engine.Complete)
	case OpCancel:
		return execute(ctx, a, v, owner, call, acp.DecodeCancel, a.Engine.Cancel)
	}
	a.log.Error("checkout call with an unknown operation", "op", call.Op)
	return internalError(v)
}

// execute is every changing operation: decode, the engine's caller, run,
// answer.
func execute[T any](ctx context.Context, a *checkoutAPI, v acp.Version, owner string, call *Call,
	decode func(acp.Version, []byte) (T, *acp.Error),
	op func(context.Context, checkout.Caller, string, T) checkout.Result) Answer {
	req, derr := decode(v, call.Body)
	if derr != nil {
		return fail(v, http.StatusBadRequest, derr, "")
	}
	method, path := call.Op.REST(call.ID)
	cc := checkout.Caller{Owner: owner, Version: string(v), Key: call.Header.Get("Idempotency-Key"), Op: method + " " + path}
	if cc.Key != "" {
		h, err := acp.BodyHash(call.Body)
		if err != nil {
			return fail(v, http.StatusBadRequest, &acp.Error{Type: acp.InvalidRequest, Code: "invalid_json", Message: "the body is not valid JSON", Param: "$"}, "")
		}
		cc.BodyHash = h
	}
	return a.answer(v, call.Op, op(ctx, cc, call.ID, req))
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

// answer turns the engine's result into the answer at the caller's
// version.
func (a *checkoutAPI) answer(v acp.Version, op Op, res checkout.Result) Answer {
	if res.Err != nil {
		status, e := statusOf(res.Err, op, v)
		if status >= 500 {
			a.log.Error("checkout failed", "op", op, "code", res.Err.Code, "error", res.Err.Message)
			e.Message = "the request could not be processed; retry later"
			if status == http.StatusServiceUnavailable {
				e.Message = res.Err.Message
			}
		}
		return Answer{Version: v, Status: status, Err: e, Replayed: res.Replayed, RetryAfter: res.RetryAfter}
	}
	body, err := a.encode(v, op, res.Session)
	if err != nil {
		a.log.Error("encoding session", "session", res.Session.ID, "version", v, "error", err)
		return internalError(v)
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return Answer{Version: v, Status: status, Session: body, Replayed: res.Replayed}
}

func internalError(v acp.Version) Answer {
	return fail(v, http.StatusInternalServerError, &acp.Error{Type: acp.ProcessingError, Code: "internal_error", Message: "internal error"}, "")
}

// encode renders a session for the caller's version. A revision never
// changes once written, so reads — most of the traffic while agents poll a
// session — reuse the rendering of the same revision, version and status
// (expiry changes the status of a stored revision).
func (a *checkoutAPI) encode(v acp.Version, op Op, s *bridge.Session) ([]byte, error) {
	if op != OpGet {
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
func statusOf(e *checkout.Error, op Op, v acp.Version) (int, *acp.Error) {
	out := &acp.Error{Type: acp.InvalidRequest, Code: e.Code, Message: e.Message, Param: e.Param}
	switch e.Kind {
	case checkout.KindInvalid:
		return http.StatusBadRequest, out
	case checkout.KindNotFound:
		return http.StatusNotFound, out
	case checkout.KindNotAllowed:
		if op == OpCancel {
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

// RetryAfterSeconds is d in whole seconds, at least 1: what both doors tell
// a caller to wait.
func RetryAfterSeconds(d time.Duration) int {
	return int(max(d.Round(time.Second), time.Second) / time.Second)
}
