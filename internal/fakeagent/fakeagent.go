// Package fakeagent holds strict fakes of an agent for tests: the
// order-webhook receiver (Agent) and the agent-hosted ACP Feed API
// (FeedAPI, feedapi.go), sharing the fault switches (Faults).
//
// The webhook receiver is an httptest server that does what a strict
// agent does with each request — verify the Merchant-Signature (401
// invalid_signature otherwise, as the spec says), validate the body
// against the official webhook schema of the request's API-Version (400
// otherwise), drop duplicates by Request-Id — and records what it
// received, so that tests can assert both what arrived and that nothing
// was refused.
//
// Fault switches make the next requests fail the ways real receivers do:
// a 5xx, a 429 with Retry-After, a slow answer, a dropped connection, or
// any status with any body.
package fakeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/agenthook"
	"github.com/acp-bridge/bridge/internal/acpspec"
)

// Path is where the fake listens, the spec's endpoint.
const Path = "/agentic_checkout/webhooks/order_events"

// maxBody bounds what the fake reads of a request.
const maxBody = 1 << 20

// Event is one distinct event received and accepted.
type Event struct {
	RequestID string
	Type      string
	// OrderID is data.id (2026-04-17; older events carry no order id).
	OrderID string
	// Status is data.status, in the version's vocabulary.
	Status    string
	SessionID string
	Version   acp.Version
	Body      []byte
	Header    http.Header
}

// Failure is a request the fake refused (other than by a fault switch).
type Failure struct {
	Kind      string // "signature", "schema", "request"
	RequestID string
	Err       string
	Status    int
}

// Fault is what the fake does instead of answering a request normally.
type Fault struct {
	// Status answers with this code and Body (Retry-After when RetryAfter
	// is set); the request is not processed.
	Status     int
	Body       string
	RetryAfter time.Duration
	// Hang waits this long (or until the client gives up) before handling
	// the request normally: a slow agent that still processes the event.
	Hang time.Duration
	// Drop reads the request and closes the connection without an answer;
	// the event is not processed.
	Drop bool
}

// Agent is the fake receiver. Its methods are safe for concurrent use.
type Agent struct {
	Faults
	srv *httptest.Server

	mu        sync.Mutex
	secret    string
	tolerance time.Duration
	now       func() time.Time
	events    []Event
	seen      map[string]bool
	failures  []Failure
	requests  int
	dupes     int
	changed   chan struct{} // closed and replaced whenever events change
}

// New starts a fake agent checking signatures with secret; it stops when
// the test ends.
func New(tb testing.TB, secret string) *Agent {
	tb.Helper()
	a := &Agent{secret: secret, tolerance: agenthook.DefaultTolerance, now: time.Now,
		seen: map[string]bool{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, a.handle)
	a.srv = httptest.NewServer(mux)
	tb.Cleanup(a.srv.Close)
	return a
}

// URL is the webhook endpoint to configure in the sender.
func (a *Agent) URL() string { return a.srv.URL + Path }

// Close stops the server (also done at the end of the test).
func (a *Agent) Close() { a.srv.Close() }

// SetSecret changes the secret signatures are checked with.
func (a *Agent) SetSecret(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secret = s
}

// SetClock sets the receiver's clock and signature tolerance (≤ 0:
// agenthook.DefaultTolerance).
func (a *Agent) SetClock(now func() time.Time, tolerance time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now, a.tolerance = now, tolerance
}

// Events returns the distinct events accepted, in arrival order.
func (a *Agent) Events() []Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// Failures returns the requests refused for a bad signature, an invalid
// body or a malformed request. A test expecting clean deliveries asserts
// there are none.
func (a *Agent) Failures() []Failure {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.failures)
}

// Requests counts every request that reached the handler, faults and
// duplicates included.
func (a *Agent) Requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// Duplicates counts accepted requests whose Request-Id had been seen.
func (a *Agent) Duplicates() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dupes
}

// WaitEvents waits until n distinct events were accepted, or timeout.
func (a *Agent) WaitEvents(n int, timeout time.Duration) ([]Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return a.WaitEventsContext(ctx, n)
}

// WaitEventsContext is WaitEvents bounded by ctx.
func (a *Agent) WaitEventsContext(ctx context.Context, n int) ([]Event, error) {
	for {
		a.mu.Lock()
		got, changed := len(a.events), a.changed
		if got >= n {
			out := slices.Clone(a.events)
			a.mu.Unlock()
			return out, nil
		}
		a.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return a.Events(), fmt.Errorf("fakeagent: %d of %d events received: %w", got, n, ctx.Err())
		}
	}
}

func (a *Agent) handle(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	if a.applyNext(w, r) {
		return
	}
	reqID := r.Header.Get("Request-Id")
	switch {
	case readErr != nil:
		a.refuse(w, "request", reqID, http.StatusBadRequest, "invalid_request", "unreadable_body", readErr.Error())
		return
	case len(body) > maxBody:
		a.refuse(w, "request", reqID, http.StatusRequestEntityTooLarge, "invalid_request", "body_too_large", "body over 1 MiB")
		return
	}
	v, err := acp.ParseVersion(r.Header.Get("API-Version"))
	if err != nil {
		a.refuse(w, "request", reqID, http.StatusBadRequest, "invalid_request", "unsupported_api_version", err.Error())
		return
	}
	a.mu.Lock()
	secret, now, tolerance := a.secret, a.now, a.tolerance
	a.mu.Unlock()
	// The signature first: an unauthenticated body is not even parsed.
	if err := agenthook.Verify(v, secret, r.Header.Get("Merchant-Signature"), body, now(), tolerance); err != nil {
		a.refuse(w, "signature", reqID, http.StatusUnauthorized, "invalid_request", "invalid_signature", err.Error())
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		a.refuse(w, "request", reqID, http.StatusBadRequest, "invalid_request", "invalid_content_type", "Content-Type must be application/json")
		return
	}
	if err := acpspec.ValidateWebhook(string(v), body); err != nil {
		a.refuse(w, "schema", reqID, http.StatusBadRequest, "invalid_request", "invalid_event", err.Error())
		return
	}
	var doc struct {
		Type string `json:"type"`
		Data struct {
			ID                string `json:"id"`
			Status            string `json:"status"`
			CheckoutSessionID string `json:"checkout_session_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil { // valid per schema, so only a bug gets here
		a.refuse(w, "schema", reqID, http.StatusBadRequest, "invalid_request", "invalid_event", err.Error())
		return
	}

	a.mu.Lock()
	if reqID != "" && a.seen[reqID] {
		a.dupes++
	} else {
		if reqID != "" {
			a.seen[reqID] = true
		}
		a.events = append(a.events, Event{RequestID: reqID, Type: doc.Type, OrderID: doc.Data.ID,
			Status: doc.Data.Status, SessionID: doc.Data.CheckoutSessionID, Version: v,
			Body: body, Header: r.Header.Clone()})
		close(a.changed)
		a.changed = make(chan struct{})
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"received": true, "request_id": reqID})
}

func (a *Agent) refuse(w http.ResponseWriter, kind, reqID string, status int, typ, code, msg string) {
	a.mu.Lock()
	a.failures = append(a.failures, Failure{Kind: kind, RequestID: reqID, Err: msg, Status: status})
	a.mu.Unlock()
	writeJSON(w, status, map[string]string{"type": typ, "code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // maps of strings and bools always encode
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
