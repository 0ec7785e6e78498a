package httpapi

import (
	"context"
	"errors"
	"html/template"
	"net/http"

	"github.com/acp-bridge/bridge"
	"github.com/gorilla/mux"
)

// OrderReader finds orders for their status pages.
type OrderReader interface {
	Order(ctx context.Context, id string) (bridge.Order, error)
}

// orderPage is the page an order's permalink_url opens: what was bought and
// where the order stands, with nothing personal (no name, address or
// email), since anyone holding the link can open it. Order ids carry 96
// random bits, so links cannot be guessed.
var orderPage = template.Must(template.New("order").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Order {{.ID}} · {{.Merchant}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}td{padding:.25rem .75rem .25rem 0}.r{text-align:right}</style>
</head><body>
<h1>{{.Merchant}}</h1>
<p>Order <strong>{{.ID}}</strong>, placed {{.Placed}}: <strong>{{.Status}}</strong></p>
<table>{{range .Lines}}<tr><td>{{.Quantity}} ×</td><td>{{.Title}}</td><td class="r">{{.Total}}</td></tr>{{end}}
<tr><td></td><td>Shipping</td><td class="r">{{.Shipping}}</td></tr>
<tr><td></td><td>Tax</td><td class="r">{{.Tax}}</td></tr>
<tr><td></td><td><strong>Total</strong></td><td class="r"><strong>{{.Total}}</strong></td></tr></table>
</body></html>
`))

type orderView struct {
	ID, Merchant, Placed, Status, Shipping, Tax, Total string
	Lines                                              []orderLineView
}

type orderLineView struct {
	Quantity     int64
	Title, Total string
}

var orderStatusText = map[string]string{
	"pending_payment":         "payment in progress",
	"requires_authentication": "waiting for card authentication",
	"payment_declined":        "payment declined",
	"payment_pending_retry":   "payment not completed",
	"created":                 "confirmed",
}

func (c Config) order(w http.ResponseWriter, r *http.Request) {
	o, err := c.Orders.Order(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		if errors.Is(err, bridge.ErrNotFound) {
			http.Error(w, "no such order", http.StatusNotFound)
			return
		}
		c.Logger.Error("order page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v := orderView{ID: o.ID, Merchant: c.MerchantName, Placed: o.CreatedAt.Format("2 January 2006"), Status: o.Status,
		Shipping: o.Shipping.String(), Tax: o.Tax.String(), Total: o.Total.String()}
	if t, ok := orderStatusText[o.Status]; ok {
		v.Status = t
	}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, orderLineView{Quantity: l.Quantity, Title: l.Title, Total: l.Total.String()})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if err := orderPage.Execute(w, v); err != nil {
		c.Logger.Error("order page", "err", err)
	}
}
