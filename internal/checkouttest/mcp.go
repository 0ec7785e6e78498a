package checkouttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/acp-bridge/bridge/mcpapi"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ConnectMCP connects an MCP client — the official Go SDK's, as agent apps
// use it — to endpoint, sending key as the bearer key on every HTTP
// request ("" sends none).
func ConnectMCP(ctx context.Context, endpoint, key string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "checkouttest", Version: "1"}, nil)
	hc := &http.Client{Transport: bearerTransport{key: key, next: client.Transport}}
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return cs, nil
}

// MCP connects an MCP client to the stack's /mcp with key (AgentKey when
// ""), closed when the test ends.
func (s *Stack) MCP(t TB, key string) *mcp.ClientSession {
	t.Helper()
	if key == "" {
		key = AgentKey
	}
	cs, err := ConnectMCP(context.Background(), s.URL+mcpapi.Path, key)
	if err != nil {
		t.Fatalf("mcp: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

type bearerTransport struct {
	key  string
	next http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.key != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.key)
	}
	return b.next.RoundTrip(r)
}

// Tool is one tool call of ACP's MCP binding: {meta, id, payload}.
type Tool struct {
	Name string
	// Meta is the call's meta (api_version, idempotency_key, …).
	Meta map[string]any
	// ID is the session id ("" leaves it out).
	ID string
	// Payload is the REST request body ("" leaves it out).
	Payload string
}

// ToolAnswer is a tool call's outcome.
type ToolAnswer struct {
	Result *mcp.CallToolResult
	// Session is the result's structuredContent as JSON.
	Session json.RawMessage
	// Err is the JSON-RPC error when the call failed as the binding says
	// ACP errors do.
	Err *jsonrpc.Error
}

// Call runs tool on cs. Errors other than a JSON-RPC error answer (the
// connection, the transport) fail the test.
func Call(t TB, cs *mcp.ClientSession, tool Tool) ToolAnswer {
	t.Helper()
	a, err := TryCall(cs, tool)
	if err != nil {
		t.Fatalf("%s: %v", tool.Name, err)
	}
	return a
}

// TryCall is Call without a test.
func TryCall(cs *mcp.ClientSession, tool Tool) (ToolAnswer, error) {
	args := map[string]any{}
	if tool.Meta != nil {
		args["meta"] = tool.Meta
	}
	if tool.ID != "" {
		args["id"] = tool.ID
	}
	if tool.Payload != "" {
		args["payload"] = json.RawMessage(tool.Payload)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool.Name, Arguments: args})
	var rpc *jsonrpc.Error
	if errors.As(err, &rpc) {
		return ToolAnswer{Err: rpc}, nil
	}
	if err != nil {
		return ToolAnswer{}, err
	}
	out := ToolAnswer{Result: res}
	if res.StructuredContent != nil {
		if out.Session, err = json.Marshal(res.StructuredContent); err != nil {
			return ToolAnswer{}, fmt.Errorf("structured content: %w", err)
		}
	}
	return out, nil
}
