// Package mcpapi is the bridge's MCP door: ACP's checkout as the five tools
// of ACP's MCP binding (2026-04-17) — create_checkout_session,
// get_checkout_session, update_checkout_session,
// complete_checkout_session, cancel_checkout_session — served over MCP's
// Streamable HTTP transport with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk), for agent apps that speak MCP.
//
// It is a door, not a second checkout: a tool call {meta, id, payload}
// becomes the REST request it stands for — meta mapped onto the headers
// by the binding's table, id the path's session, payload the body — and
// goes through httpapi.Checkout.Serve, the rules the REST door runs
// (versions, keys, per-key rate limit, signatures, idempotency keys,
// per-version decoders, the engine, status mapping). A session made on
// one door is read, changed and completed on the other; an idempotency
// key is scoped to the REST path either way, so a retry may even switch
// doors.
//
// On the wire:
//
//   - Authentication is the connection's: every HTTP request to /mcp needs
//     Authorization: Bearer <key> of acp.api_keys (401 otherwise, before
//     any JSON-RPC); keys never appear in tool arguments, which LLMs see.
//   - A session comes back as the tool result's structuredContent (and
//     as JSON text content, for clients without structured content). The
//     binding's examples show the bare session as the JSON-RPC result,
//     which is not an MCP CallToolResult; structuredContent is MCP's place
//     for exactly that object. A replayed answer carries
//     _meta.idempotent_replayed: true.
//   - Errors are JSON-RPC errors with code -32000 and ACP's Error object,
//     at the call's API version, in data; param is a JSONPath into the
//     tool arguments ($.payload.line_items[0].quantity,
//     $.meta.idempotency_key). Malformed arguments (meta, id or payload
//     missing or of the wrong type) are -32602 with the same data.
//   - Signatures have REST's meaning: meta.signature is
//     base64url(HMAC-SHA256(signing secret, meta.timestamp + "." +
//     payload)), over the payload's bytes as sent or over its canonical
//     form (acp.Canonical), since MCP clients re-encode arguments; get and
//     a cancel without payload sign the empty body.
//
// The tools' input schemas come from tools.json, generated from the
// vendored spec data by `go generate` (internal/gentools) with every $ref
// inlined; a test keeps the file equal to what the spec data gives.
//
// The transport runs stateless: a checkout's state lives in the
// database, so no MCP session is kept between requests, any replica can
// answer any call, and a restart loses nothing.
package mcpapi

//go:generate go run ./internal/gentools -out tools.json

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/acp-bridge/bridge/acp"
	"github.com/acp-bridge/bridge/httpapi"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

//go:embed tools.json
var toolsJSON []byte

// CodeACPError is the JSON-RPC error code of every ACP error: the binding
// puts the meaning in the Error object in data, not in the code.
const CodeACPError = -32000

// Path is where the door is served.
const Path = "/mcp"

// Config wires the door.
type Config struct {
	// Checkout is the checkout the REST door serves; both share its
	// rules and state.
	Checkout *httpapi.Checkout
	// Version is the bridge's version, told to MCP clients.
	Version string
	// Log receives the door's errors (slog.Default when nil).
	Log *slog.Logger
}

// instructions tell the agent the flow in a few lines; MCP clients pass
// them to the model with the tools.
const instructions = `Buy from this shop with the Agentic Commerce Protocol's checkout:
create_checkout_session with line_items, currency and capabilities; update_checkout_session with
fulfillment_details (address) and selected_fulfillment_options until status is ready_for_payment;
complete_checkout_session with payment_data. Every call takes meta.api_version (the tools' schemas
are 2026-04-17's); at 2026-04-17 every call but get also needs a fresh meta.idempotency_key (reuse it
only to retry the same call). Problems the buyer can fix come back as messages in the session.`

// New returns the door's HTTP handler: the MCP server with the five
// tools on the Streamable HTTP transport, behind the API-key check.
func New(c Config) (http.Handler, error) {
	if c.Checkout == nil {
		return nil, errors.New("mcpapi: no checkout")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	tools, err := loadTools()
	if err != nil {
		return nil, err
	}
	d := &door{checkout: c.Checkout, log: c.Log}
	// Stateless, the SDK logs three lines at Info for every HTTP request
	// (a session made and dropped), which the access log already covers.
	sdkLog := slog.New(atLeast{Handler: c.Log.Handler(), min: slog.LevelWarn}).With("component", "mcp")
	srv := mcp.NewServer(&mcp.Implementation{Name: "acp-bridge", Title: "ACP checkout", Version: c.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: sdkLog})
	for _, t := range tools {
		srv.AddTool(t.tool, d.handler(t.op))
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless: true,
		// Tool calls are request and answer; plain JSON keeps proxies
		// and logs simple.
		JSONResponse: true,
		// The SDK refuses requests that reach a loopback address with
		// another Host, against DNS rebinding of local servers. A browser
		// tricked that way holds no API key, and the bridge commonly runs
		// on 127.0.0.1 behind a reverse proxy that passes the public Host.
		DisableLocalhostProtection: true,
		Logger:                     sdkLog,
	})
	return c.Checkout.RequireKey(h), nil
}

// tool is one tool of tools.json and the operation it runs.
type tool struct {
	tool *mcp.Tool
	op   httpapi.Op
}

// loadTools reads the embedded tool definitions and checks they are the
// binding's five, named after the operations.
func loadTools() ([]tool, error) {
	var defs []struct {
		Name        string          `json:"name"`
		Title       string          `json:"title"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if err := json.Unmarshal(toolsJSON, &defs); err != nil {
		return nil, fmt.Errorf("mcpapi: tools.json: %w", err)
	}
	byName := map[string]httpapi.Op{}
	for _, op := range httpapi.Ops {
		byName[ToolName(op)] = op
	}
	out := make([]tool, 0, len(defs))
	for _, d := range defs {
		op, ok := byName[d.Name]
		if !ok {
			return nil, fmt.Errorf("mcpapi: tools.json: unknown tool %q", d.Name)
		}
		delete(byName, d.Name)
		t := &mcp.Tool{Name: d.Name, Title: d.Title, Description: d.Description, InputSchema: d.InputSchema}
		if op == httpapi.OpGet {
			t.Annotations = &mcp.ToolAnnotations{ReadOnlyHint: true}
		}
		out = append(out, tool{tool: t, op: op})
	}
	if len(byName) > 0 {
		return nil, fmt.Errorf("mcpapi: tools.json lacks %d of the binding's tools", len(byName))
	}
	return out, nil
}

// ToolName is the binding's name of op's tool (create_checkout_session).
func ToolName(op httpapi.Op) string { return string(op) + "_checkout_session" }

// door runs tool calls through the checkout.
type door struct {
	checkout *httpapi.Checkout
	log      *slog.Logger
}

// handler is op's tool. It takes the connection's bearer key from the HTTP
// request that carried the call, never from the arguments.
func (d *door) handler(op httpapi.Op) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		// The SDK runs handlers on its own goroutines, out of reach of the
		// HTTP server's recovery: a panic here would end the process.
		defer func() {
			if p := recover(); p != nil {
				d.log.Error("panic in MCP tool", "tool", ToolName(op), "panic", p, "stack", string(debug.Stack()))
				res, err = nil, rpcError(CodeACPError, acp.Latest, &acp.Error{Type: acp.ProcessingError, Code: "internal_error", Message: "internal error"}, 0)
			}
		}()
		a, aerr := decodeArgs(op, req.Params.Arguments)
		if aerr != nil {
			return nil, rpcError(jsonrpc.CodeInvalidParams, a.version(), aerr, 0)
		}
		h := a.header()
		if req.Extra != nil {
			h.Set("Authorization", req.Extra.Header.Get("Authorization"))
		}
		ans := d.checkout.Serve(ctx, httpapi.Call{Op: op, ID: a.id, Header: h, Body: a.payload, ReEncoded: true})
		if ans.Err != nil {
			return nil, rpcError(CodeACPError, ans.Version, argumentParam(ans), ans.RetryAfter)
		}
		res = &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: string(ans.Session)}},
			StructuredContent: json.RawMessage(ans.Session),
		}
		if ans.Replayed {
			res.Meta = mcp.Meta{"idempotent_replayed": true}
		}
		return res, nil
	}
}

// argumentParam returns the answer's error with param pointing into the
// tool arguments: a header's meta field, or the payload for a JSONPath
// into the body.
func argumentParam(ans httpapi.Answer) *acp.Error {
	e := *ans.Err
	switch {
	case ans.Header != "":
		if f := metaField(ans.Header); f != "" {
			e.Param = "$.meta." + f
		}
	case e.Param == "$" || strings.HasPrefix(e.Param, "$.") || strings.HasPrefix(e.Param, "$["):
		e.Param = "$.payload" + e.Param[1:]
	}
	return &e
}

// rpcError puts an ACP error on JSON-RPC as the binding says: the Error
// object, in the shape of version v, in data. JSON-RPC has no headers, so
// a retry delay is told in the message.
func rpcError(code int64, v acp.Version, e *acp.Error, retryAfter time.Duration) error {
	data, err := e.Encode(v)
	if err != nil {
		data = []byte(`{"type":"processing_error","code":"internal_error","message":"internal error"}`)
	}
	msg := e.Message
	if retryAfter > 0 {
		msg += " (retry after " + strconv.Itoa(httpapi.RetryAfterSeconds(retryAfter)) + "s)"
	}
	return &jsonrpc.Error{Code: code, Message: msg, Data: data}
}

// atLeast passes on the records of min and above.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{Handler: h.Handler.WithGroup(name), min: h.min}
}
