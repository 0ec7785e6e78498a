package fakeshopify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// The resolvers below run with s.mu held (the whole request executes
// under the lock), so they read and write the shop's state directly.

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (s *Server) shopDomain() string { return "fake-shop.myshopify.com" }

// queryRoot builds the Query object; all makes connections return every
// node (a bulk operation's run).
func (s *Server) queryRoot(all bool) obj {
	return obj{
		"__typename": "QueryRoot",
		"shop": obj{"__typename": "Shop", "id": gid("Shop", 1), "name": "Fake Shop", "currencyCode": s.cfg.Currency,
			"myshopifyDomain": s.shopDomain()},
		"node": resolver(func(a map[string]any) (any, error) { return s.node(a["id"].(string), all), nil }),
		"nodes": resolver(func(a map[string]any) (any, error) {
			ids, _ := a["ids"].([]any)
			if len(ids) > 250 {
				return nil, fmt.Errorf("the ids argument takes at most 250 ids, have %d", len(ids))
			}
			out := make([]obj, len(ids))
			for i, id := range ids {
				out[i] = s.node(fmt.Sprint(id), all)
			}
			return out, nil
		}),
		"product": resolver(func(a map[string]any) (any, error) {
			return s.node(a["id"].(string), all).only("Product"), nil
		}),
		"productVariant": resolver(func(a map[string]any) (any, error) {
			return s.node(a["id"].(string), all).only("ProductVariant"), nil
		}),
		"order": resolver(func(a map[string]any) (any, error) {
			return s.node(a["id"].(string), all).only("Order"), nil
		}),
		"products": resolver(func(a map[string]any) (any, error) { return s.productsConn(a, all) }),
		"orders":   resolver(func(a map[string]any) (any, error) { return s.ordersConn(a, all) }),
		"currentBulkOperation": resolver(func(map[string]any) (any, error) {
			if s.bulk == nil {
				return nil, nil
			}
			return s.bulkObj(s.bulk), nil
		}),
	}
}

// only returns o when it is of type typ, else nil (a gid of another kind).
func (o obj) only(typ string) any {
	if o == nil || o["__typename"] != typ {
		return nil
	}
	return o
}

func (s *Server) node(id string, all bool) obj {
	if n, ok := parseGID("Product", id); ok {
		if p := s.products[n]; p != nil {
			return s.productObj(p, all)
		}
	}
	if n, ok := parseGID("ProductVariant", id); ok {
		for _, p := range s.products {
			for _, v := range p.Variants {
				if v.ID == n {
					return s.variantObj(p, v, all)
				}
			}
		}
	}
	if n, ok := parseGID("Order", id); ok {
		for _, o := range s.orders {
			if o.ID == n {
				return s.orderObj(o, all)
			}
		}
	}
	if s.bulk != nil && id == s.bulk.id {
		return s.bulkObj(s.bulk)
	}
	return nil
}

func (s *Server) sortedProducts(by string) ([]*Product, func(*Product) sortKey) {
	ps := make([]*Product, 0, len(s.products))
	for _, p := range s.products {
		ps = append(ps, p)
	}
	key := func(p *Product) sortKey { return idKey(p.ID) }
	less := func(a, b *Product) bool { return a.ID < b.ID }
	if by == "UPDATED_AT" {
		key = func(p *Product) sortKey { return timeKey(p.UpdatedAt, p.ID) }
		less = func(a, b *Product) bool {
			if !a.UpdatedAt.Equal(b.UpdatedAt) {
				return a.UpdatedAt.Before(b.UpdatedAt)
			}
			return a.ID < b.ID
		}
	}
	// Sorted on the values themselves: the keys' text form is for cursors.
	sort.Slice(ps, func(i, j int) bool { return less(ps[i], ps[j]) })
	return ps, key
}

func (s *Server) productsConn(a map[string]any, all bool) (any, error) {
	sk, _ := a["sortKey"].(string)
	switch sk {
	case "", "ID", "UPDATED_AT":
	default:
		return nil, fmt.Errorf("the fake sorts products by ID or UPDATED_AT only, not %s", sk)
	}
	ps, key := s.sortedProducts(sk)
	if q, _ := a["query"].(string); q != "" {
		srch, err := parseSearch(q, "status", "updated_at", "id")
		if err != nil {
			return nil, err
		}
		var kept []*Product
		now := s.now()
		for _, p := range ps {
			if now.Sub(p.UpdatedAt) < s.cfg.ProductSearchLag {
				continue // not in the search index yet
			}
			ok, err := srch.match(func(f string) []string {
				switch f {
				case "status":
					return []string{p.Status}
				case "updated_at":
					return []string{p.UpdatedAt.UTC().Format(time.RFC3339Nano)}
				}
				return []string{strconv.FormatInt(p.ID, 10)}
			})
			if err != nil {
				return nil, err
			}
			if ok {
				kept = append(kept, p)
			}
		}
		ps = kept
	}
	pg, err := paginate(ps, key, a, all)
	if err != nil {
		return nil, err
	}
	return connection(pg, func(p *Product) obj { return s.productObj(p, all) }), nil
}

func (s *Server) productObj(p *Product, all bool) obj {
	var url any
	if p.Status == "ACTIVE" {
		url = "https://" + s.shopDomain() + "/products/" + p.Handle
	}
	var total int64
	for _, v := range p.Variants {
		total += v.total()
	}
	return obj{
		"__typename": "Product", "id": gid("Product", p.ID), "legacyResourceId": strconv.FormatInt(p.ID, 10),
		"title": p.Title, "handle": p.Handle, "descriptionHtml": p.Description, "vendor": p.Vendor,
		"productType": p.ProductType, "status": p.Status, "tags": slices.Clone(p.Tags),
		"createdAt": rfc3339(p.UpdatedAt), "updatedAt": rfc3339(p.UpdatedAt), "onlineStoreUrl": url,
		"totalInventory": total,
		"options": resolver(func(map[string]any) (any, error) {
			var out []obj
			for _, v := range p.Variants {
				for i, o := range v.Options {
					if !slices.ContainsFunc(out, func(x obj) bool { return x["name"] == o.Name }) {
						out = append(out, obj{"__typename": "ProductOption", "id": gid("ProductOption", p.ID*10+int64(i)), "name": o.Name, "position": i + 1, "values": []string{}})
					}
				}
			}
			return out, nil
		}),
		"media": resolver(func(a map[string]any) (any, error) {
			pg, err := paginate(p.Images, func(im Image) sortKey { return idKey(im.ID) }, a, all)
			if err != nil {
				return nil, err
			}
			return connection(pg, func(im Image) obj {
				return obj{"__typename": "MediaImage", "id": gid("MediaImage", im.ID), "alt": im.Alt, "mediaContentType": "IMAGE",
					"image": obj{"__typename": "Image", "id": gid("ImageSource", im.ID), "url": im.URL, "altText": im.Alt, "width": 800, "height": 800}}
			}), nil
		}),
		"variants": resolver(func(a map[string]any) (any, error) {
			pg, err := paginate(p.Variants, func(v *Variant) sortKey { return idKey(v.ID) }, a, all)
			if err != nil {
				return nil, err
			}
			return connection(pg, func(v *Variant) obj { return s.variantObj(p, v, all) }), nil
		}),
	}
}

func (s *Server) variantObj(p *Product, v *Variant, all bool) obj {
	var compare any
	if v.CompareAtPrice != "" {
		compare = v.CompareAtPrice
	}
	var qty any = v.total()
	opts := make([]obj, len(v.Options))
	for i, o := range v.Options {
		opts[i] = obj{"__typename": "SelectedOption", "name": o.Name, "value": o.Value}
	}
	sale := p.Status == "ACTIVE" && (!v.Tracked || v.Policy == "CONTINUE" || v.total() > 0)
	return obj{
		"__typename": "ProductVariant", "id": gid("ProductVariant", v.ID), "legacyResourceId": strconv.FormatInt(v.ID, 10),
		"title": v.Title, "displayName": p.Title + " - " + v.Title, "sku": v.SKU, "barcode": v.Barcode,
		"price": v.Price, "compareAtPrice": compare, "availableForSale": sale, "inventoryQuantity": qty,
		"inventoryPolicy": v.Policy, "taxable": true, "position": 1, "updatedAt": rfc3339(v.UpdatedAt),
		"selectedOptions": opts,
		"inventoryItem":   s.inventoryItemObj(v, all),
		"product":         resolver(func(map[string]any) (any, error) { return s.productObj(p, all), nil }),
		"media": resolver(func(a map[string]any) (any, error) {
			pg, err := paginate([]Image(nil), func(im Image) sortKey { return idKey(im.ID) }, a, all)
			if err != nil {
				return nil, err
			}
			return connection(pg, func(Image) obj { return nil }), nil
		}),
	}
}

func (s *Server) inventoryItemObj(v *Variant, all bool) obj {
	level := func(l Location) obj {
		return obj{
			"__typename": "InventoryLevel",
			"id":         fmt.Sprintf("gid://shopify/InventoryLevel/%d?inventory_item_id=%d", l.ID, v.InventoryItem),
			"location":   obj{"__typename": "Location", "id": gid("Location", l.ID), "legacyResourceId": strconv.FormatInt(l.ID, 10), "name": l.Name},
			"updatedAt":  rfc3339(v.UpdatedAt),
			"quantities": resolver(func(a map[string]any) (any, error) {
				names, _ := a["names"].([]any)
				var out []obj
				for _, n := range names {
					name := fmt.Sprint(n)
					var q int64
					switch name {
					case "available", "on_hand":
						q = v.Available[l.ID]
					case "committed", "reserved", "incoming", "damaged", "safety_stock", "quality_control":
					default:
						return nil, fmt.Errorf("unknown inventory quantity name %q", name)
					}
					out = append(out, obj{"__typename": "InventoryQuantity", "id": gid("InventoryQuantity", l.ID), "name": name, "quantity": q})
				}
				return out, nil
			}),
		}
	}
	return obj{
		"__typename": "InventoryItem", "id": gid("InventoryItem", v.InventoryItem), "legacyResourceId": strconv.FormatInt(v.InventoryItem, 10),
		"tracked": v.Tracked, "sku": v.SKU,
		"inventoryLevels": resolver(func(a map[string]any) (any, error) {
			var locs []Location
			for _, l := range s.locations {
				if _, ok := v.Available[l.ID]; ok {
					locs = append(locs, l)
				}
			}
			pg, err := paginate(locs, func(l Location) sortKey { return idKey(l.ID) }, a, all)
			if err != nil {
				return nil, err
			}
			return connection(pg, level), nil
		}),
		"inventoryLevel": resolver(func(a map[string]any) (any, error) {
			id, _ := parseGID("Location", fmt.Sprint(a["locationId"]))
			for _, l := range s.locations {
				if _, ok := v.Available[l.ID]; ok && l.ID == id {
					return level(l), nil
				}
			}
			return nil, nil
		}),
	}
}

func (s *Server) ordersConn(a map[string]any, all bool) (any, error) {
	sk, _ := a["sortKey"].(string)
	key := func(o *Order) sortKey { return idKey(o.ID) }
	switch sk {
	case "", "ID", "CREATED_AT":
	case "UPDATED_AT":
		key = func(o *Order) sortKey { return timeKey(o.UpdatedAt, o.ID) }
	default:
		return nil, fmt.Errorf("the fake sorts orders by ID, CREATED_AT or UPDATED_AT only, not %s", sk)
	}
	var srch search
	if q, _ := a["query"].(string); q != "" {
		var err error
		if srch, err = parseSearch(q, "tag", "updated_at", "id"); err != nil {
			return nil, err
		}
	}
	now := s.now()
	var os []*Order
	for _, o := range s.orders {
		if (srch != nil || s.cfg.LagUnfiltered) && now.Sub(o.CreatedAt) < s.cfg.SearchLag {
			continue // not in the search index yet
		}
		if srch != nil {
			ok, err := srch.match(func(f string) []string {
				switch f {
				case "tag":
					return looseTags(o.Tags)
				case "updated_at":
					return []string{o.UpdatedAt.UTC().Format(time.RFC3339Nano)}
				}
				return []string{strconv.FormatInt(o.ID, 10)}
			})
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		os = append(os, o)
	}
	sort.Slice(os, func(i, j int) bool { return key(os[i]).less(key(os[j])) })
	if rev, _ := a["reverse"].(bool); rev {
		if after, _ := a["after"].(string); after != "" {
			return nil, fmt.Errorf("the fake serves reverse lists from their start only (no after)")
		}
		slices.Reverse(os)
	}
	pg, err := paginate(os, key, a, all)
	if err != nil {
		return nil, err
	}
	return connection(pg, func(o *Order) obj { return s.orderObj(o, all) }), nil
}

func (s *Server) moneyBag(amount string) obj {
	m := obj{"__typename": "MoneyV2", "amount": amount, "currencyCode": s.cfg.Currency}
	return obj{"__typename": "MoneyBag", "shopMoney": m, "presentmentMoney": m}
}

func (s *Server) orderObj(o *Order, all bool) obj {
	var cancelled, reason any
	if o.CancelledAt != nil {
		cancelled, reason = rfc3339(*o.CancelledAt), o.CancelReason
	}
	fulfillment := "UNFULFILLED"
	if len(o.Fulfillments) > 0 {
		fulfillment = "FULFILLED"
	}
	financial := o.FinancialStatus
	if len(o.Refunds) > 0 {
		financial = "PARTIALLY_REFUNDED"
	}
	limited := func(n int, a map[string]any) int {
		if f, ok := argInt(a, "first"); ok && f < n {
			return f
		}
		return n
	}
	return obj{
		"__typename": "Order", "id": gid("Order", o.ID), "legacyResourceId": strconv.FormatInt(o.ID, 10), "name": o.Name,
		"email": o.Email, "phone": nilIfEmpty(o.Phone), "note": nilIfEmpty(o.Note), "tags": slices.Clone(o.Tags), "sourceIdentifier": o.SourceIdentifier, "sourceName": o.SourceName,
		"statusPageUrl": fmt.Sprintf("https://%s/1/orders/%x/authenticate?key=k%d", s.shopDomain(), o.ID, o.ID),
		"createdAt":     rfc3339(o.CreatedAt), "updatedAt": rfc3339(o.UpdatedAt),
		"cancelledAt": cancelled, "cancelReason": reason,
		"displayFinancialStatus": financial, "displayFulfillmentStatus": fulfillment,
		"currencyCode": s.cfg.Currency, "totalPriceSet": s.moneyBag(o.Total), "taxesIncluded": o.TaxesIncluded,
		"totalTaxSet": s.moneyBag(cmp.Or(o.TotalTax, "0.00")),
		"fulfillments": resolver(func(a map[string]any) (any, error) {
			out := []obj{}
			for _, f := range o.Fulfillments[:limited(len(o.Fulfillments), a)] {
				out = append(out, obj{"__typename": "Fulfillment", "id": gid("Fulfillment", f.ID), "status": f.Status,
					"displayStatus": "FULFILLED", "createdAt": rfc3339(f.CreatedAt), "updatedAt": rfc3339(f.CreatedAt),
					"trackingInfo": resolver(func(map[string]any) (any, error) {
						return []obj{{"__typename": "FulfillmentTrackingInfo", "company": f.Company, "number": f.Number, "url": f.URL}}, nil
					})})
			}
			return out, nil
		}),
		"transactions": resolver(func(a map[string]any) (any, error) {
			out := []obj{}
			for _, t := range o.Transactions[:limited(len(o.Transactions), a)] {
				out = append(out, obj{"__typename": "OrderTransaction", "id": gid("OrderTransaction", t.ID), "kind": t.Kind,
					"status": t.Status, "gateway": t.Gateway, "authorizationCode": t.AuthorizationCode, "amountSet": s.moneyBag(t.Amount)})
			}
			return out, nil
		}),
		"refunds": resolver(func(a map[string]any) (any, error) {
			out := []obj{}
			for _, r := range o.Refunds[:limited(len(o.Refunds), a)] {
				out = append(out, obj{"__typename": "Refund", "id": gid("Refund", r.ID), "createdAt": rfc3339(r.CreatedAt),
					"note": r.Note, "totalRefundedSet": s.moneyBag(r.Amount)})
			}
			return out, nil
		}),
		"lineItems": resolver(func(a map[string]any) (any, error) {
			pg, err := paginate(o.Lines, func(l OrderLine) sortKey { return idKey(l.ID) }, a, all)
			if err != nil {
				return nil, err
			}
			return connection(pg, func(l OrderLine) obj {
				return obj{"__typename": "LineItem", "id": gid("LineItem", l.ID), "quantity": l.Quantity, "currentQuantity": l.Quantity,
					"sku": l.SKU, "title": l.Title, "variant": nil}
			}), nil
		}),
	}
}

// rateLimited is the development store's order limit: answered 429.
type rateLimited struct{ seconds int }

func (e *rateLimited) Error() string { return "orders per minute exceeded" }

// orderInput is OrderCreateOrderInput as far as the fake checks it.
type orderInput struct {
	Currency        string `json:"currency"`
	Email           string `json:"email"`
	Phone           string `json:"phone"`
	Note            string `json:"note"`
	FinancialStatus string `json:"financialStatus"`
	LineItems       []struct {
		VariantID string           `json:"variantId"`
		Quantity  int64            `json:"quantity"`
		PriceSet  *moneyBagInput   `json:"priceSet"`
		Title     string           `json:"title"`
		SKU       string           `json:"sku"`
		TaxLines  []map[string]any `json:"taxLines"`
	} `json:"lineItems"`
	TaxesIncluded   bool             `json:"taxesIncluded"`
	ShippingAddress map[string]any   `json:"shippingAddress"`
	ShippingLines   []map[string]any `json:"shippingLines"`
	TaxLines        []map[string]any `json:"taxLines"`
	Transactions    []struct {
		AmountSet         moneyBagInput `json:"amountSet"`
		Kind              string        `json:"kind"`
		Status            string        `json:"status"`
		Gateway           string        `json:"gateway"`
		AuthorizationCode string        `json:"authorizationCode"`
	} `json:"transactions"`
	SourceName       string   `json:"sourceName"`
	SourceIdentifier string   `json:"sourceIdentifier"`
	Tags             []string `json:"tags"`
}

type moneyBagInput struct {
	ShopMoney struct {
		Amount       string `json:"amount"`
		CurrencyCode string `json:"currencyCode"`
	} `json:"shopMoney"`
}

func (s *Server) mutationRoot() obj {
	return obj{
		"__typename":            "Mutation",
		"orderCreate":           resolver(s.orderCreate),
		"bulkOperationRunQuery": resolver(s.bulkRun),
		"bulkOperationCancel":   resolver(s.bulkCancel),
	}
}

func userErrors(es ...UserError) []obj {
	out := []obj{}
	for _, e := range es {
		var code any
		if e.Code != "" {
			code = e.Code
		}
		out = append(out, obj{"__typename": "OrderCreateUserError", "field": e.Field, "message": e.Message, "code": code})
	}
	return out
}

func (s *Server) orderCreate(a map[string]any) (any, error) {
	now := s.now()
	if n := s.cfg.OrdersPerMinute; n > 0 {
		var recent []time.Time
		for _, t := range s.orderLog {
			if now.Sub(t) < time.Minute {
				recent = append(recent, t)
			}
		}
		s.orderLog = recent
		if len(recent) >= n {
			return nil, &rateLimited{seconds: int(time.Minute-now.Sub(recent[0]))/int(time.Second) + 1}
		}
	}
	refuse := func(e UserError) (any, error) {
		return obj{"__typename": "OrderCreatePayload", "order": nil, "userErrors": userErrors(e)}, nil
	}
	if len(s.refusals) > 0 {
		e := s.refusals[0]
		s.refusals = s.refusals[1:]
		return refuse(e)
	}
	raw, err := json.Marshal(a["order"])
	if err != nil {
		return nil, err
	}
	var in orderInput
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("order input: %w", err)
	}
	behaviour := "BYPASS"
	if opts, _ := a["options"].(map[string]any); opts != nil {
		if b, _ := opts["inventoryBehaviour"].(string); b != "" {
			behaviour = b
		}
	}
	if len(in.LineItems) == 0 {
		return refuse(UserError{Code: "INVALID", Message: "Line items must have at least one item", Field: []string{"order", "lineItems"}})
	}
	cur := s.cfg.Currency
	if in.Currency != "" && in.Currency != cur {
		return refuse(UserError{Code: "INVALID", Message: "Currency must match the shop currency in this fake", Field: []string{"order", "currency"}})
	}
	// Tax lines go on the order or on its lines (and shipping lines),
	// not both [unv: the REST orders API refuses "tax lines must be
	// associated with either order or line item but not both"].
	lineTaxed := false
	for _, li := range in.LineItems {
		lineTaxed = lineTaxed || len(li.TaxLines) > 0
	}
	for _, sl := range in.ShippingLines {
		tl, _ := sl["taxLines"].([]any)
		lineTaxed = lineTaxed || len(tl) > 0
	}
	if lineTaxed && len(in.TaxLines) > 0 {
		return refuse(UserError{Code: "INVALID", Message: "Tax lines must be associated with either order or line item but not both", Field: []string{"order", "taxLines"}})
	}
	o := &Order{ID: s.id(), Email: in.Email, Phone: in.Phone, Note: in.Note, TaxesIncluded: in.TaxesIncluded, Tags: in.Tags, SourceName: in.SourceName, SourceIdentifier: in.SourceIdentifier,
		Currency: cur, FinancialStatus: in.FinancialStatus, ShippingAddress: in.ShippingAddress, ShippingLines: in.ShippingLines,
		TaxLines: in.TaxLines, CreatedAt: now, UpdatedAt: now, Inventory: behaviour}
	if o.FinancialStatus == "" {
		o.FinancialStatus = "PAID"
	}
	o.Name = fmt.Sprintf("#%d", 1000+len(s.orders)+1)
	type claim struct {
		v *Variant
		q int64
	}
	var claims []claim
	total := decimal.Zero
	for i, li := range in.LineItems {
		field := []string{"order", "lineItems", strconv.Itoa(i)}
		if li.Quantity < 1 {
			return refuse(UserError{Code: "INVALID", Message: "Quantity must be greater than 0", Field: append(field, "quantity")})
		}
		var v *Variant
		var p *Product
		if id, ok := parseGID("ProductVariant", li.VariantID); ok {
			for _, pp := range s.products {
				for _, vv := range pp.Variants {
					if vv.ID == id {
						v, p = vv, pp
					}
				}
			}
		}
		if v == nil {
			return refuse(UserError{Code: "INVALID", Message: "Variant is invalid", Field: append(field, "variantId")})
		}
		price := v.Price
		if li.PriceSet != nil {
			if li.PriceSet.ShopMoney.CurrencyCode != cur {
				return refuse(UserError{Code: "INVALID", Message: "Currency does not match the order", Field: append(field, "priceSet")})
			}
			price = li.PriceSet.ShopMoney.Amount
		}
		d, err := decimal.NewFromString(price)
		if err != nil {
			return refuse(UserError{Code: "INVALID", Message: "Price is invalid", Field: append(field, "priceSet")})
		}
		total = total.Add(d.Mul(decimal.NewFromInt(li.Quantity)))
		o.Lines = append(o.Lines, OrderLine{ID: s.id(), VariantID: v.ID, SKU: v.SKU, Title: p.Title, Quantity: li.Quantity, Price: price})
		claims = append(claims, claim{v, li.Quantity})
	}
	if behaviour == "DECREMENT_OBEYING_POLICY" {
		for _, c := range claims {
			if c.v.Tracked && c.v.Policy == "DENY" && c.v.total() < c.q {
				return refuse(UserError{Code: "INVENTORY_CLAIM_FAILED", Message: fmt.Sprintf("Unable to reserve inventory for %s", c.v.SKU)})
			}
		}
	}
	if behaviour != "BYPASS" {
		for _, c := range claims {
			if c.v.Tracked {
				c.v.Available[s.locations[0].ID] -= c.q // the first location fills orders
			}
		}
	}
	// Tax is the sum of every tax line: the order's, its lines', its
	// shipping lines'. With taxesIncluded the prices already contain it,
	// so it is part of the total, not added to it (Shopify's
	// taxesIncluded: "whether taxes are included in the order subtotal").
	tax := decimal.Zero
	addTax := func(tls []map[string]any) {
		for _, tl := range tls {
			if d, err := decimal.NewFromString(fmt.Sprint(dig(tl, "priceSet", "shopMoney", "amount"))); err == nil {
				tax = tax.Add(d)
			}
		}
	}
	addTax(in.TaxLines)
	for _, li := range in.LineItems {
		addTax(li.TaxLines)
	}
	for _, sl := range in.ShippingLines {
		if d, err := decimal.NewFromString(fmt.Sprint(dig(sl, "priceSet", "shopMoney", "amount"))); err == nil {
			total = total.Add(d)
		}
		tls, _ := sl["taxLines"].([]any)
		for _, tl := range tls {
			if m, ok := tl.(map[string]any); ok {
				addTax([]map[string]any{m})
			}
		}
	}
	if !in.TaxesIncluded {
		total = total.Add(tax)
	}
	o.Total, o.TotalTax = total.StringFixed(2), tax.StringFixed(2)
	for _, t := range in.Transactions {
		o.Transactions = append(o.Transactions, Transaction{ID: s.id(), Kind: t.Kind, Status: t.Status, Gateway: t.Gateway,
			AuthorizationCode: t.AuthorizationCode, Amount: t.AmountSet.ShopMoney.Amount})
	}
	s.orders = append(s.orders, o)
	s.orderLog = append(s.orderLog, now)
	ues := []obj{}
	if len(s.besides) > 0 {
		ues = userErrors(s.besides[0])
		s.besides = s.besides[1:]
	}
	return obj{"__typename": "OrderCreatePayload", "order": s.orderObj(o, false), "userErrors": ues}, nil
}

// looseTags is what a tag search matches an order by: Shopify's search
// matches loosely [unv: inferred from its tokenized search], so a search
// for tag bridge:ord_1 also finds bridge:ord_12. The fake matches every
// prefix of a tag at a word boundary inside it: the tag, and the tag cut
// after each digit run's first digit, which is enough to make an exact
// tag search return its neighbours.
func looseTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		out = append(out, t)
		for i := 1; i < len(t); i++ {
			if t[i] >= '0' && t[i] <= '9' {
				out = append(out, t[:i+1])
			}
		}
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	return v
}

// bulkOp is the shop's bulk query run.
type bulkOp struct {
	id      string
	query   string
	created time.Time
	done    time.Time
	name    string
	objects int
	size    int
	err     string
	// canceled is when bulkOperationCancel stopped it (zero: not).
	canceled time.Time
}

func (s *Server) bulkObj(b *bulkOp) obj {
	status := "RUNNING"
	var url, completed any
	if !b.canceled.IsZero() {
		return obj{"__typename": "BulkOperation", "id": b.id, "status": "CANCELED", "errorCode": nil,
			"objectCount": "0", "fileSize": nil, "url": nil, "partialDataUrl": nil,
			"query": b.query, "type": "QUERY", "createdAt": rfc3339(b.created), "completedAt": rfc3339(b.canceled)}
	}
	if !time.Now().Before(b.done) {
		status = "COMPLETED"
		completed = rfc3339(b.done)
		if b.err != "" {
			status = "FAILED"
		} else if b.objects > 0 {
			url = s.URL + "/bulk/" + b.name
		}
	}
	var code any
	if b.err != "" {
		code = "INTERNAL_SERVER_ERROR"
	}
	return obj{"__typename": "BulkOperation", "id": b.id, "status": status, "errorCode": code,
		"objectCount": strconv.Itoa(b.objects), "fileSize": strconv.Itoa(b.size), "url": url, "partialDataUrl": nil,
		"query": b.query, "type": "QUERY", "createdAt": rfc3339(b.created), "completedAt": completed}
}

func bulkUserError(code, msg string) obj {
	return obj{"__typename": "BulkOperationRunQueryPayload", "bulkOperation": nil,
		"userErrors": []obj{{"__typename": "BulkOperationUserError", "field": []string{"query"}, "message": msg, "code": code}}}
}

// bulkRun runs a bulk query at once and keeps its JSONL for download;
// the operation reports RUNNING for BulkDelay. The inner query is
// validated against the schema like any request.
func (s *Server) bulkRun(a map[string]any) (any, error) {
	if s.bulk != nil && s.bulk.canceled.IsZero() && time.Now().Before(s.bulk.done) {
		return bulkUserError("OPERATION_IN_PROGRESS", "A bulk query operation for this app and shop is already in progress: "+s.bulk.id), nil
	}
	q, _ := a["query"].(string)
	doc, errs := gqlparser.LoadQueryWithRules(s.schema, q, nil)
	if len(errs) > 0 {
		return bulkUserError("INVALID", "Invalid bulk query: "+errs.Error()), nil
	}
	if len(doc.Operations) != 1 || doc.Operations[0].Operation != ast.Query {
		return bulkUserError("INVALID", "Invalid bulk query: one query operation expected"), nil
	}
	op := doc.Operations[0]
	if f := firstArgument(op.SelectionSet); f != "" {
		return bulkUserError("INVALID", "Invalid bulk query: bulk queries read whole connections; remove the first argument of "+f), nil
	}
	x := &executor{schema: s.schema, vars: map[string]any{}}
	data, err := x.selectionSet(s.queryRoot(true), op.SelectionSet)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n := 0
	for _, v := range data {
		if err := flattenConnection(&buf, v, "", &n); err != nil {
			return nil, err
		}
	}
	s.bulkSeq++
	now := time.Now()
	b := &bulkOp{id: gid("BulkOperation", int64(s.bulkSeq)), query: q, created: now, done: now.Add(s.cfg.BulkDelay),
		name: fmt.Sprintf("bulk-%d.jsonl", s.bulkSeq), objects: n, size: buf.Len()}
	s.bulkFiles[b.name] = buf.Bytes()
	s.bulk = b
	return obj{"__typename": "BulkOperationRunQueryPayload", "bulkOperation": s.bulkObj(b), "userErrors": []obj{}}, nil
}

// bulkCancel stops a running bulk operation; one that has ended is
// answered with a userError, as Shopify does.
func (s *Server) bulkCancel(a map[string]any) (any, error) {
	id, _ := a["id"].(string)
	if s.bulk == nil || s.bulk.id != id {
		return obj{"__typename": "BulkOperationCancelPayload", "bulkOperation": nil,
			"userErrors": []obj{{"__typename": "UserError", "field": []string{"id"}, "message": "Bulk operation does not exist"}}}, nil
	}
	if !s.bulk.canceled.IsZero() || !time.Now().Before(s.bulk.done) {
		return obj{"__typename": "BulkOperationCancelPayload", "bulkOperation": s.bulkObj(s.bulk),
			"userErrors": []obj{{"__typename": "UserError", "field": []string{"id"}, "message": "A bulk operation cannot be canceled when it has ended"}}}, nil
	}
	s.bulk.canceled = time.Now()
	return obj{"__typename": "BulkOperationCancelPayload", "bulkOperation": s.bulkObj(s.bulk), "userErrors": []obj{}}, nil
}

// firstArgument names a field of set that has a first argument.
func firstArgument(set ast.SelectionSet) string {
	for _, sel := range set {
		var sub ast.SelectionSet
		switch t := sel.(type) {
		case *ast.Field:
			if t.Arguments.ForName("first") != nil {
				return t.Name
			}
			sub = t.SelectionSet
		case *ast.InlineFragment:
			sub = t.SelectionSet
		}
		if f := firstArgument(sub); f != "" {
			return f
		}
	}
	return ""
}

// flattenConnection writes a connection's nodes as JSONL lines, nested
// connections' nodes as lines of their own with __parentId, the way
// Shopify's bulk results are laid out.
func flattenConnection(buf *bytes.Buffer, v any, parent string, n *int) error {
	conn, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var nodes []any
	if ns, ok := conn["nodes"].([]any); ok {
		nodes = ns
	} else if es, ok := conn["edges"].([]any); ok {
		for _, e := range es {
			if em, ok := e.(map[string]any); ok {
				nodes = append(nodes, em["node"])
			}
		}
	}
	for _, nd := range nodes {
		node, ok := nd.(map[string]any)
		if !ok {
			continue
		}
		var nested []any
		line := map[string]any{}
		for k, f := range node {
			if m, ok := f.(map[string]any); ok && (m["nodes"] != nil || m["edges"] != nil) {
				nested = append(nested, f)
				continue
			}
			line[k] = f
		}
		if parent != "" {
			line["__parentId"] = parent
		}
		b, err := json.Marshal(line)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
		*n++
		id, _ := node["id"].(string)
		for _, c := range nested {
			if id == "" {
				return fmt.Errorf("bulk query: a node with a nested connection must select its id")
			}
			if err := flattenConnection(buf, c, id, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// download serves a bulk result the way Shopify's signed storage URL does:
// no Shopify token needed (nor wanted).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, ok := s.bulkFiles[r.PathValue("name")]
	s.downloads = append(s.downloads, r.Header.Clone())
	s.calls["download"]++
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	s.mu.Lock()
	cut := s.cutDownloads > 0
	if cut {
		s.cutDownloads--
	}
	s.mu.Unlock()
	if cut {
		// The storage sends the file but the transfer ends early, at a
		// line's end: what arrives reads as whole lines.
		half := b[:len(b)/2]
		if i := bytes.LastIndexByte(half, '\n'); i >= 0 {
			half = half[:i+1]
		}
		_, _ = w.Write(half)
		return
	}
	_, _ = w.Write(b)
}
