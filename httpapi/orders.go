package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/gorilla/mux"
)

// OrderReader finds orders for their status pages.
type OrderReader interface {
	Order(ctx context.Context, id string) (bridge.Order, error)
}

// The page an order's permalink_url (/orders/{id}?t=<token>) opens: what
// was bought and where the order stands. Anyone holding the link can open
// it (agents paste it into chats, buyers forward it), so it shows nothing
// personal: no name, email, phone or address, no payment details, no notes
// from the history (they are written for the shop's admins).
//
// An order is shown only with its own token, only once it is placed, and
// only in a status the page knows; everything else (unknown id, missing or
// wrong token, older orders without a token, pre-payment states) gets the
// same 404 page byte for byte, so the page never tells whether an order
// exists.

// The headers every answer of the page carries, the 404 included:
//   - the CSP allows the inline style and nothing else: no script, no
//     image, no frame, no form, so even a title that slipped past escaping
//     could not run or send anything;
//   - no-store keeps the page (and its token-bearing URL) out of shared
//     caches and the browser's disk cache;
//   - no-referrer keeps the token from reaching a carrier's site through
//     the Referer header when the buyer follows a tracking link;
//   - noindex keeps a link that leaked to a crawler out of search results.
var orderPageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"Cache-Control":           "no-store",
	"Referrer-Policy":         "no-referrer",
	"X-Robots-Tag":            "noindex, nofollow",
	"X-Content-Type-Options":  "nosniff",
	"Content-Type":            "text/html; charset=utf-8",
}

// orderStatusText says the statuses buyers may see in plain words. It is
// also the list of what the page shows at all: a status missing here
// (pre-payment states, or one added to the domain later) gets the 404,
// so a new internal state cannot leak before someone words it for buyers.
var orderStatusText = map[string]string{
	bridge.OrderCreated:      "received",
	bridge.OrderConfirmed:    "confirmed",
	bridge.OrderProcessing:   "processing",
	bridge.OrderShipped:      "shipped",
	bridge.OrderCompleted:    "delivered",
	bridge.OrderCanceled:     "canceled",
	bridge.OrderManualReview: "being reviewed by the shop",
}

const orderPageStyle = `<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.4;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%}td{padding:.3rem .75rem .3rem 0;vertical-align:top}
.r{text-align:right;white-space:nowrap;padding-right:0}.n{color:#666;font-size:.9em}
.s{font-size:1.2rem}.tot td{border-top:1px solid #ccc;font-weight:bold}
ul,ol{padding-left:1.2rem}
</style>`

var orderPage = template.Must(template.New("order").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex, nofollow">
<title>Order {{.ID}} · {{.Merchant}}</title>
` + orderPageStyle + `
</head><body>
<h1>{{.Merchant}}</h1>
<p>Order <strong id="order-id">{{.ID}}</strong>, placed {{.Placed}}</p>
<p class="s">Status: <strong id="status">{{.Status}}</strong></p>
<h2>Items</h2>
<table id="lines">
{{- range .Lines}}
<tr><td>{{.Quantity}} ×</td><td>{{.Title}}{{range .Notes}} <span class="n">· {{.}}</span>{{end}}</td><td class="r">{{.Total}}</td></tr>
{{- end}}
<tr><td></td><td>Shipping</td><td class="r" id="shipping">{{.Shipping}}</td></tr>
<tr><td></td><td>Tax</td><td class="r" id="tax">{{.Tax}}</td></tr>
<tr class="tot"><td></td><td>Total</td><td class="r" id="total">{{.Total}}</td></tr>
{{- if .Refunded}}
<tr><td></td><td>Refunded</td><td class="r" id="refunded">{{.Refunded}}</td></tr>
{{- end}}
</table>
{{- if .Fulfillments}}
<h2>Delivery</h2>
{{- range .Fulfillments}}
<section class="fulfillment">
<p><strong>{{.Kind}}</strong>: {{.Status}}
{{- if .Carrier}}<br>Carrier: {{.Carrier}}{{end}}
{{- if .TrackingNumber}}<br>Tracking number: {{if .TrackingURL}}<a href="{{.TrackingURL}}" rel="noopener noreferrer">{{.TrackingNumber}}</a>{{else}}{{.TrackingNumber}}{{end}}
{{- else if .TrackingURL}}<br><a href="{{.TrackingURL}}" rel="noopener noreferrer">Track this shipment</a>{{end}}</p>
{{- if .Items}}
<ul>{{range .Items}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
{{- if .Events}}
<ul class="n">{{range .Events}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
</section>
{{- end}}
{{- end}}
{{- if .Adjustments}}
<h2>Refunds and changes</h2>
<ul id="adjustments">{{range .Adjustments}}<li>{{.}}</li>{{end}}</ul>
{{- end}}
{{- if .History}}
<h2>History</h2>
<ol id="history">{{range .History}}<li>{{.Date}}: {{.Status}}</li>{{end}}</ol>
{{- end}}
</body></html>
`))

// orderNotFoundPage is the one answer for every order the page will not
// show. It names the merchant (the same for every order of this bridge)
// and nothing else.
var orderNotFoundPage = template.Must(template.New("order-not-found").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex, nofollow">
<title>Order not found{{if .}} · {{.}}{{end}}</title>
` + orderPageStyle + `
</head><body>
{{if .}}<h1>{{.}}</h1>{{end}}
<p class="s"><strong>Order not found.</strong></p>
<p>This link does not open an order. Check that the whole link was copied, including the part after the question mark.</p>
</body></html>
`))

type orderView struct {
	ID, Merchant, Placed, Status string
	Lines                        []orderLineView
	Shipping, Tax, Total         string
	Refunded                     string
	Fulfillments                 []fulfillmentView
	Adjustments                  []string
	History                      []historyView
}

type orderLineView struct {
	Quantity     int64
	Title, Total string
	Notes        []string
}

type fulfillmentView struct {
	Kind, Status, Carrier, TrackingNumber, TrackingURL string
	Items, Events                                      []string
}

type historyView struct{ Date, Status string }

func (c Config) order(w http.ResponseWriter, r *http.Request) {
	o, err := c.Orders.Order(r.Context(), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, bridge.ErrNotFound):
		c.orderNotFound(w)
		return
	case err != nil:
		c.Logger.Error("order page", "err", err)
		writeOrderPage(w, http.StatusInternalServerError, orderErrorPage)
		return
	}
	if !tokenMatches(r.URL.Query().Get("t"), o.Token) || !o.Placed() {
		c.orderNotFound(w)
		return
	}
	if _, ok := orderStatusText[o.Status]; !ok {
		// A placed order in a status nobody worded for buyers: hidden, but
		// the admin should hear of it rather than find out from a buyer.
		c.Logger.Warn("order page: status not shown to buyers", "order", o.ID, "status", o.Status)
		c.orderNotFound(w)
		return
	}
	var buf bytes.Buffer
	if err := orderPage.Execute(&buf, newOrderView(c.MerchantName, &o)); err != nil {
		c.Logger.Error("order page", "order", o.ID, "err", err)
		writeOrderPage(w, http.StatusInternalServerError, orderErrorPage)
		return
	}
	writeOrderPage(w, http.StatusOK, buf.Bytes())
}

// tokenMatches compares the link's token with the order's in constant time.
// Both are hashed first because subtle.ConstantTimeCompare returns at once
// on a length mismatch; hashing makes the time independent of what the
// caller sent. An order without a token (stored before tokens existed) is
// never shown: its permalink carried no secret.
func tokenMatches(got, want string) bool {
	if want == "" || got == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

func (c Config) orderNotFound(w http.ResponseWriter) {
	var buf bytes.Buffer
	if err := orderNotFoundPage.Execute(&buf, c.MerchantName); err != nil {
		c.Logger.Error("order page", "err", err)
	}
	writeOrderPage(w, http.StatusNotFound, buf.Bytes())
}

// writeOrderPage sends a page rendered in full beforehand, so a template
// failure becomes a 500 rather than half a page, and HEAD gets the same
// Content-Length as GET (net/http drops the body of a HEAD answer).
func writeOrderPage(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	for k, v := range orderPageHeaders {
		h.Set(k, v)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func newOrderView(merchant string, o *bridge.Order) orderView {
	cur := o.Currency
	if cur == "" {
		cur = o.Total.Currency
	}
	v := orderView{
		ID: o.ID, Merchant: merchant, Placed: day(o.CreatedAt), Status: orderStatusText[o.Status],
		Shipping: displayMoney(o.Shipping.Amount, moneyCurrency(o.Shipping, cur)),
		Tax:      displayMoney(o.Tax.Amount, moneyCurrency(o.Tax, cur)),
		Total:    displayMoney(o.Total.Amount, moneyCurrency(o.Total, cur)),
	}
	if n := o.Refunded(); n > 0 {
		v.Refunded = displayMoney(n, cur)
	}
	titles := make(map[string]string, len(o.Lines))
	for _, l := range o.Lines {
		titles[l.ID] = l.Title
		lv := orderLineView{Quantity: l.Quantity, Title: l.Title, Total: displayMoney(l.Total.Amount, moneyCurrency(l.Total, cur))}
		// The ordered quantity stays the headline; what changed since is
		// said beside it, the way a shop's own order page does.
		now := l.CurrentQuantity()
		switch {
		case now <= 0:
			lv.Notes = append(lv.Notes, "removed")
		case now < l.Quantity:
			lv.Notes = append(lv.Notes, strconv.FormatInt(l.Quantity-now, 10)+" removed")
		}
		if l.Fulfilled > 0 {
			lv.Notes = append(lv.Notes, strconv.FormatInt(l.Fulfilled, 10)+" shipped")
		}
		v.Lines = append(v.Lines, lv)
	}
	for _, f := range o.Fulfillments {
		fv := fulfillmentView{Kind: fulfillmentKind(f.Type), Status: words(f.Status), Carrier: f.Carrier,
			TrackingNumber: f.TrackingNumber, TrackingURL: trackingLink(f.TrackingURL)}
		if fv.Status == "" {
			fv.Status = "pending"
		}
		for _, ref := range f.Lines {
			if t, ok := titles[ref.ID]; ok {
				fv.Items = append(fv.Items, strconv.FormatInt(ref.Quantity, 10)+" × "+t)
			}
		}
		for _, e := range f.Events {
			fv.Events = append(fv.Events, words(e.Type)+" "+day(e.OccurredAt))
		}
		v.Fulfillments = append(v.Fulfillments, fv)
	}
	for _, a := range o.Adjustments {
		acur := a.Currency
		if acur == "" {
			acur = cur
		}
		v.Adjustments = append(v.Adjustments, adjustmentText(a, acur))
	}
	// Only status changes, and only statuses buyers may see: the history
	// also holds the pre-payment steps and the admins' notes.
	last := ""
	for _, e := range o.History {
		text, ok := orderStatusText[e.Status]
		if !ok || e.Status == last {
			continue
		}
		last = e.Status
		v.History = append(v.History, historyView{Date: day(e.At), Status: text})
	}
	return v
}

// trackingLink returns u when it is an absolute http or https URL, else "".
// html/template would already neutralise javascript: and data: URLs, but
// as "#ZgotmplZ", a dead link; not linking at all is clearer, and it also
// keeps out mailto:, tel: and relative links pointing into the bridge.
func trackingLink(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
		return ""
	}
	return p.String()
}

func fulfillmentKind(t string) string {
	switch t {
	case "pickup":
		return "Pickup"
	case "digital":
		return "Digital delivery"
	}
	return "Shipment"
}

// adjustmentText words an adjustment for the buyer: "Refunded $12.00 on
// 2 March 2026". Reasons are left out: they are free text from the store
// or the payment provider, not written for whoever holds the link.
func adjustmentText(a bridge.Adjustment, cur string) string {
	amount := ""
	if a.Amount != 0 {
		amount = displayMoney(a.Amount, cur)
	}
	var s string
	switch {
	case a.Type == "refund" && a.Status == "completed":
		s = "Refunded"
		if amount != "" {
			s += " " + amount
		}
	case a.Type == "refund":
		s = "Refund"
		if amount != "" {
			s += " of " + amount
		}
		if a.Status != "" {
			s += " " + words(a.Status)
		}
		if a.Status == "pending" && !a.OccurredAt.IsZero() {
			return s + " since " + day(a.OccurredAt)
		}
	default:
		s = words(a.Type)
		if s == "" {
			s = "change"
		}
		s = strings.ToUpper(s[:1]) + s[1:]
		if amount != "" {
			s += " of " + amount
		}
		if a.Status != "" {
			s += " (" + words(a.Status) + ")"
		}
	}
	if !a.OccurredAt.IsZero() {
		s += " on " + day(a.OccurredAt)
	}
	return s
}

// day is the page's date format. Times are UTC: the bridge does not know
// the buyer's time zone, and a date is all the page promises.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 January 2006")
}

// words turns an ACP enum value into words: in_transit → "in transit".
func words(s string) string { return strings.ReplaceAll(s, "_", " ") }

func moneyCurrency(m bridge.Money, fallback string) string {
	if m.Currency != "" {
		return m.Currency
	}
	return fallback
}

// currencySymbols are the currencies shown with a symbol; each symbol here
// means one currency only ("$" alone would be ambiguous for CAD or AUD, so
// those keep their code).
var currencySymbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}

// displayMoney formats an amount for people: "$1,234.50", "1,234.50 CAD".
// The digits come from Money.AppendDecimal, the bridge's one formatter, so
// the page never disagrees with the feeds on a currency's minor units.
func displayMoney(amount int64, cur string) string {
	dec := string(bridge.Money{Amount: amount, Currency: cur}.AppendDecimal(nil))
	neg := strings.HasPrefix(dec, "-")
	dec = strings.TrimPrefix(dec, "-")
	whole, frac, hasFrac := strings.Cut(dec, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	sym, ok := currencySymbols[cur]
	if ok {
		b.WriteString(sym)
	}
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	if !ok && cur != "" {
		b.WriteByte(' ')
		b.WriteString(cur)
	}
	return b.String()
}

// orderErrorPage is the status page's answer when the order cannot be read
// or rendered.
var orderErrorPage = []byte("<!doctype html>\n<title>Error</title><p>Something went wrong. Please try again later.</p>\n")
