package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/orders"
)

// cmdOrders runs `bridge orders list|show|retry|cancel`. They work on the
// database the server uses; jobs they queue (a retry, a refund) are run by
// the server's outbox worker, so the server must be running for them to
// happen.
func cmdOrders(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("orders "+sub, stderr)
	var (
		status = fs.String("status", "", "list: only orders with this status (created, confirmed, manual_review, shipped, completed, canceled …)")
		limit  = fs.Int("limit", 50, "list: at most this many orders, newest first")
		id     = fs.String("id", "", "show, retry, cancel: the order id (ord_…)")
		reason = fs.String("reason", "", "cancel: why, in words (kept in the order's history; a refund carries it to the payment provider)")
		asJSON = fs.Bool("json", false, "list, show: print JSON")
	)
	var required []string
	if sub != "list" {
		required = append(required, "id")
	}
	a, err := openApp(ctx, fs, cfgPath, args, stderr, true, required...)
	if err != nil {
		return err
	}
	defer a.close()
	svc, err := a.newOrders(nil, nil)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		return listOrders(ctx, svc.Store, *status, *limit, *asJSON, stdout)
	case "show":
		return showOrder(ctx, svc.Store, *id, *asJSON, stdout, stderr)
	case "retry":
		n, err := svc.Retry(ctx, *id)
		if err != nil {
			return orderErr(*id, err, stderr)
		}
		if n == 0 {
			fmt.Fprintf(stdout, "order %s has no failed or dead jobs: nothing to retry\n", *id)
			return nil
		}
		fmt.Fprintf(stdout, "order %s: %d job(s) queued again; the running server picks them up within a second\n", *id, n)
		return nil
	case "cancel":
		if err := svc.Cancel(ctx, *id, *reason); err != nil {
			return orderErr(*id, err, stderr)
		}
		o, err := svc.Store.Order(ctx, *id)
		if err != nil {
			return orderErr(*id, err, stderr)
		}
		fmt.Fprintf(stdout, "order %s canceled; payment: %s\n", o.ID, paymentPlan(o))
		if o.StoreID != "" {
			fmt.Fprintf(stdout, "the order is already in the store as %s: cancel it there too\n", o.StoreID)
		}
		return nil
	}
	return fmt.Errorf("unknown orders command %q", sub)
}

func orderErr(id string, err error, stderr io.Writer) error {
	if errors.Is(err, bridge.ErrNotFound) {
		fmt.Fprintf(stderr, "bridge: no order %q\n", id)
		return exitError{1}
	}
	return err
}

// paymentPlan says what happens to an order's money after a cancel.
func paymentPlan(o bridge.Order) string {
	switch o.Payment {
	case bridge.PaymentStateAuthorized:
		return "the authorization is being released"
	case bridge.PaymentStateCaptured:
		return "a refund of the whole amount is queued"
	case "":
		return "none recorded"
	}
	return o.Payment
}

func listOrders(ctx context.Context, st orders.Store, status string, limit int, asJSON bool, w io.Writer) error {
	list, err := st.Orders(ctx, status, limit)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]orderSummary, 0, len(list))
		for _, o := range list {
			out = append(out, summarize(o))
		}
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tSTATUS\tPAYMENT\tTOTAL\tCREATED\tSTORE ID")
	for _, o := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Status, dash(o.Payment), o.Total.String(),
			o.CreatedAt.UTC().Format(time.RFC3339), dash(o.StoreID))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// orderSummary is an order as `orders list --json` prints it: no buyer data.
type orderSummary struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Payment   string    `json:"payment,omitempty"`
	Total     string    `json:"total"`
	CreatedAt time.Time `json:"created_at"`
	StoreID   string    `json:"store_id,omitempty"`
}

func summarize(o bridge.Order) orderSummary {
	return orderSummary{ID: o.ID, Status: o.Status, Payment: o.Payment, Total: o.Total.String(), CreatedAt: o.CreatedAt.UTC(), StoreID: o.StoreID}
}

func showOrder(ctx context.Context, st orders.Store, id string, asJSON bool, w, stderr io.Writer) error {
	o, err := st.Order(ctx, id)
	if err != nil {
		return orderErr(id, err, stderr)
	}
	jobs, err := st.Jobs(ctx, bridge.JobFilter{OrderID: id, Limit: 1000})
	if err != nil {
		return err
	}
	if asJSON {
		// The token opens the buyer's status page; the admin reaches it
		// through permalink_url, which notices carry too.
		o.Token = ""
		return writeJSON(w, struct {
			Order bridge.Order `json:"order"`
			Jobs  []bridge.Job `json:"jobs"`
		}{o, jobs})
	}
	fmt.Fprintf(w, "order     %s (session %s, API %s)\n", o.ID, o.SessionID, dash(o.APIVersion))
	fmt.Fprintf(w, "status    %s\npayment   %s %s\nstore     %s\n", o.Status, dash(o.Payment), o.PaymentRef, dash(o.StoreID))
	fmt.Fprintf(w, "total     %s (subtotal %s, shipping %s, tax %s)\n", o.Total, o.Subtotal, o.Shipping, o.Tax)
	if o.Buyer.Email != "" || o.Buyer.Name != "" {
		fmt.Fprintf(w, "buyer     %s <%s>\n", strings.TrimSpace(o.Buyer.Name+" "+o.Buyer.FirstName+" "+o.Buyer.LastName), o.Buyer.Email)
	}
	fmt.Fprintln(w, "lines:")
	for _, l := range o.Lines {
		fmt.Fprintf(w, "  %d × %s (%s) %s, fulfilled %d\n", l.CurrentQuantity(), l.Title, l.VariantID, l.Total, l.Fulfilled)
	}
	for _, f := range o.Fulfillments {
		fmt.Fprintf(w, "fulfillment %s: %s %s %s\n", f.ID, f.Status, f.Carrier, f.TrackingNumber)
	}
	for _, a := range o.Adjustments {
		fmt.Fprintf(w, "adjustment %s: %s %s %d %s\n", a.ID, a.Type, a.Status, a.Amount, a.Currency)
	}
	fmt.Fprintln(w, "history:")
	for _, h := range o.History {
		fmt.Fprintf(w, "  %s  %-14s %s\n", h.At.UTC().Format(time.RFC3339), h.Status, h.Note)
	}
	fmt.Fprintln(w, "jobs:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, j := range jobs {
		fmt.Fprintf(tw, "  %s\t%s\t%d attempt(s)\tnext %s\t%s\n", j.ID, j.Status, j.Attempts, j.NextRunAt.UTC().Format(time.RFC3339), j.LastError)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
