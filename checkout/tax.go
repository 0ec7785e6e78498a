package checkout

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/acp-bridge/bridge"
)

// TaxSource computes a session's tax instead of the configured rate
// tables (tax.provider: stripe). It is asked once per change of a session
// with an address, after pricing; the answer replaces the tables' tax.
type TaxSource interface {
	Tax(ctx context.Context, q TaxQuery) (TaxAnswer, error)
}

// TaxLine is one line to tax: Ref is the session line id, Amount its
// subtotal in minor units.
type TaxLine struct {
	Ref    string
	Amount int64
}

// TaxQuery is what a tax source needs.
type TaxQuery struct {
	Currency         string
	ShipTo           bridge.Address
	Lines            []TaxLine
	Shipping         int64
	PricesIncludeTax bool
}

// TaxAnswer is the tax of each line (in query order) and of shipping.
type TaxAnswer struct {
	Lines    []int64
	Shipping int64
}

// externalTax asks e.Tax for the session's tax and applies the answer. A
// session whose tax cannot be known cannot be paid: it gets an error
// message (fail closed) and becomes ready again on the next change once
// the source answers.
func (e *Engine) externalTax(ctx context.Context, s *bridge.Session) {
	if e.Tax == nil || s.ShipTo == nil || len(s.Lines) == 0 ||
		slices.ContainsFunc(s.Messages, func(m bridge.Message) bool { return m.Type == bridge.MessageError }) {
		return
	}
	q := TaxQuery{Currency: s.Currency, ShipTo: *s.ShipTo, Shipping: s.Totals.Fulfillment, PricesIncludeTax: e.PricesIncludeTax}
	for _, l := range s.Lines {
		q.Lines = append(q.Lines, TaxLine{Ref: l.ID, Amount: l.Subtotal})
	}
	tctx, cancel := context.WithTimeout(ctx, e.taxTimeout())
	defer cancel()
	ans, err := e.Tax.Tax(tctx, q)
	if err == nil && len(ans.Lines) != len(s.Lines) {
		err = fmt.Errorf("tax source answered %d lines for %d", len(ans.Lines), len(s.Lines))
	}
	if err == nil {
		err = applyTax(s, ans, e.PricesIncludeTax)
	}
	if err != nil {
		e.log().Warn("tax could not be calculated", "session", s.ID, "error", err)
		s.Messages = append(s.Messages, bridge.Message{Type: bridge.MessageError, Code: bridge.MsgInvalid, Param: "$.fulfillment_details.address",
			Content: "The tax for this order could not be calculated just now; update the session to try again.", Resolution: "recoverable"})
	}
}

func (e *Engine) taxTimeout() time.Duration {
	if e.TaxTimeout > 0 {
		return e.TaxTimeout
	}
	return 3 * time.Second
}

// applyTax puts the answer's tax on the lines and into the totals, keeping
// Total = Subtotal + Fulfillment + Tax (tax-exclusive) or Subtotal +
// Fulfillment with TaxIncluded (tax-inclusive), to the minor unit.
func applyTax(s *bridge.Session, ans TaxAnswer, inclusive bool) error {
	var sum int64
	for i := range s.Lines {
		if ans.Lines[i] < 0 {
			return fmt.Errorf("negative tax %d on line %s", ans.Lines[i], s.Lines[i].ID)
		}
		sum += ans.Lines[i]
	}
	if ans.Shipping < 0 {
		return fmt.Errorf("negative shipping tax %d", ans.Shipping)
	}
	t := &s.Totals
	if inclusive {
		for i := range s.Lines {
			l := &s.Lines[i]
			l.Tax, l.Total = 0, l.Subtotal
		}
		t.Tax, t.TaxIncluded = 0, sum+ans.Shipping
		t.Total = t.Subtotal + t.Fulfillment
		return nil
	}
	for i := range s.Lines {
		l := &s.Lines[i]
		l.Tax = ans.Lines[i]
		l.Total = l.Subtotal + l.Tax
	}
	for i := range s.Options {
		if o := &s.Options[i]; o.ID == s.Selected {
			o.Tax, o.Total = ans.Shipping, o.Subtotal+ans.Shipping
		}
	}
	t.Tax, t.TaxIncluded = sum+ans.Shipping, 0
	t.Total = t.Subtotal + t.Fulfillment + t.Tax
	return nil
}
