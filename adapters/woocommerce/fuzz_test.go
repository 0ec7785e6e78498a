package woocommerce

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge"
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

// FuzzProduct decodes arbitrary product JSON as the catalog reader does and
// turns it into a record: a shop (or whatever answers in its place) must
// not be able to crash a sync.
func FuzzProduct(f *testing.F) {
	f.Add([]byte(`{"id":10,"type":"variable","manage_stock":true,"stock_quantity":7,"attributes":[{"name":"pa_Color","options":["Blue"]}]}`),
		[]byte(`{"id":11,"manage_stock":"parent","regular_price":"49.90","sale_price":"39.90","attributes":[{"name":"Color","option":"Blue"}]}`))
	f.Add([]byte(`{"id":20,"manage_stock":"yes","stock_quantity":null,"images":[{"src":""}]}`), []byte(`{"id":1,"image":null}`))
	f.Add([]byte(`{"id":1,"manage_stock":1}`), []byte(`{"manage_stock":"nope"}`))
	f.Fuzz(func(t *testing.T, parentJSON, variationJSON []byte) {
		var p, v product
		if json.Unmarshal(parentJSON, &p) != nil || json.Unmarshal(variationJSON, &v) != nil {
			return
		}
		for _, r := range []bridge.Record{record(p, []product{v}, "kg"), record(p, nil, "")} {
			if r.Key == "" {
				t.Fatal("record without a key")
			}
		}
		_ = stockOf(v, &p)
	})
}
