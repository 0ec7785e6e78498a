// Package acpspec gives tests the official Agentic Commerce Protocol
// specification data (JSON Schemas, OpenAPI, examples) for every released API
// version, embedded so that tests pass on a fresh clone. The files under data/
// are an unmodified copy of the public specification (Apache-2.0, see
// data/LICENSE and data/NOTICE). Only tests and generators should import
// this package (the MCP door's tool schemas are generated from it by
// mcpapi/internal/gentools), so the binary does not carry the spec data.
package acpspec

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed data
var data embed.FS

// Versions lists the released ACP API versions, oldest first.
var Versions = []string{"2025-09-29", "2025-12-12", "2026-01-16", "2026-01-30", "2026-04-17"}

// FS returns the specification files rooted at data/ (spec/, examples/).
func FS() fs.FS {
	sub, err := fs.Sub(data, "data")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder
	}
	return sub
}

var (
	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
)

// Schema compiles the definition def ("Product", "CheckoutSession" …) of the
// JSON Schema file name ("schema.feed.json") of version.
func Schema(version, name, def string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	key := version + "/" + name + "#" + def
	if s, ok := compiled[key]; ok {
		return s, nil
	}
	file := path.Join("spec", version, "json-schema", name)
	doc, err := loadJSONSchema(version, name)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := resourceURL(version, name)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add %s: %w", file, err)
	}
	s, err := c.Compile(url + "#/$defs/" + def)
	if err != nil {
		return nil, fmt.Errorf("compile %s#%s: %w", file, def, err)
	}
	compiled[key] = s
	return s, nil
}

// Validate checks the JSON document raw against def of name at version.
func Validate(version, name, def string, raw []byte) error {
	s, err := Schema(version, name, def)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decode instance: %w", err)
	}
	return s.Validate(inst)
}

// Example returns one named example object of an examples file, such as
// Example("2026-04-17", "examples.feed.json", "get_feed_response").
func Example(version, file, name string) (json.RawMessage, error) {
	raw, err := fs.ReadFile(FS(), path.Join("examples", version, file))
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	ex, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("%s has no example %q", file, name)
	}
	return ex, nil
}

// patches repair verified defects of released schemas, so that tests check
// what the protocol means rather than fail on the spec's own bugs (see
// docs/acp-conformance.md, "Verified schema problems"). The files under
// data/ stay unmodified copies.
var patches = map[string]func(doc any) error{
	// 2025-09-29: `exclusiveMinimum: true` is draft-4 syntax, invalid in the
	// 2020-12 dialect the file declares (it does not compile); and
	// CheckoutSessionWithOrder adds `order` to a base with
	// additionalProperties:false, so no complete response could validate.
	// Later versions fixed both the same way.
	"2025-09-29/schema.agentic_checkout.json": func(doc any) error {
		defs, err := object(doc, "$defs")
		if err != nil {
			return err
		}
		qty, err := object(defs, "Item", "properties", "quantity")
		if err != nil {
			return err
		}
		delete(qty, "minimum")
		qty["exclusiveMinimum"] = json.Number("0")
		props, err := object(defs, "CheckoutSessionBase", "properties")
		if err != nil {
			return err
		}
		props["order"] = map[string]any{"$ref": "#/$defs/Order"}
		return nil
	},
}

// object walks nested JSON objects by key.
func object(v any, keys ...string) (map[string]any, error) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: not an object", k)
		}
		if v, ok = m[k]; !ok {
			return nil, fmt.Errorf("%s: missing", k)
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not an object")
	}
	return m, nil
}
