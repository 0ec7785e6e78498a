package woocommerce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/upstream"
)

// OrderUpdater applies the shop's news of an order (orders.Service).
type OrderUpdater interface {
	Update(ctx context.Context, u bridge.OrderUpdate) (bool, error)
}

// Webhooks receives WooCommerce's webhooks (POST /webhooks/woocommerce).
// Product topics mark the product changed in the adapter and ask for a
// catalog read (which then reads only what changed); order topics become
// order updates for the agent. WooCommerce never retries a delivery, so
// losing one costs only time: the adapter's catalog reads ask for
// modified products anyway, and the orders service polls OrderUpdates.
type Webhooks struct {
	// Secret is the webhook's secret as entered in WooCommerce.
	Secret  string
	Adapter *Adapter
	Events  bridge.EventLog
	// Refresh asks for a catalog read soon (catalog.Syncer.Trigger).
	Refresh func()
	Orders  OrderUpdater
	Log     *slog.Logger
}

// maxHook bounds a webhook body: a product with its description fits.
const maxHook = 4 << 20

// ServeHTTP checks the signature over the raw body before anything is
// parsed, accepts WooCommerce's unsigned creation ping, skips a body
// already handled, acts, and only then records it. Once the signature
// holds, the answer is 200 whatever happens next: WooCommerce never
// retries a delivery, so a 500 would achieve nothing but count towards
// WooCommerce disabling the webhook (after more than 5 failures in a
// row). A failure is logged, and the polls catch up (order updates every
// orders.poll_interval, products at the next catalog read).
func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHook+1))
	if err != nil || len(body) > maxHook {
		answer(w, http.StatusBadRequest, "unreadable or oversized body")
		return
	}
	sig := r.Header.Get("X-WC-Webhook-Signature")
	if sig == "" {
		if isPing(r, body) {
			answer(w, http.StatusOK, "ping")
			return
		}
		log.Warn("woocommerce webhook refused: no signature")
		answer(w, http.StatusUnauthorized, "missing signature")
		return
	}
	if !Verify(body, sig, h.Secret) {
		log.Warn("woocommerce webhook refused: invalid signature", "topic", upstream.Excerpt(r.Header.Get("X-WC-Webhook-Topic"), 40))
		answer(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	topic := r.Header.Get("X-WC-Webhook-Topic")
	// Not X-WC-Webhook-Delivery-ID: WooCommerce makes it from the webhook's
	// id and the current second (wp_hash(id . strtotime('now'))), so every
	// delivery of one webhook within a second shares it, and deduping on
	// it drops distinct events. The same topic and body is the same news;
	// acting on it twice would be harmless anyway.
	sum := sha256.Sum256(append([]byte(topic+"\n"), body...))
	event := "body:" + hex.EncodeToString(sum[:16])
	ctx := r.Context()
	if h.Events != nil {
		seen, err := h.Events.EventSeen(ctx, "woocommerce", event)
		switch {
		case err != nil:
			// Acting again is harmless; missing the news is not.
			log.Error("woocommerce webhook: reading the event log; acting anyway", "err", err)
		case seen:
			answer(w, http.StatusOK, "duplicate")
			return
		}
	}
	if err := h.handle(ctx, topic, body); err != nil {
		var bad *badBody
		if errors.As(err, &bad) {
			log.Warn("woocommerce webhook with an unreadable body (ignored)", "topic", upstream.Excerpt(topic, 40), "err", err)
			answer(w, http.StatusOK, "unreadable body, ignored")
			return
		}
		log.Error("woocommerce webhook failed; the next poll catches up", "topic", upstream.Excerpt(topic, 40), "err", err)
		answer(w, http.StatusOK, "not processed; the bridge polls the shop")
		return
	}
	if h.Events != nil {
		if err := h.Events.RecordEvent(ctx, "woocommerce", event); err != nil {
			log.Error("woocommerce webhook: recording the delivery", "err", err)
		}
	}
	answer(w, http.StatusOK, "ok")
}

// badBody marks a signed body that is not what its topic promises.
type badBody struct{ err error }

func (e *badBody) Error() string { return e.err.Error() }
func (e *badBody) Unwrap() error { return e.err }

func (h *Webhooks) handle(ctx context.Context, topic string, body []byte) error {
	resource, event, _ := strings.Cut(topic, ".")
	switch resource {
	case "product":
		var ref struct {
			ID       int64 `json:"id"`
			ParentID int64 `json:"parent_id"`
		}
		if err := json.Unmarshal(body, &ref); err != nil || ref.ID <= 0 {
			return &badBody{fmt.Errorf("product webhook: want an object with an id: %v", err)}
		}
		if h.Adapter != nil {
			switch {
			case event == "deleted":
				// The topic header is not signed: a captured product body
				// resent as product.deleted must not remove the product.
				// The id is marked for reading again, and the read drops
				// it only if the shop no longer has it.
				h.Adapter.MarkChanged(ref.ID, true)
			case ref.ParentID > 0:
				h.Adapter.MarkChanged(ref.ParentID, false) // a variation: read its product again
			default:
				h.Adapter.MarkChanged(ref.ID, false)
			}
		}
		if h.Refresh != nil {
			h.Refresh()
		}
	case "order":
		if event == "deleted" || h.Orders == nil {
			return nil
		}
		u, ok, err := DecodeOrderUpdate(body)
		if err != nil {
			return &badBody{err}
		}
		if !ok {
			return nil
		}
		if _, err := h.Orders.Update(ctx, u); err != nil {
			return fmt.Errorf("order %s: %w", u.OrderID, err)
		}
	}
	return nil
}

// Verify reports whether sig is WooCommerce's signature of body under
// secret: base64 of HMAC-SHA256, compared in constant time.
func Verify(body []byte, sig, secret string) bool {
	if secret == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// isPing recognises the creation ping: webhook_id=<number> and nothing
// else, form-encoded (or without a type: WordPress leaves it to its HTTP
// transport). It carries no data, so accepting it unsigned is safe.
func isPing(r *http.Request, body []byte) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/x-www-form-urlencoded" {
			return false
		}
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || len(v) != 1 || len(v["webhook_id"]) != 1 {
		return false
	}
	_, err = strconv.ParseUint(v.Get("webhook_id"), 10, 64)
	return err == nil
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"received": status < 300, "message": msg})
}
