package feedapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/acp-bridge/bridge/internal/reqsign"
	"github.com/acp-bridge/bridge/upstream"
)

// DefaultVersion is the API-Version the Feed API was released in.
const DefaultVersion = "2026-04-17"

// Client calls one agent's Feed API. Its fields are set once; a Client is
// then safe for concurrent use.
type Client struct {
	// BaseURL is the agent's Feed API root ("https://agent.example/acp");
	// the paths /feeds… are appended to it.
	BaseURL string
	// Token is the bearer token the agent issued to the merchant.
	Token string
	// SigningSecret, when set, signs every request (package reqsign's
	// profile: Signature + Timestamp headers).
	SigningSecret string
	// Version is the API-Version header (default DefaultVersion).
	Version string
	// HTTP carries the requests: retries of 429/5xx and connection errors
	// within a budget, and the circuit breaker.
	HTTP *upstream.Client
	// Now is the clock of Timestamp headers (default time.Now).
	Now func() time.Time
}

// APIError is an answer of the agent other than success: its status and
// ACP's flat error object when the body held one.
type APIError struct {
	StatusCode int
	Type       string
	Code       string
	Message    string
	Param      string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("agent answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" || e.Message != "" {
		s += ": " + e.Reason()
	}
	return s
}

// Reason is the agent's own words: "code: message (param)".
func (e *APIError) Reason() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Message != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Message)
	}
	if e.Param != "" {
		b.WriteString(" (" + e.Param + ")")
	}
	if b.Len() == 0 {
		return fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return b.String()
}

// Rejects reports whether the agent refused products of the payload, so
// that splitting the request finds the ones it refuses and sending them
// again unchanged cannot succeed. Only an answer that points at products
// counts: a 422 (ACP's answer to an invalid product), a 400 whose error
// names a product (the code invalid_product_payload, or a param such as
// "$.products[3]"), and an answer of accepted:false. Any other 400 is about
// the request (API-Version, a header, the Timestamp or Signature, a proxy's
// page): splitting it would send every product alone and record each as
// refused, never to be sent again, so it fails the push instead, as do
// 401/403 (the token), 404 (the feed or the URL), 429 and 5xx (time).
func (e *APIError) Rejects() bool {
	switch e.StatusCode {
	case http.StatusUnprocessableEntity:
		// A reused Idempotency-Key is the request's fault, not a product's.
		return e.Code != "idempotency_conflict"
	case http.StatusBadRequest:
		return e.namesProduct()
	case http.StatusOK:
		return e.Code == codeNotAccepted
	}
	return false
}

// namesProduct reports whether the error object points at products.
func (e *APIError) namesProduct() bool {
	if e.Code == "invalid_product_payload" {
		return true
	}
	p := strings.TrimPrefix(e.Param, "$.")
	return strings.HasPrefix(p, "products[") || strings.HasPrefix(p, "products.")
}

// codeNotAccepted is the code of the APIError made of an accepted:false
// answer (HTTP 200).
const codeNotAccepted = "not_accepted"

// maxReason bounds how much of an agent's text goes into an error, a log
// line or the stored status.
const maxReason = 200

// CreateFeed makes a feed for country (ISO 3166-1 alpha-2, "" for none)
// and returns its id. key is the Idempotency-Key: a caller that lost the
// answer sends the same key again and the agent returns the same feed.
func (c *Client) CreateFeed(ctx context.Context, country, key string) (string, error) {
	req := struct {
		TargetCountry string `json:"target_country,omitempty"`
	}{country}
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("feed api: create feed: %w", err)
	}
	// Not replayed on an ambiguous failure (idempotent=false): an agent
	// that ignores Idempotency-Key would make a second feed. The caller
	// tries again later with the same key.
	var meta struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, "/feeds", body, key, false, &meta); err != nil {
		return "", fmt.Errorf("feed api: create feed: %w", err)
	}
	if meta.ID == "" {
		return "", fmt.Errorf("feed api: create feed: the agent's answer has no feed id")
	}
	return meta.ID, nil
}

// UpsertProducts sends body, an UpsertProductsRequest ({"products":[…]}),
// to feed id. An upsert by product id is idempotent, so it is retried on
// any retryable failure, with the same Idempotency-Key on every attempt.
// A payload the agent refuses returns an *APIError whose Rejects is true;
// an answer of accepted:false is one too, with status 200 and the code
// not_accepted (the answer's schema has no reason to give).
func (c *Client) UpsertProducts(ctx context.Context, id string, body []byte, key string) error {
	var ack struct {
		ID       string `json:"id"`
		Accepted *bool  `json:"accepted"`
	}
	if err := c.call(ctx, http.MethodPatch, "/feeds/"+url.PathEscape(id)+"/products", body, key, true, &ack); err != nil {
		return fmt.Errorf("feed api: upsert products into %s: %w", id, err)
	}
	if ack.Accepted == nil {
		return fmt.Errorf("feed api: upsert products into %s: the agent's answer has no accepted field", id)
	}
	if !*ack.Accepted {
		return fmt.Errorf("feed api: upsert products into %s: %w", id,
			&APIError{StatusCode: http.StatusOK, Code: codeNotAccepted, Message: "the agent answered accepted: false"})
	}
	return nil
}

// call sends one request and decodes a 2xx answer into out.
func (c *Client) call(ctx context.Context, method, path string, body []byte, key string, idempotent bool, out any) error {
	if c.HTTP == nil || c.BaseURL == "" || c.Token == "" {
		return errors.New("feedapi.Client needs HTTP, BaseURL and Token")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := c.now().UTC().Format(time.RFC3339)
	h := req.Header
	h.Set("Authorization", "Bearer "+c.Token)
	h.Set("API-Version", c.version())
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("Idempotency-Key", key)
	h.Set("Request-Id", requestID())
	h.Set("Timestamp", ts)
	h.Set("User-Agent", "acp-bridge")
	if c.SigningSecret != "" {
		h.Set("Signature", reqsign.Sign([]byte(c.SigningSecret), ts, body))
	}
	resp, err := c.HTTP.Do(req, idempotent)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("agent answered %d with a body that is not the expected JSON: %w", resp.StatusCode, err)
	}
	return nil
}

// apiError reads ACP's error object from an answer, keeping its text short
// and printable; an answer that is not one still gives the status.
func apiError(status int, raw []byte) *APIError {
	e := &APIError{StatusCode: status}
	var body struct {
		Type, Code, Message, Param string
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Type, e.Code, e.Message, e.Param = clip(body.Type), clip(body.Code), clip(body.Message), clip(body.Param)
	}
	if e.Code == "" && e.Message == "" {
		e.Message = clip(string(raw))
	}
	return e
}

// clip keeps text from the agent readable in one log line: valid UTF-8,
// control characters as spaces, at most maxReason bytes.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxReason {
		s = strings.ToValidUTF8(s[:maxReason], "") + "…"
	}
	return s
}

func (c *Client) version() string {
	if c.Version != "" {
		return c.Version
	}
	return DefaultVersion
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// requestID is a fresh id per call, for tracing; retries of the call reuse
// it (the upstream client replays the same request).
func requestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "req_" + hex.EncodeToString(b[:])
}
