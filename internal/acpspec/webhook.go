package acpspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// The webhooks the merchant sends the agent are specified only in OpenAPI
// (openapi.agentic_checkout_webhook.yaml): there is no JSON Schema file for
// them. OpenAPI 3.1 schemas are JSON Schema 2020-12, so the file's
// components.schemas become the $defs of a JSON Schema document built in
// memory, with its references rewritten:
//
//   - #/components/schemas/X → #/$defs/X;
//   - ./openapi.agentic_checkout.yaml#/components/schemas/X (2026-04-17's
//     EventDataOrder composes the checkout spec's Order) → the same
//     version's json-schema/schema.agentic_checkout.json #/$defs/X,
//     registered as a second resource. The JSON Schema is the reference
//     here: for 2026-04-17 it is the more complete of the two (see
//     docs/acp-conformance.md).
const (
	webhookFile = "openapi.agentic_checkout_webhook.yaml"
	webhookPath = "/agentic_checkout/webhooks/order_events"
)

// WebhookSchema compiles the schema of the order-event webhook's request
// body (WebhookEvent in every released version) at version.
func WebhookSchema(version string) (*jsonschema.Schema, error) {
	return RequestSchema(version, webhookFile, webhookPath, "post")
}

// RequestSchema compiles the JSON request body schema of the operation
// method ("post", "patch" …) at opPath ("/feeds/{id}/products") of the
// OpenAPI file name of version, found by the operation rather than assumed
// by name. External references are resolved as described above.
func RequestSchema(version, name, opPath, method string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	key := version + "/" + name + " " + method + " " + opPath
	if s, ok := compiled[key]; ok {
		return s, nil
	}
	api, err := openAPI(version, name)
	if err != nil {
		return nil, err
	}
	body, err := requestBodyRef(api, opPath, method)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", version, name, err)
	}
	schemas, err := object(api, "components", "schemas")
	if err != nil {
		return nil, fmt.Errorf("%s %s: components.schemas: %w", version, name, err)
	}

	c := jsonschema.NewCompiler()
	c.AssertFormat()
	external := map[string]bool{} // JSON Schema files the document refers to
	var rewrite error
	defs := rewriteRefs(schemas, func(ref string) string {
		file, frag, _ := strings.Cut(ref, "#")
		if file == "" {
			return "#" + toDefs(frag)
		}
		js, ok := jsonSchemaFor(file)
		if !ok {
			rewrite = fmt.Errorf("unsupported external $ref %q", ref)
			return ref
		}
		external[js] = true
		return resourceURL(version, js) + "#" + toDefs(frag)
	})
	if rewrite != nil {
		return nil, fmt.Errorf("%s %s: %w", version, name, rewrite)
	}
	for js := range external {
		doc, err := loadJSONSchema(version, js)
		if err != nil {
			return nil, err
		}
		if err := c.AddResource(resourceURL(version, js), doc); err != nil {
			return nil, fmt.Errorf("add %s: %w", js, err)
		}
	}
	// Round-trip through JSON so that the document holds exactly the
	// value types the compiler expects (json.Number, not YAML's ints).
	doc, err := normalize(map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$defs":   defs,
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", version, name, err)
	}
	url := "mem:///" + path.Join("spec", version, "openapi", name)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add %s: %w", name, err)
	}
	s, err := c.Compile(url + "#" + toDefs(body))
	if err != nil {
		return nil, fmt.Errorf("compile %s %s: %w", version, name, err)
	}
	compiled[key] = s
	return s, nil
}

// ValidateWebhook checks raw, the body of an order-event webhook, against
// version's webhook request schema.
func ValidateWebhook(version string, raw []byte) error {
	return ValidateRequest(version, webhookFile, webhookPath, "post", raw)
}

// ValidateRequest checks raw, a request body, against the schema of the
// operation method at opPath of the OpenAPI file name (see RequestSchema).
func ValidateRequest(version, name, opPath, method string, raw []byte) error {
	s, err := RequestSchema(version, name, opPath, method)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	return s.Validate(inst)
}

// WebhookExamples returns the request body examples written inline in
// version's webhook OpenAPI file, by name ("order_created" …).
func WebhookExamples(version string) (map[string]json.RawMessage, error) {
	api, err := openAPI(version, webhookFile)
	if err != nil {
		return nil, err
	}
	examples, err := object(api, "paths", webhookPath, "post", "requestBody", "content", "application/json", "examples")
	if err != nil {
		return nil, fmt.Errorf("%s %s: examples: %w", version, webhookFile, err)
	}
	out := make(map[string]json.RawMessage, len(examples))
	for name, ex := range examples {
		m, ok := ex.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: example %s is not an object", version, webhookFile, name)
		}
		raw, err := json.Marshal(m["value"])
		if err != nil {
			return nil, fmt.Errorf("%s %s: example %s: %w", version, webhookFile, name, err)
		}
		out[name] = raw
	}
	return out, nil
}

// openAPI reads an OpenAPI file of version as plain maps and slices.
func openAPI(version, name string) (map[string]any, error) {
	file := path.Join("spec", version, "openapi", name)
	raw, err := fs.ReadFile(FS(), file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	return doc, nil
}

// requestBodyRef is the $ref of an operation's JSON request body: the
// schema is found by the operation, not assumed by name.
func requestBodyRef(api map[string]any, opPath, method string) (string, error) {
	s, err := object(api, "paths", opPath, method, "requestBody", "content", "application/json", "schema")
	if err != nil {
		return "", fmt.Errorf("request body schema: %w", err)
	}
	ref, _ := s["$ref"].(string)
	name, ok := strings.CutPrefix(ref, "#/components/schemas/")
	if !ok {
		return "", fmt.Errorf("request body schema is not a local component: %q", ref)
	}
	return "/components/schemas/" + name, nil
}

// toDefs turns a fragment /components/schemas/X into /$defs/X.
func toDefs(frag string) string {
	if name, ok := strings.CutPrefix(frag, "/components/schemas/"); ok {
		return "/$defs/" + name
	}
	return frag
}

// jsonSchemaFor maps an OpenAPI file reference (./openapi.agentic_checkout.yaml)
// to its JSON Schema counterpart (schema.agentic_checkout.json).
func jsonSchemaFor(file string) (string, bool) {
	base := path.Base(file)
	stem, ok := strings.CutPrefix(base, "openapi.")
	if !ok {
		return "", false
	}
	stem, ok = strings.CutSuffix(stem, ".yaml")
	if !ok {
		return "", false
	}
	return "schema." + stem + ".json", true
}

func resourceURL(version, name string) string {
	return "mem:///" + path.Join("spec", version, "json-schema", name)
}

// loadJSONSchema reads a JSON Schema file of version with the patches of
// the version's verified defects applied (see patches).
func loadJSONSchema(version, name string) (any, error) {
	file := path.Join("spec", version, "json-schema", name)
	raw, err := fs.ReadFile(FS(), file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	if fix, ok := patches[version+"/"+name]; ok {
		if err := fix(doc); err != nil {
			return nil, fmt.Errorf("patch %s: %w", file, err)
		}
	}
	return doc, nil
}

// rewriteRefs copies v, passing every "$ref" string through f.
func rewriteRefs(v any, f func(string) string) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys) // deterministic error reporting
		for _, k := range keys {
			if ref, ok := v[k].(string); ok && k == "$ref" {
				out[k] = f(ref)
				continue
			}
			out[k] = rewriteRefs(v[k], f)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = rewriteRefs(x, f)
		}
		return out
	}
	return v
}

// normalize re-reads v as the compiler's JSON decoder would produce it.
func normalize(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(raw))
}
