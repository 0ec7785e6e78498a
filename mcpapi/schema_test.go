package mcpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/internal/acpspec"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// tools.json is what the spec data gives: `go generate ./mcpapi` after
// updating internal/acpspec/data.
func TestToolsFileIsUpToDate(t *testing.T) {
	want, err := acpspec.MCPTools(string(acp.Latest))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("tools.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("tools.json differs from the spec data: run go generate ./mcpapi")
	}
}

// rpcMethod is a method of the binding's OpenRPC document.
type rpcMethod struct {
	Name   string `json:"name"`
	Params []struct {
		Name        string         `json:"name"`
		Description string         `json:"description"`
		Required    bool           `json:"required"`
		Schema      map[string]any `json:"schema"`
	} `json:"params"`
	Result struct {
		Schema map[string]any `json:"schema"`
	} `json:"result"`
}

// openRPC reads the binding's OpenRPC document of the latest version.
func openRPC(t *testing.T) (methods []rpcMethod, metaSchema any) {
	t.Helper()
	raw, err := fs.ReadFile(acpspec.FS(), path.Join("spec", string(acp.Latest), "openrpc", "openrpc.agentic_checkout.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
		Methods []rpcMethod `json:"methods"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Methods, doc.Components.Schemas["meta"]
}

// def is the $defs name a schema of the OpenRPC document refers to.
func def(t *testing.T, s map[string]any) string {
	t.Helper()
	ref, _ := s["$ref"].(string)
	_, name, ok := strings.Cut(ref, "#/$defs/")
	if !ok {
		t.Fatalf("schema %v does not refer to a JSON Schema definition", s)
	}
	return name
}

// The tools the server lists are the binding's: one per OpenRPC method,
// params as properties (required as the params are), meta and id as the
// document has them, no $ref left, and payloads that accept and refuse
// exactly what the official request schemas do.
func TestToolSchemasMatchSpec(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	methods, metaSchema := openRPC(t)
	if len(res.Tools) != len(methods) {
		t.Fatalf("%d tools listed, the binding has %d", len(res.Tools), len(methods))
	}
	corpus := requestCorpus(t)
	for _, m := range methods {
		t.Run(m.Name, func(t *testing.T) {
			i := slices.IndexFunc(res.Tools, func(x *mcp.Tool) bool { return x.Name == m.Name })
			if i < 0 {
				t.Fatalf("tool %s not listed", m.Name)
			}
			schema := generic(t, res.Tools[i].InputSchema).(map[string]any)
			if refs := findRefs(schema, "$"); len(refs) > 0 {
				t.Fatalf("$ref left at %v", refs)
			}
			props := schema["properties"].(map[string]any)
			var required []any
			for _, p := range m.Params {
				if p.Required {
					required = append(required, p.Name)
				}
			}
			if schema["type"] != "object" || !reflect.DeepEqual(schema["required"], required) || len(props) != len(m.Params) {
				t.Fatalf("type %v, required %v (want %v), %d properties for %d params", schema["type"], schema["required"], required, len(props), len(m.Params))
			}
			for _, p := range m.Params {
				got, ok := props[p.Name].(map[string]any)
				if !ok {
					t.Fatalf("param %s: no property", p.Name)
				}
				switch p.Name {
				case "meta":
					if !reflect.DeepEqual(any(got), generic(t, metaSchema)) {
						t.Errorf("meta: %v\nwant the document's %v", got, metaSchema)
					}
				case "id":
					if want := map[string]any{"type": "string", "description": p.Description}; !reflect.DeepEqual(got, want) {
						t.Errorf("id: %v, want %v", got, want)
					}
				case "payload":
					if got["description"] != p.Description {
						t.Errorf("payload description %q, want the param's %q", got["description"], p.Description)
					}
					samePayloads(t, def(t, p.Schema), got, corpus)
				default:
					t.Errorf("unexpected param %s", p.Name)
				}
			}
		})
	}
}

// samePayloads checks that the tool's payload schema and the official
// definition agree on every instance of the corpus, and accept some.
func samePayloads(t *testing.T, defName string, payload map[string]any, corpus []instance) {
	t.Helper()
	official, err := acpspec.Schema(string(acp.Latest), schemaFile, defName)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(payload)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mem:///payload.json", doc); err != nil {
		t.Fatal(err)
	}
	bundled, err := c.Compile("mem:///payload.json")
	if err != nil {
		t.Fatalf("the tool's payload schema does not compile on its own: %v", err)
	}
	accepted := 0
	for _, in := range corpus {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(in.raw))
		if err != nil {
			t.Fatal(err)
		}
		want, got := official.Validate(v) == nil, bundled.Validate(v) == nil
		if want != got {
			t.Errorf("%s: the official %s says valid=%v, the tool's payload %v", in.name, defName, want, got)
		}
		if want {
			accepted++
		}
	}
	if accepted == 0 {
		t.Errorf("no instance of the corpus is a valid %s: the comparison proves nothing", defName)
	}
	t.Logf("%s: %d of %d instances valid, the tool's schema agrees on all", defName, accepted, len(corpus))
}

type instance struct {
	name string
	raw  []byte
}

// requestCorpus is every request body of the 2026-04-17 examples (REST
// and MCP), and variants of each: an unknown member added to, a member
// removed from and a value of another type put in every object, so that
// every nested definition is exercised both ways.
func requestCorpus(t *testing.T) []instance {
	t.Helper()
	var out []instance
	for _, file := range []string{"examples.agentic_checkout.json", "examples.multi_item_checkout.json", "examples.mcp.agentic_checkout.json"} {
		raw, err := fs.ReadFile(acpspec.FS(), path.Join("examples", string(acp.Latest), file))
		if err != nil {
			t.Fatal(err)
		}
		var all map[string]any
		if err := json.Unmarshal(raw, &all); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, name := range sortedKeys(all) {
			body := all[name]
			if args, ok := dig(body, "params", "arguments").(map[string]any); ok {
				body = args["payload"] // an MCP request
			} else if !strings.HasSuffix(name, "_request") || strings.HasPrefix(name, "error_") {
				continue // a response
			}
			if body == nil {
				continue // get
			}
			base := file + "#" + name
			out = append(out, instance{base, mustMarshal(t, body)})
			for _, m := range mutations(body, "$") {
				out = append(out, instance{base + " " + m.name, mustMarshal(t, m.value)})
			}
		}
	}
	return out
}

type mutation struct {
	name  string
	value any
}

// mutations returns copies of v with one change each, at every object
// inside it.
func mutations(v any, at string) []mutation {
	var out []mutation
	switch x := v.(type) {
	case map[string]any:
		out = append(out, mutation{"add " + at + ".x_unknown", with(x, "x_unknown", 1.0)})
		for _, k := range sortedKeys(x) {
			out = append(out, mutation{"drop " + at + "." + k, without(x, k)})
			out = append(out, mutation{"retype " + at + "." + k, with(x, k, otherType(x[k]))})
			for _, m := range mutations(x[k], at+"."+k) {
				out = append(out, mutation{m.name, with(x, k, m.value)})
			}
		}
	case []any:
		for i, e := range x {
			for _, m := range mutations(e, fmt.Sprintf("%s[%d]", at, i)) {
				c := slices.Clone(x)
				c[i] = m.value
				out = append(out, mutation{m.name, c})
			}
		}
	}
	return out
}

func with(m map[string]any, k string, v any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for key, val := range m {
		c[key] = val
	}
	c[k] = v
	return c
}

func without(m map[string]any, k string) map[string]any {
	c := with(m, k, nil)
	delete(c, k)
	return c
}

func otherType(v any) any {
	switch v.(type) {
	case string:
		return 42.0
	case float64:
		return "42"
	case bool:
		return "true"
	case []any:
		return map[string]any{}
	}
	return []any{"x"}
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// generic re-decodes v as plain JSON values.
func generic(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(mustMarshal(t, v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func findRefs(v any, at string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "$ref" {
				out = append(out, at)
			}
			out = append(out, findRefs(e, at+"."+k)...)
		}
	case []any:
		for i, e := range x {
			out = append(out, findRefs(e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	return out
}
