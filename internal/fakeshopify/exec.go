package fakeshopify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// obj is an object as the executor sees it: field name → value, where a
// value is a scalar, an obj, a list, or a resolver taking the field's
// arguments. "__typename" names the object's type (for fragments).
type obj map[string]any

// resolver computes a field from its arguments.
type resolver func(args map[string]any) (any, error)

// errNotServed marks a field the schema has but the fake does not serve:
// the fake is incomplete, which a test must see rather than get null.
var errNotServed = errors.New("fakeshopify: field not served")

// executor runs one validated operation over the fake's objects. It is a
// plain GraphQL executor for what the bridge sends: fields, aliases,
// arguments with variables, inline fragments and fragment spreads.
type executor struct {
	schema *ast.Schema
	vars   map[string]any
}

func (x *executor) selectionSet(o obj, set ast.SelectionSet) (map[string]any, error) {
	out := map[string]any{}
	if err := x.collect(o, set, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (x *executor) collect(o obj, set ast.SelectionSet, out map[string]any) error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			v, err := x.field(o, s)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			out[key] = v
		case *ast.InlineFragment:
			if x.applies(o, s.TypeCondition) {
				if err := x.collect(o, s.SelectionSet, out); err != nil {
					return err
				}
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && x.applies(o, s.Definition.TypeCondition) {
				if err := x.collect(o, s.Definition.SelectionSet, out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// applies reports whether a fragment on type cond applies to o.
func (x *executor) applies(o obj, cond string) bool {
	typ, _ := o["__typename"].(string)
	if cond == "" || cond == typ {
		return true
	}
	def := x.schema.Types[typ]
	return def != nil && x.schema.Types[cond] != nil && implements(def, cond)
}

func implements(def *ast.Definition, iface string) bool {
	for _, i := range def.Interfaces {
		if i == iface {
			return true
		}
	}
	return false
}

func (x *executor) field(o obj, f *ast.Field) (any, error) {
	if f.Name == "__typename" {
		return o["__typename"], nil
	}
	v, ok := o[f.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s", errNotServed, o["__typename"], f.Name)
	}
	if r, ok := v.(resolver); ok {
		var err error
		if v, err = r(f.ArgumentMap(x.vars)); err != nil {
			return nil, err
		}
	}
	return x.complete(v, f.SelectionSet)
}

func (x *executor) complete(v any, set ast.SelectionSet) (any, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case obj:
		if t == nil {
			return nil, nil
		}
		return x.selectionSet(t, set)
	case []obj:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := x.complete(e, set)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// requestedCost estimates a query's cost the way Shopify documents it:
// an object costs 1, a connection 2 plus first × the cost of one node,
// scalars and enums nothing, a mutation 10.
func requestedCost(schema *ast.Schema, op *ast.OperationDefinition, vars map[string]any) int {
	if op.Operation == ast.Mutation {
		return 10
	}
	return setCost(schema, op.SelectionSet, vars)
}

func setCost(schema *ast.Schema, set ast.SelectionSet, vars map[string]any) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			n += fieldCost(schema, s, vars)
		case *ast.InlineFragment:
			n += setCost(schema, s.SelectionSet, vars)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n += setCost(schema, s.Definition.SelectionSet, vars)
			}
		}
	}
	return n
}

func fieldCost(schema *ast.Schema, f *ast.Field, vars map[string]any) int {
	if f.Definition == nil || len(f.SelectionSet) == 0 {
		return 0
	}
	typ := f.Definition.Type.Name()
	if strings.HasSuffix(typ, "Connection") {
		first := 1
		if v, ok := f.ArgumentMap(vars)["first"].(int64); ok {
			first = int(v)
		}
		per := 0
		for _, sel := range f.SelectionSet {
			c, ok := sel.(*ast.Field)
			if !ok {
				continue
			}
			switch c.Name {
			case "nodes":
				per += 1 + setCost(schema, c.SelectionSet, vars)
			case "edges":
				for _, e := range c.SelectionSet {
					if n, ok := e.(*ast.Field); ok && n.Name == "node" {
						per += 1 + setCost(schema, n.SelectionSet, vars)
					}
				}
			}
		}
		return 2 + first*per
	}
	if ids, ok := f.ArgumentMap(vars)["ids"].([]any); ok && f.Name == "nodes" {
		// A list is charged for its largest size: one object per id.
		return len(ids) * (1 + setCost(schema, f.SelectionSet, vars))
	}
	return 1 + setCost(schema, f.SelectionSet, vars)
}

// countObjects is the actual cost of a result: one per object returned.
func countObjects(v any) int {
	switch t := v.(type) {
	case map[string]any:
		n := 1
		for _, e := range t {
			n += countObjects(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range t {
			n += countObjects(e)
		}
		return n
	}
	return 0
}
