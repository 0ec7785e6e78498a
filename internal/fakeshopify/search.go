package fakeshopify

import (
	"fmt"
	"strings"
	"time"
)

// term is one field:value condition of Shopify's search syntax; op is "",
// ">", ">=", "<" or "<=".
type term struct{ field, op, value string }

// search is a parsed query: every group must match, a group matches when
// one of its terms does ("(id:1 OR id:2) AND status:active").
type search [][]term

// parseSearch reads the subset of Shopify's search syntax the bridge sends.
// Unlike Shopify, which ignores what it does not understand, the fake
// refuses fields it does not know, so a typo in a filter fails a test
// instead of silently matching everything.
func parseSearch(q string, fields ...string) (search, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	// OR binds the terms beside it; everything else is AND. Parentheses
	// only group, so they need no more than a balance check here.
	var s search
	depth, or := 0, false
	for _, t := range toks {
		switch t {
		case "(":
			depth++
		case ")":
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced parenthesis in query %q", q)
			}
		case "OR":
			or = true
		case "AND":
		default:
			tm, err := parseTerm(t, fields)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", q, err)
			}
			if or && len(s) > 0 {
				s[len(s)-1] = append(s[len(s)-1], tm)
			} else {
				s = append(s, []term{tm})
			}
			or = false
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parenthesis in query %q", q)
	}
	return s, nil
}

func tokenize(q string) ([]string, error) {
	var toks []string
	var b strings.Builder
	var quote rune
	flush := func() {
		if b.Len() > 0 {
			toks = append(toks, b.String())
			b.Reset()
		}
	}
	for _, r := range q {
		switch {
		case quote != 0:
			b.WriteRune(r)
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
			b.WriteRune(r)
		case r == '(' || r == ')':
			flush()
			toks = append(toks, string(r))
		case r == ' ' || r == '\t':
			flush()
		default:
			b.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in query %q", q)
	}
	flush()
	return toks, nil
}

func parseTerm(t string, fields []string) (term, error) {
	field, value, ok := strings.Cut(t, ":")
	if !ok {
		return term{}, fmt.Errorf("the fake supports field:value terms only, have %q", t)
	}
	known := false
	for _, f := range fields {
		known = known || f == field
	}
	if !known {
		return term{}, fmt.Errorf("unsupported search field %q (the fake knows %s)", field, strings.Join(fields, ", "))
	}
	var op string
	for _, p := range []string{">=", "<=", ">", "<"} {
		if v, ok := strings.CutPrefix(value, p); ok {
			op, value = p, v
			break
		}
	}
	if len(value) >= 2 && (value[0] == '\'' || value[0] == '"') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return term{field: field, op: op, value: value}, nil
}

// match reports whether the item whose fields get returns matches s.
// Times compare as times; other values as case-insensitive text.
func (s search) match(get func(field string) []string) (bool, error) {
	for _, group := range s {
		ok := false
		for _, t := range group {
			m, err := t.match(get(t.field))
			if err != nil {
				return false, err
			}
			ok = ok || m
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func (t term) match(values []string) (bool, error) {
	if t.op == "" {
		for _, v := range values {
			if strings.EqualFold(v, t.value) {
				return true, nil
			}
		}
		return false, nil
	}
	want, err := time.Parse(time.RFC3339, t.value)
	if err != nil {
		return false, fmt.Errorf("%s%s: want an RFC 3339 time: %w", t.field, t.op, err)
	}
	for _, v := range values {
		have, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			continue
		}
		switch {
		case t.op == ">" && have.After(want), t.op == ">=" && !have.Before(want),
			t.op == "<" && have.Before(want), t.op == "<=" && !have.After(want):
			return true, nil
		}
	}
	return false, nil
}
