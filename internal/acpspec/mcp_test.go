package acpspec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// parse decodes JSON as the resolver reads files (numbers as json.Number).
func parse(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestResolve(t *testing.T) {
	docs := map[string]string{
		"dir/a.json": `{"$defs":{
			"X":{"type":"object","properties":{
				"y":{"$ref":"#/$defs/Y","description":"the y"},
				"z":{"$ref":"b.json#/$defs/Z","minLength":2},
				"w":{"type":"array","items":{"$ref":"#/$defs/a~1b"}}}},
			"Y":{"type":"string","description":"old","maxLength":5000},
			"a/b":{"const":1},
			"C1":{"properties":{"n":{"$ref":"#/$defs/C2"}}},
			"C2":{"items":{"$ref":"#/$defs/C1"}},
			"Bad":{"$ref":"#/$defs/Nope"}}}`,
		"dir/b.json": `{"$defs":{"Z":{"type":"string"}}}`,
	}
	resolve := func(file, frag string) (any, error) {
		r := &resolver{docs: map[string]any{}}
		for name, d := range docs {
			r.docs[name] = parse(t, d)
		}
		return r.resolve(file, map[string]any{"$ref": "#" + frag}, nil)
	}
	for _, tc := range []struct {
		name, frag, want, err string
	}{
		{name: "annotations laid over the target, allOf for the rest, across files", frag: "/$defs/X",
			want: `{"type":"object","properties":{
				"y":{"type":"string","description":"the y","maxLength":5000},
				"z":{"allOf":[{"type":"string"}],"minLength":2},
				"w":{"type":"array","items":{"const":1}}}}`},
		{name: "cycle", frag: "/$defs/C1", err: "reference cycle"},
		{name: "dangling", frag: "/$defs/Bad", err: `no "Nope"`},
		{name: "not a pointer", frag: "defs", err: "not a JSON Pointer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve("dir/a.json", tc.frag)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := parse(t, tc.want); !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				t.Fatalf("got %s\nwant %s", g, tc.want)
			}
		})
	}
}

// The released binding bundles completely: five tools, no $ref left.
func TestMCPTools(t *testing.T) {
	raw, err := MCPTools("2026-04-17")
	if err != nil {
		t.Fatal(err)
	}
	var tools []MCPTool
	if err := json.Unmarshal(raw, &tools); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools {
		names = append(names, tool.Name)
	}
	want := []string{"create_checkout_session", "get_checkout_session", "update_checkout_session", "complete_checkout_session", "cancel_checkout_session"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	if strings.Contains(string(raw), `"$ref"`) {
		t.Fatal("a $ref is left")
	}
	s, err := Resolve("spec/2026-04-17/json-schema/schema.agentic_checkout.json#/$defs/CheckoutSession")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(s); strings.Contains(string(b), `"$ref"`) {
		t.Fatal("Resolve left a $ref")
	}
	if _, err := MCPTools("2025-09-29"); err == nil {
		t.Fatal("a version without the binding gave tools")
	}
}
