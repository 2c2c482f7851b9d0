package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/ir"
)

// sdkServer is a real MCP server (the Go SDK's) in-process: tools
// <name>-one, <name>-two, <name>-three answering "<server>:<tool>", listed
// pageSize at a time. It records the headers it received.
type sdkServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	hdr []http.Header
}

func newSDKServer(t testing.TB, name string, pageSize int) *sdkServer {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "v1"}, &mcp.ServerOptions{PageSize: pageSize, Instructions: "use " + name})
	for _, tool := range []string{"one", "two", "three"} {
		mcp.AddTool(s, &mcp.Tool{Name: tool}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ":" + tool}}}, nil, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	u := &sdkServer{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hdr = append(u.hdr, r.Header.Clone())
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *sdkServer) port() string {
	p, _ := url.Parse(u.srv.URL)
	return p.Port()
}

// fedYAML is one backend with targets a and b (ports) on /mcp, no
// authentication, with the given failure and prefix modes and extra YAML.
func fedYAML(portA, portB, failureMode, prefixMode, extra string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: team}
spec:
  gatewayClassName: agentgateway
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: fed, namespace: team}
spec:
  mcp:
    failureMode: %s
    prefixMode: %s
    targets:
    - {name: a, static: {host: 127.0.0.1, port: %s, path: /mcp}}
    - {name: b, static: {host: 127.0.0.1, port: %s, path: /mcp}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mcp, namespace: team}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mcp}}]
    backendRefs: [{name: fed, group: agentgateway.dev, kind: AgentgatewayBackend}]
%s`, testPort, failureMode, prefixMode, portA, portB, extra)
}

func newFedEnv(t testing.TB, yaml string) *env {
	t.Helper()
	e := &env{gw: New(Options{})}
	e.bundle = buildBundle(t, yaml, nil)
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)
	return e
}

const fedInitBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// toolNames reads a tools/list response.
func toolNames(t *testing.T, body string) []string {
	t.Helper()
	var res struct {
		Result struct {
			Tools      []struct{ Name string } `json:"tools"`
			NextCursor string                  `json:"nextCursor"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res), body)
	require.Empty(t, res.Result.NextCursor)
	var names []string
	for _, tl := range res.Result.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// Every page of every target is read (page size 1 here) and the merged
// list is prefixed; calls reach the target their prefix names.
func TestFederationListsAllPages(t *testing.T) {
	a, b := newSDKServer(t, "a", 1), newSDKServer(t, "b", 2)
	e := newFedEnv(t, fedYAML(a.port(), b.port(), "FailClosed", "Conditional", ""))
	init := e.post(t, fedInitBody, nil)
	require.Equal(t, http.StatusOK, init.StatusCode)
	sid := init.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	var ir struct {
		Result struct {
			ProtocolVersion string         `json:"protocolVersion"`
			Instructions    string         `json:"instructions"`
			Capabilities    map[string]any `json:"capabilities"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(readBody(t, init)), &ir))
	require.Equal(t, "2025-06-18", ir.Result.ProtocolVersion)
	require.Equal(t, "a: use a\n\nb: use b", ir.Result.Instructions)
	require.Contains(t, ir.Result.Capabilities, "tools")

	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"}
	resp := e.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, hdr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.ElementsMatch(t, []string{"a_one", "a_two", "a_three", "b_one", "b_two", "b_three"}, toolNames(t, readBody(t, resp)))

	resp = e.post(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b_two","arguments":{}}}`, hdr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, readBody(t, resp), `"b:two"`)

	resp = e.post(t, `{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"x"}}`, hdr)
	require.Equal(t, -32602, decodeRPCError(t, readBody(t, resp)).Error.Code)

	// The targets' server streams, merged.
	resp = e.do(t, http.MethodGet, "/mcp", "", hdr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	resp.Body.Close()
	resp = e.do(t, http.MethodGet, "/mcp", "", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// A client without a session (curl) gets sessions opened for the request.
// Nothing of the client's headers but the MCP ones goes upstream.
func TestFederationSessionless(t *testing.T) {
	a, b := newSDKServer(t, "a", 0), newSDKServer(t, "b", 0)
	e := newFedEnv(t, fedYAML(a.port(), b.port(), "FailClosed", "Always", ""))
	secret := map[string]string{"Authorization": "Bearer client-secret", "Cookie": "c=secret", "X-Custom": "secret"}
	resp := e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_one","arguments":{}}}`, secret)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, readBody(t, resp), `"a:one"`)
	resp = e.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, secret)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, toolNames(t, readBody(t, resp)), 6)
	resp = e.post(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"c_one","arguments":{}}}`, nil)
	require.Equal(t, "Unknown tool: c_one", decodeRPCError(t, readBody(t, resp)).Error.Message)
	resp = e.post(t, `{"jsonrpc":"2.0","id":4,"method":"ping"}`, nil)
	require.JSONEq(t, `{"jsonrpc":"2.0","id":4,"result":{}}`, readBody(t, resp))

	for _, u := range []*sdkServer{a, b} {
		u.mu.Lock()
		require.NotEmpty(t, u.hdr)
		for _, h := range u.hdr {
			for _, k := range []string{"Authorization", "Cookie", "X-Custom"} {
				require.Empty(t, h.Get(k), "%s reached the upstream", k)
			}
		}
		u.mu.Unlock()
	}
}

// FailClosed: a target down fails the fan-out, naming no internals.
// FailOpen: it is left out and the others answer.
func TestFederationFailureMode(t *testing.T) {
	a := newSDKServer(t, "a", 0)
	down := httptest.NewServer(http.NotFoundHandler())
	downPort := strings.TrimPrefix(down.URL, "http://127.0.0.1:")
	down.Close()

	closed := newFedEnv(t, fedYAML(a.port(), downPort, "FailClosed", "Conditional", ""))
	resp := closed.post(t, fedInitBody, nil)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	body := readBody(t, resp)
	require.Equal(t, "upstream MCP server unavailable", decodeRPCError(t, body).Error.Message)
	require.NotContains(t, body, downPort)
	resp = closed.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)

	open := newFedEnv(t, fedYAML(a.port(), downPort, "FailOpen", "Conditional", ""))
	resp = open.post(t, fedInitBody, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sid := resp.Header.Get("Mcp-Session-Id")
	resp = open.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": sid})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.ElementsMatch(t, []string{"a_one", "a_two", "a_three"}, toolNames(t, readBody(t, resp)))
	resp = open.post(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b_one","arguments":{}}}`, map[string]string{"Mcp-Session-Id": sid})
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
}

// The policy sees the real target and the unprefixed name, in the request
// and in the list phase.
func TestFederationAuthz(t *testing.T) {
	a, b := newSDKServer(t, "a", 0), newSDKServer(t, "b", 0)
	policy := routePolicy("only-one-of-b", "Deny", `mcp.tool.target == "b" && mcp.tool.name != "one"`)
	e := newFedEnv(t, fedYAML(a.port(), b.port(), "FailClosed", "Conditional", policy))
	resp := e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.ElementsMatch(t, []string{"a_one", "a_two", "a_three", "b_one"}, toolNames(t, readBody(t, resp)))
	resp = e.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b_two","arguments":{}}}`, nil)
	denied := readBody(t, resp)
	require.NotContains(t, denied, "b:two")
	require.NotZero(t, decodeRPCError(t, denied).Error.Code, denied)
	resp = e.post(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b_one","arguments":{}}}`, nil)
	require.Contains(t, readBody(t, resp), `"b:one"`)
	resp = e.post(t, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"a_two","arguments":{}}}`, nil)
	require.Contains(t, readBody(t, resp), `"a:two"`)
}

// Target names may contain '_': the longest target name that prefixes a
// name wins, and a bare prefix names nothing.
func TestFederationSplit(t *testing.T) {
	f := &federation{targets: []ir.Target{{Name: "a"}, {Name: "a_b"}, {Name: "c"}}}
	for _, c := range []struct {
		in, target, rest string
		found            bool
	}{
		{"a_x", "a", "x", true},
		{"a_b_x", "a_b", "x", true},
		{"a_bx", "a", "bx", true},
		{"c_get_sum", "c", "get_sum", true},
		{"a_", "", "", false},
		{"d_x", "", "", false},
		{"ax", "", "", false},
	} {
		tg, rest, found := f.split(c.in, "_")
		require.Equal(t, c.found, found, c.in)
		require.Equal(t, c.target, tg.Name, c.in)
		require.Equal(t, c.rest, rest, c.in)
	}
}

func TestMergeCapabilities(t *testing.T) {
	caps := map[string]any{}
	mergeCapabilities(caps, map[string]any{"tools": map[string]any{"listChanged": false}, "logging": map[string]any{}})
	mergeCapabilities(caps, map[string]any{"tools": map[string]any{"listChanged": true}, "prompts": map[string]any{"listChanged": false}})
	mergeCapabilities(caps, map[string]any{"tools": map[string]any{"listChanged": false}, "resources": map[string]any{"subscribe": true}})
	require.Equal(t, map[string]any{
		"tools":     map[string]any{"listChanged": true},
		"prompts":   map[string]any{"listChanged": false},
		"logging":   map[string]any{},
		"resources": map[string]any{"subscribe": true},
	}, caps)
}

// BenchmarkFederation is the fan-out cost: one session in front of two
// in-process Go SDK servers, tools/list (both targets, merged and
// prefixed) and tools/call (one target, prefix stripped). The servers' own
// work is included; compare with a single target to see the gateway's share.
func BenchmarkFederation(b *testing.B) {
	a, c := newSDKServer(b, "a", 0), newSDKServer(b, "b", 0)
	e := newFedEnv(b, fedYAML(a.port(), c.port(), "FailClosed", "Conditional", ""))
	init := e.post(b, fedInitBody, nil)
	if init.StatusCode != http.StatusOK {
		b.Fatalf("initialize: %d", init.StatusCode)
	}
	hdr := map[string]string{"Mcp-Session-Id": init.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-06-18"}
	for _, c := range []struct{ name, body, want string }{
		{"tools/list", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, `"b_three"`},
		{"tools/call", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b_two","arguments":{}}}`, `b:two`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp := e.post(b, c.body, hdr)
				if body := readBody(b, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, c.want) {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
				resp.Body.Close()
			}
		})
	}
}

// logging/setLevel reaches every target of the session; the client's
// notifications too, and only where a session exists.
func TestFederationSetLevelAndNotifications(t *testing.T) {
	a, b := newSDKServer(t, "a", 0), newSDKServer(t, "b", 0)
	e := newFedEnv(t, fedYAML(a.port(), b.port(), "FailClosed", "Conditional", ""))
	init := e.post(t, fedInitBody, nil)
	require.Equal(t, http.StatusOK, init.StatusCode)
	hdr := map[string]string{"Mcp-Session-Id": init.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-06-18"}
	resp := e.post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp = e.post(t, `{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}}`, hdr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"jsonrpc":"2.0","id":2,"result":{}}`, readBody(t, resp))
	for _, u := range []*sdkServer{a, b} {
		u.mu.Lock()
		// initialize, notifications/initialized, logging/setLevel: one
		// session each, nothing opened on the side.
		require.Len(t, u.hdr, 3)
		u.mu.Unlock()
	}
	resp = e.post(t, `{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a_x"},"argument":{"name":"n","value":"v"}}}`, hdr)
	// Routed to target a as prompt "x"; this server completes nothing.
	require.Contains(t, readBody(t, resp), `"code":-32601`)
}
