// Package stripefake is a scriptable fake of the Stripe API calls the
// bridge makes, for tests: Shared Payment Token reads, PaymentIntent
// create/retrieve/capture/cancel, refunds, and Stripe Tax calculations
// (see SetTaxRate), on a loopback httptest server.
//
// It follows Stripe's documented shapes: form-encoded request bodies,
// `Authorization: Bearer <secret key>` (else 401 with a JSON error),
// JSON error objects {"error":{type,code,decline_code,message,param,
// payment_intent}}, declines as HTTP 402 card_error with the PaymentIntent
// nested, and Idempotency-Key semantics: a POST with a key seen before and
// the same parameters gets the first answer again (header
// Idempotent-Replayed: true); the same key with other parameters gets 400
// idempotency_error; a key whose first request is still running gets 409.
// Answers injected as faults (5xx, 429, drops before the commit) are not
// stored under the key, like a request Stripe never executed.
//
// What a PaymentIntent create does is scripted per token (Script) or per
// amount (ScriptAmount; the token's script wins): the outcome (succeed,
// decline with a code, requires_action, requires_capture) and faults
// consumed one per request (500/503, 429 with Retry-After, slow, a
// dropped connection before or after the charge is recorded). Every call
// is recorded (method, path, form, Idempotency-Key, Stripe-Version) for
// assertions.
//
// PaymentIntents move like Stripe's: capture_method=manual (or the
// RequiresCapture outcome) leaves one in requires_capture with
// amount_capturable set; capture (whole or amount_to_capture) makes it
// succeeded with amount_received; cancel works from requires_capture,
// requires_action, requires_payment_method, requires_confirmation and
// processing; refunds need a succeeded PaymentIntent and never exceed what
// it received. Everything else is refused with Stripe's 400
// payment_intent_unexpected_state (PaymentIntent nested),
// charge_already_refunded, or an invalid_request_error naming the
// parameter; unknown PaymentIntents with resource_missing.
// ExpireAuthorization cancels an authorization as Stripe does after seven
// days. Faults and refund outcomes per PaymentIntent: ScriptActions.
//
// 3-D Secure: a token scripted RequiresAction leaves its PaymentIntent in
// requires_action (next_action use_stripe_sdk). Every PaymentIntent has a
// card PaymentMethod ("pm_fake_…", GET /v1/payment_methods/{id}) of the
// token's Brand (visa unless set), also shown in the token's
// payment_method_details unless Token.NoCardDetails. POST
// /v1/payment_intents/{id}/confirm imports an external 3-D Secure result
// the way Stripe documents it: payment_method_options[card][three_d_secure]
// with cryptogram (20 bytes, base64: 28 characters), transaction_id and
// version (1.0.2, 2.1.0, 2.2.0, 2.3.0, 2.3.1) required, and
// electronic_commerce_indicator (01, 02, 05, 06, 07), ares_trans_status,
// exemption_indicator, requestor_challenge_indicator optional; any other
// parameter but error_on_requires_action is refused as unknown. Confirms
// are idempotent like creates, take faults from ActionScript.ConfirmFaults,
// work from requires_action, requires_confirmation and
// requires_payment_method (else payment_intent_unexpected_state), and end
// as the token's Script.AfterAuth says: succeeded (requires_capture with
// capture_method=manual) by default, a 402 decline, or still
// requires_action — which error_on_requires_action=true turns into a 402
// authentication_required decline, as Stripe does. A confirm without a
// 3-D Secure result leaves a requires_action PaymentIntent as it is. The
// imported values are kept on the Intent (ThreeDSecure).
package stripefake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultSecretKey is the key the fake accepts unless SecretKey is set.
const DefaultSecretKey = "sk_test_stripefake"

// Outcome is what a PaymentIntent create does once it runs.
type Outcome string

// Outcomes.
const (
	Succeed         Outcome = "succeeded"
	Decline         Outcome = "declined"
	RequiresAction  Outcome = "requires_action"
	RequiresCapture Outcome = "requires_capture"
	Processing      Outcome = "processing"
)

// FaultKind is an injected failure.
type FaultKind int

// Faults.
const (
	// FaultStatus answers Status (500, 503, …) with an api_error; nothing
	// is charged.
	FaultStatus FaultKind = iota + 1
	// FaultRateLimit answers 429 rate_limit with Retry-After: RetryAfter
	// seconds; nothing is charged.
	FaultRateLimit
	// FaultSlow sleeps Delay (or until the client goes away), then
	// handles the request normally.
	FaultSlow
	// FaultDropBefore closes the connection without answering and without
	// charging.
	FaultDropBefore
	// FaultDropAfterCommit charges (the PaymentIntent is created and the
	// answer stored under the Idempotency-Key), then closes the connection
	// without answering: the ambiguous case.
	FaultDropAfterCommit
)

// Fault is one injected failure, used by one request.
type Fault struct {
	Kind       FaultKind
	Status     int           // FaultStatus; default 500
	RetryAfter int           // FaultRateLimit, seconds; 0 sends no header
	Delay      time.Duration // FaultSlow
}

// Script says how creates (or token reads) for a token or an amount go.
type Script struct {
	Outcome Outcome
	// DeclineCode for Decline; default generic_decline.
	DeclineCode string
	// DeclineMessage overrides Stripe's message for the decline.
	DeclineMessage string
	// Faults are used up one per PaymentIntent create request, in order.
	Faults []Fault
	// ReadFaults are used up one per token read request, in order.
	ReadFaults []Fault
	// AfterAuth is what a confirm with a 3-D Secure result does: Succeed
	// (default), Decline (with AfterAuthDeclineCode, default
	// generic_decline) or RequiresAction (authentication not accepted).
	AfterAuth            Outcome
	AfterAuthDeclineCode string
}

// Token is a granted Shared Payment Token.
type Token struct {
	ID          string
	Currency    string // lower case; "" = no currency limit
	MaxAmount   int64  // 0 = no limit
	ExpiresAt   time.Time
	Deactivated bool
	// Brand is the card's brand as Stripe names it (visa, mastercard,
	// amex, discover, …); "" means visa.
	Brand string
	// NoCardDetails leaves payment_method_details out of the token read
	// (null), so the card is known only through its PaymentMethod.
	NoCardDetails bool
}

// Call is one recorded request.
type Call struct {
	Method         string
	Path           string
	Form           url.Values
	IdempotencyKey string
	StripeVersion  string
	Replayed       bool // answered from the idempotency store
}

// Intent is a PaymentIntent the fake created.
type Intent struct {
	ID       string
	Amount   int64
	Currency string
	Status   string
	Token    string
	Metadata map[string]string
	// IdempotencyKey is the key of the create that made it.
	IdempotencyKey string
	DeclineCode    string
	// CaptureMethod is automatic or manual.
	CaptureMethod string
	// AmountCapturable is held (requires_capture); AmountReceived taken
	// (succeeded); AmountRefunded given back by refunds not failed.
	AmountCapturable   int64
	AmountReceived     int64
	AmountRefunded     int64
	CancellationReason string
	// PaymentMethod is the card PaymentMethod's id; Brand its brand.
	PaymentMethod string
	Brand         string
	// ThreeDSecure holds the payment_method_options[card][three_d_secure]
	// values of the last confirm that imported a 3-D Secure result, by
	// name (cryptogram, transaction_id, …).
	ThreeDSecure map[string]string
}

// Refund is a refund the fake created.
type Refund struct {
	ID            string
	PaymentIntent string
	Amount        int64
	Currency      string
	Status        string
	Reason        string
	Metadata      map[string]string
	// IdempotencyKey is the key of the create that made it.
	IdempotencyKey string
}

// ActionScript says how captures, cancels, confirms and refunds of one
// PaymentIntent go. Faults are used up one per request, in order, like
// Script.Faults (FaultDropAfterCommit: the action happens, the answer is
// lost).
type ActionScript struct {
	CaptureFaults []Fault
	CancelFaults  []Fault
	RefundFaults  []Fault
	ConfirmFaults []Fault
	// RefundStatus is the status new refunds get: succeeded (default),
	// pending, requires_action, failed or canceled.
	RefundStatus string
}

type stored struct {
	fingerprint string
	status      int
	body        []byte
	done        bool
}

// Server is the fake. Use New; Close it when done.
type Server struct {
	URL string
	// SecretKey is the only key accepted; DefaultSecretKey if "".
	SecretKey string
	// SPTParam, when set, is the only wire form of the token accepted on
	// create (else both documented forms are).
	SPTParam string
	// Now is the fake's clock for token expiry; time.Now if nil.
	Now func() time.Time

	srv *httptest.Server

	mu       sync.Mutex
	calls    []Call
	tokens   map[string]*Token
	byToken  map[string]*Script
	byAmount map[int64]*Script
	intents  map[string]*Intent
	order    []string
	idem     map[string]*stored
	nextID   int
	actions  map[string]*ActionScript // by PaymentIntent id
	refunds  []*Refund
	nextRef  int

	taxRates  map[string]int64
	taxScript TaxScript
	taxCalcs  map[string]*taxCalc
}

// New starts a fake on a loopback port.
func New() *Server {
	s := &Server{
		tokens: map[string]*Token{}, byToken: map[string]*Script{}, byAmount: map[int64]*Script{},
		intents: map[string]*Intent{}, idem: map[string]*stored{}, actions: map[string]*ActionScript{},
		taxRates: map[string]int64{}, taxCalcs: map[string]*taxCalc{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddToken adds (or replaces) a granted token.
func (s *Server) AddToken(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := t
	s.tokens[t.ID] = &c
}

// Script sets what creates with token do.
func (s *Server) Script(token string, sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := sc
	s.byToken[token] = &c
}

// ScriptAmount sets what creates for amount do (when the token has no
// script).
func (s *Server) ScriptAmount(amount int64, sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := sc
	s.byAmount[amount] = &c
}

// SetIntentStatus changes a PaymentIntent's status (e.g. after the buyer
// authenticated), with the amounts that go with it.
func (s *Server) SetIntentStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pi, ok := s.intents[id]; ok {
		pi.setStatus(status)
	}
}

func (pi *Intent) setStatus(status string) {
	pi.Status = status
	pi.AmountCapturable = 0
	switch status {
	case "requires_capture":
		pi.CaptureMethod = "manual"
		pi.AmountCapturable = pi.Amount
	case "succeeded":
		if pi.AmountReceived == 0 {
			pi.AmountReceived = pi.Amount
		}
	}
}

// ExpireAuthorization cancels a PaymentIntent waiting for its capture, as
// Stripe does when the authorization runs out (cancellation_reason
// automatic).
func (s *Server) ExpireAuthorization(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pi, ok := s.intents[id]; ok && pi.Status == "requires_capture" {
		pi.setStatus("canceled")
		pi.CancellationReason = "automatic"
	}
}

// ScriptActions sets how captures, cancels and refunds of the
// PaymentIntent id go.
func (s *Server) ScriptActions(id string, sc ActionScript) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := sc
	s.actions[id] = &c
}

// Intent returns the PaymentIntent id as it is now.
func (s *Server) Intent(id string) (Intent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pi, ok := s.intents[id]
	if !ok {
		return Intent{}, false
	}
	return *pi, true
}

// Refunds returns the refunds created, oldest first.
func (s *Server) Refunds() []Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Refund, 0, len(s.refunds))
	for _, r := range s.refunds {
		out = append(out, *r)
	}
	return out
}

// Calls returns the recorded calls.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the recorded calls with method and a path starting with
// prefix.
func (s *Server) CallsTo(method, prefix string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method && strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// Intents returns the PaymentIntents created, oldest first.
func (s *Server) Intents() []Intent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Intent, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.intents[id])
	}
	return out
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, 400, apiErr{Type: "invalid_request_error", Message: "Invalid request body."})
		return
	}
	form := r.PostForm
	if r.Method == http.MethodGet {
		form = r.URL.Query()
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Form: form, IdempotencyKey: key, StripeVersion: r.Header.Get("Stripe-Version")})
	callIdx := len(s.calls) - 1
	s.mu.Unlock()

	secret := s.SecretKey
	if secret == "" {
		secret = DefaultSecretKey
	}
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || auth != secret {
		writeError(w, http.StatusUnauthorized, apiErr{Type: "invalid_request_error",
			Message: "Invalid API Key provided: " + maskKey(auth)})
		return
	}

	const tokPrefix = "/v1/shared_payment/granted_tokens/"
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, tokPrefix):
		s.getToken(w, r, strings.TrimPrefix(r.URL.Path, tokPrefix))
	case r.Method == http.MethodPost && r.URL.Path == "/v1/tax/calculations":
		s.createTaxCalculation(w, r, form)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/tax/calculations/") && strings.HasSuffix(r.URL.Path, "/line_items"):
		s.listTaxLineItems(w, r, form)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents":
		s.createIntent(w, r, form, key, callIdx)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/") && strings.HasSuffix(r.URL.Path, "/capture"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/"), "/capture")
		s.intentAction(w, r, form, key, callIdx, id, actionCapture)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/") && strings.HasSuffix(r.URL.Path, "/cancel"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/"), "/cancel")
		s.intentAction(w, r, form, key, callIdx, id, actionCancel)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/") && strings.HasSuffix(r.URL.Path, "/confirm"):
		id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/"), "/confirm")
		s.intentAction(w, r, form, key, callIdx, id, actionConfirm)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/payment_methods/"):
		s.getPaymentMethod(w, strings.TrimPrefix(r.URL.Path, "/v1/payment_methods/"))
	case r.Method == http.MethodPost && r.URL.Path == "/v1/refunds":
		s.intentAction(w, r, form, key, callIdx, form.Get("payment_intent"), actionRefund)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/payment_intents/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/")
		s.mu.Lock()
		pi, ok := s.intents[id]
		var body map[string]any
		if ok {
			body = intentJSON(pi)
		}
		s.mu.Unlock()
		if !ok {
			writeError(w, 404, apiErr{Type: "invalid_request_error", Code: "resource_missing", Param: "intent",
				Message: fmt.Sprintf("No such payment_intent: '%s'", id)})
			return
		}
		writeJSON(w, 200, body)
	default:
		writeError(w, 404, apiErr{Type: "invalid_request_error", Message: fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path)})
	}
}

func (s *Server) getToken(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	t, ok := s.tokens[id]
	var f *Fault
	if sc := s.byToken[id]; sc != nil && len(sc.ReadFaults) > 0 {
		f = &sc.ReadFaults[0]
		sc.ReadFaults = sc.ReadFaults[1:]
	}
	var tc Token
	if ok {
		tc = *t
	}
	s.mu.Unlock()
	if f != nil && s.fault(w, r, *f) {
		return
	}
	if !ok {
		writeError(w, 404, apiErr{Type: "invalid_request_error", Code: "resource_missing", Param: "id",
			Message: fmt.Sprintf("No such shared_payment.granted_token: '%s'", id)})
		return
	}
	limits := map[string]any{"currency": nilIf(tc.Currency == "", tc.Currency), "max_amount": nilIf(tc.MaxAmount == 0, tc.MaxAmount),
		"expires_at": nilIf(tc.ExpiresAt.IsZero(), tc.ExpiresAt.Unix())}
	var details any
	if !tc.NoCardDetails {
		details = map[string]any{"type": "card", "card": cardJSON(tc.brand())}
	}
	writeJSON(w, 200, map[string]any{
		"id": tc.ID, "object": "shared_payment.granted_token", "created": 1700000000, "livemode": false,
		"deactivated_at": nilIf(!tc.Deactivated, int64(1700000001)), "deactivated_reason": nilIf(!tc.Deactivated, "revoked"),
		"usage_limits": limits, "payment_method_details": details,
	})
}

// fault applies f; it reports whether the request was answered (or
// dropped) by it.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f.Kind {
	case FaultStatus:
		st := f.Status
		if st == 0 {
			st = 500
		}
		writeError(w, st, apiErr{Type: "api_error", Message: "An unknown error occurred (injected)."})
		return true
	case FaultRateLimit:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		writeError(w, 429, apiErr{Type: "invalid_request_error", Code: "rate_limit", Message: "Too many requests hit the API too quickly."})
		return true
	case FaultSlow:
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return true
		}
		return false
	case FaultDropBefore:
		drop(w)
		return true
	}
	return false
}

func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("stripefake: cannot hijack the connection")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func (s *Server) createIntent(w http.ResponseWriter, r *http.Request, form url.Values, key string, callIdx int) {
	amount, _ := strconv.ParseInt(form.Get("amount"), 10, 64)
	token, param := sptFrom(form)

	s.mu.Lock()
	sc := s.byToken[token]
	if sc == nil {
		sc = s.byAmount[amount]
	}
	var f *Fault
	if sc != nil && len(sc.Faults) > 0 {
		f = &sc.Faults[0]
		sc.Faults = sc.Faults[1:]
	}
	var script Script
	if sc != nil {
		script = *sc
	}
	s.mu.Unlock()

	s.idempotent(w, r, form, key, callIdx, f, func() (int, []byte) {
		return s.execute(form, amount, token, param, key, script)
	})
}

// idempotent answers a POST under Stripe's Idempotency-Key rules after
// applying its fault f (nil: none): a key seen with the same parameters
// replays the first answer (Idempotent-Replayed: true), with other
// parameters gets 400 idempotency_error, and while its first request runs
// 409. exec runs with s.mu held; its answer is stored under the key unless
// it is a 5xx (a request Stripe did not execute). FaultDropAfterCommit
// executes (or replays) and then drops the connection.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, form url.Values, key string, callIdx int, f *Fault, exec func() (int, []byte)) {
	dropAfter := false
	if f != nil {
		if f.Kind == FaultDropAfterCommit {
			dropAfter = true
		} else if s.fault(w, r, *f) {
			return
		}
	}

	fp := fingerprint(r.URL.Path, form)
	s.mu.Lock()
	if key != "" {
		if st, ok := s.idem[key]; ok {
			switch {
			case st.fingerprint != fp:
				s.mu.Unlock()
				writeError(w, 400, apiErr{Type: "idempotency_error",
					Message: "Keys for idempotent requests can only be used with the same parameters they were first used with."})
				return
			case !st.done:
				s.mu.Unlock()
				writeError(w, 409, apiErr{Type: "idempotency_error", Code: "idempotency_key_in_use",
					Message: "There is currently another in-progress request using this Stripe API key and idempotency key."})
				return
			}
			s.calls[callIdx].Replayed = true
			s.mu.Unlock()
			if dropAfter {
				drop(w)
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			writeRaw(w, st.status, st.body)
			return
		}
		s.idem[key] = &stored{fingerprint: fp}
	}
	status, body := exec()
	if key != "" {
		if status >= 500 {
			delete(s.idem, key)
		} else {
			*s.idem[key] = stored{fingerprint: fp, status: status, body: body, done: true}
		}
	}
	s.mu.Unlock()
	if dropAfter {
		drop(w)
		return
	}
	writeRaw(w, status, body)
}

// execute runs a create; s.mu is held.
func (s *Server) execute(form url.Values, amount int64, token, param, key string, sc Script) (int, []byte) {
	currency := form.Get("currency")
	switch {
	case form.Get("amount") == "" || amount <= 0:
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_missing", Param: "amount", Message: "Missing required param: amount."})
	case currency == "":
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_missing", Param: "currency", Message: "Missing required param: currency."})
	case currency != strings.ToLower(currency):
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_invalid", Param: "currency", Message: "Invalid currency: " + currency + "."})
	case token == "":
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_missing", Param: "payment_method_data[shared_payment_granted_token]",
			Message: "A shared payment granted token is required."})
	case s.SPTParam != "" && param != s.SPTParam:
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_unknown", Param: param, Message: "Received unknown parameter: " + param})
	case form.Get("confirm") != "true":
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_invalid", Param: "confirm", Message: "The fake only supports confirm=true."})
	case !slices.Contains([]string{"", "automatic", "automatic_async", "manual"}, form.Get("capture_method")):
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_invalid", Param: "capture_method",
			Message: "Invalid capture_method: must be one of automatic, automatic_async, or manual"})
	}
	t, ok := s.tokens[token]
	switch {
	case !ok:
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "resource_missing", Param: param,
			Message: fmt.Sprintf("No such shared_payment.granted_token: '%s'", token)})
	case t.Deactivated, !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt),
		t.Currency != "" && t.Currency != currency, t.MaxAmount != 0 && amount > t.MaxAmount:
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "shared_payment_granted_token_unusable", Param: param,
			Message: "The shared payment granted token cannot be used for this payment."})
	}

	s.nextID++
	pi := &Intent{ID: fmt.Sprintf("pi_fake_%04d", s.nextID), Amount: amount, Currency: currency, Token: token,
		Metadata: metadata(form), IdempotencyKey: key, CaptureMethod: "automatic",
		PaymentMethod: fmt.Sprintf("pm_fake_%04d", s.nextID), Brand: t.brand()}
	manual := form.Get("capture_method") == "manual"
	if manual {
		pi.CaptureMethod = "manual"
	}
	s.intents[pi.ID] = pi
	s.order = append(s.order, pi.ID)

	switch sc.Outcome {
	case Decline:
		code := sc.DeclineCode
		if code == "" {
			code = "generic_decline"
		}
		msg := sc.DeclineMessage
		if msg == "" {
			msg = "Your card was declined."
		}
		return declineIntent(pi, code, msg)
	case RequiresAction:
		pi.setStatus("requires_action")
	case RequiresCapture:
		// Also without capture_method=manual: an account whose payments
		// are captured by hand.
		pi.setStatus("requires_capture")
	case Processing:
		pi.setStatus("processing")
	default:
		if manual {
			pi.setStatus("requires_capture")
		} else {
			pi.setStatus("succeeded")
		}
	}
	b, _ := json.Marshal(intentJSON(pi))
	return 200, b
}

func sptFrom(form url.Values) (token, param string) {
	for _, p := range []string{"payment_method_data[shared_payment_granted_token]", "shared_payment_granted_token"} {
		if v := form.Get(p); v != "" {
			return v, p
		}
	}
	return "", ""
}

func intentJSON(pi *Intent) map[string]any {
	captureMethod := pi.CaptureMethod
	if captureMethod == "" {
		captureMethod = "automatic"
	}
	m := map[string]any{
		"id": pi.ID, "object": "payment_intent", "amount": pi.Amount, "currency": pi.Currency, "status": pi.Status,
		"capture_method": captureMethod, "confirmation_method": "automatic", "livemode": false, "created": 1700000000,
		"metadata": pi.Metadata, "client_secret": pi.ID + "_secret_fake",
		"amount_capturable": pi.AmountCapturable, "amount_received": pi.AmountReceived,
		"cancellation_reason": nilIf(pi.CancellationReason == "", pi.CancellationReason),
		"latest_charge":       nilIf(pi.AmountReceived == 0 && pi.AmountCapturable == 0, chargeID(pi)),
	}
	if pi.Status == "requires_action" {
		m["next_action"] = map[string]any{"type": "use_stripe_sdk", "use_stripe_sdk": map[string]any{"type": "three_d_secure_redirect"}}
	}
	if pi.DeclineCode != "" {
		m["last_payment_error"] = map[string]any{"type": "card_error", "code": errCodeFor(pi.DeclineCode), "decline_code": pi.DeclineCode, "message": "Your card was declined."}
	}
	if pi.PaymentMethod != "" {
		m["payment_method"] = pi.PaymentMethod
	}
	return m
}

// declineIntent fails pi with code the way Stripe answers a declined
// confirmation: 402 card_error with the PaymentIntent nested, left in
// requires_payment_method.
func declineIntent(pi *Intent, code, msg string) (int, []byte) {
	pi.setStatus("requires_payment_method")
	pi.DeclineCode = code
	return errBody(402, apiErr{Type: "card_error", Code: errCodeFor(code), DeclineCode: code, Message: msg, PaymentIntent: intentJSON(pi)})
}

// errCodeFor is the error code Stripe gives with a decline code: a few
// have their own, the rest are card_declined.
func errCodeFor(declineCode string) string {
	if slices.Contains([]string{"expired_card", "incorrect_cvc", "processing_error", "incorrect_number", "authentication_required"}, declineCode) {
		return declineCode
	}
	return "card_declined"
}

func (t Token) brand() string {
	if t.Brand == "" {
		return "visa"
	}
	return t.Brand
}

// cardJSON is the card part of a PaymentMethod (and of a token's
// payment_method_details).
func cardJSON(brand string) map[string]any {
	display := brand
	switch brand {
	case "amex":
		display = "american_express"
	case "diners":
		display = "diners_club"
	case "unionpay":
		display = "union_pay"
	}
	return map[string]any{"brand": brand, "display_brand": display, "last4": "4242", "exp_month": 12, "exp_year": 2030,
		"funding": "credit", "country": "US"}
}

func (s *Server) getPaymentMethod(w http.ResponseWriter, id string) {
	s.mu.Lock()
	brand := ""
	for _, pi := range s.intents {
		if pi.PaymentMethod == id {
			brand = pi.Brand
		}
	}
	s.mu.Unlock()
	if brand == "" {
		writeError(w, 404, apiErr{Type: "invalid_request_error", Code: "resource_missing", Param: "payment_method",
			Message: fmt.Sprintf("No such PaymentMethod: '%s'", id)})
		return
	}
	writeJSON(w, 200, map[string]any{"id": id, "object": "payment_method", "type": "card", "card": cardJSON(brand),
		"created": 1700000000, "livemode": false, "customer": nil, "metadata": map[string]string{}})
}

// threeDSParams are the payment_method_options[card][three_d_secure]
// fields Stripe documents for importing a 3-D Secure result, with the
// values each allows (nil: any string up to maxLen).
var threeDSParams = map[string]struct {
	values []string
	maxLen int
}{
	"cryptogram":                    {nil, 5000},
	"transaction_id":                {nil, 5000},
	"version":                       {[]string{"1.0.2", "2.1.0", "2.2.0", "2.3.0", "2.3.1"}, 0},
	"electronic_commerce_indicator": {[]string{"01", "02", "05", "06", "07"}, 0},
	"ares_trans_status":             {[]string{"A", "C", "I", "N", "R", "U", "Y"}, 0},
	"exemption_indicator":           {[]string{"low_risk", "none"}, 0},
	"requestor_challenge_indicator": {nil, 2},
}

const threeDSPrefix = "payment_method_options[card][three_d_secure]["

// confirm runs POST /v1/payment_intents/{id}/confirm; s.mu is held.
func (s *Server) confirm(id string, form url.Values) (int, []byte) {
	pi, ok := s.intents[id]
	if !ok {
		return noSuchIntent(id, "intent")
	}
	tds := map[string]string{}
	for k := range form {
		name, isTDS := strings.CutPrefix(k, threeDSPrefix)
		name, closed := strings.CutSuffix(name, "]")
		switch {
		case k == "error_on_requires_action":
			if v := form.Get(k); v != "true" && v != "false" {
				return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_invalid_boolean", Param: k, Message: "Invalid boolean: " + v})
			}
		case isTDS && closed && !strings.Contains(name, "["):
			spec, known := threeDSParams[name]
			if !known {
				return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_unknown", Param: k, Message: "Received unknown parameter: " + k})
			}
			v := form.Get(k)
			if (spec.values != nil && !slices.Contains(spec.values, v)) || (spec.maxLen > 0 && len(v) > spec.maxLen) {
				return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_invalid", Param: k,
					Message: fmt.Sprintf("Invalid %s: %q", name, v)})
			}
			tds[name] = v
		default:
			return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_unknown", Param: k, Message: "Received unknown parameter: " + k})
		}
	}
	confirmable := []string{"requires_action", "requires_confirmation", "requires_payment_method"}
	if !slices.Contains(confirmable, pi.Status) {
		return unexpectedState(pi, fmt.Sprintf("This PaymentIntent's payment_method could not be updated because it has a status of %s. "+
			"You may only update the payment_method of a PaymentIntent with one of the following statuses: %s.", pi.Status, strings.Join(confirmable, ", ")))
	}
	if len(tds) == 0 {
		// Stripe would run its own 3-D Secure again: still requires_action.
		if pi.Status == "requires_action" {
			return marshal(http.StatusOK, intentJSON(pi))
		}
		return errBody(400, apiErr{Type: "invalid_request_error", Message: "The fake only supports confirms that import a 3-D Secure result."})
	}
	for _, req := range []string{"cryptogram", "transaction_id", "version"} {
		if tds[req] == "" {
			return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_missing", Param: threeDSPrefix + req + "]",
				Message: "Missing required param: " + threeDSPrefix + req + "]."})
		}
	}
	if b, err := base64.StdEncoding.DecodeString(tds["cryptogram"]); err != nil || len(b) != 20 {
		return errBody(400, apiErr{Type: "invalid_request_error", Code: "parameter_invalid", Param: threeDSPrefix + "cryptogram]",
			Message: "Invalid cryptogram: it must be 20 bytes, base64-encoded into a 28-character string."})
	}
	pi.ThreeDSecure = tds
	pi.DeclineCode = ""

	var sc Script
	if p := s.byToken[pi.Token]; p != nil {
		sc = *p
	} else if p := s.byAmount[pi.Amount]; p != nil {
		sc = *p
	}
	switch sc.AfterAuth {
	case Decline:
		code := sc.AfterAuthDeclineCode
		if code == "" {
			code = "generic_decline"
		}
		return declineIntent(pi, code, "Your card was declined.")
	case RequiresAction:
		if form.Get("error_on_requires_action") == "true" {
			return declineIntent(pi, "authentication_required", "Your card was declined. This transaction requires authentication.")
		}
		pi.setStatus("requires_action")
	default:
		if pi.CaptureMethod == "manual" {
			pi.setStatus("requires_capture")
		} else {
			pi.setStatus("succeeded")
		}
	}
	return marshal(http.StatusOK, intentJSON(pi))
}

type apiErr struct {
	Type          string         `json:"type"`
	Code          string         `json:"code,omitempty"`
	DeclineCode   string         `json:"decline_code,omitempty"`
	Message       string         `json:"message"`
	Param         string         `json:"param,omitempty"`
	PaymentIntent map[string]any `json:"payment_intent,omitempty"`
}

func errBody(status int, e apiErr) (int, []byte) {
	b, _ := json.Marshal(map[string]any{"error": e})
	return status, b
}

func writeError(w http.ResponseWriter, status int, e apiErr) {
	st, b := errBody(status, e)
	writeRaw(w, st, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func fingerprint(path string, form url.Values) string { return path + "?" + form.Encode() }

func nilIf(cond bool, v any) any {
	if cond {
		return nil
	}
	return v
}

// maskKey shows a key like Stripe does: its prefix and last four.
func maskKey(k string) string {
	if len(k) <= 12 {
		return strings.Repeat("*", len(k))
	}
	return k[:8] + strings.Repeat("*", len(k)-12) + k[len(k)-4:]
}
