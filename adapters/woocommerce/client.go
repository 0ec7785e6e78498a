package woocommerce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge/upstream"
)

// apiPath is where WooCommerce's REST API v3 lives under the shop's URL.
const apiPath = "wp-json/wc/v3"

// perPage is the page size of every list: WooCommerce's maximum (more is
// refused with 400 rest_invalid_param), so a sync makes as few calls as it
// can.
const perPage = 100

// maxAnswer bounds how much of one answer is read: 100 products with their
// descriptions fit easily; a proxy answering with something huge must not
// take the bridge's memory.
const maxAnswer = 32 << 20

// maxMessage bounds the store's error message kept in an error: it ends up
// in logs and in the order's history.
const maxMessage = 200

// APIError is an answer of WooCommerce that is not a success, decoded from
// its error body {"code","message","data":{"status"}}. Errors of the adapter
// wrap it; get it with errors.As.
type APIError struct {
	StatusCode int
	// Code is WooCommerce's error code (woocommerce_rest_authentication_error …).
	Code    string
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("woocommerce answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.StatusCode == http.StatusUnauthorized {
		s += " (check store.woocommerce.consumer_key and consumer_secret; behind a proxy that strips the Authorization header, set auth: query_string)"
	}
	return s
}

// client speaks WooCommerce's REST API through upstream.Client: one
// breaker and one retry policy for every call the adapter makes.
type client struct {
	base        *url.URL // .../wp-json/wc/v3/
	key, secret string
	queryAuth   bool
	up          *upstream.Client
}

// newClient checks the shop URL: https, or http only when allowHTTP
// (development mode): Basic auth over plain http would send the keys in
// clear text, and WooCommerce itself refuses it without OAuth 1.0a.
func newClient(raw, key, secret string, queryAuth, allowHTTP bool, cfg upstream.Config) (*client, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, errors.New("woocommerce: the shop URL does not parse") // the error would quote it
	}
	switch {
	case u.Scheme == "http" && !allowHTTP:
		return nil, errors.New("woocommerce: the shop URL uses plain http; use https:// (plain http is allowed only in development mode)")
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, errors.New("woocommerce: the shop URL must be an absolute https URL such as https://shop.example")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("woocommerce: the shop URL must not carry user info, a query or a fragment")
	}
	if key == "" || secret == "" {
		return nil, errors.New("woocommerce: the consumer key and secret are required")
	}
	// A URL given with the API path already is accepted as well.
	p := strings.TrimSuffix(u.Path, "/")
	p = strings.TrimSuffix(p, "/"+apiPath)
	u.Path = p + "/" + apiPath + "/"
	if cfg.Name == "" {
		cfg.Name = "woocommerce"
	}
	return &client{base: u, key: key, secret: secret, queryAuth: queryAuth, up: upstream.New(cfg)}, nil
}

// endpoint is the URL of path (relative to the API root) with q.
func (c *client) endpoint(path string, q url.Values) *url.URL {
	u := c.base.JoinPath(path)
	if c.queryAuth {
		if q == nil {
			q = url.Values{}
		}
		q.Set("consumer_key", c.key)
		q.Set("consumer_secret", c.secret)
	}
	u.RawQuery = q.Encode()
	return u
}

func (c *client) request(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		// bytes.Reader gives the request a GetBody, so upstream can replay it.
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path, q).String(), rd)
	if err != nil {
		// Not err: it would quote the URL, keys included.
		return nil, fmt.Errorf("%s %s: cannot build the request", method, path)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.queryAuth {
		req.SetBasicAuth(c.key, c.secret)
	}
	return req, nil
}

// get reads path into v; reads are idempotent, so upstream retries every
// retryable failure. It returns the answer's headers (pagination).
func (c *client) get(ctx context.Context, path string, q url.Values, v any) (http.Header, error) {
	req, err := c.request(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.up.Do(req, true)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer upstream.Drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %w", path, readAPIError(resp))
	}
	if err := decode(resp.Body, v); err != nil {
		return nil, fmt.Errorf("GET %s: answer 200 is not the expected JSON: %w", path, err)
	}
	return resp.Header, nil
}

// listed is what list learned of a list besides its items.
type listed struct {
	// served is the shop's time when it served the first page (its Date
	// header; zero without one): the list shows everything modified
	// before then.
	served time.Time
	// total is the first page's X-WP-Total: how many items the list held
	// then; -1 when the answer did not say.
	total int
	// read is how many items the pages held.
	read int
}

// maxPages bounds a list whose page count is unknown: a proxy that ignores
// page= would otherwise serve its one full page forever.
const maxPages = 10000

// list reads every page of a list endpoint, per_page 100, calling fn with
// each page's items as they come. The page count comes from X-WP-TotalPages
// of the first answer; a list that grows meanwhile is caught by the next
// sync, and a short page ends the scan early. Without the header (a proxy
// that strips it) the count is unknown and pages are read until one is
// short: reading one page only would make FindOrder miss an order it
// holds, and the outbox write it twice.
func list[T any](ctx context.Context, c *client, path string, q url.Values, fn func([]T) error) (listed, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("per_page", strconv.Itoa(perPage))
	info := listed{total: -1}
	pages := 0 // unknown until the first answer says; 0: read until a short page
	for page := 1; pages == 0 || page <= pages; page++ {
		if page > maxPages {
			return info, fmt.Errorf("GET %s: more than %d pages without X-WP-TotalPages: the shop (or a proxy) seems to ignore page=", path, maxPages)
		}
		q.Set("page", strconv.Itoa(page))
		var items []T
		h, err := c.get(ctx, path, q, &items)
		if err != nil {
			return info, err
		}
		if page == 1 {
			if pages, err = totalPages(h); err != nil {
				return info, fmt.Errorf("GET %s: %w", path, err)
			}
			if n, err := strconv.Atoi(h.Get("X-WP-Total")); err == nil && n >= 0 {
				info.total = n
			}
			if t, err := http.ParseTime(h.Get("Date")); err == nil {
				info.served = t.UTC()
			}
		}
		info.read += len(items)
		if err := fn(items); err != nil {
			return info, err
		}
		if len(items) < perPage {
			break
		}
	}
	return info, nil
}

// maxPasses bounds how often listAll reads a list that keeps changing.
const maxPasses = 3

// listAll is list for lists that may change while they are read. Pages are
// offsets (page × per_page), so an item leaving the list before the current
// offset (a product deleted or unpublished, an order moved to the end of a
// list by modification date) shifts the rest left and one item is never
// served, although it is in the list all along — and an incremental read
// would not bring it back. So a pass whose distinct items differ in number
// from its first page's X-WP-Total is followed by another (up to
// maxPasses), which hands fn only the items not seen yet: fn sees each id
// once. A list still moving after maxPasses is logged and taken as read;
// the next read catches up. The returned listed is the first pass's (its
// served time is the earliest).
func listAll[T any](ctx context.Context, a *Adapter, path string, q url.Values, id func(T) int64, fn func([]T) error) (listed, error) {
	seen := map[int64]bool{}
	var first listed
	for pass := 1; ; pass++ {
		got := map[int64]bool{}
		info, err := list(ctx, a.c, path, q, func(page []T) error {
			var fresh []T
			for _, it := range page {
				got[id(it)] = true
				if !seen[id(it)] {
					seen[id(it)] = true
					fresh = append(fresh, it)
				}
			}
			if len(fresh) == 0 {
				return nil
			}
			return fn(fresh)
		})
		if pass == 1 {
			first = info
		}
		if err != nil || info.total < 0 || len(got) == info.total {
			return first, err
		}
		if pass == maxPasses {
			a.log.Warn("woocommerce list kept changing while it was read; the next read catches up",
				"path", path, "passes", pass, "total", info.total, "served", len(got))
			return first, nil
		}
		a.log.Debug("woocommerce list changed while it was read; reading it again", "path", path, "total", info.total, "served", len(got))
	}
}

// totalPages reads X-WP-TotalPages; 0 when the answer lacks it (a caching
// proxy may drop headers): the caller then reads until a short page.
func totalPages(h http.Header) (int, error) {
	v := h.Get("X-WP-TotalPages")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("X-WP-TotalPages %q is not a page count", upstream.Excerpt(v, 20))
	}
	return max(n, 1), nil
}

// put sends an update and reads the answer into v. Only updates that are
// safe to repeat are sent this way (set_paid completes a payment once:
// WooCommerce's payment_complete does nothing to an order already paid),
// so upstream retries every retryable failure.
func (c *client) put(ctx context.Context, path string, body, v any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("PUT %s: encode: %w", path, err)
	}
	req, err := c.request(ctx, http.MethodPut, path, nil, raw)
	if err != nil {
		return err
	}
	resp, err := c.up.Do(req, true)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", path, err)
	}
	defer upstream.Drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %w", path, readAPIError(resp))
	}
	if err := decode(resp.Body, v); err != nil {
		return fmt.Errorf("PUT %s: answer 200 is not the expected JSON: %w", path, err)
	}
	return nil
}

// post sends a create. It is not idempotent: upstream resends it only when
// the failure proves WooCommerce did not process it, and otherwise returns
// an error wrapping upstream.ErrAmbiguous. The answer is returned unread
// whatever its status.
func (c *client) post(ctx context.Context, path string, body any) (*http.Response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: encode: %w", path, err)
	}
	req, err := c.request(ctx, http.MethodPost, path, nil, raw)
	if err != nil {
		return nil, err
	}
	resp, err := c.up.Do(req, false)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	return resp, nil
}

// readAPIError reads WooCommerce's error body. Anything else is left out:
// it could be an HTML page of a proxy, or an echo of the request.
func readAPIError(resp *http.Response) *APIError {
	e := &APIError{StatusCode: resp.StatusCode}
	var body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if decode(resp.Body, &body) == nil {
		e.Code = upstream.Excerpt(body.Code, 80)
		e.Message = upstream.Excerpt(body.Message, maxMessage)
	}
	return e
}

func decode(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, maxAnswer)).Decode(v)
}
