package fakestore

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge"
)

// DefaultToken is the access token a Server accepts.
const DefaultToken = "fakestore-test-token"

// maxBody bounds a create's body; real stores refuse huge payloads with
// 413 too.
const maxBody = 1 << 20

// Line is one line of a store order.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	// UnitPrice is a decimal string in the order's currency ("19.99").
	UnitPrice string `json:"unit_price"`
}

// Address is a shipping address as the store keeps it.
type Address struct {
	Name       string `json:"name,omitempty"`
	Company    string `json:"company,omitempty"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// NewOrder is the body of POST /orders.
type NewOrder struct {
	// ExternalID is the bridge's order id.
	ExternalID string `json:"external_id"`
	Currency   string `json:"currency"`
	// Total is a decimal string in Currency ("49.99").
	Total           string   `json:"total"`
	Lines           []Line   `json:"lines"`
	Email           string   `json:"email,omitempty"`
	ShippingAddress *Address `json:"shipping_address,omitempty"`
}

// Order is an order as the store keeps and returns it.
type Order struct {
	// ID is the store's id, "S-<n>".
	ID         string `json:"id"`
	ExternalID string `json:"external_id"`
	Status     string `json:"status"`
	// URL is the order's page in the store.
	URL             string    `json:"url"`
	Currency        string    `json:"currency"`
	Total           string    `json:"total"`
	Lines           []Line    `json:"lines"`
	Email           string    `json:"email,omitempty"`
	ShippingAddress *Address  `json:"shipping_address,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
}

// clone copies o deeply enough that callers cannot change the store's copy.
func (o Order) clone() Order {
	o.Lines = slices.Clone(o.Lines)
	if o.ShippingAddress != nil {
		a := *o.ShippingAddress
		o.ShippingAddress = &a
	}
	return o
}

// OrderList is the answer of GET /orders.
type OrderList struct {
	Orders []Order `json:"orders"`
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Server is the fake store. Its methods are safe for concurrent use,
// including while requests are served.
type Server struct {
	srv  *httptest.Server
	quit chan struct{} // closed at cleanup: ends hangs so Close does not wait

	mu       sync.Mutex
	orders   []Order
	stock    map[string]int64 // tracked SKUs only
	requests map[string]int

	hangN       int
	hangFor     time.Duration
	down        bool
	downUntil   time.Time
	failN       int
	failStatus  int
	throttleN   int
	throttleFor time.Duration
	dropN       int
}

// New starts a store on a loopback port; it is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		quit:     make(chan struct{}),
		stock:    map[string]int64{},
		requests: map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(func() {
		close(s.quit)
		s.srv.Close()
	})
	return s
}

// URL is the store's base URL (http://127.0.0.1:port, no trailing slash).
func (s *Server) URL() string { return s.srv.URL }

// Token is the bearer token the store accepts.
func (s *Server) Token() string { return DefaultToken }

// Count returns how many store orders carry externalID: more than one
// means the bridge wrote an order twice.
func (s *Server) Count(externalID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.orders {
		if o.ExternalID == externalID {
			n++
		}
	}
	return n
}

// Orders returns copies of every store order, oldest first.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, len(s.orders))
	for i, o := range s.orders {
		out[i] = o.clone()
	}
	return out
}

// SetStock tracks the stock of sku: creates may take at most n units of
// it in total. SKUs never set are not tracked (unlimited).
func (s *Server) SetStock(sku string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stock[sku] = n
}

// Stock returns what is left of sku, and whether the store tracks it.
func (s *Server) Stock(sku string) (n int64, tracked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, tracked = s.stock[sku]
	return n, tracked
}

// Requests returns how many requests reached the store as key, "METHOD
// /path" without the query: Requests("POST /orders"). Faulted and
// unauthorized requests count too.
func (s *Server) Requests(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[key]
}

// FailNext makes the next n requests answer status (a 5xx, without
// Retry-After) before anything is processed. It replaces an earlier
// FailNext still armed.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// ThrottleNext makes the next n requests answer 429 with Retry-After set
// to retryAfter in whole seconds, rounded up (no header when retryAfter is
// 0), before anything is processed. It replaces an earlier ThrottleNext
// still armed.
func (s *Server) ThrottleNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleN, s.throttleFor = n, retryAfter
}

// HangNext makes the next n requests wait d before the store gets to
// them. A client that gives up during the wait leaves nothing behind: the
// request is not processed. It replaces an earlier HangNext still armed.
func (s *Server) HangNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangN, s.hangFor = n, d
}

// DropAfterCommitNext makes the next n creates commit their order and
// then close the connection without answering: the client cannot know
// whether the order exists (it does). Only creates that would have
// succeeded consume it. It replaces an earlier DropAfterCommitNext still
// armed.
func (s *Server) DropAfterCommitNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = n
}

// SetDown makes every request answer 503 until SetDown(false) (which also
// ends a DownFor).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	if !down {
		s.downUntil = time.Time{}
	}
}

// DownFor makes every request answer 503 for d from now.
func (s *Server) DownFor(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downUntil = time.Now().Add(d)
}

// fault is what the switches decided for one request.
type fault struct {
	hang       time.Duration
	status     int // 0: none
	retryAfter time.Duration
	code       string
}

// takeFault consumes at most one armed fault of each kind that applies,
// under the lock, so concurrent requests never consume one count twice.
func (s *Server) takeFault(key string) fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[key]++
	var f fault
	if s.hangN > 0 {
		s.hangN--
		f.hang = s.hangFor
	}
	switch {
	case s.down || time.Now().Before(s.downUntil):
		f.status, f.code = http.StatusServiceUnavailable, "unavailable"
	case s.failN > 0:
		s.failN--
		f.status = s.failStatus
		f.code = strings.ToLower(strings.ReplaceAll(http.StatusText(s.failStatus), " ", "_")) // 502 → bad_gateway
	case s.throttleN > 0:
		s.throttleN--
		f.status, f.code, f.retryAfter = http.StatusTooManyRequests, "rate_limited", s.throttleFor
	}
	return f
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	f := s.takeFault(r.Method + " " + r.URL.Path)
	// Read the body first: net/http notices a client hanging up (and ends
	// r.Context) only once the body was read, and a hang must end when the
	// client gives up, so that nothing is processed after it.
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if f.hang > 0 {
		t := time.NewTimer(f.hang)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up: the store never gets to the request
		case <-s.quit:
			t.Stop()
			return
		}
	}
	if f.status != 0 {
		if f.retryAfter > 0 {
			secs := (f.retryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		}
		writeError(w, f.status, f.code, http.StatusText(f.status))
		return
	}
	if !authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fakestore"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid access token")
		return
	}

	switch path := r.URL.Path; {
	case path == "/orders" && r.Method == http.MethodPost:
		s.create(w, body, bodyErr)
	case path == "/orders" && r.Method == http.MethodGet:
		s.search(w, r)
	case strings.HasPrefix(path, "/orders/") && r.Method == http.MethodGet:
		s.get(w, strings.TrimPrefix(path, "/orders/"))
	case path == "/orders" || strings.HasPrefix(path, "/orders/"):
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	}
}

// authorized compares in constant time: the fake should not teach a
// pattern the real adapters must avoid.
func authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(DefaultToken)) == 1
}

func (s *Server) create(w http.ResponseWriter, body []byte, bodyErr error) {
	var tooBig *http.MaxBytesError
	if errors.As(bodyErr, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the body exceeds 1 MiB")
		return
	}
	var in NewOrder
	if bodyErr != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", "the body could not be read")
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body is not a JSON order")
		return
	}
	need, err := validate(in)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", err.Error())
		return
	}

	s.mu.Lock()
	// Check every line before taking anything: a refused create changes
	// nothing.
	for _, sku := range sortedKeys(need) {
		if have, tracked := s.stock[sku]; tracked && need[sku] > have {
			s.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, "insufficient_stock",
				fmt.Sprintf("sku %s: %d requested, %d in stock", sku, need[sku], have))
			return
		}
	}
	for sku, q := range need {
		if _, tracked := s.stock[sku]; tracked {
			s.stock[sku] -= q
		}
	}
	id := "S-" + strconv.Itoa(len(s.orders)+1)
	o := Order{
		ID: id, ExternalID: in.ExternalID, Status: "open", URL: s.srv.URL + "/orders/" + id,
		Currency: in.Currency, Total: in.Total, Lines: in.Lines, Email: in.Email,
		ShippingAddress: in.ShippingAddress, CreatedAt: time.Now().UTC(),
	}
	s.orders = append(s.orders, o)
	drop := s.dropN > 0
	if drop {
		s.dropN--
	}
	out := o.clone()
	s.mu.Unlock()

	if drop {
		// Committed above; now the answer is lost. Hijacking lets us close
		// the TCP connection before any byte of a response is written.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(fmt.Sprintf("fakestore: hijack for DropAfterCommitNext: %v", err))
		}
		_ = conn.Close()
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// validate checks a create the way a store does, and returns the quantity
// asked per SKU.
func validate(in NewOrder) (map[string]int64, error) {
	if in.ExternalID == "" {
		return nil, errors.New("external_id is required")
	}
	if _, err := bridge.ParseMoney(in.Total, in.Currency); err != nil {
		return nil, fmt.Errorf("total: %w", err)
	}
	if len(in.Lines) == 0 {
		return nil, errors.New("an order needs at least one line")
	}
	need := map[string]int64{}
	for i, l := range in.Lines {
		if l.SKU == "" {
			return nil, fmt.Errorf("lines[%d].sku is required", i)
		}
		if l.Quantity <= 0 {
			return nil, fmt.Errorf("lines[%d].quantity must be positive", i)
		}
		if _, err := bridge.ParseMoney(l.UnitPrice, in.Currency); err != nil {
			return nil, fmt.Errorf("lines[%d].unit_price: %w", i, err)
		}
		need[l.SKU] += l.Quantity
	}
	if a := in.ShippingAddress; a != nil && (a.Line1 == "" || a.City == "" || a.Country == "") {
		return nil, errors.New("shipping_address needs line1, city and country")
	}
	return need, nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ext, filtered := q["external_id"]
	s.mu.Lock()
	list := OrderList{Orders: []Order{}} // [] rather than null, as stores answer
	for _, o := range s.orders {
		if !filtered || slices.Contains(ext, o.ExternalID) {
			list.Orders = append(list.Orders, o.clone())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) get(w http.ResponseWriter, id string) {
	s.mu.Lock()
	i := slices.IndexFunc(s.orders, func(o Order) bool { return o.ID == id })
	var o Order
	if i >= 0 {
		o = s.orders[i].clone()
	}
	s.mu.Unlock()
	if i < 0 {
		writeError(w, http.StatusNotFound, "not_found", "no order "+id)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}
