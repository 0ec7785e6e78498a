package shopify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// maxWebhookBody bounds a webhook body (Shopify's order bodies are tens of
// KiB).
const maxWebhookBody = 5 << 20

// OrderNews receives what Shopify's webhooks say about the bridge's orders
// (orders.Service implements it): fulfillments and cancellations as
// updates, refunds as adjustments of the order paid by paymentRef. Both
// are idempotent; an error makes Shopify deliver the webhook again.
type OrderNews interface {
	Update(ctx context.Context, u bridge.OrderUpdate) (bool, error)
	Adjust(ctx context.Context, paymentRef string, a bridge.Adjustment) error
	// Alert tells a person about an order (counted and logged).
	Alert(orderID, reason string, detail ...any)
}

// CatalogTrigger asks for a catalog sync soon (catalog.Syncer).
type CatalogTrigger interface{ Trigger() }

// Webhooks receives Shopify's webhooks at POST /webhooks/shopify.
type Webhooks struct {
	// Secret is the app's client secret, the HMAC key of every webhook.
	Secret  string
	Adapter *Adapter
	Events  bridge.EventLog
	Catalog CatalogTrigger
	Orders  OrderNews
	Log     *slog.Logger
}

// eventSource names Shopify's events in the EventLog.
const eventSource = "shopify"

// ServeHTTP checks the signature over the raw body before anything is
// parsed (401 when it does not match), ignores webhooks of another shop
// (X-Shopify-Shop-Domain, when the shop is configured as a domain), skips
// events already handled (topic + X-Shopify-Event-Id: Shopify repeats
// deliveries, each with the event's id), acts, and only then records the event: a failure answers 500 and
// Shopify delivers it again. Acting is idempotent, so a repeat arriving
// while the first is handled does no harm. Catalog topics only mark
// products and ask for a sync, so the answer comes well within Shopify's
// five seconds.
func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		answer(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil {
		answer(w, http.StatusBadRequest, "unreadable body")
		return
	}
	if len(body) > maxWebhookBody {
		answer(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if !Verify(h.Secret, body, r.Header.Get("X-Shopify-Hmac-SHA256")) {
		h.log().Warn("shopify webhook refused: bad signature", "topic", r.Header.Get("X-Shopify-Topic"))
		answer(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	topic := r.Header.Get("X-Shopify-Topic")
	id := r.Header.Get("X-Shopify-Event-Id")
	if id == "" {
		id = r.Header.Get("X-Shopify-Webhook-Id")
	}
	if id == "" {
		answer(w, http.StatusBadRequest, "no event id")
		return
	}
	if want := h.Adapter.domain; want != "" {
		// Signed with the app's secret, but for another shop the app is
		// installed on: not this bridge's news. Acknowledged, or Shopify
		// retries it for two days.
		if got := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Shopify-Shop-Domain"))); got != want {
			h.log().Warn("shopify webhook from another shop ignored", "topic", topic, "shop_domain", upstream.Excerpt(got, 100), "configured", want)
			answer(w, http.StatusOK, "another shop")
			return
		}
	}
	// One event can be delivered under several topics (orders/updated and
	// orders/fulfilled for one fulfillment) with the same event id: each
	// topic is acted on once.
	id = topic + "/" + id
	ctx := r.Context()
	if seen, err := h.Events.EventSeen(ctx, eventSource, id); err != nil {
		h.log().Error("shopify webhook", "event", id, "err", err)
		answer(w, http.StatusInternalServerError, "try again")
		return
	} else if seen {
		answer(w, http.StatusOK, "duplicate")
		return
	}
	if err := h.handle(ctx, topic, body); err != nil {
		h.log().Error("shopify webhook", "event", id, "topic", topic, "err", err)
		answer(w, http.StatusInternalServerError, "try again")
		return
	}
	if err := h.Events.RecordEvent(ctx, eventSource, id); err != nil {
		h.log().Error("shopify webhook: recording the event", "event", id, "err", err)
	}
	answer(w, http.StatusOK, "ok")
}

func (h *Webhooks) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"received": status < 300, "message": msg})
}

// Verify checks Shopify's webhook signature: base64(HMAC-SHA256(secret,
// body)), compared in constant time. An empty secret verifies nothing.
func Verify(secret string, body []byte, signature string) bool {
	if secret == "" || signature == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Webhook bodies, as far as the bridge reads them (REST-shaped).
type (
	productBody struct {
		ID json.Number `json:"id"`
	}
	inventoryBody struct {
		InventoryItemID json.Number `json:"inventory_item_id"`
	}
	orderBody struct {
		ID                json.Number `json:"id"`
		Tags              string      `json:"tags"`
		CancelledAt       *time.Time  `json:"cancelled_at"`
		CancelReason      *string     `json:"cancel_reason"`
		UpdatedAt         *time.Time  `json:"updated_at"`
		FulfillmentStatus *string     `json:"fulfillment_status"`
		Fulfillments      []struct {
			ID             json.Number `json:"id"`
			Status         string      `json:"status"`
			ShipmentStatus *string     `json:"shipment_status"`
			Company        *string     `json:"tracking_company"`
			Number         *string     `json:"tracking_number"`
			URL            *string     `json:"tracking_url"`
			CreatedAt      *time.Time  `json:"created_at"`
		} `json:"fulfillments"`
	}
	refundBody struct {
		ID           json.Number `json:"id"`
		OrderID      json.Number `json:"order_id"`
		Note         *string     `json:"note"`
		CreatedAt    *time.Time  `json:"created_at"`
		Transactions []struct {
			Kind     string `json:"kind"`
			Status   string `json:"status"`
			Amount   string `json:"amount"`
			Currency string `json:"currency"`
		} `json:"transactions"`
	}
)

// errBadBody marks a body that cannot be read: answered 400 would make
// Shopify retry it for hours to no end, so it is logged and acknowledged.
var errBadBody = errors.New("unreadable webhook body")

func (h *Webhooks) handle(ctx context.Context, topic string, body []byte) error {
	news, err := decodeWebhook(topic, body)
	if errors.Is(err, errBadBody) {
		h.log().Warn("shopify webhook body unreadable; acknowledged and ignored (reconciliation covers it)", "topic", topic, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case len(news.products) > 0:
		h.Adapter.MarkProducts(news.products...)
	case len(news.items) > 0:
		h.Adapter.MarkInventoryItems(news.items...)
	}
	if len(news.products)+len(news.items) > 0 && h.Catalog != nil {
		h.Catalog.Trigger()
	}
	if h.Orders == nil {
		return nil
	}
	for _, u := range news.order.updates() {
		if _, err := h.Orders.Update(ctx, u); err != nil {
			return fmt.Errorf("order %s: %w", u.OrderID, err)
		}
	}
	if r := news.refund; r != nil {
		ref, orderID, err := h.Adapter.paymentRef(ctx, "gid://shopify/Order/"+r.orderID)
		if err != nil {
			return err
		}
		if ref == "" {
			return nil // not an order of the bridge
		}
		if err := h.Orders.Adjust(ctx, ref, r.adjustment); err != nil {
			return fmt.Errorf("refund %s: %w", r.adjustment.ID, err)
		}
		// The bridge wrote the Stripe payment as an external transaction:
		// Shopify recorded this refund and moved no money. Until a person
		// refunds the PaymentIntent in Stripe the buyer is owed it: an
		// alert for a person.
		adj := r.adjustment
		h.Orders.Alert(orderID, alertRefundNotAtStripe, "note", "a refund made in Shopify moved no money at Stripe: refund the payment in Stripe",
			"shopify_order", r.orderID, "payment_ref", ref, "amount", bridge.Money{Amount: adj.Amount, Currency: adj.Currency}.String(), "refund", adj.ID)
	}
	return nil
}

// alertRefundNotAtStripe marks the log line of a refund made in Shopify,
// which a person must repeat in Stripe.
const alertRefundNotAtStripe = "shopify_refund_not_at_stripe"

// webhookNews is what one webhook says.
type webhookNews struct {
	products []string // product ids to read again
	items    []string // inventory item ids whose products to read again
	order    orderNews
	refund   *refundNews
}

type refundNews struct {
	orderID    string // Shopify's numeric id
	adjustment bridge.Adjustment
}

// decodeWebhook reads a webhook body of topic. Unknown topics say
// nothing. It never panics on any input (fuzzed).
func decodeWebhook(topic string, body []byte) (webhookNews, error) {
	var n webhookNews
	bad := func(err error) (webhookNews, error) {
		return webhookNews{}, fmt.Errorf("%w: %s: %w", errBadBody, topic, err)
	}
	switch topic {
	case "products/create", "products/update", "products/delete":
		var b productBody
		if err := json.Unmarshal(body, &b); err != nil {
			return bad(err)
		}
		if err := numeric("product id", b.ID); err != nil {
			return bad(err)
		}
		n.products = []string{b.ID.String()}
	case "inventory_levels/update":
		var b inventoryBody
		if err := json.Unmarshal(body, &b); err != nil {
			return bad(err)
		}
		if err := numeric("inventory item id", b.InventoryItemID); err != nil {
			return bad(err)
		}
		n.items = []string{b.InventoryItemID.String()}
	case "orders/fulfilled", "orders/partially_fulfilled", "orders/cancelled", "orders/updated":
		var b orderBody
		if err := json.Unmarshal(body, &b); err != nil {
			return bad(err)
		}
		n.order = orderNews{orderID: bridgeOrderID(strings.Split(b.Tags, ",")), cancelled: b.CancelledAt != nil, cancelReason: deref(b.CancelReason),
			fulfilled: deref(b.FulfillmentStatus) == "fulfilled"}
		if n.order.orderID == "" {
			return webhookNews{}, nil // not an order of the bridge
		}
		if b.UpdatedAt != nil {
			n.order.at = *b.UpdatedAt
		}
		for _, f := range b.Fulfillments {
			if f.ID.String() == "" {
				return bad(errors.New("fulfillment without an id"))
			}
			fn := fulfillmentNews{id: f.ID.String(), status: f.Status, delivered: deref(f.ShipmentStatus) == "delivered",
				company: deref(f.Company), number: deref(f.Number), url: deref(f.URL)}
			if f.CreatedAt != nil {
				fn.at = *f.CreatedAt
			}
			n.order.fulfillments = append(n.order.fulfillments, fn)
		}
	case "refunds/create":
		var b refundBody
		if err := json.Unmarshal(body, &b); err != nil {
			return bad(err)
		}
		if err := numeric("order id", b.OrderID); err != nil {
			return bad(err)
		}
		adj := bridge.Adjustment{ID: "shopify_refund_" + b.ID.String(), Type: "refund",
			// Shopify recorded the refund on an external (stripe) payment:
			// no money moved at Stripe, so it stays pending until Stripe
			// reports a refund of its own.
			Status: "pending", Reason: "refunded in Shopify only, no money moved at Stripe: refund the payment in Stripe"}
		if b.Note != nil && *b.Note != "" {
			adj.Reason += ": " + *b.Note
		}
		if b.CreatedAt != nil {
			adj.OccurredAt = *b.CreatedAt
		}
		for _, t := range b.Transactions {
			if t.Kind != "refund" || t.Status != "success" {
				continue
			}
			m, err := bridge.ParseMoney(t.Amount, t.Currency)
			if err != nil {
				return bad(err)
			}
			adj.Amount += m.Amount
			adj.Currency = t.Currency
		}
		n.refund = &refundNews{orderID: b.OrderID.String(), adjustment: adj}
	}
	return n, nil
}

// numeric checks that a webhook's id is a Shopify id (a positive number).
func numeric(what string, id json.Number) error {
	if n, err := strconv.ParseUint(id.String(), 10, 64); err != nil || n == 0 {
		return fmt.Errorf("%s %q is not a Shopify id", what, id)
	}
	return nil
}
