package shopify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acp-bridge/bridge/upstream"
)

// maxResponse bounds a GraphQL answer read into memory (a page of
// products is well under 1 MiB; bulk results are streamed, not read here).
const maxResponse = 32 << 20

// GraphQLError is a response's top-level errors: the query was refused or
// failed as a whole (a field the version lacks, access denied, a cost
// over the limit). It never means "throttled": the client waits those out.
type GraphQLError struct {
	Messages []string
	Codes    []string
}

func (e *GraphQLError) Error() string {
	s := "shopify: GraphQL errors: " + strings.Join(e.Messages, "; ")
	if len(e.Codes) > 0 {
		s += " (" + strings.Join(e.Codes, ", ") + ")"
	}
	return s
}

// has reports whether code is among the errors' codes.
func (e *GraphQLError) has(code string) bool {
	for _, c := range e.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// notRun are the top-level error codes that prove Shopify ran nothing:
// the cost was refused before execution, or the document or its
// variables failed validation (Shopify validates before it executes).
// ACCESS_DENIED is in provesNotRun, with a condition.
var notRun = map[string]bool{
	"THROTTLED": true, "MAX_COST_EXCEEDED": true, "GRAPHQL_VALIDATION_FAILED": true, "INVALID_VARIABLE": true,
}

// provesNotRun reports whether the errors prove a mutation did not run:
// every error has a code that says so (ACCESS_DENIED only with no data:
// denied on a nested field, the mutation itself may have run). Errors
// without a code or with one the client does not know (INTERNAL_SERVER_ERROR,
// a code added later) prove nothing.
func (e *GraphQLError) provesNotRun(dataNull bool) bool {
	if len(e.Codes) == 0 || len(e.Codes) < len(e.Messages) {
		return false
	}
	for _, c := range e.Codes {
		if !notRun[c] && !(c == "ACCESS_DENIED" && dataNull) {
			return false
		}
	}
	return true
}

// client is the GraphQL transport: one POST per operation through the
// shared resilient client (429 and 5xx are its business), the access
// token, the version check, and cost-based throttling, which Shopify
// answers with HTTP 200 and so only this layer can see.
type client struct {
	endpoint string // …/admin/api/<version>/graphql.json
	version  string
	up       *upstream.Client
	tokens   *tokens
	log      *slog.Logger
	sleep    func(ctx context.Context, d time.Duration) error

	mu          sync.Mutex
	warned      map[string]bool // served versions already warned about
	bucket      throttleStatus
	bucketAt    time.Time
	lastCost    map[string]int // requested cost per query text
	maxThrottle int
}

// throttleStatus is extensions.cost.throttleStatus.
type throttleStatus struct {
	MaximumAvailable   float64 `json:"maximumAvailable"`
	CurrentlyAvailable float64 `json:"currentlyAvailable"`
	RestoreRate        float64 `json:"restoreRate"`
}

type costExtension struct {
	RequestedQueryCost int             `json:"requestedQueryCost"`
	ActualQueryCost    *int            `json:"actualQueryCost"`
	ThrottleStatus     *throttleStatus `json:"throttleStatus"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
	Extensions struct {
		Cost *costExtension `json:"cost"`
	} `json:"extensions"`
}

// query runs a read (idempotent: retried on every retryable failure) and
// decodes its data into out.
func (c *client) query(ctx context.Context, q string, vars map[string]any, out any) error {
	return c.do(ctx, q, vars, out, true)
}

// do sends one GraphQL operation. idempotent=false (orderCreate) lets the
// shared client replay it only when the failure proves Shopify did not
// process it; otherwise the error wraps upstream.ErrAmbiguous: a 200 that
// cannot be read, and GraphQL errors other than those that prove nothing
// ran (see provesNotRun), in which case out holds whatever data came with
// them. A THROTTLED answer is always safe to resend: Shopify ran nothing.
func (c *client) do(ctx context.Context, q string, vars map[string]any, out any, idempotent bool) error {
	body, err := json.Marshal(map[string]any{"query": q, "variables": vars})
	if err != nil {
		return fmt.Errorf("shopify: encode request: %w", err)
	}
	refreshed := false
	for throttled := 0; ; {
		if err := c.pace(ctx, q); err != nil {
			return err
		}
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("shopify: request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-Shopify-Access-Token", tok)
		resp, err := c.up.Do(req, idempotent)
		if err != nil {
			return fmt.Errorf("shopify: %w", err)
		}
		c.checkVersion(resp.Header.Get("X-Shopify-API-Version"))
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
		resp.Body.Close()
		if err != nil {
			if !idempotent {
				return fmt.Errorf("shopify: reading the answer: %w: %w", upstream.ErrAmbiguous, err)
			}
			return fmt.Errorf("shopify: reading the answer: %w", err)
		}
		if resp.StatusCode == http.StatusUnauthorized && c.tokens.refreshable() && !refreshed {
			// A granted token may have expired early (revoked, rotated):
			// get a new one once. The request was refused, not run.
			c.tokens.invalidate(tok)
			refreshed = true
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("shopify: %w", statusError(resp.StatusCode, raw))
		}
		// From here on the answer is a 200: a mutation whose answer cannot
		// be read may have run, so its failures are ambiguous.
		ambiguous := func(err error) error {
			if !idempotent {
				return fmt.Errorf("%w: %w", upstream.ErrAmbiguous, err)
			}
			return err
		}
		if len(raw) > maxResponse {
			return ambiguous(fmt.Errorf("shopify: answer larger than %d bytes", maxResponse))
		}
		var r gqlResponse
		if err := json.Unmarshal(raw, &r); err != nil {
			return ambiguous(fmt.Errorf("shopify: decode answer: %w", err))
		}
		wait := c.noteCost(q, r.Extensions.Cost)
		if len(r.Errors) > 0 {
			ge := &GraphQLError{}
			for _, e := range r.Errors {
				ge.Messages = append(ge.Messages, e.Message)
				if e.Extensions.Code != "" {
					ge.Codes = append(ge.Codes, e.Extensions.Code)
				}
			}
			if ge.has("THROTTLED") {
				throttled++
				if throttled > c.maxThrottle {
					return fmt.Errorf("shopify: still throttled after %d waits: %w", throttled-1, ge)
				}
				c.log.Debug("shopify throttled; waiting for the cost bucket", "wait", wait)
				if err := c.sleep(ctx, wait); err != nil {
					return err
				}
				continue
			}
			if idempotent {
				return ge
			}
			// A mutation's data comes with its errors: the caller checks
			// it (orderCreate's order) before the errors, which prove it
			// did not run only for a few codes.
			dataNull := isNull(r.Data)
			if out != nil && !dataNull {
				_ = json.Unmarshal(r.Data, out) // best effort: the error below stands
			}
			if ge.provesNotRun(dataNull) {
				return ge
			}
			return fmt.Errorf("%w: %w", upstream.ErrAmbiguous, ge)
		}
		if out != nil {
			if err := json.Unmarshal(r.Data, out); err != nil {
				return ambiguous(fmt.Errorf("shopify: decode data: %w", err))
			}
		}
		return nil
	}
}

// isNull reports whether a JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	v := bytes.TrimSpace(raw)
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// statusError describes a non-200 answer that the shared client returned
// (4xx: it retries 429 and 5xx itself). Shopify's REST-shaped error body
// is quoted, bounded: it never holds the token.
func statusError(status int, body []byte) error {
	var e struct {
		Errors any `json:"errors"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil && e.Errors != nil {
		msg = fmt.Sprint(e.Errors)
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	var what string
	switch status {
	case http.StatusUnauthorized:
		what = "the access token was refused"
	case http.StatusPaymentRequired:
		what = "the shop is frozen (unpaid)"
	case http.StatusForbidden:
		what = "the app lacks a scope it needs"
	case http.StatusNotFound:
		what = "no such shop or API version"
	case http.StatusLocked:
		what = "the shop is locked"
	default:
		what = "unexpected answer"
	}
	return fmt.Errorf("%s (HTTP %d %s): %s", what, status, http.StatusText(status), msg)
}

// checkVersion warns once per served version that differs from the one
// asked for: Shopify serves the oldest supported version instead of one
// that expired, and fields may have changed meaning.
func (c *client) checkVersion(served string) {
	if served == "" || served == c.version {
		return
	}
	c.mu.Lock()
	first := !c.warned[served]
	c.warned[served] = true
	c.mu.Unlock()
	if first {
		c.log.Warn("shopify served another API version than the one configured; update store.shopify.api_version",
			"requested", c.version, "served", served)
	}
}

// noteCost records the bucket's state and returns how long to wait before
// a throttled query can run: (requested − available) / restoreRate.
func (c *client) noteCost(q string, cost *costExtension) time.Duration {
	if cost == nil || cost.ThrottleStatus == nil {
		return time.Second
	}
	ts := *cost.ThrottleStatus
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bucket, c.bucketAt = ts, time.Now()
	if cost.RequestedQueryCost > 0 {
		c.lastCost[q] = cost.RequestedQueryCost
	}
	if ts.RestoreRate <= 0 {
		return time.Second
	}
	need := float64(cost.RequestedQueryCost) - ts.CurrentlyAvailable
	return max(time.Duration(need/ts.RestoreRate*float64(time.Second)), 50*time.Millisecond)
}

// pace waits, before sending q, until the bucket as last reported (plus
// what it restored since) holds q's last requested cost: a throttled
// round trip is a wasted call.
func (c *client) pace(ctx context.Context, q string) error {
	c.mu.Lock()
	need, known := c.lastCost[q]
	b, at := c.bucket, c.bucketAt
	c.mu.Unlock()
	if !known || b.RestoreRate <= 0 {
		return nil
	}
	avail := min(b.MaximumAvailable, b.CurrentlyAvailable+time.Since(at).Seconds()*b.RestoreRate)
	if float64(need) <= avail {
		return nil
	}
	return c.sleep(ctx, time.Duration((float64(need)-avail)/b.RestoreRate*float64(time.Second)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tokens hands out the access token: the static one, or one from the
// client-credentials grant, fetched again before it expires (Shopify's
// last 24 hours).
type tokens struct {
	static   string
	clientID string
	secret   string
	tokenURL string
	up       *upstream.Client

	mu  sync.Mutex
	tok string
	// renew is when the token is replaced: refreshEarly before its
	// expiry, or halfway through a lifetime shorter than twice that (a
	// token granted for 10 minutes would otherwise be replaced on every
	// call).
	renew time.Time
}

// refreshEarly is how long before its expiry a granted token is replaced.
const refreshEarly = 10 * time.Minute

func (t *tokens) refreshable() bool { return t.static == "" }

func (t *tokens) get(ctx context.Context) (string, error) {
	if t.static != "" {
		return t.static, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && time.Now().Before(t.renew) {
		return t.tok, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {t.clientID}, "client_secret": {t.secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("shopify: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// A grant changes nothing but the token handed out: safe to repeat.
	resp, err := t.up.Do(req, true)
	if err != nil {
		return "", fmt.Errorf("shopify: access token grant: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", fmt.Errorf("shopify: access token grant: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body names the error (invalid_client); it never echoes the secret.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return "", fmt.Errorf("shopify: access token grant refused (HTTP %d %s): check store.shopify.client_id and client_secret",
			resp.StatusCode, strconv.Quote(e.Error))
	}
	var g struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &g); err != nil || g.AccessToken == "" {
		return "", errors.New("shopify: access token grant: the answer has no access_token")
	}
	ttl := 24 * time.Hour
	if g.ExpiresIn > 0 {
		ttl = min(ttl, time.Duration(g.ExpiresIn)*time.Second)
	}
	t.tok, t.renew = g.AccessToken, time.Now().Add(ttl-min(refreshEarly, ttl/2))
	return t.tok, nil
}

// invalidate drops tok if it is still the current one.
func (t *tokens) invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok = ""
	}
}
