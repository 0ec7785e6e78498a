package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/acp-bridge/bridge"
	"github.com/acp-bridge/bridge/internal/htmltext"
)

// A filter transforms a value. args are the filter's own arguments (already
// evaluated); in is the piped value. Filters never panic on odd input: they
// return an error, which becomes a validation issue on the record.
type filter struct {
	name    string
	minArgs int
	maxArgs int
	// intArg, when >= 0, is the index of an argument that must be an integer
	// literal; checked when the mapping is compiled.
	intArg int
	// words lets arguments be bare words (money EUR, availability
	// backorder); other filters take a quoted constant or a path, so a
	// typo such as `default merchant_name` is an error, not a constant.
	words bool
	fn    func(env *Env, in any, args []any) (any, error)
	doc   string
}

// filters is the documented filter set. Keep README's table in step.
var filters = map[string]filter{}

func init() {
	for _, f := range []filter{
		{name: "money", maxArgs: 1, intArg: -1, words: true, fn: moneyFilter,
			doc: "decimal in the currency's minor-unit scale: 49.9 → 49.90 (JPY: 1500); optional currency code argument"},
		{name: "strip_html", intArg: -1, fn: func(_ *Env, in any, _ []any) (any, error) { return htmltext.Text(toString(in)), nil },
			doc: "HTML to plain text: tags removed, entities decoded, whitespace collapsed"},
		{name: "truncate", minArgs: 1, maxArgs: 1, intArg: 0, fn: truncateFilter,
			doc: "cut to at most N characters (runes), ending in … when cut, preferring a word boundary"},
		{name: "join", maxArgs: 1, intArg: -1, words: true, fn: joinFilter,
			doc: "list to text with a separator (default \", \")"},
		{name: "split", maxArgs: 1, intArg: -1, words: true, fn: splitFilter,
			doc: "text to list on a separator (default: commas, pipes and whitespace)"},
		{name: "lower", intArg: -1, fn: func(_ *Env, in any, _ []any) (any, error) { return strings.ToLower(toString(in)), nil },
			doc: "lower case"},
		{name: "upper", intArg: -1, fn: func(_ *Env, in any, _ []any) (any, error) { return strings.ToUpper(toString(in)), nil },
			doc: "upper case"},
		{name: "trim", intArg: -1, fn: func(_ *Env, in any, _ []any) (any, error) { return strings.TrimSpace(toString(in)), nil },
			doc: "remove surrounding whitespace"},
		{name: "default", minArgs: 1, maxArgs: 1, intArg: -1, fn: defaultFilter,
			doc: "the argument (a constant or another path) when the value is empty"},
		{name: "availability", maxArgs: 1, intArg: -1, words: true, fn: availabilityFilter,
			doc: "stock quantity or status text to availability: >0 in_stock, <=0 out_of_stock (backorder with the argument \"backorder\"), empty in_stock (untracked); status words like instock, onbackorder, preorder are normalised"},
	} {
		filters[f.name] = f
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = toString(p)
		}
		return strings.Join(parts, ", ")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case []any:
		return len(x) == 0
	case []string:
		return len(x) == 0
	}
	return false
}

func moneyFilter(env *Env, in any, args []any) (any, error) {
	cur := env.Merchant.Currency
	if len(args) == 1 {
		cur = toString(args[0])
	}
	s := toString(in)
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	m, err := bridge.ParseMoney(s, cur)
	if err != nil {
		return nil, err
	}
	return m.Decimal(), nil
}

func truncateFilter(_ *Env, in any, args []any) (any, error) {
	n, _ := args[0].(int)
	return Truncate(toString(in), n), nil
}

// Truncate cuts s to at most n runes. When it must cut, it ends in "…" and
// prefers the last word boundary in the final fifth, so titles do not end in
// half a word. Feeds count characters, not bytes.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	cut := runes[:n-1]
	for i := len(cut) - 1; i >= len(cut)*4/5 && i > 0 && !unicode.IsSpace(runes[n-1]); i-- {
		if unicode.IsSpace(cut[i]) {
			cut = cut[:i]
			break
		}
	}
	return strings.TrimRightFunc(string(cut), unicode.IsSpace) + "…"
}

func joinFilter(_ *Env, in any, args []any) (any, error) {
	sep := ", "
	if len(args) == 1 {
		sep = toString(args[0])
	}
	switch x := in.(type) {
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			if s := toString(p); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, sep), nil
	case []string:
		return strings.Join(x, sep), nil
	}
	return toString(in), nil
}

func splitFilter(_ *Env, in any, args []any) (any, error) {
	if l, ok := in.([]any); ok {
		return l, nil
	}
	s := toString(in)
	var parts []string
	if len(args) == 1 && toString(args[0]) != "" {
		parts = strings.Split(s, toString(args[0]))
	} else {
		parts = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '|' || unicode.IsSpace(r) })
	}
	out := make([]any, 0, len(parts))
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func defaultFilter(_ *Env, in any, args []any) (any, error) {
	if isEmpty(in) {
		return args[0], nil
	}
	return in, nil
}

func availabilityFilter(_ *Env, in any, args []any) (any, error) {
	backorder := len(args) == 1 && toString(args[0]) == "backorder"
	if len(args) == 1 && !backorder {
		return nil, fmt.Errorf("availability: unknown argument %q (only \"backorder\")", toString(args[0]))
	}
	s := strings.TrimSpace(toString(in))
	if s == "" {
		return string(bridge.InStock), nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		switch {
		case n > 0:
			return string(bridge.InStock), nil
		case backorder:
			return string(bridge.Backorder), nil
		default:
			return string(bridge.OutOfStock), nil
		}
	}
	a, err := ParseAvailability(s)
	if err != nil {
		return nil, err
	}
	return string(a), nil
}

// ParseAvailability normalises the ways stores spell stock states
// ("instock", "In Stock", "onbackorder", "pre_order", "sold out") to the
// canonical bridge.Availability.
func ParseAvailability(s string) (bridge.Availability, error) {
	key := strings.Map(func(r rune) rune {
		if r == ' ' || r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	switch key {
	case "instock", "available", "yes", "true":
		return bridge.InStock, nil
	case "limitedstock", "lowstock":
		return bridge.LimitedStock, nil
	case "outofstock", "soldout", "unavailable", "no", "false":
		return bridge.OutOfStock, nil
	case "backorder", "onbackorder", "backordered":
		return bridge.Backorder, nil
	case "preorder":
		return bridge.Preorder, nil
	case "discontinued":
		return bridge.Discontinued, nil
	case "unknown":
		return bridge.Unknown, nil
	}
	return "", fmt.Errorf("availability %q is not a known stock state (in_stock, out_of_stock, backorder, preorder, limited_stock, discontinued)", s)
}
