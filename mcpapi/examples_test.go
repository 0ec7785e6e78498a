package mcpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/internal/acpspec"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
	"github.com/acp-bridge/bridge/mcpapi"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpExamples reads the binding's examples (2026-04-17).
func mcpExamples(t *testing.T) map[string]map[string]any {
	t.Helper()
	raw, err := fs.ReadFile(acpspec.FS(), path.Join("examples", string(acp.Latest), "examples.mcp.agentic_checkout.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	return all
}

// replay sends an example's JSON-RPC request (after edit, which adapts
// its arguments to this shop) as the SDK client's tools/call.
func replay(t *testing.T, cs *mcp.ClientSession, req map[string]any, edit func(args map[string]any)) ct.ToolAnswer {
	t.Helper()
	if req["method"] != "tools/call" {
		t.Fatalf("example is not a tools/call: %v", req["method"])
	}
	params := req["params"].(map[string]any)
	var args map[string]any
	_ = json.Unmarshal(mustMarshal(t, params["arguments"]), &args) // a deep copy
	if edit != nil {
		edit(args)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: params["name"].(string), Arguments: args})
	var rpc *jsonrpc.Error
	if errors.As(err, &rpc) {
		return ct.ToolAnswer{Err: rpc}
	}
	if err != nil {
		t.Fatal(err)
	}
	return ct.ToolAnswer{Result: res, Session: mustMarshal(t, res.StructuredContent)}
}

// The binding's examples replayed against the bridge: every request gets
// an answer of the shape the OpenRPC document gives its method and the
// status the example's response has. Adapted to this shop: item, option,
// handler and session ids, a fresh session to cancel. Where an example
// breaks a rule of 2026-04-17 itself, the bridge's error must name the
// place before the example is repaired:
//
//   - update and cancel send no idempotency_key: RFC §6 requires one on
//     every POST at 2026-04-17, and the binding keeps idempotency "with
//     identical semantics" (its header table, which says "recommended",
//     predates that rule);
//   - update selects the option in 2026-01-16's nested form
//     ({type, shipping: {option_id, item_ids}}), complete sends an
//     instrument without type and credential: both fail the official
//     schemas the examples cite.
func TestSpecExamplesReplay(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	ex := mcpExamples(t)
	methods, _ := openRPC(t)
	resultDef := map[string]string{}
	for _, m := range methods {
		resultDef[m.Name] = def(t, m.Result.Schema)
	}
	v := acp.Latest
	var id, lineID string
	check := func(name string, a ct.ToolAnswer) map[string]any {
		t.Helper()
		if a.Err != nil {
			t.Fatalf("%s: JSON-RPC error %d: %s", name, a.Err.Code, a.Err.Data)
		}
		tool := ex[name]["params"].(map[string]any)["name"].(string)
		d := resultDef[tool]
		if err := acpspec.Validate(string(v), schemaFile, d, a.Session); err != nil {
			t.Fatalf("%s: result is not a valid %s (the method's result): %v\n%s", name, d, err, a.Session)
		}
		var s map[string]any
		_ = json.Unmarshal(a.Session, &s)
		want := dig(ex[strings.TrimSuffix(name, "_request")+"_response"], "result", "status")
		if s["status"] != want {
			t.Fatalf("%s: status %v, the example's response has %v", name, s["status"], want)
		}
		return s
	}
	needsKey := func(name string) {
		t.Helper()
		rpcError(t, v, replay(t, cs, ex[name], func(a map[string]any) { a["id"] = id }), mcpapi.CodeACPError, "idempotency_key_required", "$.meta.idempotency_key")
	}
	withKey := func(a map[string]any) {
		a["meta"].(map[string]any)["idempotency_key"] = ct.NewIdem()
	}

	// create: the shop's item for item_123; the example's California
	// address makes it ready at once.
	createReq := ex["create_checkout_session_request"]
	create := func(a map[string]any) {
		a["payload"].(map[string]any)["line_items"] = []any{map[string]any{"id": "shirt-m"}}
	}
	s := check("create_checkout_session_request", replay(t, cs, createReq, create))
	id = s["id"].(string)
	lineID = s["line_items"].([]any)[0].(map[string]any)["id"].(string)
	// The same request again is a replay: the example's key is one key.
	if again := replay(t, cs, createReq, create); again.Err != nil || again.Result.Meta["idempotent_replayed"] != true {
		t.Fatalf("the example's create again: %+v", again)
	}

	check("get_checkout_session_request", replay(t, cs, ex["get_checkout_session_request"], func(a map[string]any) { a["id"] = id }))

	// update: "fulfillment_option_456" (Express) is this shop's express.
	needsKey("update_checkout_session_request")
	update := func(a map[string]any) {
		a["id"] = id
		withKey(a)
		sel := a["payload"].(map[string]any)["selected_fulfillment_options"].([]any)[0].(map[string]any)
		sel["shipping"].(map[string]any)["option_id"] = "express"
		sel["shipping"].(map[string]any)["item_ids"] = []any{lineID}
	}
	rpcError(t, v, replay(t, cs, ex["update_checkout_session_request"], update), mcpapi.CodeACPError, acp.CodeMissing, "$.payload.selected_fulfillment_options[0].option_id")
	s = check("update_checkout_session_request", replay(t, cs, ex["update_checkout_session_request"], func(a map[string]any) {
		update(a)
		sel := a["payload"].(map[string]any)["selected_fulfillment_options"].([]any)[0].(map[string]any)
		for k, val := range sel["shipping"].(map[string]any) {
			sel[k] = val
		}
		delete(sel, "shipping")
		if err := acpspec.Validate(string(v), schemaFile, "CheckoutSessionUpdateRequest", mustMarshal(t, a["payload"])); err != nil {
			t.Fatalf("repaired update example: %v", err)
		}
	}))
	if sel := s["selected_fulfillment_options"].([]any)[0].(map[string]any); sel["option_id"] != "express" {
		t.Fatalf("update: selected %v", sel)
	}

	// complete: this shop's handler is "card"; the sandbox pays tokens
	// ending in 4242.
	complete := func(a map[string]any) {
		a["id"] = id
		a["payload"].(map[string]any)["payment_data"].(map[string]any)["handler_id"] = "card"
	}
	rpcError(t, v, replay(t, cs, ex["complete_checkout_session_request"], complete), mcpapi.CodeACPError, acp.CodeMissing, "$.payload.payment_data.instrument.type")
	s = check("complete_checkout_session_request", replay(t, cs, ex["complete_checkout_session_request"], func(a map[string]any) {
		complete(a)
		pd := a["payload"].(map[string]any)["payment_data"].(map[string]any)
		token := pd["instrument"].(map[string]any)["token"]
		pd["instrument"] = map[string]any{"type": "card", "credential": map[string]any{"type": "spt", "token": token}}
		if err := acpspec.Validate(string(v), schemaFile, "CheckoutSessionCompleteRequest", mustMarshal(t, a["payload"])); err != nil {
			t.Fatalf("repaired complete example: %v", err)
		}
	}))
	if s["order"].(map[string]any)["checkout_session_id"] != id {
		t.Fatalf("complete: order %v", s["order"])
	}

	// cancel: a fresh session (the example's was just completed).
	needsKey("cancel_checkout_session_request")
	fresh := check("create_checkout_session_request", replay(t, cs, createReq, func(a map[string]any) { create(a); withKey(a) }))
	check("cancel_checkout_session_request", replay(t, cs, ex["cancel_checkout_session_request"], func(a map[string]any) {
		a["id"] = fresh["id"]
		withKey(a)
	}))
}

// The binding's error examples: a create without currency is -32000 with
// ACP's invalid_request at $.payload.currency. A declined card is not an
// error here but a session with a payment_declined message, as the REST
// examples of 2026-04-17 (checkout_session_with_payment_declined) and
// the REST door have it: the buyer can pay with another card.
func TestSpecErrorExamples(t *testing.T) {
	st := ct.New(t, ct.Options{})
	cs := st.MCP(t, "")
	ex := mcpExamples(t)
	v := acp.Latest

	want := ex["error_invalid_request"]["error"].(map[string]any)
	wantData := want["data"].(map[string]any)
	a := replay(t, cs, ex["create_checkout_session_request"], func(a map[string]any) {
		a["meta"].(map[string]any)["idempotency_key"] = ct.NewIdem()
		delete(a["payload"].(map[string]any), "currency")
	})
	got := rpcError(t, v, a, int64(want["code"].(float64)), acp.CodeMissing, wantData["param"].(string))
	if got["type"] != wantData["type"] {
		t.Fatalf("error type %v, the example's %v", got["type"], wantData["type"])
	}

	declined := ex["error_payment_declined"]["error"].(map[string]any)["data"].(map[string]any)["code"]
	b := ct.Bodies{V: v}
	s := session(t, v, ct.Call(t, cs, ct.Tool{Name: createTool, Meta: meta(v), Payload: b.Create(ct.Item{ID: "ebook", Qty: 1})}))
	s = session(t, v, ct.Call(t, cs, ct.Tool{Name: completeTool, Meta: meta(v), ID: s["id"].(string), Payload: b.Complete("spt_9995")}))
	var codes []any
	for _, m := range s["messages"].([]any) {
		codes = append(codes, m.(map[string]any)["code"])
	}
	if s["status"] != "ready_for_payment" || !slices.Contains(codes, declined) {
		t.Fatalf("declined card: %v %v, want a %v message", s["status"], codes, declined)
	}
}
