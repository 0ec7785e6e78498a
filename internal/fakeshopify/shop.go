package fakeshopify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AddProduct adds p to the shop, giving ids to it, its variants and
// images where they have none; a variant without stock levels gets its
// Available at location 1. It returns the stored product's ids.
func (s *Server) AddProduct(p Product) Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := p.clone()
	if c.ID == 0 {
		c.ID = s.id()
	}
	if c.Status == "" {
		c.Status = "ACTIVE"
	}
	if c.Handle == "" {
		c.Handle = strings.ToLower(strings.ReplaceAll(c.Title, " ", "-"))
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = s.now()
	}
	for i := range c.Images {
		if c.Images[i].ID == 0 {
			c.Images[i].ID = s.id()
		}
	}
	for _, v := range c.Variants {
		if v.ID == 0 {
			v.ID = s.id()
		}
		if v.InventoryItem == 0 {
			v.InventoryItem = s.id()
		}
		if v.Policy == "" {
			v.Policy = "DENY"
		}
		if v.Available == nil {
			v.Available = map[int64]int64{}
		}
		if v.UpdatedAt.IsZero() {
			v.UpdatedAt = c.UpdatedAt
		}
	}
	s.products[c.ID] = c
	return *c.clone()
}

// AddLocation adds a stock location.
func (s *Server) AddLocation(l Location) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.locations = append(s.locations, l)
}

// UpdateProduct changes product id with fn and moves its updatedAt on.
func (s *Server) UpdateProduct(id int64, fn func(*Product)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.products[id]
	if p == nil {
		panic(fmt.Sprintf("fakeshopify: no product %d", id))
	}
	fn(p)
	p.UpdatedAt = s.now()
}

// SetUpdatedAt sets a product's updatedAt (a product last changed long
// ago, or by a shop whose clock differs from the bridge's).
func (s *Server) SetUpdatedAt(id int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.products[id]; p != nil {
		p.UpdatedAt = at
	}
}

// DeleteProduct removes a product.
func (s *Server) DeleteProduct(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.products, id)
}

// SetAvailable sets a variant's available quantity at a location. Like
// Shopify, an inventory change does not move the product's updatedAt.
func (s *Server) SetAvailable(variantID, location int64, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.products {
		for _, v := range p.Variants {
			if v.ID == variantID {
				v.Available[location] = n
				return
			}
		}
	}
	panic(fmt.Sprintf("fakeshopify: no variant %d", variantID))
}

// Available returns a variant's stock over every location.
func (s *Server) Available(variantID int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.products {
		for _, v := range p.Variants {
			if v.ID == variantID {
				return v.total()
			}
		}
	}
	return 0
}

// Orders returns copies of the orders created, oldest first.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, len(s.orders))
	for i, o := range s.orders {
		out[i] = *o
	}
	return out
}

func (s *Server) order(id int64) *Order {
	for _, o := range s.orders {
		if o.ID == id {
			return o
		}
	}
	panic(fmt.Sprintf("fakeshopify: no order %d", id))
}

// AddOrder adds an order as if made elsewhere (the admin, another sales
// channel), giving it an id, a name and times where it has none; orders
// are kept in creation order, so it is the newest. It returns the stored
// order.
func (s *Server) AddOrder(o Order) Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := o
	c.Tags = slices.Clone(o.Tags)
	if c.ID == 0 {
		c.ID = s.id()
	}
	if c.Name == "" {
		c.Name = fmt.Sprintf("#%d", 1000+len(s.orders)+1)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.Currency, c.Total = cmp.Or(c.Currency, s.cfg.Currency), cmp.Or(c.Total, "0.00")
	c.FinancialStatus = cmp.Or(c.FinancialStatus, "PAID")
	s.orders = append(s.orders, &c)
	return c
}

// Fulfill ships a whole order with tracking details.
func (s *Server) Fulfill(orderID int64, company, number, url string) Fulfillment {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(orderID)
	f := Fulfillment{ID: s.id(), Status: "SUCCESS", Company: company, Number: number, URL: url, CreatedAt: s.now()}
	o.Fulfillments = append(o.Fulfillments, f)
	o.UpdatedAt = s.now()
	return f
}

// Cancel cancels an order (reason: CUSTOMER, INVENTORY, FRAUD …).
func (s *Server) Cancel(orderID int64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(orderID)
	now := s.now()
	o.CancelledAt, o.CancelReason, o.UpdatedAt = &now, reason, now
}

// RefundOrder records a refund of amount (a decimal) on an order.
func (s *Server) RefundOrder(orderID int64, amount, note string) Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(orderID)
	r := Refund{ID: s.id(), Amount: amount, Note: note, CreatedAt: s.now()}
	o.Refunds = append(o.Refunds, r)
	o.UpdatedAt = s.now()
	return r
}

// Generate fills the shop with products of variantsPer variants each, two
// images per product, stock 5 per variant: a catalog for benchmarks.
func (s *Server) Generate(products, variantsPer int) {
	for i := range products {
		p := Product{Title: fmt.Sprintf("Product %d", i), Description: "<p>A fine product.</p>", Vendor: "Acme", ProductType: "Things",
			Images: []Image{{URL: fmt.Sprintf("https://cdn.example/p%d-a.jpg", i)}, {URL: fmt.Sprintf("https://cdn.example/p%d-b.jpg", i)}}}
		for j := range variantsPer {
			p.Variants = append(p.Variants, &Variant{Title: "Size " + strconv.Itoa(j), SKU: fmt.Sprintf("SKU-%d-%d", i, j),
				Price: "19.99", CompareAtPrice: "24.99", Tracked: true, Options: []Option{{"Size", strconv.Itoa(j)}},
				Available: map[int64]int64{1: 5}})
		}
		s.AddProduct(p)
	}
}

// Sign is Shopify's webhook signature: base64(HMAC-SHA256(secret, body)).
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SendWebhook POSTs a webhook to url the way Shopify delivers one: signed
// with the app's client secret, with topic, event id and the version. It
// returns the receiver's status.
func (s *Server) SendWebhook(ctx context.Context, url, topic, eventID string, payload any) (int, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("X-Shopify-Topic", topic)
	h.Set("X-Shopify-Hmac-SHA256", Sign(s.cfg.ClientSecret, body))
	h.Set("X-Shopify-Shop-Domain", s.shopDomain())
	h.Set("X-Shopify-API-Version", Versions[len(Versions)-1])
	h.Set("X-Shopify-Webhook-Id", fmt.Sprintf("wh-%s-%d", eventID, time.Now().UnixNano()))
	h.Set("X-Shopify-Event-Id", eventID)
	h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// ProductPayload is a products/update or products/delete body (REST
// shape; a delete carries the id only).
func (s *Server) ProductPayload(id int64) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{"id": id, "admin_graphql_api_id": gid("Product", id)}
	if p := s.products[id]; p != nil {
		out["title"], out["handle"], out["status"] = p.Title, p.Handle, strings.ToLower(p.Status)
		out["updated_at"] = p.UpdatedAt.UTC().Format(time.RFC3339)
	}
	return out
}

// InventoryLevelPayload is an inventory_levels/update body.
func (s *Server) InventoryLevelPayload(variantID, location int64) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.products {
		for _, v := range p.Variants {
			if v.ID == variantID {
				return map[string]any{"inventory_item_id": v.InventoryItem, "location_id": location, "available": v.Available[location],
					"updated_at":           s.now().UTC().Format(time.RFC3339),
					"admin_graphql_api_id": fmt.Sprintf("gid://shopify/InventoryLevel/%d?inventory_item_id=%d", location, v.InventoryItem)}
			}
		}
	}
	panic(fmt.Sprintf("fakeshopify: no variant %d", variantID))
}

// OrderPayload is an orders/* body in REST shape: tags as one
// comma-separated string, fulfillments with tracking.
func (s *Server) OrderPayload(id int64) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.order(id)
	var fs []map[string]any
	for _, f := range o.Fulfillments {
		fs = append(fs, map[string]any{"id": f.ID, "status": strings.ToLower(f.Status), "tracking_company": f.Company,
			"tracking_number": f.Number, "tracking_url": f.URL, "created_at": f.CreatedAt.UTC().Format(time.RFC3339),
			"admin_graphql_api_id": gid("Fulfillment", f.ID)})
	}
	out := map[string]any{"id": o.ID, "admin_graphql_api_id": gid("Order", o.ID), "name": o.Name,
		"tags": strings.Join(o.Tags, ", "), "source_identifier": o.SourceIdentifier, "fulfillments": fs,
		"financial_status": strings.ToLower(o.FinancialStatus), "cancelled_at": nil, "cancel_reason": nil,
		"updated_at": o.UpdatedAt.UTC().Format(time.RFC3339)}
	if len(o.Fulfillments) > 0 {
		out["fulfillment_status"] = "fulfilled"
	} else {
		out["fulfillment_status"] = nil
	}
	if o.CancelledAt != nil {
		out["cancelled_at"], out["cancel_reason"] = o.CancelledAt.UTC().Format(time.RFC3339), strings.ToLower(o.CancelReason)
	}
	return out
}

// RefundPayload is a refunds/create body.
func (s *Server) RefundPayload(orderID int64, r Refund) map[string]any {
	return map[string]any{"id": r.ID, "order_id": orderID, "admin_graphql_api_id": gid("Refund", r.ID), "note": r.Note,
		"created_at": r.CreatedAt.UTC().Format(time.RFC3339),
		"transactions": []map[string]any{{"id": r.ID + 1, "order_id": orderID, "kind": "refund", "status": "success",
			"amount": r.Amount, "currency": s.cfg.Currency, "gateway": "stripe"}}}
}
