package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	stripego "github.com/stripe/stripe-go/v82"
)

// Stripe Tax: CalculateTax asks POST /v1/tax/calculations for the tax of a
// cart's lines and shipping, to the shipping address. A calculation is a
// quote (it creates nothing that is charged or reported), so it is retried
// like any other call, without an Idempotency-Key.

// TaxLine is one line to tax: Ref identifies it (the session line id),
// Amount its subtotal in minor units.
type TaxLine struct {
	Ref    string
	Amount int64
}

// TaxQuery is what CalculateTax prices.
type TaxQuery struct {
	Currency string // ISO 4217, any case
	// The shipping address.
	Country, Region, PostalCode, City, Line1 string
	Lines                                    []TaxLine
	Shipping                                 int64 // shipping cost, minor units
	// PricesIncludeTax sends tax_behavior inclusive (else exclusive), for
	// the lines and the shipping cost.
	PricesIncludeTax bool
}

// TaxAnswer is Stripe Tax's answer.
type TaxAnswer struct {
	Lines    []int64 // tax of each line, same order as the query
	Shipping int64   // tax on shipping
}

// ErrTaxUnavailable is wrapped by CalculateTax's error when Stripe could not
// be reached or kept failing (5xx, 429, 409, timeouts) within the retry
// budget. It is not bridge.ErrPaymentUnavailable: no payment is involved.
var ErrTaxUnavailable = errors.New("stripe: tax calculation unavailable")

// ErrInvalidTaxQuery is returned, without calling Stripe, for a query
// Stripe would refuse.
var ErrInvalidTaxQuery = errors.New("stripe: invalid tax query")

// ErrTaxAnswer is wrapped by CalculateTax's error when Stripe's answer does
// not cover the query (a line missing by reference, a reference answered
// twice).
var ErrTaxAnswer = errors.New("stripe: incomplete tax calculation")

// maxTaxRef is Stripe's limit on a line item's reference.
const maxTaxRef = 500

// CalculateTax asks Stripe Tax for the tax of q's lines and shipping. The
// answer's lines are matched to the query's by reference. Any error means
// the tax is unknown: ErrInvalidTaxQuery (not sent), ErrTaxUnavailable
// (retries spent), *Error (Stripe refused the request, e.g. Stripe Tax not
// enabled or an address it cannot tax), ErrTaxAnswer (lines missing).
func (p *Provider) CalculateTax(ctx context.Context, q TaxQuery) (TaxAnswer, error) {
	if err := validateTaxQuery(q); err != nil {
		return TaxAnswer{}, err
	}
	if err := ctx.Err(); err != nil {
		return TaxAnswer{}, fmt.Errorf("%w: %w", ErrTaxUnavailable, err)
	}
	c := p.newCall(ErrTaxUnavailable)
	calc, items, err := c.calculateTax(ctx, q)
	if err != nil {
		return TaxAnswer{}, err
	}
	return taxAnswer(q, calc, items)
}

func validateTaxQuery(q TaxQuery) error {
	switch {
	case len(q.Currency) != 3:
		return fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrInvalidTaxQuery, q.Currency)
	case len(strings.TrimSpace(q.Country)) != 2:
		return fmt.Errorf("%w: country %q is not a two-letter code", ErrInvalidTaxQuery, q.Country)
	case len(q.Lines) == 0:
		return fmt.Errorf("%w: no lines", ErrInvalidTaxQuery)
	case q.Shipping < 0:
		return fmt.Errorf("%w: shipping %d is negative", ErrInvalidTaxQuery, q.Shipping)
	}
	seen := make(map[string]bool, len(q.Lines))
	for i, l := range q.Lines {
		switch {
		case l.Ref == "":
			return fmt.Errorf("%w: line %d has no reference", ErrInvalidTaxQuery, i)
		case len(l.Ref) > maxTaxRef:
			return fmt.Errorf("%w: line %d's reference is longer than %d characters", ErrInvalidTaxQuery, i, maxTaxRef)
		case seen[l.Ref]:
			return fmt.Errorf("%w: reference %q is on two lines", ErrInvalidTaxQuery, l.Ref)
		case l.Amount < 0:
			return fmt.Errorf("%w: line %q amount %d is negative", ErrInvalidTaxQuery, l.Ref, l.Amount)
		}
		seen[l.Ref] = true
	}
	return nil
}

// taxParams is the form of the calculation request.
func taxParams(q TaxQuery) *stripego.TaxCalculationCreateParams {
	behavior := "exclusive"
	if q.PricesIncludeTax {
		behavior = "inclusive"
	}
	addr := &stripego.AddressParams{Country: stripego.String(strings.ToUpper(strings.TrimSpace(q.Country)))}
	set := func(dst **string, v string) {
		if v = strings.TrimSpace(v); v != "" {
			*dst = stripego.String(v)
		}
	}
	set(&addr.State, q.Region)
	set(&addr.PostalCode, q.PostalCode)
	set(&addr.City, q.City)
	set(&addr.Line1, q.Line1)
	params := &stripego.TaxCalculationCreateParams{
		Currency: stripego.String(strings.ToLower(q.Currency)),
		CustomerDetails: &stripego.TaxCalculationCreateCustomerDetailsParams{
			Address:       addr,
			AddressSource: stripego.String("shipping"),
		},
		ShippingCost: &stripego.TaxCalculationCreateShippingCostParams{
			Amount:      stripego.Int64(q.Shipping),
			TaxBehavior: stripego.String(behavior),
		},
	}
	for _, l := range q.Lines {
		params.LineItems = append(params.LineItems, &stripego.TaxCalculationCreateLineItemParams{
			Amount:      stripego.Int64(l.Amount),
			Reference:   stripego.String(l.Ref),
			TaxBehavior: stripego.String(behavior),
		})
	}
	params.AddExpand("line_items")
	return params
}

// calculateTax creates the calculation and returns it with all its line
// items (read page by page when the expanded list has more).
func (c *call) calculateTax(ctx context.Context, q TaxQuery) (*stripego.TaxCalculation, []*stripego.TaxCalculationLineItem, error) {
	params := taxParams(q)
	var calc *stripego.TaxCalculation
	err := c.do(ctx, "calculate tax", func(actx context.Context) error {
		params.Context = actx
		params.Headers = c.p.headers()
		var err error
		calc, err = c.p.client.V1TaxCalculations.Create(actx, params)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if calc.LineItems == nil {
		return calc, nil, fmt.Errorf("%w: calculation %s came without its line items", ErrTaxAnswer, calc.ID)
	}
	items := append([]*stripego.TaxCalculationLineItem(nil), calc.LineItems.Data...)
	more := calc.LineItems.HasMore
	for page := 0; more; page++ {
		if calc.ID == "" || !idRE.MatchString(calc.ID) || len(items) == 0 || page > len(q.Lines) {
			return calc, items, fmt.Errorf("%w: calculation %q line items cannot be paged", ErrTaxAnswer, calc.ID)
		}
		var list *stripego.TaxCalculationLineItemList
		after := items[len(items)-1].ID
		err := c.do(ctx, "read the tax calculation's line items", func(actx context.Context) error {
			lp := &lineItemsPageParams{Limit: stripego.Int64(100), StartingAfter: stripego.String(after)}
			lp.Context = actx
			lp.Headers = c.p.headers()
			list = &stripego.TaxCalculationLineItemList{}
			return c.p.backend.Call(http.MethodGet, "/v1/tax/calculations/"+calc.ID+"/line_items", c.p.key, lp, list)
		})
		if err != nil {
			return calc, items, err
		}
		items = append(items, list.Data...)
		more = list.HasMore && len(list.Data) > 0
	}
	return calc, items, nil
}

// lineItemsPageParams reads one page of a calculation's line items
// (stripego.ListParams cannot carry the Stripe-Version header).
type lineItemsPageParams struct {
	stripego.Params `form:"*"`
	Limit           *int64  `form:"limit"`
	StartingAfter   *string `form:"starting_after"`
}

// taxAnswer matches the calculation's line items to q's lines by reference.
func taxAnswer(q TaxQuery, calc *stripego.TaxCalculation, items []*stripego.TaxCalculationLineItem) (TaxAnswer, error) {
	byRef := make(map[string]int64, len(items))
	for _, it := range items {
		if it == nil {
			continue
		}
		if _, dup := byRef[it.Reference]; dup {
			return TaxAnswer{}, fmt.Errorf("%w: calculation %s answers reference %q twice", ErrTaxAnswer, calc.ID, it.Reference)
		}
		byRef[it.Reference] = it.AmountTax
	}
	ans := TaxAnswer{Lines: make([]int64, len(q.Lines))}
	var missing []string
	for i, l := range q.Lines {
		tax, ok := byRef[l.Ref]
		if !ok {
			missing = append(missing, fmt.Sprintf("%q", l.Ref))
			continue
		}
		ans.Lines[i] = tax
	}
	if len(missing) > 0 {
		return TaxAnswer{}, fmt.Errorf("%w: calculation %s has no line for reference %s", ErrTaxAnswer, calc.ID, strings.Join(missing, ", "))
	}
	if calc.ShippingCost != nil {
		ans.Shipping = calc.ShippingCost.AmountTax
	} else if q.Shipping > 0 {
		return TaxAnswer{}, fmt.Errorf("%w: calculation %s has no shipping cost", ErrTaxAnswer, calc.ID)
	}
	return ans, nil
}

// rawTaxCalculation is CalculateTax without the matching, for contract
// tests: the calculation Stripe returned.
func (p *Provider) rawTaxCalculation(ctx context.Context, q TaxQuery) (*stripego.TaxCalculation, error) {
	if err := validateTaxQuery(q); err != nil {
		return nil, err
	}
	c := p.newCall(ErrTaxUnavailable)
	calc, _, err := c.calculateTax(ctx, q)
	return calc, err
}
