// Package fakeshopify is a fake Shopify Admin GraphQL API for tests, built
// from Shopify's documentation (docs/store-apis.md §1, §4): the
// X-Shopify-Access-Token header (a static token or one from the
// client-credentials grant), the version echoed in X-Shopify-API-Version
// (a version it does not serve falls forward to the oldest it does),
// cost-based throttling with the cost in every response's extensions and
// THROTTLED answered with HTTP 200, real opaque cursors, bulk operations
// writing JSONL with __parentId, orderCreate with userErrors and
// inventory claims, a search index that lags behind writes, and signed
// webhooks.
//
// Every GraphQL document it receives is parsed and validated against
// schema.graphql, the subset of Shopify's schema the bridge uses, written
// in SDL from the reference: a misspelt field, argument or input field is
// answered with GraphQL errors as Shopify would, so a typo in the
// adapter's queries fails its tests. The inner query of a bulk operation
// is validated the same way.
//
// Fault switches let tests flip on what a real shop does on a bad day:
// HTTP statuses (429 with Retry-After, 5xx), a drained cost bucket, the
// development store limit of 5 orders a minute, userErrors on the next
// orderCreate, and an order committed before the connection drops.
package fakeshopify

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"
)

//go:embed schema.graphql
var schemaSDL string

// DefaultToken is the static access token a Server accepts.
const DefaultToken = "shpat_fake_test_token"

// Versions the fake serves, oldest first.
var Versions = []string{"2025-10", "2026-01", "2026-04", "2026-07", "2026-10"}

// Config configures a Server. Zero values take the defaults.
type Config struct {
	// Token is the static access token accepted (default DefaultToken).
	Token string
	// ClientID and ClientSecret enable the client-credentials grant; the
	// tokens it issues expire after TokenTTL (default 24h). ClientSecret
	// also signs webhooks (Shopify signs them with the app's secret).
	ClientID, ClientSecret string
	TokenTTL               time.Duration
	// Currency is the shop's currency (default USD).
	Currency string
	// BucketSize and RestoreRate are the cost bucket (default 2000 points,
	// 100 points a second: a Standard plan).
	BucketSize, RestoreRate float64
	// OrdersPerMinute limits orderCreate like a development or trial store
	// (5); 0 means no limit.
	OrdersPerMinute int
	// SearchLag is how long a new order stays invisible to orders(query:);
	// with LagUnfiltered, to an unfiltered orders list as well (a lookup's
	// worst case).
	SearchLag     time.Duration
	LagUnfiltered bool
	// ProductSearchLag is how long a product created or updated stays out
	// of products(query:) results (the search index catches up later);
	// node, nodes and product read it at once.
	ProductSearchLag time.Duration
	// ClockSkew sets the shop's clock off the test's: the times the shop
	// stamps (updatedAt, createdAt) are time.Now() + ClockSkew, as with a
	// bridge host whose clock drifted.
	ClockSkew time.Duration
	// BulkDelay is how long a bulk operation stays RUNNING.
	BulkDelay time.Duration
}

// Server is a running fake shop. It is safe for concurrent use.
type Server struct {
	URL    string
	srv    *httptest.Server
	cfg    Config
	schema *ast.Schema

	mu           sync.Mutex
	products     map[int64]*Product
	locations    []Location
	orders       []*Order
	nextID       int64
	bucket       float64
	bucketAt     time.Time
	tokens       map[string]time.Time
	calls        map[string]int
	total        int
	throttled    int
	points       int
	faults       []fault
	commitFaults []commitFault
	gqlFaults    []string
	refusals     []UserError
	besides      []UserError // userErrors answered beside a created order
	orderLog     []time.Time
	bulk         *bulkOp
	bulkFiles    map[string][]byte
	bulkSeq      int
	documents    []string
	downloads    []http.Header
	cutDownloads int
}

type fault struct {
	status     int
	retryAfter string
}

// UserError is an orderCreate userError the next call answers with.
type UserError struct {
	Code    string
	Message string
	Field   []string
}

// New starts a fake shop with one location (id 1) and no products; it
// stops when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake shop outside a test (benchmark tools). Close it.
func NewServer(cfg Config) *Server {
	if cfg.Token == "" {
		cfg.Token = DefaultToken
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	if cfg.Currency == "" {
		cfg.Currency = "USD"
	}
	if cfg.BucketSize == 0 {
		cfg.BucketSize = 2000
	}
	if cfg.RestoreRate == 0 {
		cfg.RestoreRate = 100
	}
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: schemaSDL})
	if err != nil {
		panic("fakeshopify: schema.graphql: " + err.Error())
	}
	s := &Server{
		cfg: cfg, schema: schema,
		products: map[int64]*Product{}, locations: []Location{{ID: 1, Name: "Warehouse"}},
		nextID: 1000, bucket: cfg.BucketSize, bucketAt: time.Now(),
		tokens: map[string]time.Time{}, calls: map[string]int{}, bulkFiles: map[string][]byte{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/api/{version}/graphql.json", s.graphql)
	mux.HandleFunc("POST /admin/oauth/access_token", s.accessToken)
	mux.HandleFunc("GET /bulk/{name}", s.download)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// now is the shop's clock.
func (s *Server) now() time.Time { return time.Now().Add(s.cfg.ClockSkew) }

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// writeJSON answers like Shopify: JSON, with the version served.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// accessToken is the client-credentials grant (form-encoded, like
// Shopify's /admin/oauth/access_token).
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if s.cfg.ClientID == "" || r.PostForm.Get("client_id") != s.cfg.ClientID || r.PostForm.Get("client_secret") != s.cfg.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "Client authentication failed"})
		return
	}
	s.mu.Lock()
	s.calls["oauth"]++
	tok := fmt.Sprintf("shpca_fake_%d", s.id())
	s.tokens[tok] = time.Now().Add(s.cfg.TokenTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "scope": "read_products,read_inventory,read_orders,write_orders",
		"expires_in": int(s.cfg.TokenTTL / time.Second)})
}

// ExpireTokens ends every token the grant issued (a token past its 24 h).
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.tokens {
		s.tokens[k] = time.Now().Add(-time.Second)
	}
}

func (s *Server) authorized(tok string) bool {
	if tok == "" {
		return false
	}
	if tok == s.cfg.Token {
		return true
	}
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// served is the version a request for v gets: v when served, else the
// oldest supported one (Shopify's fall-forward).
func served(v string) string {
	if slices.Contains(Versions, v) {
		return v
	}
	return Versions[0]
}

type gqlRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Locations  []any          `json:"locations,omitempty"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Shopify-API-Version", served(r.PathValue("version")))
	s.mu.Lock()
	s.total++
	if !s.authorized(r.Header.Get("X-Shopify-Access-Token")) {
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
		return
	}
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		s.mu.Unlock()
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		body := map[string]any{"errors": http.StatusText(f.status)}
		if f.status == http.StatusTooManyRequests {
			body["errors"] = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
		}
		writeJSON(w, f.status, body)
		return
	}
	if len(s.gqlFaults) > 0 {
		code := s.gqlFaults[0]
		s.gqlFaults = s.gqlFaults[1:]
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"data": nil,
			"errors": []gqlError{{Message: "Refused (" + code + ")", Extensions: map[string]any{"code": code}}}})
		return
	}
	s.mu.Unlock()

	var req gqlRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil || req.Query == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"errors": "Invalid JSON in request body, or no query"})
		return
	}
	doc, errs := gqlparser.LoadQueryWithRules(s.schema, req.Query, nil)
	if len(errs) > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"errors": toGQLErrors(errs)})
		return
	}
	op := doc.Operations.ForName(req.OperationName)
	if op == nil {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Message: "no operation named " + strconv.Quote(req.OperationName)}}})
		return
	}
	vars, err := validator.VariableValues(s.schema, op, req.Variables)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Message: err.Error(), Extensions: map[string]any{"code": "INVALID_VARIABLE"}}}})
		return
	}

	s.mu.Lock()
	s.documents = append(s.documents, req.Query)
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			s.calls[f.Name]++
		}
	}
	requested := requestedCost(s.schema, op, vars)
	if requested > 1000 {
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{
			Message:    fmt.Sprintf("Query cost is %d, which exceeds the single query max cost limit (1000).", requested),
			Extensions: map[string]any{"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": 1000}}}})
		return
	}
	avail := s.refill()
	if float64(requested) > avail {
		s.throttled++
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"errors":     []gqlError{{Message: "Throttled", Extensions: map[string]any{"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}},
			"extensions": s.costExtension(requested, nil, avail),
		})
		return
	}
	s.bucket -= float64(requested)
	x := &executor{schema: s.schema, vars: vars}
	var root obj
	if op.Operation == ast.Mutation {
		root = s.mutationRoot()
	} else {
		root = s.queryRoot(false)
	}
	data, err := x.selectionSet(root, op.SelectionSet)
	// A commit fault hits an orderCreate that created an order.
	var cf commitFault
	if oc, _ := data["orderCreate"].(map[string]any); err == nil && oc != nil && oc["order"] != nil && len(s.commitFaults) > 0 {
		cf = s.commitFaults[0]
		s.commitFaults = s.commitFaults[1:]
	}
	actual := requested
	if op.Operation != ast.Mutation {
		actual = min(requested, countObjects(data))
	}
	s.bucket = math.Min(s.cfg.BucketSize, s.bucket+float64(requested-actual))
	s.points += actual
	ext := s.costExtension(requested, &actual, s.bucket)
	s.mu.Unlock()

	var limited *rateLimited
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.seconds))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"errors": "Too many orders created for a development store: at most 5 a minute"})
	case err != nil:
		writeJSON(w, http.StatusOK, map[string]any{"data": nil, "errors": []gqlError{{Message: err.Error()}}, "extensions": ext})
	case cf.kind == faultInternal:
		// The order is committed; Shopify answers a GraphQL error (an
		// internal error, or one of a code the client may not know),
		// with the order in the data or without it.
		d := map[string]any{"orderCreate": nil}
		if cf.keepData {
			d = data
		}
		msg := "Internal error. Looks like something went wrong on our end."
		if cf.code != "INTERNAL_SERVER_ERROR" {
			msg = "Something unexpected happened (" + cf.code + ")."
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": d,
			"errors": []gqlError{{Message: msg, Extensions: map[string]any{"code": cf.code}}}, "extensions": ext})
	case cf.kind == faultStatus:
		// The order is committed; a proxy in front of Shopify answers 500.
		writeJSON(w, http.StatusInternalServerError, map[string]any{"errors": "Internal Server Error"})
	case cf.kind == faultGarble:
		// The order is committed; the 200 answer is cut short.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"data":{"orderCreate":{"order":{"id":`))
	case cf.kind == faultDrop:
		// The order is committed; the answer is lost on the way.
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("fakeshopify: cannot drop the connection")
		}
		conn, _, herr := hj.Hijack()
		if herr == nil {
			_ = conn.Close()
		}
	default:
		writeJSON(w, http.StatusOK, map[string]any{"data": data, "extensions": ext})
	}
}

func toGQLErrors(errs gqlerror.List) []gqlError {
	out := make([]gqlError, len(errs))
	for i, e := range errs {
		out[i] = gqlError{Message: e.Message, Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}}
		for _, l := range e.Locations {
			out[i].Locations = append(out[i].Locations, map[string]int{"line": l.Line, "column": l.Column})
		}
	}
	return out
}

// refill restores the bucket for the time passed and returns what is
// available. Call with mu held.
func (s *Server) refill() float64 {
	now := time.Now()
	s.bucket = math.Min(s.cfg.BucketSize, s.bucket+now.Sub(s.bucketAt).Seconds()*s.cfg.RestoreRate)
	s.bucketAt = now
	return s.bucket
}

func (s *Server) costExtension(requested int, actual *int, avail float64) map[string]any {
	var act any
	if actual != nil {
		act = *actual
	}
	return map[string]any{"cost": map[string]any{
		"requestedQueryCost": requested,
		"actualQueryCost":    act,
		"throttleStatus": map[string]any{
			"maximumAvailable":   s.cfg.BucketSize,
			"currentlyAvailable": math.Floor(avail),
			"restoreRate":        s.cfg.RestoreRate,
		},
	}}
}

// Fail makes the next n GraphQL requests answer status (after auth), with
// Retry-After when retryAfter is not empty (Shopify sends "2.0").
func (s *Server) Fail(n, status int, retryAfter string) {
	enqueue(&s.mu, &s.faults, fault{status: status, retryAfter: retryAfter}, n)
}

// enqueue appends n copies of v to a fault queue under mu.
func enqueue[T any](mu *sync.Mutex, q *[]T, v T, n int) {
	mu.Lock()
	defer mu.Unlock()
	for range n {
		*q = append(*q, v)
	}
}

// DrainBucket empties the cost bucket: the next costly query is THROTTLED.
func (s *Server) DrainBucket() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refill()
	s.bucket = 0
}

// Commit faults.
const (
	faultDrop     = "drop"
	faultInternal = "internal"
	faultGarble   = "garble"
	faultStatus   = "status"
)

// commitFault is what an orderCreate that created its order answers.
type commitFault struct {
	kind     string
	code     string // faultInternal: the error's code
	keepData bool   // faultInternal: the order is in the data too
}

// DropAfterCommit makes the next n successful orderCreate calls commit the
// order and then close the connection without an answer.
func (s *Server) DropAfterCommit(n int) {
	enqueue(&s.mu, &s.commitFaults, commitFault{kind: faultDrop}, n)
}

// ErrorAfterCommit makes the next n successful orderCreate calls commit the
// order and then answer HTTP 200 with an INTERNAL_SERVER_ERROR GraphQL
// error and no data.
func (s *Server) ErrorAfterCommit(n int) { s.CodeAfterCommit(n, "INTERNAL_SERVER_ERROR", false) }

// CodeAfterCommit makes the next n successful orderCreate calls commit the
// order and then answer HTTP 200 with a GraphQL error of code, and the
// created order in the data when keepData.
func (s *Server) CodeAfterCommit(n int, code string, keepData bool) {
	enqueue(&s.mu, &s.commitFaults, commitFault{kind: faultInternal, code: code, keepData: keepData}, n)
}

// Fail500AfterCommit makes the next n successful orderCreate calls commit
// the order and then answer HTTP 500.
func (s *Server) Fail500AfterCommit(n int) {
	enqueue(&s.mu, &s.commitFaults, commitFault{kind: faultStatus}, n)
}

// GarbleAfterCommit makes the next n successful orderCreate calls commit
// the order and then answer HTTP 200 with a body cut short.
func (s *Server) GarbleAfterCommit(n int) {
	enqueue(&s.mu, &s.commitFaults, commitFault{kind: faultGarble}, n)
}

// RejectNext makes the next n GraphQL requests (after auth) answer HTTP
// 200 with a GraphQL error of code and null data, running nothing: what
// Shopify answers to ACCESS_DENIED or a query it will not run.
func (s *Server) RejectNext(n int, code string) { enqueue(&s.mu, &s.gqlFaults, code, n) }

// RefuseNextOrder makes the next orderCreate answer with e as its
// userErrors, creating nothing.
func (s *Server) RefuseNextOrder(e UserError) { enqueue(&s.mu, &s.refusals, e, 1) }

// ErrorsBesideNextOrder makes the next orderCreate that creates its order
// answer e as userErrors too (an answer the API's shape allows).
func (s *Server) ErrorsBesideNextOrder(e UserError) { enqueue(&s.mu, &s.besides, e, 1) }

// CutDownloads makes the next n bulk result downloads end halfway, at a
// line's end.
func (s *Server) CutDownloads(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutDownloads += n
}

// Calls returns how many times each root field was asked for (products,
// orderCreate …), plus "oauth" for token grants.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Requests is the number of GraphQL requests received, refused ones
// included; Points the cost points charged.
func (s *Server) Requests() (requests, points int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.points
}

// Throttled is the number of queries answered THROTTLED.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// Documents returns the GraphQL documents received, in order.
func (s *Server) Documents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.documents)
}

// DownloadHeaders returns the headers of every bulk result download.
func (s *Server) DownloadHeaders() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.downloads)
}
