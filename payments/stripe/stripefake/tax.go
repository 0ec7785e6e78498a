package stripefake

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Stripe Tax: POST /v1/tax/calculations answers a tax.calculation from a
// rate table (SetTaxRate), and GET /v1/tax/calculations/{id}/line_items
// pages its line items. The tax of an amount at rate r basis points is
// round-half-up(amount × r / 10000) for tax_behavior exclusive and
// round-half-up(amount × r / (10000 + r)) for inclusive. Shipping is taxed
// at the same rate.

// TaxScript shapes the fake's tax calculations.
type TaxScript struct {
	// Faults are used up one per calculation request, in order
	// (FaultDropAfterCommit acts as FaultDropBefore: nothing is stored).
	Faults []Fault
	// OmitRefs are references left out of the answer's line items.
	OmitRefs []string
	// PageSize, when > 0, limits the expanded line_items list (has_more
	// true beyond it); the rest is read from the line_items endpoint.
	PageSize int
}

// TaxLineItem is one line item of a fake calculation.
type TaxLineItem struct {
	ID          string
	Amount      int64
	AmountTax   int64
	Reference   string
	TaxBehavior string
}

type taxCalc struct {
	id    string
	items []TaxLineItem
}

// SetTaxRate sets the rate, in basis points, for region: "US-CA" (country
// and state, upper case) wins over "US" (country); unknown regions are
// taxed at 0.
func (s *Server) SetTaxRate(region string, basisPoints int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taxRates[strings.ToUpper(region)] = basisPoints
}

// ScriptTax sets how tax calculations go.
func (s *Server) ScriptTax(sc TaxScript) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taxScript = sc
}

// TaxFor is the fake's tax of amount at basisPoints.
func TaxFor(amount, basisPoints int64, inclusive bool) int64 {
	if amount <= 0 || basisPoints <= 0 {
		return 0
	}
	if inclusive {
		d := 10000 + basisPoints
		return (2*amount*basisPoints + d) / (2 * d)
	}
	return (amount*basisPoints + 5000) / 10000
}

func badParam(w http.ResponseWriter, code, param, msg string) {
	writeError(w, 400, apiErr{Type: "invalid_request_error", Code: code, Param: param, Message: msg})
}

func (s *Server) createTaxCalculation(w http.ResponseWriter, r *http.Request, form url.Values) {
	s.mu.Lock()
	var f *Fault
	if len(s.taxScript.Faults) > 0 {
		f = &s.taxScript.Faults[0]
		s.taxScript.Faults = s.taxScript.Faults[1:]
	}
	s.mu.Unlock()
	if f != nil {
		if f.Kind == FaultDropAfterCommit {
			drop(w)
			return
		}
		if s.fault(w, r, *f) {
			return
		}
	}

	currency := form.Get("currency")
	switch {
	case currency == "":
		badParam(w, "parameter_missing", "currency", "Missing required param: currency.")
		return
	case currency != strings.ToLower(currency) || len(currency) != 3:
		badParam(w, "parameter_invalid", "currency", "Invalid currency: "+currency+".")
		return
	}
	country := form.Get("customer_details[address][country]")
	if country == "" {
		badParam(w, "parameter_missing", "customer_details[address][country]", "Missing required param: customer_details[address][country].")
		return
	}
	if src := form.Get("customer_details[address_source]"); src != "" && src != "shipping" && src != "billing" {
		badParam(w, "parameter_invalid", "customer_details[address_source]", "Invalid address_source: "+src+".")
		return
	}
	rate := s.rateFor(country, form.Get("customer_details[address][state]"))

	var items []TaxLineItem
	seen := map[string]bool{}
	for i := 0; ; i++ {
		p := fmt.Sprintf("line_items[%d]", i)
		as, ref, tb := form.Get(p+"[amount]"), form.Get(p+"[reference]"), form.Get(p+"[tax_behavior]")
		if as == "" && ref == "" && tb == "" {
			break
		}
		amount, err := strconv.ParseInt(as, 10, 64)
		switch {
		case as == "":
			badParam(w, "parameter_missing", p+"[amount]", "Missing required param: "+p+"[amount].")
			return
		case err != nil || amount < 0:
			badParam(w, "parameter_invalid", p+"[amount]", "Invalid integer: "+as+".")
			return
		case ref == "":
			badParam(w, "parameter_missing", p+"[reference]", "Missing required param: "+p+"[reference].")
			return
		case seen[ref]:
			badParam(w, "parameter_invalid", p+"[reference]", "Line item references must be unique: "+ref+".")
			return
		}
		if tb == "" {
			tb = "exclusive"
		}
		if tb != "exclusive" && tb != "inclusive" {
			badParam(w, "parameter_invalid", p+"[tax_behavior]", "Invalid tax_behavior: "+tb+".")
			return
		}
		seen[ref] = true
		items = append(items, TaxLineItem{Amount: amount, AmountTax: TaxFor(amount, rate, tb == "inclusive"), Reference: ref, TaxBehavior: tb})
	}
	if len(items) == 0 {
		badParam(w, "parameter_missing", "line_items", "Missing required param: line_items.")
		return
	}
	var ship, shipTax int64
	shipBehavior := form.Get("shipping_cost[tax_behavior]")
	if shipBehavior == "" {
		shipBehavior = "exclusive"
	}
	hasShip := form.Get("shipping_cost[amount]") != ""
	if hasShip {
		var err error
		ship, err = strconv.ParseInt(form.Get("shipping_cost[amount]"), 10, 64)
		if err != nil || ship < 0 {
			badParam(w, "parameter_invalid", "shipping_cost[amount]", "Invalid integer: "+form.Get("shipping_cost[amount]")+".")
			return
		}
		if shipBehavior != "exclusive" && shipBehavior != "inclusive" {
			badParam(w, "parameter_invalid", "shipping_cost[tax_behavior]", "Invalid tax_behavior: "+shipBehavior+".")
			return
		}
		shipTax = TaxFor(ship, rate, shipBehavior == "inclusive")
	}

	s.mu.Lock()
	s.nextID++
	calc := &taxCalc{id: fmt.Sprintf("taxcalc_fake_%04d", s.nextID)}
	omit := map[string]bool{}
	for _, ref := range s.taxScript.OmitRefs {
		omit[ref] = true
	}
	pageSize := s.taxScript.PageSize
	var total, excl, incl int64
	for i, it := range items {
		it.ID = fmt.Sprintf("tax_li_fake_%04d_%d", s.nextID, i)
		total += it.Amount
		if it.TaxBehavior == "exclusive" {
			total += it.AmountTax
			excl += it.AmountTax
		} else {
			incl += it.AmountTax
		}
		if !omit[it.Reference] {
			calc.items = append(calc.items, it)
		}
	}
	s.taxCalcs[calc.id] = calc
	s.mu.Unlock()
	total += ship
	if shipBehavior == "exclusive" {
		total += shipTax
		excl += shipTax
	} else {
		incl += shipTax
	}

	body := map[string]any{
		"id": calc.id, "object": "tax.calculation", "currency": currency, "customer": nil,
		"amount_total": total, "tax_amount_exclusive": excl, "tax_amount_inclusive": incl,
		"expires_at": 1700090000, "livemode": false, "tax_date": 1700000000,
		"customer_details": map[string]any{
			"address": map[string]any{
				"country": country, "state": nilIf(form.Get("customer_details[address][state]") == "", form.Get("customer_details[address][state]")),
				"postal_code": nilIf(form.Get("customer_details[address][postal_code]") == "", form.Get("customer_details[address][postal_code]")),
				"city":        nilIf(form.Get("customer_details[address][city]") == "", form.Get("customer_details[address][city]")),
				"line1":       nilIf(form.Get("customer_details[address][line1]") == "", form.Get("customer_details[address][line1]")),
				"line2":       nil,
			},
			"address_source": nilIf(form.Get("customer_details[address_source]") == "", form.Get("customer_details[address_source]")),
			"ip_address":     nil, "tax_ids": []any{}, "taxability_override": "none",
		},
		"line_items":        nil,
		"shipping_cost":     nil,
		"tax_breakdown":     []any{},
		"ship_from_details": nil,
	}
	if hasShip {
		body["shipping_cost"] = map[string]any{"amount": ship, "amount_tax": shipTax, "shipping_rate": nil,
			"tax_behavior": shipBehavior, "tax_code": "txcd_92010001"}
	}
	if expanded(form, "line_items") {
		body["line_items"] = lineItemsPage(calc, "", pageSize)
	}
	writeJSON(w, 200, body)
}

func expanded(form url.Values, field string) bool {
	for k, vs := range form {
		if k == "expand[]" || strings.HasPrefix(k, "expand[") {
			for _, v := range vs {
				if v == field {
					return true
				}
			}
		}
	}
	return false
}

func (s *Server) rateFor(country, state string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	country, state = strings.ToUpper(country), strings.ToUpper(state)
	if state != "" {
		if r, ok := s.taxRates[country+"-"+state]; ok {
			return r
		}
	}
	return s.taxRates[country]
}

// lineItemsPage is a list object of calc's items after the one with id
// after (all when ""), at most limit (all when <= 0).
func lineItemsPage(calc *taxCalc, after string, limit int) map[string]any {
	items := calc.items
	if after != "" {
		for i, it := range items {
			if it.ID == after {
				items = items[i+1:]
				break
			}
		}
	}
	more := false
	if limit > 0 && len(items) > limit {
		items, more = items[:limit], true
	}
	data := make([]any, 0, len(items))
	for _, it := range items {
		data = append(data, map[string]any{
			"id": it.ID, "object": "tax.calculation_line_item", "amount": it.Amount, "amount_tax": it.AmountTax,
			"livemode": false, "metadata": map[string]string{}, "product": nil, "quantity": 1, "reference": it.Reference,
			"tax_behavior": it.TaxBehavior, "tax_breakdown": nil, "tax_code": "txcd_99999999",
		})
	}
	return map[string]any{"object": "list", "data": data, "has_more": more, "url": "/v1/tax/calculations/" + calc.id + "/line_items"}
}

func (s *Server) listTaxLineItems(w http.ResponseWriter, r *http.Request, form url.Values) {
	id := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/tax/calculations/"), "/line_items")
	s.mu.Lock()
	calc, ok := s.taxCalcs[id]
	pageSize := s.taxScript.PageSize
	s.mu.Unlock()
	if !ok {
		writeError(w, 404, apiErr{Type: "invalid_request_error", Code: "resource_missing", Param: "calculation",
			Message: fmt.Sprintf("No such tax.calculation: '%s'", id)})
		return
	}
	limit := 10
	if l, err := strconv.Atoi(form.Get("limit")); err == nil && l > 0 {
		limit = min(l, 100)
	}
	if pageSize > 0 {
		limit = min(limit, pageSize)
	}
	writeJSON(w, 200, lineItemsPage(calc, form.Get("starting_after"), limit))
}
