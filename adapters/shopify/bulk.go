package shopify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// errBulkUnavailable: no bulk run could be had (one is already running
// for the app, Shopify refused or failed it); a paged read can still do.
var errBulkUnavailable = errors.New("shopify: bulk operation unavailable")

// bulkQuery is the whole-catalog query run as a bulk operation: the paged
// read's selections without first: arguments; nested connections come
// back as JSONL lines of their own carrying __parentId.
func (a *Adapter) bulkQuery() string {
	return `{ products(query: "status:active", sortKey: ID) { edges { node { ` + productFields + `
  media { edges { node { ` + mediaFields + ` } } }
  variants { edges { node { ` + a.variantFields() + ` } } } } } } }`
}

const (
	bulkRunMutation = `mutation BulkRead($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } } }`
	bulkPollQuery = `query BulkStatus($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url } } }`
	bulkCancelMutation = `mutation BulkCancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } } }`
)

// readBulk starts a bulk operation, waits for it and reads its JSONL.
func (a *Adapter) readBulk(ctx context.Context, c *catalogCache, skip func(bridge.Problem)) error {
	var run struct {
		Run *struct {
			Op *struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"bulkOperation"`
			UserErrors []struct {
				Message string `json:"message"`
				Code    string `json:"code"`
			} `json:"userErrors"`
		} `json:"bulkOperationRunQuery"`
	}
	// Starting a run twice would only be refused (one at a time per app),
	// so the mutation may be retried like a read.
	if err := a.gql.query(ctx, bulkRunMutation, map[string]any{"query": a.bulkQuery()}, &run); err != nil {
		return fmt.Errorf("shopify: start bulk read: %w", err)
	}
	if run.Run == nil || run.Run.Op == nil {
		var msgs []string
		if run.Run != nil {
			for _, e := range run.Run.UserErrors {
				msgs = append(msgs, e.Message+" ("+e.Code+")")
			}
		}
		return fmt.Errorf("%w: %s", errBulkUnavailable, strings.Join(msgs, "; "))
	}
	id := run.Run.Op.ID
	deadline := time.Now().Add(a.opts.BulkTimeout)
	for {
		var st struct {
			Node *struct {
				Status      string  `json:"status"`
				ErrorCode   *string `json:"errorCode"`
				ObjectCount string  `json:"objectCount"`
				URL         *string `json:"url"`
			} `json:"node"`
		}
		if err := a.gql.query(ctx, bulkPollQuery, map[string]any{"id": id}, &st); err != nil {
			return fmt.Errorf("shopify: bulk read %s: %w", id, err)
		}
		if st.Node == nil {
			return fmt.Errorf("%w: operation %s not found", errBulkUnavailable, id)
		}
		switch st.Node.Status {
		case "COMPLETED":
			if st.Node.URL == nil {
				return nil // nothing matched: an empty shop
			}
			want, err := strconv.ParseInt(st.Node.ObjectCount, 10, 64)
			if err != nil {
				want = -1 // not known: not checked
			}
			return a.download(ctx, *st.Node.URL, want, c, skip)
		case "FAILED", "CANCELED", "CANCELING", "EXPIRED":
			return fmt.Errorf("%w: operation %s ended %s (%s)", errBulkUnavailable, id, st.Node.Status, deref(st.Node.ErrorCode))
		}
		if time.Now().After(deadline) {
			// Cancel it: left running, it would keep the app's one bulk
			// query slot and refuse the next full read's run.
			a.cancelBulk(ctx, id)
			return fmt.Errorf("%w: operation %s still %s after %s", errBulkUnavailable, id, st.Node.Status, a.opts.BulkTimeout)
		}
		if err := a.sleep(ctx, a.opts.BulkPoll); err != nil {
			return err
		}
	}
}

// cancelBulk asks Shopify to stop a bulk run (bulkOperationCancel); a
// failure is logged, the paged read goes on regardless.
func (a *Adapter) cancelBulk(ctx context.Context, id string) {
	var out struct {
		Cancel *struct {
			UserErrors []struct {
				Message string `json:"message"`
			} `json:"userErrors"`
		} `json:"bulkOperationCancel"`
	}
	err := a.gql.query(ctx, bulkCancelMutation, map[string]any{"id": id}, &out)
	if err == nil && out.Cancel != nil && len(out.Cancel.UserErrors) > 0 {
		err = errors.New(out.Cancel.UserErrors[0].Message)
	}
	if err != nil {
		a.log.Warn("shopify bulk operation could not be canceled", "operation", id, "err", err)
		return
	}
	a.log.Warn("shopify bulk operation canceled after the bulk timeout", "operation", id, "timeout", a.opts.BulkTimeout)
}

// download fetches the result file. The URL is a signed link to Shopify's
// storage: it carries its own authorization, and the access token is not
// sent there. A file of fewer or more lines than the operation's
// objectCount (want; −1 when not known), or with a line too long to read,
// is errBulkUnavailable: the catalog is read page by page instead of
// being taken short or failing every full read.
func (a *Adapter) download(ctx context.Context, url string, want int64, c *catalogCache, skip func(bridge.Problem)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("shopify: bulk result: bad URL")
	}
	resp, err := a.gql.up.Do(req, true)
	if err != nil {
		return fmt.Errorf("shopify: download bulk result: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("shopify: download bulk result: HTTP %d", resp.StatusCode)
	}
	products, lines, err := decodeBulk(resp.Body, a.maxBulkLine, skip)
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%w: a line of the result is over %d bytes: %w", errBulkUnavailable, a.maxBulkLine, err)
	}
	if err != nil {
		return fmt.Errorf("shopify: bulk result: %w", err)
	}
	if want >= 0 && int64(lines) != want {
		return fmt.Errorf("%w: the result has %d lines, the operation counted %d objects (a download cut short?)", errBulkUnavailable, lines, want)
	}
	for _, p := range products {
		c.put(p)
	}
	return nil
}

// maxBulkLine bounds one JSONL line (a product with a long description);
// Adapter.maxBulkLine is it, lowered by tests.
const maxBulkLine = 16 << 20

// decodeBulk reads a bulk result: product lines, and media and variant
// lines naming their product in __parentId. Children are matched to
// parents whatever the order of the lines (Shopify does not promise
// children follow their parent). A line that cannot be read, or a child
// whose product is missing, is reported through skip and left out; an
// unreadable stream is an error (bufio.ErrTooLong for a line over
// maxLine). It returns the number of non-empty lines read too.
func decodeBulk(r io.Reader, maxLine int, skip func(bridge.Problem)) ([]*product, int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	objects := 0
	var order []*product
	byID := map[string]*product{}
	orphans := map[string][]json.RawMessage{}
	n := 0
	attach := func(p *product, line json.RawMessage, lineNo int) {
		var probe struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(line, &probe)
		switch {
		case strings.HasPrefix(probe.ID, "gid://shopify/ProductVariant/"):
			var v gqlVariant
			if err := json.Unmarshal(line, &v); err != nil {
				skip(bridge.Problem{Line: lineNo, Key: probe.ID, Message: "unreadable variant: " + err.Error()})
				return
			}
			p.variants = append(p.variants, v)
		default:
			var m gqlMedia
			if err := json.Unmarshal(line, &m); err == nil && m.Image != nil {
				p.images = append(p.images, m)
			}
		}
	}
	lines := map[string][]int{} // orphan line numbers, for reports
	for sc.Scan() {
		n++
		raw := sc.Bytes()
		if len(strings.TrimSpace(string(raw))) == 0 {
			continue
		}
		objects++
		line := json.RawMessage(append([]byte(nil), raw...))
		var probe struct {
			ID       string `json:"id"`
			ParentID string `json:"__parentId"`
		}
		if err := json.Unmarshal(line, &probe); err != nil {
			skip(bridge.Problem{Line: n, Message: "unreadable bulk line: " + err.Error()})
			continue
		}
		if probe.ParentID == "" {
			if !strings.HasPrefix(probe.ID, "gid://shopify/Product/") {
				skip(bridge.Problem{Line: n, Key: probe.ID, Message: "bulk line is neither a product nor a child of one"})
				continue
			}
			var gp gqlProduct
			if err := json.Unmarshal(line, &gp); err != nil {
				skip(bridge.Problem{Line: n, Key: probe.ID, Message: "unreadable product: " + err.Error()})
				continue
			}
			if byID[gp.ID] != nil {
				skip(bridge.Problem{Line: n, Key: gp.ID, Message: "product listed twice in the bulk result; the first is kept"})
				continue
			}
			p := &product{gqlProduct: gp}
			byID[gp.ID] = p
			order = append(order, p)
			for i, o := range orphans[gp.ID] {
				attach(p, o, lines[gp.ID][i])
			}
			delete(orphans, gp.ID)
			delete(lines, gp.ID)
			continue
		}
		if p := byID[probe.ParentID]; p != nil {
			attach(p, line, n)
			continue
		}
		orphans[probe.ParentID] = append(orphans[probe.ParentID], line)
		lines[probe.ParentID] = append(lines[probe.ParentID], n)
	}
	if err := sc.Err(); err != nil {
		return nil, objects, fmt.Errorf("reading JSONL after line %d: %w", n, err)
	}
	for parent, ls := range lines {
		for _, l := range ls {
			skip(bridge.Problem{Line: l, Key: parent, Message: "bulk line's parent product is not in the result"})
		}
	}
	return order, objects, nil
}
