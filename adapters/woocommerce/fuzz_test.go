package woocommerce

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge/internal/fakewoo"
)

// FuzzWebhook feeds the webhook handler arbitrary bodies and topics, signed
// and not: it must answer 200, 400 or 401 — never panic, never 500 for a
// bad body — and act only on signed ones.
func FuzzWebhook(f *testing.F) {
	f.Add([]byte(`{"id":12,"parent_id":10}`), "product.updated", true)
	f.Add([]byte(`{"id":5,"status":"completed","meta_data":[{"key":"acp_bridge_order_id","value":"ord_1"}]}`), "order.updated", true)
	f.Add([]byte(`{"id":5,"status":"completed","meta_data":[{"key":"acp_bridge_order_id","value":7}]}`), "order.updated", true)
	f.Add([]byte(`webhook_id=3`), "", false)
	f.Add([]byte(`{"id":-1}`), "product.deleted", true)
	f.Add([]byte(`[]`), "order.created", true)
	f.Add([]byte(`{"id":1,"manage_stock":"parent"}`), "product.created", false)
	f.Fuzz(func(t *testing.T, body []byte, topic string, signed bool) {
		orders := &memUpdater{}
		h := &Webhooks{Secret: hookSecret, Events: &memEvents{}, Orders: orders, Log: quiet}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/woocommerce", strings.NewReader(string(body)))
		req.Header.Set("X-WC-Webhook-Topic", topic)
		req.Header.Set("X-WC-Webhook-Delivery-ID", "1")
		if signed {
			req.Header.Set("X-WC-Webhook-Signature", fakewoo.Sign(body, hookSecret))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 401:
		default:
			t.Fatalf("status %d for %q %q", w.Code, topic, body)
		}
		if !signed && len(orders.got) > 0 {
			t.Fatalf("acted on an unsigned body %q", body)
		}
	})
}
