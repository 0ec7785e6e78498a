package acpspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
)

// MCPTool is one tool of ACP's MCP binding as an MCP server lists it: the
// OpenRPC method's name, summary (as the title) and description, and an
// input schema made of its params.
type MCPTool struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	InputSchema any    `json:"inputSchema"`
}

// MCPTools returns the tools of the MCP binding of version (its OpenRPC
// document, spec/<version>/openrpc/openrpc.agentic_checkout.json) as
// indented JSON: a list of MCPTool, in the document's order. Each tool's
// input schema is an object with one property per param ({meta, id?,
// payload?}), required as the params are, every $ref resolved and
// inlined (see Resolve): the binding says implementers MUST bundle them
// before serving tool schemas, since MCP clients cannot follow the
// document's relative file references. A param's description, when it
// has one, replaces its schema's (it says what the value means to this
// tool). Serving code embeds the output rather than this package.
func MCPTools(version string) ([]byte, error) {
	file := path.Join("spec", version, "openrpc", "openrpc.agentic_checkout.json")
	r := &resolver{docs: map[string]any{}}
	doc, err := r.doc(file)
	if err != nil {
		return nil, err
	}
	var rpc struct {
		Methods []struct {
			Name        string `json:"name"`
			Summary     string `json:"summary"`
			Description string `json:"description"`
			Params      []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				Required    bool   `json:"required"`
				Schema      any    `json:"schema"`
			} `json:"params"`
		} `json:"methods"`
	}
	if err := remarshal(doc, &rpc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(rpc.Methods) == 0 {
		return nil, fmt.Errorf("%s: no methods", file)
	}
	tools := make([]MCPTool, 0, len(rpc.Methods))
	for _, m := range rpc.Methods {
		props := map[string]any{}
		required := []string{}
		for _, p := range m.Params {
			s, err := r.resolve(file, p.Schema, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: method %s, param %s: %w", file, m.Name, p.Name, err)
			}
			if p.Description != "" {
				obj, ok := s.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%s: method %s, param %s: schema is not an object", file, m.Name, p.Name)
				}
				obj = maps.Clone(obj)
				obj["description"] = p.Description
				s = obj
			}
			props[p.Name] = s
			if p.Required {
				required = append(required, p.Name)
			}
		}
		tools = append(tools, MCPTool{Name: m.Name, Title: m.Summary, Description: m.Description,
			InputSchema: map[string]any{"type": "object", "properties": props, "required": required}})
	}
	out, err := json.MarshalIndent(tools, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the tools: %w", err)
	}
	return append(out, '\n'), nil
}

// Resolve returns the schema at ref — a file of the spec data and a JSON
// Pointer fragment, "spec/2026-04-17/json-schema/schema.agentic_checkout.json#/$defs/Item"
// — with every $ref in it replaced by its target, recursively, across
// files (relative references resolve against the referring file). A $ref
// whose siblings are annotations only (description, title, …) becomes its
// target with those annotations laid over it; other siblings keep their
// meaning through allOf. A reference cycle cannot be inlined and is an
// error.
func Resolve(ref string) (any, error) {
	file, frag, _ := strings.Cut(ref, "#")
	r := &resolver{docs: map[string]any{}}
	return r.resolve(file, map[string]any{"$ref": "#" + frag}, nil)
}

// resolver inlines references, reading each file of the spec data once.
type resolver struct {
	docs map[string]any
}

func (r *resolver) doc(file string) (any, error) {
	if d, ok := r.docs[file]; ok {
		return d, nil
	}
	raw, err := fs.ReadFile(FS(), file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	// Numbers stay as written (json.Number): a bundled schema must say
	// maxLength 5000, not 5e+03.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var d any
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	r.docs[file] = d
	return d, nil
}

// annotations are the keywords that only describe: laying them over a
// $ref's target changes no validation.
var annotations = []string{"description", "title", "examples", "example", "deprecated", "readOnly", "writeOnly", "$comment"}

// resolve copies v (found in file) with its references inlined. stack
// holds the references being inlined, to detect cycles.
func (r *resolver) resolve(file string, v any, stack []string) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = r.resolve(file, e, stack); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		ref, isRef := x["$ref"].(string)
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k == "$ref" && isRef {
				continue
			}
			var err error
			if out[k], err = r.resolve(file, e, stack); err != nil {
				return nil, err
			}
		}
		if !isRef {
			return out, nil
		}
		target, err := r.target(file, ref, stack)
		if err != nil {
			return nil, err
		}
		if len(out) == 0 {
			return target, nil
		}
		t, onlyNotes := target.(map[string]any)
		for k := range out {
			onlyNotes = onlyNotes && slices.Contains(annotations, k)
		}
		if onlyNotes {
			merged := maps.Clone(t)
			maps.Copy(merged, out)
			return merged, nil
		}
		out["allOf"] = append([]any{target}, asSlice(out["allOf"])...)
		return out, nil
	}
	return v, nil
}

// target resolves one reference made in file.
func (r *resolver) target(file, ref string, stack []string) (any, error) {
	refFile, frag, _ := strings.Cut(ref, "#")
	if refFile == "" {
		refFile = file
	} else {
		refFile = path.Join(path.Dir(file), refFile)
	}
	key := refFile + "#" + frag
	if slices.Contains(stack, key) {
		return nil, fmt.Errorf("reference cycle: %s → %s", strings.Join(stack, " → "), key)
	}
	doc, err := r.doc(refFile)
	if err != nil {
		return nil, err
	}
	t, err := pointer(doc, frag)
	if err != nil {
		return nil, fmt.Errorf("$ref %q in %s: %w", ref, file, err)
	}
	return r.resolve(refFile, t, append(slices.Clip(stack), key))
}

// pointer follows an RFC 6901 JSON Pointer.
func pointer(doc any, frag string) (any, error) {
	if frag == "" {
		return doc, nil
	}
	if frag[0] != '/' {
		return nil, fmt.Errorf("fragment %q is not a JSON Pointer", frag)
	}
	v := doc
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not inside an object", frag, tok)
		}
		if v, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%s: no %q", frag, tok)
		}
	}
	return v, nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// remarshal converts a decoded JSON tree into a typed value.
func remarshal(from, to any) error {
	raw, err := json.Marshal(from)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, to); err != nil {
		return errors.New("unexpected shape: " + err.Error())
	}
	return nil
}
