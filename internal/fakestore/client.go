package fakestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// maxAnswer bounds how much of a store answer the client reads: a store
// (or a proxy in front of it) answering with something huge must not take
// the bridge's memory.
const maxAnswer = 1 << 20

// maxMessage bounds the store's error message kept in an error: it ends up
// in logs and in the order's history.
const maxMessage = 200

// APIError is an answer of the store that is not a success: its status and
// the code and message of its JSON error, when it had one. Client errors
// wrap it; get it with errors.As.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("store answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Client writes orders to a fakestore Server (or anything speaking its
// API) through upstream.Client. It is safe for concurrent use.
type Client struct {
	orders string // the /orders endpoint
	token  string
	up     *upstream.Client
}

var _ bridge.OrderStore = (*Client)(nil)

// NewClient returns a client of the store at baseURL (http or https, no
// query), authenticating with token. cfg configures retries, budget,
// breaker, logger and metrics; its Name defaults to "fakestore".
func NewClient(baseURL, token string, cfg upstream.Config) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		// url.Parse's error quotes the URL, which may hold credentials.
		return nil, errors.New("fakestore: the base URL does not parse")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("fakestore: the base URL must be an absolute http or https URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("fakestore: the base URL must not carry user info, a query or a fragment")
	}
	if token == "" {
		return nil, errors.New("fakestore: the access token is empty")
	}
	if cfg.Name == "" {
		cfg.Name = "fakestore"
	}
	return &Client{
		orders: u.JoinPath("orders").String(),
		token:  token,
		up:     upstream.New(cfg),
	}, nil
}

// BreakerState is the state of the client's circuit breaker: "closed",
// "half-open" or "open".
func (c *Client) BreakerState() string { return c.up.BreakerState() }

// WriteOrder creates o in the store with one non-idempotent POST /orders:
// the store does not deduplicate by external id, so the request is resent
// only when the failure proves the store did not process it (upstream's
// ErrAmbiguous contract).
//
// It does NOT look the order up first, although bridge.OrderStore asks
// WriteOrder to be idempotent by Order.ID: the outbox worker calls
// FindOrder before every retry (orders.Service.storeWrite), which is where
// the knowledge "this attempt follows a failed one" lives. Looking up
// before every create would cost a request per order in the common case
// and would still race with a concurrent write; keeping the lookup in one
// place keeps the responsibility in one place. A caller that retries
// without FindOrder may create the order twice.
//
// Errors:
//   - the store refused the order for good (4xx other than those below):
//     wraps bridge.ErrOrderRefused and an *APIError with the store's message;
//   - 401, 403 (credentials), 404, 405 (base URL), 408, 409, 429: a plain
//     error wrapping *APIError — a misconfigured token must not cancel
//     every order as refused;
//   - the outcome is unknown (timeout, dropped connection, 5xx other than
//     503 with Retry-After, a 2xx whose body cannot be read): wraps
//     upstream.ErrAmbiguous; look the order up before trying again;
//   - breaker open, budget spent, retries exhausted: wraps upstream.ErrOpen,
//     ErrBudget or ErrRetriesExhausted.
func (c *Client) WriteOrder(ctx context.Context, o bridge.Order) (bridge.StoreOrder, error) {
	fail := func(err error) (bridge.StoreOrder, error) {
		return bridge.StoreOrder{}, fmt.Errorf("fakestore: write order %s: %w", o.ID, err)
	}
	in, err := newOrder(o)
	if err != nil {
		return fail(err)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fail(fmt.Errorf("encode: %w", err))
	}
	// bytes.Reader gives the request a GetBody, so upstream can replay it
	// after a 429 without buffering it again.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.orders, bytes.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	c.authorize(req)

	resp, err := c.up.Do(req, false)
	if err != nil {
		return fail(err)
	}
	defer upstream.Drain(resp.Body)
	switch code := resp.StatusCode; {
	case code == http.StatusCreated || code == http.StatusOK:
		var so Order
		if err := decode(resp.Body, &so); err != nil || so.ID == "" {
			if err == nil {
				err = errors.New("no order id")
			}
			// The store says it created the order, but we do not know as
			// what: the caller must find it rather than create it again.
			return fail(fmt.Errorf("%w: store answered %d with an unreadable order: %w", upstream.ErrAmbiguous, code, err))
		}
		return bridge.StoreOrder{StoreID: so.ID, URL: so.URL}, nil
	case refusal(code):
		return fail(fmt.Errorf("%w: %w", bridge.ErrOrderRefused, readAPIError(resp)))
	default:
		return fail(readAPIError(resp))
	}
}

// FindOrder returns the store's order carrying orderID as its external id
// (the oldest, should there be several), or an error wrapping
// bridge.ErrNotFound. The search is idempotent, so upstream retries every
// retryable failure.
func (c *Client) FindOrder(ctx context.Context, orderID string) (bridge.StoreOrder, error) {
	fail := func(err error) (bridge.StoreOrder, error) {
		return bridge.StoreOrder{}, fmt.Errorf("fakestore: find order %s: %w", orderID, err)
	}
	if orderID == "" {
		return fail(errors.New("the order id is empty"))
	}
	u := c.orders + "?" + url.Values{"external_id": {orderID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		// Not err itself: url errors quote the URL, query included.
		return fail(errors.New("cannot build the search request"))
	}
	c.authorize(req)

	resp, err := c.up.Do(req, true)
	if err != nil {
		return fail(err)
	}
	defer upstream.Drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fail(readAPIError(resp))
	}
	var list OrderList
	if err := decode(resp.Body, &list); err != nil {
		return fail(fmt.Errorf("store answered 200 with an unreadable order list: %w", err))
	}
	// Check the external id again: a store (or a version of its API) that
	// ignores an unknown filter returns every order, and taking the first
	// would mark this order written as somebody else's.
	for _, so := range list.Orders {
		if so.ExternalID == orderID && so.ID != "" {
			return bridge.StoreOrder{StoreID: so.ID, URL: so.URL}, nil
		}
	}
	return fail(bridge.ErrNotFound)
}

func (c *Client) authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+c.token)
}

// newOrder is the store's create body for o. Lines are sent with their
// ordered quantity (what was paid for); amounts as decimals in the order's
// currency. The variant id is the store's SKU.
func newOrder(o bridge.Order) (NewOrder, error) {
	if o.ID == "" {
		return NewOrder{}, errors.New("the order has no id, so it could never be found again")
	}
	if o.Total.Currency != "" && o.Total.Currency != o.Currency {
		return NewOrder{}, fmt.Errorf("total is in %s, the order in %s", o.Total.Currency, o.Currency)
	}
	in := NewOrder{
		ExternalID: o.ID,
		Currency:   o.Currency,
		Total:      bridge.Money{Amount: o.Total.Amount, Currency: o.Currency}.Decimal(),
		Lines:      make([]Line, 0, len(o.Lines)),
		Email:      o.Buyer.Email,
	}
	for _, l := range o.Lines {
		in.Lines = append(in.Lines, Line{
			SKU:       l.VariantID,
			Quantity:  l.Quantity,
			UnitPrice: bridge.Money{Amount: l.UnitPrice.Amount, Currency: o.Currency}.Decimal(),
		})
	}
	if a := o.ShipTo; a != nil {
		name := a.Name
		if name == "" {
			name = o.Buyer.Name
		}
		in.ShippingAddress = &Address{Name: name, Company: a.Company, Line1: a.Line1, Line2: a.Line2,
			City: a.City, Region: a.Region, PostalCode: a.PostalCode, Country: a.Country}
	}
	return in, nil
}

// refusal reports whether a status is the store's final word on the
// order. 401/403 and 404/405 are about the bridge's credentials or base
// URL, not the order; 408, 409 and 429 pass with time.
func refusal(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	return code >= 400 && code < 500
}

// readAPIError reads the store's JSON error, if any. A body that is not
// the store's error object is left out: it could be anything, including
// an echo of the request and its buyer data.
func readAPIError(resp *http.Response) *APIError {
	e := &APIError{StatusCode: resp.StatusCode}
	var body ErrorBody
	if decode(resp.Body, &body) == nil {
		e.Code = upstream.Excerpt(body.Error.Code, 64)
		e.Message = upstream.Excerpt(body.Error.Message, maxMessage)
	}
	return e
}

func decode(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, maxAnswer)).Decode(v)
}
