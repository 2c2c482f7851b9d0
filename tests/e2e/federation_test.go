//lint:file-ignore SA1019 sampling and roots are deprecated by SEP-2577 (2026-07-28) but part of the protocol versions the gateway serves: it must relay them.

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// federationConfig serves one AgentgatewayBackend with two targets,
// server-everything ("everything") and the Go SDK server ("second"), on
// /mcp without authentication, plus extra YAML documents.
func federationConfig(everything, second *harness.Upstream, extra string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: agentgateway
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: fed, namespace: ns}
spec:
  mcp:
    targets:
    - {name: everything, static: {host: 127.0.0.1, port: %d, path: /mcp, protocol: StreamableHTTP}}
    - {name: second, static: {host: 127.0.0.1, port: %d, path: /mcp, protocol: StreamableHTTP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: fed, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mcp}}]
    backendRefs: [{name: fed, group: agentgateway.dev, kind: AgentgatewayBackend}]
%s`, everything.Port(), second.Port(), extra)
}

// denySecond hides and refuses every tool of the target "second".
const denySecond = `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: deny-second, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: fed}]
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions:
          - 'mcp.tool.target == "second"'
`

func connectPlain(t *testing.T, url string) *mcp.ClientSession {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// A Go SDK client sees one server: the tools, prompts and resources of both
// targets, prefixed with the target's name; each call lands on the server
// its prefix names (the result says which).
func TestFederationTwoServers(t *testing.T) {
	everything, second := harness.StartEverything(t), harness.StartGoServer(t)
	g := harness.StartGateway(t, federationConfig(everything, second, ""))
	ctx := testContext(t, 120*time.Second)
	cs := connectPlain(t, g.URL()+"/mcp")

	init := cs.InitializeResult()
	if init.ServerInfo.Name != "mcpgate" {
		t.Errorf("serverInfo.name = %q, want mcpgate", init.ServerInfo.Name)
	}
	if init.Capabilities.Tools == nil || init.Capabilities.Prompts == nil || init.Capabilities.Resources == nil {
		t.Errorf("capabilities = %+v, want the union (tools, prompts, resources)", init.Capabilities)
	}
	if !strings.Contains(init.Instructions, "second: The second test server") {
		t.Errorf("instructions = %q, want the second server's, named", init.Instructions)
	}

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"everything_get-sum", "everything_echo", "second_add", "second_greet"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools = %v, missing %s", names, want)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "everything_") && !strings.HasPrefix(n, "second_") {
			t.Errorf("tool %q has no target prefix", n)
		}
	}

	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"everything_get-sum", map[string]any{"a": 2, "b": 3}, "The sum of 2 and 3 is 5."},
		{"second_add", map[string]any{"a": 2, "b": 3}, "second: 5"},
		{"second_greet", map[string]any{"name": "Ada"}, "Hello, Ada, from second"},
		{"everything_echo", map[string]any{"message": "hi"}, "Echo: hi"},
	} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
		if err != nil {
			t.Fatalf("tools/call %s: %v", c.tool, err)
		}
		if got := textOf(res); got != c.want {
			t.Errorf("%s = %q, want %q", c.tool, got, c.want)
		}
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nowhere_add", Arguments: map[string]any{}}); err == nil || !strings.Contains(err.Error(), "Unknown tool: nowhere_add") {
		t.Errorf("tools/call nowhere_add: err = %v, want Unknown tool", err)
	}

	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatalf("prompts/list: %v", err)
	}
	var pnames []string
	for _, p := range prompts.Prompts {
		pnames = append(pnames, p.Name)
	}
	if !slices.Contains(pnames, "second_haiku") {
		t.Errorf("prompts = %v, missing second_haiku", pnames)
	}
	p, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "second_haiku"})
	if err != nil {
		t.Fatalf("prompts/get second_haiku: %v", err)
	}
	if tc, ok := p.Messages[0].Content.(*mcp.TextContent); !ok || tc.Text != "Write a haiku about gateways." {
		t.Errorf("second_haiku = %+v", p.Messages[0].Content)
	}

	// server-everything pages its resources: the gateway reads every page.
	direct := connectPlain(t, everything.URL())
	var upstreamCount int
	for r, err := range direct.Resources(ctx, nil) {
		if err != nil {
			t.Fatalf("resources/list directly: %v", err)
		}
		_ = r
		upstreamCount++
	}
	resources, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatalf("resources/list: %v", err)
	}
	if resources.NextCursor != "" {
		t.Errorf("nextCursor = %q, want the whole list", resources.NextCursor)
	}
	var uris []string
	for _, r := range resources.Resources {
		uris = append(uris, r.URI)
	}
	if !slices.Contains(uris, "second+second://info") {
		t.Errorf("resources = %v, missing second+second://info", uris)
	}
	if got := len(uris) - 1; got != upstreamCount {
		t.Errorf("%d resources of everything through the gateway, %d directly (pages dropped?)", got, upstreamCount)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "second+second://info"})
	if err != nil {
		t.Fatalf("resources/read: %v", err)
	}
	if len(rr.Contents) != 1 || rr.Contents[0].Text != "second server info" {
		t.Errorf("second+second://info = %+v", rr.Contents)
	}
	if err := cs.Ping(ctx, nil); err != nil {
		t.Errorf("ping: %v", err)
	}
}

// Authorization sees the real target and the unprefixed name: a Deny rule
// on mcp.tool.target hides that target's tools and refuses their calls,
// while the other target's tools stay.
func TestFederationAuthzPerTarget(t *testing.T) {
	everything, second := harness.StartEverything(t), harness.StartGoServer(t)
	g := harness.StartGateway(t, federationConfig(everything, second, denySecond))
	ctx := testContext(t, 60*time.Second)
	cs := connectPlain(t, g.URL()+"/mcp")
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "everything_get-sum") {
		t.Errorf("tools = %v, missing everything_get-sum", names)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "second_") {
			t.Errorf("tools = %v: %s should be hidden", names, n)
		}
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "second_add", Arguments: map[string]any{"a": 1, "b": 2}}); err == nil {
		t.Errorf("tools/call second_add was allowed")
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_get-sum", Arguments: map[string]any{"a": 1, "b": 2}})
	if err != nil || textOf(res) != "The sum of 1 and 2 is 3." {
		t.Errorf("everything_get-sum = %v, %v", res, err)
	}
}

// rawRPC posts one JSON-RPC message with an optional session id.
func rawRPC(t *testing.T, url, session, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := curlClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

const fedInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func fedSession(t *testing.T, url string) string {
	t.Helper()
	status, hdr, body := rawRPC(t, url, "", fedInit)
	sid := hdr.Get("Mcp-Session-Id")
	if status != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %s (session %q)", status, body, sid)
	}
	if st, _, b := rawRPC(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); st != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", st, b)
	}
	return sid
}

func requireNotFound(t *testing.T, status int, body []byte) {
	t.Helper()
	var e struct {
		Error *struct{ Message string } `json:"error"`
	}
	if status != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error == nil {
		t.Errorf("got %d %s, want 404 with a JSON-RPC error", status, body)
	}
}

// The gateway's session id is sealed: altered, forged or sealed with
// another key it is refused with 404; two replicas sharing --session-key
// serve one session alternately; DELETE ends it.
func TestFederationSessions(t *testing.T) {
	everything, second := harness.StartEverything(t), harness.StartGoServer(t)
	cfg := federationConfig(everything, second, "")
	key := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	g1 := harness.StartGateway(t, cfg, "--session-key", key)
	g2 := harness.StartGateway(t, cfg, "--session-key", key)
	other := harness.StartGateway(t, cfg)
	sid := fedSession(t, g1.URL()+"/mcp")

	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"second_add","arguments":{"a":20,"b":22}}}`
	for i, g := range []*harness.Gateway{g2, g1, g2, g1} {
		status, _, body := rawRPC(t, g.URL()+"/mcp", sid, call)
		if status != http.StatusOK || !strings.Contains(string(body), "second: 42") {
			t.Errorf("call %d on replica %d: %d %s", i, i%2, status, body)
		}
		status, _, body = rawRPC(t, g.URL()+"/mcp", sid, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
		if status != http.StatusOK || !strings.Contains(string(body), `"everything_get-sum"`) {
			t.Errorf("list %d: %d %.300s", i, status, body)
		}
	}
	if strings.Contains(sid, "mcp-session") || len(sid) < 40 {
		t.Errorf("session id %q looks unsealed", sid)
	}

	t.Run("tampered", func(t *testing.T) {
		b := []byte(sid)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		for _, bad := range []string{string(b), sid[:len(sid)-2], "not-a-session", sid + "AA"} {
			status, _, body := rawRPC(t, g1.URL()+"/mcp", bad, call)
			requireNotFound(t, status, body)
		}
	})
	t.Run("another key", func(t *testing.T) {
		status, _, body := rawRPC(t, other.URL()+"/mcp", sid, call)
		requireNotFound(t, status, body)
	})
	t.Run("delete", func(t *testing.T) {
		sid := fedSession(t, g2.URL()+"/mcp")
		req, _ := http.NewRequest(http.MethodDelete, g1.URL()+"/mcp", nil)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		// The upstream sessions are gone: the session is over.
		status, _, body := rawRPC(t, g2.URL()+"/mcp", sid, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
		requireNotFound(t, status, body)
	})
}

// A call's own SSE stream is relayed from its target: the progress
// notifications of a long operation reach the client, in order.
func TestFederationCallProgress(t *testing.T) {
	everything, second := harness.StartEverything(t), harness.StartGoServer(t)
	g := harness.StartGateway(t, federationConfig(everything, second, ""))
	const steps = 3
	var (
		mu       sync.Mutex
		progress []float64
	)
	copts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, req.Params.Progress)
	}}
	ctx := testContext(t, 60*time.Second)
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, copts)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.URL() + "/mcp", MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	params := &mcp.CallToolParams{Name: "everything_trigger-long-running-operation", Arguments: map[string]any{"duration": 1, "steps": steps}}
	params.SetProgressToken("fed-progress")
	res, err := cs.CallTool(ctx, params)
	if err != nil || !strings.Contains(textOf(res), "Long running operation completed") {
		t.Fatalf("call: %v %v", res, err)
	}
	// Notification handlers run concurrently with the call's return.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= steps {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(progress, []float64{1, 2, 3}) {
		t.Errorf("progress = %v, want [1 2 3]", progress)
	}
}

// server-everything, behind a two-target backend, asks the official Go
// client things: sampling and elicitation inside a call's answer stream,
// roots on its server stream (merged by the gateway). Each answer reaches
// server-everything with its own request id, and the completion of a
// prompt argument is routed to it by the prompt's prefixed name.
func TestFederationServerRequests(t *testing.T) {
	everything, second := harness.StartEverything(t), harness.StartGoServer(t)
	g := harness.StartGateway(t, federationConfig(everything, second, ""))
	var (
		mu      sync.Mutex
		sampled []string
	)
	copts := &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			text := req.Params.Messages[0].Content.(*mcp.TextContent).Text
			mu.Lock()
			sampled = append(sampled, text)
			mu.Unlock()
			return &mcp.CreateMessageResult{Model: "e2e-model", Role: "assistant", Content: &mcp.TextContent{Text: "sampled by the client"}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "decline"}, nil
		},
	}
	ctx := testContext(t, 60*time.Second)
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, copts)
	client.AddRoots(&mcp.Root{URI: "file:///e2e/root", Name: "e2e-root"})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.URL() + "/mcp", MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_trigger-sampling-request", Arguments: map[string]any{"prompt": "hello", "maxTokens": 5}})
	if err != nil || !strings.Contains(textOf(res), "sampled by the client") {
		t.Fatalf("sampling through the gateway: %v %v", textOf(res), err)
	}
	mu.Lock()
	if len(sampled) != 1 || !strings.Contains(sampled[0], "hello") {
		t.Errorf("the client was asked %q", sampled)
	}
	mu.Unlock()

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_trigger-elicitation-request", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(textOf(res), "declined") {
		t.Fatalf("elicitation through the gateway: %v %v", textOf(res), err)
	}

	// server-everything asks for the roots on its server stream after
	// initialization; the tool reports what it got.
	var roots string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_get-roots-list", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if roots = textOf(res); strings.Contains(roots, "file:///e2e/root") {
			break
		}
	}
	if !strings.Contains(roots, "file:///e2e/root") {
		t.Fatalf("server-everything never got the client's roots: %q", roots)
	}
}

// A target killed in the middle of a session: with FailClosed the lists
// fail with a clear error while calls to the live target still work; with
// FailOpen the lists go on without it. A call to the dead target is a
// clear error either way.
func TestFederationTargetKilledMidSession(t *testing.T) {
	for _, mode := range []string{"FailClosed", "FailOpen"} {
		t.Run(mode, func(t *testing.T) {
			everything, second := harness.StartEverything(t), harness.StartGoServer(t)
			cfg := strings.Replace(federationConfig(everything, second, ""), "    targets:", "    failureMode: "+mode+"\n    targets:", 1)
			g := harness.StartGateway(t, cfg)
			ctx := testContext(t, 60*time.Second)
			client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: g.URL() + "/mcp", MaxRetries: -1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "second_add", Arguments: map[string]any{"a": 1, "b": 2}}); err != nil || textOf(res) != "second: 3" {
				t.Fatalf("before the kill: %v %v", textOf(res), err)
			}

			second.Close()

			tools, err := cs.ListTools(ctx, nil)
			switch mode {
			case "FailClosed":
				// 502 with JSON-RPC -32603 "upstream MCP server unavailable";
				// the Go SDK reports the status.
				if err == nil || !strings.Contains(err.Error(), "Bad Gateway") {
					t.Fatalf("list with a dead target: %v, %v", tools, err)
				}
			case "FailOpen":
				if err != nil {
					t.Fatal(err)
				}
				for _, tl := range tools.Tools {
					if !strings.HasPrefix(tl.Name, "everything_") {
						t.Errorf("tool %q of the dead target listed", tl.Name)
					}
				}
				if len(tools.Tools) == 0 {
					t.Error("no tools of the live target")
				}
			}
			if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "second_add", Arguments: map[string]any{"a": 1, "b": 2}}); err == nil {
				t.Error("a call to the dead target succeeded")
			} else if !strings.Contains(err.Error(), "Bad Gateway") {
				t.Errorf("unclear error for the dead target: %v", err)
			}
			if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "everything_echo", Arguments: map[string]any{"message": "still here"}}); err != nil || !strings.Contains(textOf(res), "still here") {
				t.Fatalf("the live target after the kill: %v %v", textOf(res), err)
			}
		})
	}
}
