package mcpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/checkout"
	"github.com/acp-bridge/bridge/httpapi"
	"github.com/acp-bridge/bridge/internal/acpspec"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/acp-bridge/bridge/internal/syncbuf"
	"github.com/acp-bridge/bridge/mcpapi"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const schemaFile = "schema.agentic_checkout.json"

// Tool names, as the binding has them.
var (
	createTool   = mcpapi.ToolName(httpapi.OpCreate)
	getTool      = mcpapi.ToolName(httpapi.OpGet)
	updateTool   = mcpapi.ToolName(httpapi.OpUpdate)
	completeTool = mcpapi.ToolName(httpapi.OpComplete)
	cancelTool   = mcpapi.ToolName(httpapi.OpCancel)
)

// meta is a call's meta at version v with a fresh idempotency key.
func meta(v acp.Version) map[string]any {
	return map[string]any{"api_version": string(v), "idempotency_key": ct.NewIdem()}
}

// session checks a successful tool result: a session valid at v in
// structuredContent, the same JSON as text content; it returns the session.
func session(t *testing.T, v acp.Version, a ct.ToolAnswer) map[string]any {
	t.Helper()
	if a.Err != nil {
		t.Fatalf("%s: JSON-RPC error %d %q: %s", v, a.Err.Code, a.Err.Message, a.Err.Data)
	}
	var s map[string]any
	if err := json.Unmarshal(a.Session, &s); err != nil {
		t.Fatalf("%s: structuredContent: %v: %s", v, err, a.Session)
	}
	def := "CheckoutSession"
	if s["order"] != nil {
		def = "CheckoutSessionWithOrder"
	}
	if err := acpspec.Validate(string(v), schemaFile, def, a.Session); err != nil {
		t.Fatalf("%s: result is not a valid %s:\n%v\n%s", v, def, err, a.Session)
	}
	if len(a.Result.Content) != 1 {
		t.Fatalf("%s: %d content blocks, want the session as text", v, len(a.Result.Content))
	}
	text, ok := a.Result.Content[0].(*mcp.TextContent)
	var fromText any
	if !ok || json.Unmarshal([]byte(text.Text), &fromText) != nil || !reflect.DeepEqual(fromText, any(s)) {
		t.Fatalf("%s: text content is not the structured session: %#v", v, a.Result.Content[0])
	}
	return s
}

// rpcError checks a failed tool call: JSON-RPC code, and ACP's Error
// object in data, valid at v, with code and param; it returns the Error.
func rpcError(t *testing.T, v acp.Version, a ct.ToolAnswer, code int64, acpCode, param string) map[string]any {
	t.Helper()
	if a.Err == nil {
		t.Fatalf("%s: succeeded, want JSON-RPC error %d %s: %s", v, code, acpCode, a.Session)
	}
	if a.Err.Code != code {
		t.Fatalf("%s: JSON-RPC code %d, want %d: %s %s", v, a.Err.Code, code, a.Err.Message, a.Err.Data)
	}
	if err := acpspec.Validate(string(v), schemaFile, "Error", a.Err.Data); err != nil {
		t.Fatalf("%s: error data is not a valid Error: %v\n%s", v, err, a.Err.Data)
	}
	var e map[string]any
	_ = json.Unmarshal(a.Err.Data, &e)
	if e["code"] != acpCode || (e["param"] != nil || param != "") && e["param"] != param {
		t.Fatalf("%s: error %v %v, want %s at %q", v, e["code"], e["param"], acpCode, param)
	}
	if !strings.HasPrefix(a.Err.Message, e["message"].(string)) {
		t.Fatalf("%s: JSON-RPC message %q does not say the Error's %q", v, a.Err.Message, e["message"])
	}
	return e
}

func totalOf(t *testing.T, s map[string]any, typ string) float64 {
	t.Helper()
	for _, x := range s["totals"].([]any) {
		if m := x.(map[string]any); m["type"] == typ {
			return m["amount"].(float64)
		}
	}
	t.Fatalf("no %s total in %v", typ, s["totals"])
	return 0
}

// The seed flow over MCP at 2026-04-17: create → address → ready →
// complete with the sandbox → completed with an order; every result a
// valid session of the official schema.
func TestSeedFlow(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	v := acp.Latest
	b := ct.Bodies{V: v}
	s := session(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: meta(v), Payload: b.Create(ct.Item{ID: "shirt-m", Qty: 2})}))
	id := s["id"].(string)
	if s["status"] != "not_ready_for_payment" {
		t.Fatalf("created: %v", s["status"])
	}
	s = session(t, v, ct.Call(t, cs, ct.Tool{Name: updateTool, Meta: meta(v), ID: id, Payload: b.Address("US", "CA")}))
	// 2 × 25.00 + 5.00 shipping + 7.25% California tax on both (3.9875).
	if s["status"] != "ready_for_payment" || totalOf(t, s, "total") != 5899 {
		t.Fatalf("with address: %v, totals %v", s["status"], s["totals"])
	}
	s = session(t, v, ct.Call(t, cs, ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(v)}, ID: id}))
	if s["status"] != "ready_for_payment" {
		t.Fatalf("read back: %v", s["status"])
	}
	s = session(t, v, ct.Call(t, cs, ct.Tool{Name: completeTool, Meta: meta(v), ID: id, Payload: b.Complete("spt_4242")}))
	order, _ := s["order"].(map[string]any)
	if s["status"] != "completed" || order == nil || order["checkout_session_id"] != id {
		t.Fatalf("complete: %v %v", s["status"], s["order"])
	}
	// A finished session refuses a cancel as REST does (405 there).
	rpcError(t, v, ct.Call(t, cs, ct.Tool{Name: cancelTool, Meta: meta(v), ID: id}), mcpapi.CodeACPError, "session_not_cancelable", "")
}

// Every released version works over MCP too (the binding's meta carries
// the version): a create and a read, each valid at its version.
func TestEveryVersion(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	for _, v := range acp.Versions {
		t.Run(string(v), func(t *testing.T) {
			s := session(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: meta(v), Payload: ct.Bodies{V: v}.Create(ct.Item{ID: "ebook", Qty: 1})}))
			s = session(t, v, ct.Call(t, cs, ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(v)}, ID: s["id"].(string)}))
			// cancel's payload is optional: left out, or null.
			session(t, v, ct.Call(t, cs, ct.Tool{Name: cancelTool, Meta: meta(v), ID: s["id"].(string)}))
		})
	}
}

// A session made on one door is the same session on the other, and an
// idempotency key is one key on both.
func TestCrossTransport(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	v := acp.Latest
	b := ct.Bodies{V: v}
	rest := func(method, path, body, idem string) ct.Response {
		return st.Do(t, ct.Request{Method: method, Path: path, Version: v, Body: body, Idem: idem})
	}

	// MCP → REST: created over MCP, changed over REST, read on both.
	s := session(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: meta(v), Payload: b.Create(ct.Item{ID: "ebook", Qty: 1})}))
	id := s["id"].(string)
	if r := rest(http.MethodPost, ct.Path(id, "complete"), b.Complete("spt_4242"), ct.NewIdem()); r.Status != http.StatusOK || r.JSON()["status"] != "completed" {
		t.Fatalf("REST complete of an MCP session: %d %s", r.Status, r.Body)
	}
	viaREST := rest(http.MethodGet, ct.Path(id), "", "")
	viaMCP := session(t, v, ct.Call(t, cs, ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(v)}, ID: id}))
	if !reflect.DeepEqual(viaREST.JSON(), viaMCP) {
		t.Fatalf("the doors disagree:\nREST %s\nMCP  %v", viaREST.Body, viaMCP)
	}

	// REST → MCP: created over REST, completed over MCP.
	r := rest(http.MethodPost, ct.Path(), b.Create(ct.Item{ID: "ebook", Qty: 1}), ct.NewIdem())
	if r.Status != http.StatusCreated {
		t.Fatalf("REST create: %d %s", r.Status, r.Body)
	}
	id = r.JSON()["id"].(string)
	s = session(t, v, ct.Call(t, cs, ct.Tool{Name: completeTool, Meta: meta(v), ID: id, Payload: b.Complete("spt_4242")}))
	if s["status"] != "completed" {
		t.Fatalf("MCP complete of a REST session: %v", s["status"])
	}
	if got := rest(http.MethodGet, ct.Path(id), "", "").JSON()["status"]; got != "completed" {
		t.Fatalf("REST read after MCP complete: %v", got)
	}

	// One key on both doors: a create retried on the other door replays
	// the first answer instead of making a second session.
	key := ct.NewIdem()
	body := b.Create(ct.Item{ID: "shirt-l", Qty: 1})
	first := rest(http.MethodPost, ct.Path(), body, key)
	a := ct.Call(t, cs, ct.Tool{Name: createTool, Meta: map[string]any{"api_version": string(v), "idempotency_key": key}, Payload: body})
	if s := session(t, v, a); s["id"] != first.JSON()["id"] || a.Result.Meta["idempotent_replayed"] != true {
		t.Fatalf("REST key replayed over MCP: %v vs %v, _meta %v", s["id"], first.JSON()["id"], a.Result.Meta)
	}
	// Sessions stay their owner's on either door.
	other := st.MCP(t, ct.OtherKey)
	rpcError(t, v, ct.Call(t, other, ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(v)}, ID: id}), mcpapi.CodeACPError, "session_not_found", "")
}

// Idempotent replays over MCP follow REST's rules.
func TestIdempotency(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	v := acp.Latest
	body := ct.Bodies{V: v}.Create(ct.Item{ID: "shirt-m", Qty: 1})
	m := meta(v)
	first := ct.Call(t, cs, ct.Tool{Name: createTool, Meta: m, Payload: body})
	s1 := session(t, v, first)
	if first.Result.Meta["idempotent_replayed"] != nil {
		t.Fatalf("first answer marked replayed: %v", first.Result.Meta)
	}
	// The same key and payload — reordered and re-spaced, which means
	// the same — replay the first answer.
	var tree map[string]any
	_ = json.Unmarshal([]byte(body), &tree)
	respaced, _ := json.MarshalIndent(tree, "", "    ")
	for _, payload := range []string{body, string(respaced)} {
		a := ct.Call(t, cs, ct.Tool{Name: createTool, Meta: m, Payload: payload})
		if s := session(t, v, a); s["id"] != s1["id"] || a.Result.Meta["idempotent_replayed"] != true {
			t.Fatalf("replay: %v vs %v, _meta %v", s["id"], s1["id"], a.Result.Meta)
		}
	}
	// Another payload under the key: 2026-04-17's conflict (422 on REST);
	// 409's before, with request_not_idempotent's type up to 2026-01-30.
	other := ct.Bodies{V: v}.Create(ct.Item{ID: "shirt-m", Qty: 2})
	rpcError(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: m, Payload: other}), mcpapi.CodeACPError, "idempotency_conflict", "")
	old := acp.V20260130
	om := meta(old)
	session(t, old, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: om, Payload: ct.Bodies{V: old}.Create(ct.Item{ID: "ebook", Qty: 1})}))
	rpcError(t, old, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: om, Payload: ct.Bodies{V: old}.Create(ct.Item{ID: "ebook", Qty: 2})}),
		mcpapi.CodeACPError, "idempotency_conflict", "")

	// 2026-04-17 requires a key on every call but get (RFC §6, which the
	// binding keeps "with identical semantics"); earlier versions do not.
	for _, tc := range []struct {
		v        acp.Version
		key      any // nil: left out
		wantCode string
	}{
		{v: acp.Latest, wantCode: "idempotency_key_required"},
		{v: acp.Latest, key: "has spaces", wantCode: "invalid_idempotency_key"},
		{v: acp.Latest, key: strings.Repeat("k", 256), wantCode: "invalid_idempotency_key"},
		{v: acp.V20260130},
	} {
		m := map[string]any{"api_version": string(tc.v)}
		if tc.key != nil {
			m["idempotency_key"] = tc.key
		}
		a := ct.Call(t, cs, ct.Tool{Name: createTool, Meta: m, Payload: ct.Bodies{V: tc.v}.Create(ct.Item{ID: "ebook", Qty: 1})})
		if tc.wantCode == "" {
			session(t, tc.v, a)
			continue
		}
		rpcError(t, tc.v, a, mcpapi.CodeACPError, tc.wantCode, "$.meta.idempotency_key")
	}
}

// Authentication is the connection's: HTTP requests to /mcp without a
// known key are refused before any JSON-RPC, and a key removed while a
// client is connected stops working at its next call.
func TestAuth(t *testing.T) {
	st := ct.New(t, ct.Options{})
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"unknown key", "Bearer not-a-key", http.StatusUnauthorized},
		{"not bearer", "Basic " + ct.AgentKey, http.StatusUnauthorized},
		{"key", "Bearer " + ct.AgentKey, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, st.URL+mcpapi.Path, strings.NewReader(init))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusUnauthorized {
				return
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if err := acpspec.Validate(string(acp.Latest), schemaFile, "Error", body); err != nil {
				t.Fatalf("401 body: %v: %s", err, body)
			}
		})
	}
	// The SDK's client sees the refusal when connecting.
	if _, err := ct.ConnectMCP(context.Background(), st.URL+mcpapi.Path, "not-a-key"); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("connect with an unknown key: %v", err)
	}
	cs := st.MCP(t, "")
	v := acp.Latest
	session(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: meta(v), Payload: ct.Bodies{V: v}.Create(ct.Item{ID: "ebook", Qty: 1})}))
	st.Keys.Set([]httpapi.APIKey{{Name: ct.OtherName, Key: ct.OtherKey}})
	if _, err := ct.TryCall(cs, ct.Tool{Name: createTool, Meta: meta(v), Payload: `{}`}); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("call after the key was removed: %v", err)
	}
}

// Signatures have REST's meaning, over the payload as sent or over its
// canonical form; a key with a signing secret must sign every call.
func TestSignatures(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, ct.SignedKey)
	v := acp.Latest
	body := ct.Bodies{V: v}.Create(ct.Item{ID: "ebook", Qty: 1})
	var tree any
	_ = json.Unmarshal([]byte(body), &tree)
	pretty, _ := json.MarshalIndent(tree, "", "  ")
	canonical, err := acp.Canonical([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(at time.Time, signed string) map[string]any {
		m := meta(v)
		m["timestamp"] = at.Format(time.RFC3339)
		m["signature"] = httpapi.Sign([]byte(ct.SigningToken), m["timestamp"].(string), []byte(signed))
		return m
	}
	for _, tc := range []struct {
		name    string
		meta    map[string]any
		payload string
		ok      bool
	}{
		{"over the payload as sent", sign(st.Now(), body), body, true},
		{"over the canonical form, sent pretty", sign(st.Now(), string(canonical)), string(pretty), true},
		{"over another payload", sign(st.Now(), `{"line_items":[]}`), body, false},
		{"too old", sign(st.Now().Add(-10*time.Minute), body), body, false},
		{"unsigned", meta(v), body, false},
		{"signature without timestamp", map[string]any{"api_version": string(v), "idempotency_key": ct.NewIdem(),
			"signature": httpapi.Sign([]byte(ct.SigningToken), "", []byte(body))}, body, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ct.Call(t, cs, ct.Tool{Name: createTool, Meta: tc.meta, Payload: tc.payload})
			if tc.ok {
				session(t, v, a)
				return
			}
			rpcError(t, v, a, mcpapi.CodeACPError, "invalid_signature", "$.meta.signature")
		})
	}
	// get signs the empty body, as a REST GET does.
	m := map[string]any{"api_version": string(v), "timestamp": st.Now().Format(time.RFC3339)}
	m["signature"] = httpapi.Sign([]byte(ct.SigningToken), m["timestamp"].(string), nil)
	rpcError(t, v, ct.Call(t, cs, ct.Tool{Name: getTool, Meta: m, ID: "cs_unknown"}), mcpapi.CodeACPError, "session_not_found", "")
}

// Bad input is a JSON-RPC error carrying ACP's Error, never a panic:
// -32602 for the binding's envelope, -32000 for everything ACP decides.
func TestBadInput(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	v := acp.Latest
	valid := map[string]any{"api_version": string(v), "idempotency_key": "k-bad-input"}
	create := ct.Bodies{V: v}.Create(ct.Item{ID: "ebook", Qty: 1})
	const invalidParams = jsonrpc.CodeInvalidParams
	for _, tc := range []struct {
		name    string
		tool    string
		args    any
		rpc     int64
		version acp.Version
		code    string
		param   string
	}{
		{"arguments not an object", getTool, json.RawMessage(`[1]`), invalidParams, v, acp.CodeInvalidType, "$"},
		{"no meta", getTool, map[string]any{"id": "cs_1"}, invalidParams, v, acp.CodeMissing, "$.meta"},
		{"meta null", getTool, map[string]any{"meta": nil, "id": "cs_1"}, invalidParams, v, acp.CodeMissing, "$.meta"},
		{"meta a string", getTool, map[string]any{"meta": "2026-04-17", "id": "cs_1"}, invalidParams, v, acp.CodeInvalidType, "$.meta"},
		{"api_version a number", getTool, map[string]any{"meta": map[string]any{"api_version": 2026}, "id": "cs_1"}, invalidParams, v, acp.CodeInvalidType, "$.meta.api_version"},
		{"no id", getTool, map[string]any{"meta": valid}, invalidParams, v, acp.CodeMissing, "$.id"},
		{"empty id", updateTool, map[string]any{"meta": valid, "id": "", "payload": map[string]any{}}, invalidParams, v, acp.CodeInvalid, "$.id"},
		{"id a number", completeTool, map[string]any{"meta": valid, "id": 7, "payload": map[string]any{}}, invalidParams, v, acp.CodeInvalidType, "$.id"},
		{"no payload", createTool, map[string]any{"meta": valid}, invalidParams, v, acp.CodeMissing, "$.payload"},
		{"payload null", updateTool, map[string]any{"meta": valid, "id": "cs_1", "payload": nil}, invalidParams, v, acp.CodeMissing, "$.payload"},
		{"payload an array", createTool, map[string]any{"meta": valid, "payload": []any{}}, invalidParams, v, acp.CodeInvalidType, "$.payload"},
		{"error in the caller's version", createTool, map[string]any{"meta": map[string]any{"api_version": "2025-09-29"}}, invalidParams, acp.V20250929, acp.CodeMissing, "$.payload"},

		{"no api_version", getTool, map[string]any{"meta": map[string]any{}, "id": "cs_1"}, mcpapi.CodeACPError, v, "missing_api_version", "$.meta.api_version"},
		{"unknown api_version", getTool, map[string]any{"meta": map[string]any{"api_version": "2030-01-01"}, "id": "cs_1"}, mcpapi.CodeACPError, v, "unsupported_api_version", "$.meta.api_version"},
		{"unknown session", getTool, map[string]any{"meta": valid, "id": "cs_nope"}, mcpapi.CodeACPError, v, "session_not_found", ""},
		{"id with a slash", completeTool, map[string]any{"meta": valid, "id": "cs_1/cancel", "payload": map[string]any{}}, mcpapi.CodeACPError, v, "session_not_found", ""},
		{"empty create", createTool, map[string]any{"meta": valid, "payload": map[string]any{}}, mcpapi.CodeACPError, v, acp.CodeMissing, "$.payload.line_items"},
		{"no currency", createTool, map[string]any{"meta": valid, "payload": json.RawMessage(`{"line_items":[{"id":"ebook"}],"capabilities":{}}`)}, mcpapi.CodeACPError, v, acp.CodeMissing, "$.payload.currency"},
		{"half an item", createTool, map[string]any{"meta": valid, "payload": json.RawMessage(strings.Replace(create, `"quantity":1`, `"quantity":2.5`, 1))}, mcpapi.CodeACPError, v, acp.CodeInvalid, "$.payload.line_items[0].quantity"},
		{"unknown handler", completeTool, map[string]any{"meta": valid, "id": "cs_1", "payload": json.RawMessage(strings.Replace(ct.Bodies{V: v}.Complete("spt_4242"), `"card"`, `"card_tokenized"`, 1))}, mcpapi.CodeACPError, v, acp.CodeInvalid, "$.payload.payment_data.handler_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
			var rpc *jsonrpc.Error
			if !errors.As(err, &rpc) {
				t.Fatalf("want a JSON-RPC error, got %v, %+v", err, res)
			}
			rpcError(t, tc.version, ct.ToolAnswer{Err: rpc}, tc.rpc, tc.code, tc.param)
		})
	}
	// Unknown meta fields are ignored, as the binding asks.
	m := meta(v)
	m["x_future_header"] = map[string]any{"anything": true}
	session(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: m, Payload: create}))
	// An unknown tool is the SDK's invalid params.
	if a := ct.Call(t, cs, ct.Tool{Name: "delete_checkout_session", Meta: meta(v)}); a.Err == nil || a.Err.Code != jsonrpc.CodeInvalidParams {
		t.Fatalf("unknown tool: %+v", a)
	}
}

// The rate limit is per key across both doors, and tells when to retry.
func TestRateLimitShared(t *testing.T) {
	st := ct.New(t, ct.Options{RatePerSecond: 0.5, RateBurst: 2})
	cs := st.MCP(t, "")
	v := acp.Latest
	get := ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(v)}, ID: "cs_x"}
	rpcError(t, v, ct.Call(t, cs, get), mcpapi.CodeACPError, "session_not_found", "")
	if r := st.Do(t, ct.Request{Method: http.MethodGet, Path: ct.Path("cs_x"), Version: v}); r.Status != http.StatusNotFound {
		t.Fatalf("REST within the burst: %d", r.Status)
	}
	a := ct.Call(t, cs, get)
	rpcError(t, v, a, mcpapi.CodeACPError, "rate_limited", "")
	if !strings.Contains(a.Err.Message, "retry after") {
		t.Fatalf("no retry delay in %q", a.Err.Message)
	}
}

// Discovery lists "mcp" exactly when the door is mounted.
func TestDiscovery(t *testing.T) {
	for _, tc := range []struct {
		noMCP      bool
		transports []any
		mcpStatus  int
	}{
		{false, []any{"rest", "mcp"}, http.StatusUnauthorized},
		{true, []any{"rest"}, http.StatusNotFound},
	} {
		st := ct.New(t, ct.Options{NoMCP: tc.noMCP})
		r := st.Do(t, ct.Request{Method: http.MethodGet, Path: "/.well-known/acp.json", Key: "-"})
		if err := acpspec.Validate(string(acp.Latest), schemaFile, "DiscoveryResponse", r.Body); err != nil {
			t.Fatalf("discovery: %v: %s", err, r.Body)
		}
		if got := r.JSON()["transports"]; !reflect.DeepEqual(got, tc.transports) {
			t.Errorf("NoMCP %v: transports %v, want %v", tc.noMCP, got, tc.transports)
		}
		if r := st.Do(t, ct.Request{Method: http.MethodPost, Path: mcpapi.Path, Key: "-", Body: "{}"}); r.Status != tc.mcpStatus {
			t.Errorf("NoMCP %v: POST /mcp without a key: HTTP %d, want %d", tc.noMCP, r.Status, tc.mcpStatus)
		}
	}
}

// panicky is an engine whose every operation panics.
type panicky struct{ httpapi.Engine }

func (panicky) Get(context.Context, string, string) checkout.Result { panic("engine bug") }

// A panic in a tool call is an internal error for that call; the server
// goes on (the SDK runs tool handlers outside the HTTP server's recovery).
func TestPanicIsAnError(t *testing.T) {
	keys := httpapi.NewKeys([]httpapi.APIKey{{Name: ct.AgentName, Key: ct.AgentKey}})
	co := &httpapi.Checkout{Engine: panicky{}, Codec: ct.Codec(), Keys: keys, PublicURL: "https://bridge.example"}
	h, err := mcpapi.New(mcpapi.Config{Checkout: co, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cs, err := ct.ConnectMCP(context.Background(), srv.URL, ct.AgentKey)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	v := acp.Latest
	get := ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(v)}, ID: "cs_1"}
	for range 2 {
		rpcError(t, v, ct.Call(t, cs, get), mcpapi.CodeACPError, "internal_error", "")
	}
}

func TestNewNeedsACheckout(t *testing.T) {
	if _, err := mcpapi.New(mcpapi.Config{}); err == nil {
		t.Fatal("New without a checkout succeeded")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The server's body limit holds for /mcp as for REST.
func TestBodyLimit(t *testing.T) {
	st := ct.New(t, ct.Options{})
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_checkout_session","arguments":{"meta":{"api_version":"` + strings.Repeat("x", 2<<20) + `"}}}}`
	req, _ := http.NewRequest(http.MethodPost, st.URL+mcpapi.Path, strings.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+ct.AgentKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d, want 413", resp.StatusCode)
	}
}

// The SDK's per-request session lines stay out of the log; the access log
// line of each request is there.
func TestQuietSDKLog(t *testing.T) {
	var logs syncbuf.Buffer
	st := ct.New(t, ct.Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	cs := st.MCP(t, "")
	ct.Call(t, cs, ct.Tool{Name: getTool, Meta: map[string]any{"api_version": string(acp.Latest)}, ID: "cs_x"})
	out := logs.String()
	if strings.Contains(out, "server session") || !strings.Contains(out, "path=/mcp") {
		t.Fatalf("logs:\n%s", out)
	}
}
