// Package agenthook delivers order events to the agent: ACP's order
// webhooks (order_create, order_update), encoded in the API version of the
// order's checkout session, signed with the secret shared with the agent,
// and POSTed through the bridge's resilient HTTP client (package upstream).
//
// # One event, many attempts
//
// A bridge.OrderNotice is fixed when it happens. Every attempt sends the
// same body and the same Request-Id (the notice id), so an agent that got
// an event whose answer was lost sees a duplicate and can drop it: the
// request is idempotent, and the upstream client retries it on any
// retryable failure (connection errors, 429, 5xx) within its time budget.
// Retries by the caller (the outbox, hours later) call Send again, which
// signs afresh: a 2026-04-17 signature carries its time and goes stale
// after the receiver's tolerance (300 s recommended), so the client's
// budget must stay well below that.
//
// # Answers
//
// 2xx is delivered. Anything else is an error naming the status and at
// most 200 bytes of the agent's answer; 400, 404, 410 and 422 (the event or
// the URL is wrong: the same request will fail again) wrap ErrRejected, so
// the caller can stop retrying. 401 and 403 do not: fixing the secret in
// the config makes the same event go through. An event that cannot even be
// encoded (an order not yet paid, no permalink URL) is rejected too.
//
// # Logs
//
// Only the event id, its type, the order id, the version and the answer's
// status are logged: never the secret, the signature or the body.
package agenthook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/upstream"
)

// ErrRejected marks a failure that sending the same event again cannot
// fix: the agent refused it (400, 404, 410, 422) or it cannot be encoded.
// It is the domain's bridge.ErrRejected, so the outbox stops the job.
var ErrRejected = bridge.ErrRejected

// maxSnippet bounds how much of an agent's error answer goes into an error.
const maxSnippet = 200

// Sender sends order events to one agent's webhook URL. Its fields are set
// once; a Sender is then safe for concurrent use.
type Sender struct {
	// URL is the agent's order-events endpoint.
	URL string
	// Secret is the HMAC key shared with the agent.
	Secret string
	// Client carries the requests (retries, budget, circuit breaker).
	Client *upstream.Client
	// Now is the clock of signatures and Timestamp headers (default
	// time.Now).
	Now func() time.Time
	// Log receives one line per event (default slog.Default()).
	Log *slog.Logger
}

// ResponseError is a non-2xx answer of the agent. It unwraps to
// ErrRejected for the statuses no retry can change.
type ResponseError struct {
	StatusCode int
	// Body is the start of the answer (at most 200 bytes, control
	// characters removed).
	Body string
}

func (e *ResponseError) Error() string {
	s := fmt.Sprintf("agent answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap gives ErrRejected for 400, 404, 410 and 422.
func (e *ResponseError) Unwrap() error {
	if Rejects(e.StatusCode) {
		return ErrRejected
	}
	return nil
}

// Rejects reports whether an agent's answer with status code refuses the
// event for good: the body is wrong (400, 422) or the endpoint is not
// there (404, 410). 401/403 are fixed by the secret, 408, 429 and 5xx by
// time.
func Rejects(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusGone, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// Version is the API version an order's events are encoded in: the
// session's, or the latest when the order has none or one the bridge does
// not know (the agent speaks at least the newest released version).
func Version(o *bridge.Order) acp.Version {
	v, err := acp.ParseVersion(o.APIVersion)
	if err != nil {
		return acp.Latest
	}
	return v
}

// Send delivers n, retrying through the client. It returns nil once the
// agent answered 2xx.
func (s *Sender) Send(ctx context.Context, n bridge.OrderNotice) error {
	v := Version(&n.Order)
	log := s.logger().With("event_id", n.ID, "type", n.Type, "order_id", n.Order.ID, "api_version", string(v))
	what := fmt.Sprintf("agent webhook %s (%s, order %s)", n.ID, n.Type, n.Order.ID)
	switch {
	case s.Client == nil:
		return fmt.Errorf("%s: agenthook.Sender has no Client", what)
	case s.URL == "":
		return fmt.Errorf("%s: agenthook.Sender has no URL", what)
	case s.Secret == "":
		return fmt.Errorf("%s: agenthook.Sender has no secret", what)
	case n.ID == "":
		// Without an id the agent cannot tell a retry from a new event.
		return fmt.Errorf("%s: %w: the notice has no id", what, ErrRejected)
	}
	body, err := acp.EncodeOrderEvent(v, n)
	if err != nil {
		log.Error("agent webhook cannot be encoded")
		return fmt.Errorf("%s: %w: %w", what, ErrRejected, err)
	}

	now := s.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Merchant-Signature", Sign(v, s.Secret, now, body))
	h.Set("Request-Id", n.ID)
	h.Set("Timestamp", now.UTC().Format(time.RFC3339))
	h.Set("API-Version", string(v))
	h.Set("User-Agent", "acp-bridge")

	// Idempotent: the receiver dedupes by Request-Id, so a retry after an
	// answer was lost is harmless.
	resp, err := s.Client.Do(req, true)
	if err != nil {
		var se *upstream.StatusError
		status := 0
		if errors.As(err, &se) {
			status = se.StatusCode
		}
		log.Warn("agent webhook not delivered", "status", status)
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // let the connection be reused
		log.Info("agent webhook delivered", "status", resp.StatusCode)
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxSnippet))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	rerr := &ResponseError{StatusCode: resp.StatusCode, Body: printable(snippet)}
	log.Warn("agent webhook refused", "status", resp.StatusCode, "rejected", Rejects(resp.StatusCode))
	return fmt.Errorf("%s: %w", what, rerr)
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// printable keeps an answer's text readable in an error and a log line:
// valid UTF-8, control characters as spaces, trimmed.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
