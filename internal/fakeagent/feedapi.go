package fakeagent

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/internal/acpspec"
	"github.com/acp-bridge/bridge/internal/reqsign"
)

// FeedAPIVersion is the API version the fake Feed API speaks.
const FeedAPIVersion = "2026-04-17"

// feedOpenAPI is the spec file whose operations the fake serves.
const feedOpenAPI = "openapi.feed.yaml"

// maxFeedBody bounds what the fake Feed API reads of a request.
const maxFeedBody = 16 << 20

// FeedAPI is an agent-hosted ACP Feed API for tests (openapi.feed.yaml,
// 2026-04-17), as strict as a real agent should be: the bearer token, the
// API-Version, the Content-Type and an Idempotency-Key on every mutating
// request, a valid signature when a signing secret is set, and every body
// validated against both the JSON Schema (schema.feed.json) and the
// operation's OpenAPI request schema. Idempotency keys replay the first
// answer (a key reused with another body is a 422). Products are kept by
// id, upserted as the spec says; fault switches (embedded Faults) and
// per-product refusals make requests fail. Its methods are safe for
// concurrent use.
type FeedAPI struct {
	Faults
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	secret   string
	feeds    map[string]*fakeFeed
	keys     map[string]keyed
	refuse   map[string]string // product id → message of the 422
	decline  map[string]bool   // product ids answered accepted:false
	failures []Failure
	requests int
	patches  [][]string // product ids of each applied PATCH
	bytes    int64      // body bytes of applied PATCHes
	nextID   int
}

type fakeFeed struct {
	country  string
	updated  time.Time
	products map[string]json.RawMessage
}

// keyed is the stored answer of an idempotency key.
type keyed struct {
	body   []byte
	status int
	answer []byte
}

// NewFeedAPI starts a fake Feed API that accepts token; it stops when the
// test ends.
func NewFeedAPI(tb testing.TB, token string) *FeedAPI {
	tb.Helper()
	f := &FeedAPI{token: token, feeds: map[string]*fakeFeed{}, keys: map[string]keyed{}, refuse: map[string]string{}, decline: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /feeds", f.handle(f.create))
	mux.HandleFunc("GET /feeds/{id}", f.handle(f.get))
	mux.HandleFunc("GET /feeds/{id}/products", f.handle(f.getProducts))
	mux.HandleFunc("PATCH /feeds/{id}/products", f.handle(f.upsert))
	f.srv = httptest.NewServer(mux)
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the Feed API's base URL.
func (f *FeedAPI) URL() string { return f.srv.URL }

// SetSigningSecret makes every request need a valid Signature ("" turns
// the check off).
func (f *FeedAPI) SetSigningSecret(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secret = s
}

// RefuseProduct makes every upsert that holds product id fail with 422
// invalid_product_payload, as an agent refuses a whole request for one bad
// product. An empty message accepts the product again.
func (f *FeedAPI) RefuseProduct(id, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if message == "" {
		delete(f.refuse, id)
		return
	}
	f.refuse[id] = message
}

// DeclineProduct makes every upsert that holds product id answer 200
// with accepted:false, nothing applied (an agent that takes the request
// but not its products); off turns it back.
func (f *FeedAPI) DeclineProduct(id string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.decline[id] = true
	} else {
		delete(f.decline, id)
	}
}

// AddFeed makes a feed as onboarding would, and returns its id.
func (f *FeedAPI) AddFeed(country string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addFeed(country)
}

func (f *FeedAPI) addFeed(country string) string {
	f.nextID++
	id := fmt.Sprintf("feed_%d", f.nextID)
	f.feeds[id] = &fakeFeed{country: country, updated: time.Now().UTC(), products: map[string]json.RawMessage{}}
	return id
}

// Feeds returns the ids of the feeds made.
func (f *FeedAPI) Feeds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.feeds))
}

// Products returns the products of feed id as last upserted, by id.
func (f *FeedAPI) Products(id string) map[string]json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ff := f.feeds[id]; ff != nil {
		return maps.Clone(ff.products)
	}
	return nil
}

// Patches returns the product ids of every applied upsert, in order
// (replays of an idempotency key are not applied again).
func (f *FeedAPI) Patches() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.patches)
}

// ResetPatches forgets the recorded upserts (the products stay).
func (f *FeedAPI) ResetPatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.patches, f.bytes = nil, 0
}

// PatchBytes is the body bytes of the applied upserts.
func (f *FeedAPI) PatchBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}

// Failures returns the requests the fake refused for a wrong token,
// version, signature, header or body (not fault switches or product
// refusals). A test of a correct client asserts there are none.
func (f *FeedAPI) Failures() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.failures)
}

// Requests counts every request that reached the fake.
func (f *FeedAPI) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// answer is an operation's outcome: status and JSON body.
type answer struct {
	status int
	body   any
}

func feedError(status int, code, msg, param string) answer {
	e := map[string]string{"type": "invalid_request", "code": code, "message": msg}
	if param != "" {
		e["param"] = param
	}
	return answer{status, e}
}

// handle runs the checks every operation shares, then op, replaying the
// answer of an idempotency key seen before.
func (f *FeedAPI) handle(op func(r *http.Request, body []byte) answer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests++
		f.mu.Unlock()
		if f.applyNext(w, r) {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFeedBody+1))
		if err != nil || len(body) > maxFeedBody {
			f.fail(w, "request", http.StatusBadRequest, "unreadable_body", fmt.Sprintf("body unreadable or over %d bytes", maxFeedBody))
			return
		}
		if kind, status, code, msg := f.check(r, body); kind != "" {
			f.fail(w, kind, status, code, msg)
			return
		}
		mutating := r.Method != http.MethodGet
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		defer f.mu.Unlock()
		if mutating {
			if k, ok := f.keys[key]; ok {
				if !bytes.Equal(k.body, body) {
					writeFeedJSON(w, feedError(http.StatusUnprocessableEntity, "idempotency_conflict", "Idempotency-Key reused with another body", ""))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(k.status)
				_, _ = w.Write(k.answer)
				return
			}
		}
		a := op(r, body)
		raw := writeFeedJSON(w, a)
		if mutating && a.status < 500 {
			f.keys[key] = keyed{body: body, status: a.status, answer: raw}
		}
	}
}

// check applies the rules of every request; kind is "" when it passes.
func (f *FeedAPI) check(r *http.Request, body []byte) (kind string, status int, code, msg string) {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || got != f.token {
		return "request", http.StatusUnauthorized, "invalid_token", "missing or wrong bearer token"
	}
	if v := r.Header.Get("API-Version"); v != FeedAPIVersion {
		return "request", http.StatusBadRequest, "unsupported_api_version", fmt.Sprintf("API-Version %q, want %s", v, FeedAPIVersion)
	}
	for _, h := range []string{"Request-Id", "Timestamp"} {
		if r.Header.Get(h) == "" {
			return "request", http.StatusBadRequest, "missing_header", h + " header missing"
		}
	}
	ts := r.Header.Get("Timestamp")
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "request", http.StatusBadRequest, "invalid_timestamp", "Timestamp is not RFC 3339"
	}
	f.mu.Lock()
	secret := f.secret
	f.mu.Unlock()
	if secret != "" {
		sig, err := base64.RawURLEncoding.DecodeString(r.Header.Get("Signature"))
		if d := time.Since(at); err != nil || d > 5*time.Minute || d < -5*time.Minute ||
			!hmac.Equal(sig, reqsign.MAC([]byte(secret), ts, body)) {
			return "signature", http.StatusUnauthorized, "invalid_signature", "signature missing, stale or wrong"
		}
	}
	if r.Method == http.MethodGet {
		return "", 0, "", ""
	}
	if r.Header.Get("Idempotency-Key") == "" {
		return "request", http.StatusBadRequest, "idempotency_key_required", "Idempotency-Key header missing"
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return "request", http.StatusBadRequest, "invalid_content_type", "Content-Type must be application/json"
	}
	def, opPath := "CreateFeedRequest", "/feeds"
	if r.Method == http.MethodPatch {
		def, opPath = "UpsertProductsRequest", "/feeds/{id}/products"
	}
	if err := acpspec.Validate(FeedAPIVersion, "schema.feed.json", def, body); err != nil {
		return "schema", http.StatusBadRequest, "invalid_request_body", "schema.feed.json#" + def + ": " + err.Error()
	}
	if err := acpspec.ValidateRequest(FeedAPIVersion, feedOpenAPI, opPath, strings.ToLower(r.Method), body); err != nil {
		return "schema", http.StatusBadRequest, "invalid_request_body", feedOpenAPI + " " + r.Method + " " + opPath + ": " + err.Error()
	}
	return "", 0, "", ""
}

func (f *FeedAPI) create(_ *http.Request, body []byte) answer {
	var req struct {
		TargetCountry string `json:"target_country"`
	}
	_ = json.Unmarshal(body, &req) // valid per schema
	id := f.addFeed(req.TargetCountry)
	return answer{http.StatusCreated, f.metadata(id)}
}

func (f *FeedAPI) metadata(id string) map[string]string {
	ff := f.feeds[id]
	m := map[string]string{"id": id, "updated_at": ff.updated.Format(time.RFC3339)}
	if ff.country != "" {
		m["target_country"] = ff.country
	}
	return m
}

func (f *FeedAPI) get(r *http.Request, _ []byte) answer {
	id := r.PathValue("id")
	if f.feeds[id] == nil {
		return feedError(http.StatusNotFound, "feed_not_found", "Feed not found", "id")
	}
	return answer{http.StatusOK, f.metadata(id)}
}

func (f *FeedAPI) getProducts(r *http.Request, _ []byte) answer {
	ff := f.feeds[r.PathValue("id")]
	if ff == nil {
		return feedError(http.StatusNotFound, "feed_not_found", "Feed not found", "id")
	}
	ps := make([]json.RawMessage, 0, len(ff.products))
	for _, id := range slices.Sorted(maps.Keys(ff.products)) {
		ps = append(ps, ff.products[id])
	}
	return answer{http.StatusOK, map[string]any{"products": ps}}
}

func (f *FeedAPI) upsert(r *http.Request, body []byte) answer {
	id := r.PathValue("id")
	ff := f.feeds[id]
	if ff == nil {
		return feedError(http.StatusNotFound, "feed_not_found", "Feed not found", "id")
	}
	var req struct {
		Products []json.RawMessage `json:"products"`
	}
	_ = json.Unmarshal(body, &req) // valid per schema
	ids := make([]string, len(req.Products))
	for i, p := range req.Products {
		var head struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(p, &head)
		if msg, bad := f.refuse[head.ID]; bad {
			return feedError(http.StatusUnprocessableEntity, "invalid_product_payload", msg, fmt.Sprintf("$.products[%d]", i))
		}
		ids[i] = head.ID
	}
	for _, pid := range ids {
		if f.decline[pid] {
			return answer{http.StatusOK, map[string]any{"id": id, "accepted": false}}
		}
	}
	for i, p := range req.Products {
		ff.products[ids[i]] = p
	}
	ff.updated = time.Now().UTC()
	f.patches = append(f.patches, ids)
	f.bytes += int64(len(body))
	return answer{http.StatusOK, map[string]any{"id": id, "accepted": true}}
}

func (f *FeedAPI) fail(w http.ResponseWriter, kind string, status int, code, msg string) {
	f.mu.Lock()
	f.failures = append(f.failures, Failure{Kind: kind, Err: code + ": " + msg, Status: status})
	f.mu.Unlock()
	writeFeedJSON(w, feedError(status, code, msg, ""))
}

// writeFeedJSON writes a and returns the body written.
func writeFeedJSON(w http.ResponseWriter, a answer) []byte {
	b, _ := json.Marshal(a.body) // maps, strings and raw JSON always encode
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write(b)
	return b
}
