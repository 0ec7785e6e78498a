package shopify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
)

// orderNews is what Shopify says about one of the bridge's orders, from an
// orders/* webhook body (REST-shaped) or from the reconciliation query
// (GraphQL): both become the same bridge.OrderUpdates.
type orderNews struct {
	orderID      string // the bridge's
	cancelled    bool
	cancelReason string
	at           time.Time
	// fulfilled says the whole order is fulfilled. Fulfillments are
	// reported only then: Shopify names its own line items, which the
	// bridge's lines cannot be matched to, and a fulfillment without lines
	// counts every line as shipped.
	fulfilled    bool
	fulfillments []fulfillmentNews
}

type fulfillmentNews struct {
	id                   string // Shopify's numeric id
	status               string // success, cancelled, error, failure, open, pending (any case)
	delivered            bool
	company, number, url string
	at                   time.Time
}

// bridgeOrderID finds the bridge's order id among an order's tags.
func bridgeOrderID(tags []string) string {
	for _, t := range tags {
		if id, ok := strings.CutPrefix(strings.TrimSpace(t), tagPrefix); ok && id != "" {
			return id
		}
	}
	return ""
}

// updates turns the news into order updates, fulfillments first, the
// cancellation last. Applying them again changes nothing.
func (n orderNews) updates() []bridge.OrderUpdate {
	var out []bridge.OrderUpdate
	for _, f := range n.fulfillments {
		if !n.fulfilled {
			break
		}
		fu := &bridge.Fulfillment{ID: "shopify_" + f.id, Type: "shipping", Carrier: f.company, TrackingNumber: f.number, TrackingURL: f.url}
		status := ""
		switch strings.ToLower(f.status) {
		case "success":
			fu.Status, status = "shipped", bridge.OrderShipped
			if f.delivered {
				fu.Status, status = "delivered", bridge.OrderCompleted
			}
		case "cancelled":
			fu.Status = "canceled"
		case "error", "failure":
			fu.Status = "failed"
		default:
			fu.Status = "pending"
		}
		at := f.at
		if at.IsZero() {
			at = n.at
		}
		out = append(out, bridge.OrderUpdate{OrderID: n.orderID, Status: status, Fulfillment: fu, At: at})
	}
	if n.cancelled {
		reason := "canceled in Shopify"
		if n.cancelReason != "" {
			reason += " (" + strings.ToLower(n.cancelReason) + ")"
		}
		out = append(out, bridge.OrderUpdate{OrderID: n.orderID, Status: bridge.OrderCanceled, Reason: reason, At: n.at})
	}
	return out
}

const orderNewsQuery = `query OrderNews($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id tags updatedAt cancelledAt cancelReason displayFulfillmentStatus
      fulfillments(first: 10) { id status displayStatus createdAt trackingInfo(first: 1) { company number url } } } } }`

// pollLookback is how far back the first reconciliation after a start
// looks: updates are idempotent, so reading old news again is harmless.
const pollLookback = 72 * time.Hour

// OrderUpdates is the periodic reconciliation that covers webhooks Shopify
// gave up on (or that arrived while the bridge was down): the bridge's
// orders updated since the last call, as updates.
func (a *Adapter) OrderUpdates(ctx context.Context) ([]bridge.OrderUpdate, error) {
	a.pollMu.Lock()
	defer a.pollMu.Unlock()
	// From the latest update already seen, by Shopify's clock (the
	// bridge's may run ahead of it and skip news), with an overlap for
	// updates the search index had not listed yet.
	since := a.pollSince
	if since.IsZero() {
		since = time.Now().Add(-pollLookback)
	}
	latest := since
	q := fmt.Sprintf("tag:'%s' AND updated_at:>'%s'", tagCommon, since.Add(-readOverlap).UTC().Format(time.RFC3339))
	var ups []bridge.OrderUpdate
	var after any
	for {
		var out struct {
			Orders struct {
				PageInfo pageInfo `json:"pageInfo"`
				Nodes    []struct {
					Tags      []string  `json:"tags"`
					UpdatedAt time.Time `json:"updatedAt"`
					// FulfillmentStatus is displayFulfillmentStatus.
					FulfillmentStatus string     `json:"displayFulfillmentStatus"`
					CancelledAt       *time.Time `json:"cancelledAt"`
					CancelReason      *string    `json:"cancelReason"`
					Fulfillments      []struct {
						ID            string    `json:"id"`
						Status        string    `json:"status"`
						DisplayStatus *string   `json:"displayStatus"`
						CreatedAt     time.Time `json:"createdAt"`
						TrackingInfo  []struct {
							Company *string `json:"company"`
							Number  *string `json:"number"`
							URL     *string `json:"url"`
						} `json:"trackingInfo"`
					} `json:"fulfillments"`
				} `json:"nodes"`
			} `json:"orders"`
		}
		if err := a.gql.query(ctx, orderNewsQuery, map[string]any{"first": 50, "after": after, "query": q}, &out); err != nil {
			return ups, fmt.Errorf("shopify: order updates: %w", err)
		}
		for _, o := range out.Orders.Nodes {
			if o.UpdatedAt.After(latest) {
				latest = o.UpdatedAt
			}
			n := orderNews{orderID: bridgeOrderID(o.Tags), cancelled: o.CancelledAt != nil, cancelReason: deref(o.CancelReason), at: o.UpdatedAt,
				fulfilled: o.FulfillmentStatus == "FULFILLED"}
			if n.orderID == "" {
				continue
			}
			for _, f := range o.Fulfillments {
				fn := fulfillmentNews{id: legacyID(f.ID), status: f.Status, delivered: deref(f.DisplayStatus) == "DELIVERED", at: f.CreatedAt}
				if len(f.TrackingInfo) > 0 {
					t := f.TrackingInfo[0]
					fn.company, fn.number, fn.url = deref(t.Company), deref(t.Number), deref(t.URL)
				}
				n.fulfillments = append(n.fulfillments, fn)
			}
			ups = append(ups, n.updates()...)
		}
		if !out.Orders.PageInfo.HasNextPage {
			break
		}
		after = out.Orders.PageInfo.EndCursor
	}
	a.pollSince = latest
	return ups, nil
}

// paymentRef finds the PaymentIntent id the bridge wrote on a Shopify
// order (its stripe transaction's authorization) and the bridge's order
// id, for refunds reported by webhook, which name the Shopify order only.
// An order not of the bridge has neither.
func (a *Adapter) paymentRef(ctx context.Context, orderGID string) (ref, orderID string, err error) {
	var out struct {
		Order *struct {
			Tags         []string `json:"tags"`
			Transactions []struct {
				Kind              string  `json:"kind"`
				Gateway           *string `json:"gateway"`
				AuthorizationCode *string `json:"authorizationCode"`
			} `json:"transactions"`
		} `json:"order"`
	}
	q := `query OrderPayment($id: ID!) { order(id: $id) { tags transactions(first: 10) { kind gateway authorizationCode } } }`
	if err := a.gql.query(ctx, q, map[string]any{"id": orderGID}, &out); err != nil {
		return "", "", fmt.Errorf("shopify: payment of order %s: %w", orderGID, err)
	}
	if out.Order == nil || bridgeOrderID(out.Order.Tags) == "" {
		return "", "", nil // not an order of the bridge
	}
	for _, t := range out.Order.Transactions {
		if deref(t.Gateway) == "stripe" && (t.Kind == "SALE" || t.Kind == "AUTHORIZATION") && deref(t.AuthorizationCode) != "" {
			return deref(t.AuthorizationCode), bridgeOrderID(out.Order.Tags), nil
		}
	}
	return "", "", nil
}
