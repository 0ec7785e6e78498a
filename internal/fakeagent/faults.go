package fakeagent

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Faults is the queue of fault switches a fake server applies to its next
// requests, one fault per request, in the order they were queued. Its
// methods are safe for concurrent use.
type Faults struct {
	mu    sync.Mutex
	queue []Fault
}

// Inject makes the next n requests meet f (after any faults queued before).
func (a *Faults) Inject(n int, f Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range n {
		a.queue = append(a.queue, f)
	}
}

// FailNext answers the next n requests 500.
func (a *Faults) FailNext(n int) {
	a.Inject(n, Fault{Status: http.StatusInternalServerError,
		Body: `{"type":"processing_error","code":"internal","message":"try again"}`})
}

// ThrottleNext answers the next n requests 429 with Retry-After (whole
// seconds, 0 allowed).
func (a *Faults) ThrottleNext(n int, retryAfter time.Duration) {
	a.Inject(n, Fault{Status: http.StatusTooManyRequests, RetryAfter: retryAfter,
		Body: `{"type":"invalid_request","code":"rate_limited","message":"slow down"}`})
}

// HangNext delays the next n requests by d, then handles them.
func (a *Faults) HangNext(n int, d time.Duration) { a.Inject(n, Fault{Hang: d}) }

// DropNext reads the next n requests and closes their connections
// without answering.
func (a *Faults) DropNext(n int) { a.Inject(n, Fault{Drop: true}) }

// RespondNext answers the next n requests with status and body.
func (a *Faults) RespondNext(n, status int, body string) {
	a.Inject(n, Fault{Status: status, Body: body})
}

// applyNext takes the next queued fault, if any, and carries it out; it
// reports whether the request is finished.
func (a *Faults) applyNext(w http.ResponseWriter, r *http.Request) bool {
	a.mu.Lock()
	if len(a.queue) == 0 {
		a.mu.Unlock()
		return false
	}
	f := a.queue[0]
	a.queue = a.queue[1:]
	a.mu.Unlock()
	return applyFault(w, r, f)
}

// applyFault carries out f; it reports whether the request is finished.
func applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch {
	case f.Drop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("fakeagent: the server does not support hijacking")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	case f.Hang > 0:
		t := time.NewTimer(f.Hang)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		return false // a slow agent still processes the event
	case f.Status != 0:
		if f.RetryAfter > 0 || f.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter/time.Second)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return true
	}
	return false
}
