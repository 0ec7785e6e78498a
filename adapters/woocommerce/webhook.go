package woocommerce

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
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/acp-bridge/bridge"
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
// parsed, accepts WooCommerce's unsigned creation ping, skips deliveries
// already handled, acts, and only then records the delivery: a failure
// answers 500 (WooCommerce logs it; the poll catches up).
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
		log.Warn("woocommerce webhook refused: invalid signature", "topic", r.Header.Get("X-WC-Webhook-Topic"))
		answer(w, http.StatusUnauthorized, "invalid signature")
		return
	}
	topic := r.Header.Get("X-WC-Webhook-Topic")
	// Delivery ids count per webhook, so the webhook's id is part of the key.
	event := ""
	if d := r.Header.Get("X-WC-Webhook-Delivery-ID"); d != "" {
		event = r.Header.Get("X-WC-Webhook-ID") + ":" + d
	}
	ctx := r.Context()
	if event != "" && h.Events != nil {
		seen, err := h.Events.EventSeen(ctx, "woocommerce", event)
		if err != nil {
			log.Error("woocommerce webhook", "delivery", event, "err", err)
			answer(w, http.StatusInternalServerError, "try again")
			return
		}
		if seen {
			answer(w, http.StatusOK, "duplicate")
			return
		}
	}
	if err := h.handle(ctx, topic, body); err != nil {
		var bad *badBody
		if errors.As(err, &bad) {
			log.Warn("woocommerce webhook with an unreadable body", "topic", topic, "err", err)
			answer(w, http.StatusBadRequest, "unreadable body")
			return
		}
		log.Error("woocommerce webhook", "topic", topic, "delivery", event, "err", err)
		answer(w, http.StatusInternalServerError, "try again")
		return
	}
	if event != "" && h.Events != nil {
		if err := h.Events.RecordEvent(ctx, "woocommerce", event); err != nil {
			log.Error("woocommerce webhook: recording the delivery", "delivery", event, "err", err)
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
