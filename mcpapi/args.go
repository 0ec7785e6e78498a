package mcpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/httpapi"
)

// metaHeaders is the binding's header mapping: each meta field stands for
// the HTTP header of the same meaning. Authorization has no field: MCP
// authenticates the connection, never a tool call.
var metaHeaders = []struct{ field, header string }{
	{"api_version", "API-Version"},
	{"idempotency_key", "Idempotency-Key"},
	{"request_id", "Request-Id"},
	{"user_agent", "User-Agent"},
	{"accept_language", "Accept-Language"},
	{"signature", "Signature"},
	{"timestamp", "Timestamp"},
}

// args is a tool call's arguments as the binding shapes them: {meta, id,
// payload}.
type args struct {
	// meta holds the binding's meta fields the call sent, by field name.
	meta map[string]string
	id   string
	// payload is the REST request body, as the client sent it (nil when
	// absent).
	payload json.RawMessage
}

// header is the REST request headers the call's meta stands for.
func (a args) header() http.Header {
	h := http.Header{}
	for _, m := range metaHeaders {
		if v, ok := a.meta[m.field]; ok {
			h.Set(m.header, v)
		}
	}
	return h
}

// version is the API version to write an argument error in: the call's
// when it names a known one, else the latest.
func (a args) version() acp.Version {
	if v, err := acp.ParseVersion(a.meta["api_version"]); err == nil {
		return v
	}
	return acp.Latest
}

// metaField returns the meta field that stands for header ("" for none).
func metaField(header string) string {
	for _, m := range metaHeaders {
		if http.CanonicalHeaderKey(m.header) == http.CanonicalHeaderKey(header) {
			return m.field
		}
	}
	return ""
}

// decodeArgs reads the arguments of op's tool. It checks the envelope
// only — meta, id and payload present where the binding requires them and
// of the right JSON type — and leaves the payload's contents to the same
// decoders REST uses. As in ACP's request decoding, null counts as
// absent, unknown members are ignored (the binding asks servers to ignore
// unknown meta fields), and errors name the offending argument with an
// RFC 9535 JSONPath. What was read before an error is returned with it,
// so the error can be written in the call's API version.
func decodeArgs(op httpapi.Op, raw json.RawMessage) (args, *acp.Error) {
	var a args
	top, err := members(raw, "$", true)
	if err != nil {
		return a, err
	}
	meta, err := members(top["meta"], "$.meta", false)
	if err != nil {
		return a, err
	}
	a.meta = map[string]string{}
	for _, m := range metaHeaders {
		if s, ok, err := str(meta[m.field], "$.meta."+m.field); err != nil {
			return a, err
		} else if ok {
			a.meta[m.field] = s
		}
	}
	if op != httpapi.OpCreate {
		id, ok, err := str(top["id"], "$.id")
		switch {
		case err != nil:
			return a, err
		case !ok:
			return a, missing("$.id", "the checkout session id is required")
		case id == "":
			return a, invalid("$.id", "the checkout session id must not be empty")
		}
		a.id = id
	}
	switch p := top["payload"]; {
	case op == httpapi.OpGet:
		// get has no payload; one sent anyway is ignored, as a GET body is.
	case absent(p) && op == httpapi.OpCancel:
		// Optional: omitted entirely or null, both mean none.
	case absent(p):
		return a, missing("$.payload", "the payload (the REST request body) is required")
	case kind(p) != '{':
		return a, wrongType("$.payload", "an object", p)
	default:
		a.payload = p
	}
	return a, nil
}

// members reads a JSON object's members. Absent or null is an empty
// object when allowed, a missing-argument error otherwise.
func members(raw json.RawMessage, path string, nullOK bool) (map[string]json.RawMessage, *acp.Error) {
	if absent(raw) {
		if nullOK {
			return map[string]json.RawMessage{}, nil
		}
		return nil, missing(path, path[2:]+" is required")
	}
	if kind(raw) != '{' {
		return nil, wrongType(path, "an object", raw)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		// The SDK parsed the whole message, so this is not reached with
		// well-formed JSON; answer rather than assume.
		return nil, &acp.Error{Type: acp.InvalidRequest, Code: acp.CodeInvalidJSON, Param: path, Message: "not valid JSON"}
	}
	return m, nil
}

// str reads an optional string argument.
func str(raw json.RawMessage, path string) (string, bool, *acp.Error) {
	if absent(raw) {
		return "", false, nil
	}
	var s string
	if kind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, wrongType(path, "a string", raw)
	}
	return s, true, nil
}

// absent reports whether a member was left out or is null.
func absent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// kind is the first byte of a JSON value, which tells its type.
func kind(raw json.RawMessage) byte {
	if t := bytes.TrimSpace(raw); len(t) > 0 {
		return t[0]
	}
	return 0
}

func typeName(raw json.RawMessage) string {
	switch kind(raw) {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func missing(path, msg string) *acp.Error {
	return &acp.Error{Type: acp.InvalidRequest, Code: acp.CodeMissing, Param: path, Message: msg}
}

func invalid(path, msg string) *acp.Error {
	return &acp.Error{Type: acp.InvalidRequest, Code: acp.CodeInvalid, Param: path, Message: msg}
}

func wrongType(path, want string, got json.RawMessage) *acp.Error {
	name := "the arguments"
	if path != "$" {
		name = path[2:]
	}
	return &acp.Error{Type: acp.InvalidRequest, Code: acp.CodeInvalidType, Param: path,
		Message: name + " must be " + want + ", not " + typeName(got)}
}
