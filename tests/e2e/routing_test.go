package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// routingConfig serves server-everything under PathPrefix /everything (one
// HTTPRoute) and the Go SDK server under Exact /second and PathPrefix
// /other/second (two rules of another HTTPRoute), without authentication.
func routingConfig(everything, second *harness.Upstream) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: agentgateway
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: everything, namespace: ns}
spec:
  mcp:
    targets: [{name: everything, static: {host: 127.0.0.1, port: %d, path: /mcp, protocol: StreamableHTTP}}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: second, namespace: ns}
spec:
  mcp:
    targets: [{name: second, static: {host: 127.0.0.1, port: %d, path: /mcp, protocol: StreamableHTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: everything, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /everything}}]
    backendRefs: [{name: everything, group: agentgateway.dev, kind: AgentgatewayBackend}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: second, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /second}}]
    backendRefs: [{name: second, group: agentgateway.dev, kind: AgentgatewayBackend}]
  - matches: [{path: {type: PathPrefix, value: /other/second}}]
    backendRefs: [{name: second, group: agentgateway.dev, kind: AgentgatewayBackend}]
`, everything.Port(), second.Port())
}

// Path-based routing: each path reaches its own real MCP server (the
// server's name, its tools and a call's result say which); a path no route
// matches gets 404 with a JSON-RPC error body.
func TestPathRouting(t *testing.T) {
	everything, second := harness.StartEverything(t), harness.StartGoServer(t)
	g := harness.StartGateway(t, routingConfig(everything, second))

	for _, c := range []struct {
		path, server, tool string
		args               map[string]any
		want               string
	}{
		{"/everything", "mcp-servers/everything", "get-sum", map[string]any{"a": 2, "b": 3}, "The sum of 2 and 3 is 5."},
		{"/everything/mcp", "mcp-servers/everything", "get-sum", map[string]any{"a": 1, "b": 1}, "The sum of 1 and 1 is 2."},
		{"/second", "mcpgate-second", "add", map[string]any{"a": 2, "b": 3}, "second: 5"},
		{"/other/second", "mcpgate-second", "greet", map[string]any{"name": "Ada"}, "Hello, Ada, from second"},
	} {
		t.Run(c.path, func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.URL() + c.path, MaxRetries: -1}, nil)
			if err != nil {
				t.Fatalf("connect to %s: %v", c.path, err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ServerInfo.Name; got != c.server {
				t.Errorf("server = %q, want %q", got, c.server)
			}
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			if !slices.Contains(names, c.tool) {
				t.Errorf("tools = %v, missing %s", names, c.tool)
			}
			if c.server == "mcpgate-second" {
				sort.Strings(names)
				if !slices.Equal(names, []string{"add", "greet"}) {
					t.Errorf("tools of the second server = %v, want [add greet]", names)
				}
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
			if err != nil {
				t.Fatalf("tools/call %s: %v", c.tool, err)
			}
			if got := textOf(res); got != c.want {
				t.Errorf("%s = %q, want %q", c.tool, got, c.want)
			}
		})
	}

	// Exact /second does not match /second/x; PathPrefix matches whole
	// path elements only.
	for _, p := range []string{"/", "/nothing", "/second/x", "/secondx", "/everythingx", "/other"} {
		t.Run("unmatched "+p, func(t *testing.T) {
			r := curlPost(t, g.URL()+p, "", toolsListBody)
			if r.Status != http.StatusNotFound {
				t.Fatalf("got %s\nwant 404", r)
			}
			var body struct {
				JSONRPC string `json:"jsonrpc"`
				Error   *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil || body.JSONRPC != "2.0" || body.Error == nil {
				t.Fatalf("404 body is not a JSON-RPC error: %s (%v)", r.Body, err)
			}
			if body.Error.Code != -32601 {
				t.Errorf("error code = %d, want -32601", body.Error.Code)
			}
		})
	}
}
