//lint:file-ignore SA1019 sampling and roots are deprecated by SEP-2577 (2026-07-28) but part of the protocol versions the gateway serves: it must relay them.

package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/ir"
)

// richServer is a real Go SDK server, in process, that asks its client
// things: tool "ask" samples, tool "confirm" elicits, tool "roots" lists the
// client's roots; it completes prompt arguments with "<server>-<value>" and
// serves resource "info://<server>" (subscribable).
func richServer(t testing.TB, name string) (*mcp.Server, string) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "v1"}, &mcp.ServerOptions{
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{
				Values: []string{name + "-" + req.Params.Ref.Name + req.Params.Ref.URI + "-" + req.Params.Argument.Value}}}, nil
		},
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{MaxTokens: 10,
			Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "from " + name}}}})
		if err != nil {
			return nil, nil, err
		}
		return text(name + " sampled: " + res.Content.(*mcp.TextContent).Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "confirm"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "sure? (" + name + ")",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"ok": map[string]any{"type": "boolean"}}}})
		if err != nil {
			return nil, nil, err
		}
		return text(name + " elicited: " + res.Action), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "roots"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		return text(name + " roots: " + res.Roots[0].URI), nil, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}},
		func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi from " + name}}}}, nil
		})
	s.AddResource(&mcp.Resource{URI: "info://" + name, Name: "info"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "info of " + name}}}, nil
		})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return s, u.Port()
}

// connect is the Go SDK's client, through the gateway, answering sampling,
// elicitation and roots requests and recording the notifications it gets.
type sdkClient struct {
	cs          *mcp.ClientSession
	listChanged chan struct{}
	updated     chan string
}

func connect(t *testing.T, e *env) *sdkClient {
	t.Helper()
	c := &sdkClient{listChanged: make(chan struct{}, 4), updated: make(chan string, 4)}
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant",
				Content: &mcp.TextContent{Text: "answer to " + req.Params.Messages[0].Content.(*mcp.TextContent).Text}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept:" + req.Params.Message, Content: map[string]any{"ok": true}}, nil
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { c.listChanged <- struct{}{} },
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			c.updated <- req.Params.URI
		},
	})
	client.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: e.srv.URL + "/mcp"}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	c.cs = cs
	return c
}

func callText(t *testing.T, cs *mcp.ClientSession, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
	require.NoError(t, err, name)
	require.False(t, res.IsError, "%s: %v", name, res.Content)
	return res.Content[0].(*mcp.TextContent).Text
}

// Requests the targets send the client (sampling, elicitation, roots) reach
// it and its answers reach the target that asked, even when both targets
// use the same request ids; both targets ask at once.
func TestFederationServerRequests(t *testing.T) {
	_, pa := richServer(t, "a")
	_, pb := richServer(t, "b")
	e := newFedEnv(t, fedYAML(pa, pb, "FailClosed", "Conditional", ""))
	c := connect(t, e)

	require.Equal(t, "a sampled: answer to from a", callText(t, c.cs, "a_ask"))
	require.Equal(t, "b sampled: answer to from b", callText(t, c.cs, "b_ask"))
	require.Equal(t, "b elicited: accept:sure? (b)", callText(t, c.cs, "b_confirm"))
	require.Equal(t, "a roots: file:///work", callText(t, c.cs, "a_roots"))

	done := make(chan string, 2)
	for _, n := range []string{"a_ask", "b_ask"} {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: n, Arguments: map[string]any{}})
			if err != nil {
				done <- err.Error()
				return
			}
			done <- res.Content[0].(*mcp.TextContent).Text
		}()
	}
	got := []string{<-done, <-done}
	require.ElementsMatch(t, []string{"a sampled: answer to from a", "b sampled: answer to from b"}, got)
}

// completion/complete goes to the target its reference names, with the
// prefix stripped; the capability is merged.
func TestFederationCompletion(t *testing.T) {
	_, pa := richServer(t, "a")
	_, pb := richServer(t, "b")
	e := newFedEnv(t, fedYAML(pa, pb, "FailClosed", "Conditional", ""))
	c := connect(t, e)
	require.NotNil(t, c.cs.InitializeResult().Capabilities.Completions)
	ctx := context.Background()
	res, err := c.cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "b_greet"},
		Argument: mcp.CompleteParamsArgument{Name: "who", Value: "x"}})
	require.NoError(t, err)
	require.Equal(t, []string{"b-greet-x"}, res.Completion.Values)
	res, err = c.cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/resource", URI: "a+info://a"},
		Argument: mcp.CompleteParamsArgument{Name: "who", Value: "y"}})
	require.NoError(t, err)
	require.Equal(t, []string{"a-info://a-y"}, res.Completion.Values)
	// A reference to no target completes to nothing.
	res, err = c.cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "greet"},
		Argument: mcp.CompleteParamsArgument{Name: "who", Value: "z"}})
	if err == nil {
		require.Empty(t, res.Completion.Values)
	} else {
		require.Contains(t, err.Error(), "Unknown prompt")
	}
}

// Resource URIs carry the target prefix everywhere the client sees them:
// lists, read results, update notifications (on the merged GET stream);
// notifications a target sends on its own stream reach the client.
func TestFederationResourcesAndServerStream(t *testing.T) {
	sa, pa := richServer(t, "a")
	_, pb := richServer(t, "b")
	e := newFedEnv(t, fedYAML(pa, pb, "FailClosed", "Conditional", ""))
	c := connect(t, e)
	ctx := context.Background()
	list, err := c.cs.ListResources(ctx, nil)
	require.NoError(t, err)
	var uris []string
	for _, r := range list.Resources {
		uris = append(uris, r.URI)
	}
	require.ElementsMatch(t, []string{"a+info://a", "b+info://b"}, uris)
	read, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "b+info://b"})
	require.NoError(t, err)
	require.Equal(t, "b+info://b", read.Contents[0].URI)
	require.Equal(t, "info of b", read.Contents[0].Text)

	require.NoError(t, c.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "a+info://a"}))
	// The GET stream is opened by the client after initialize; give it a
	// moment to be relayed before the server speaks on it.
	require.Eventually(t, func() bool {
		require.NoError(t, sa.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "info://a"}))
		select {
		case uri := <-c.updated:
			require.Equal(t, "a+info://a", uri)
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, 10*time.Second, 10*time.Millisecond)

	sa.AddTool(&mcp.Tool{Name: "late", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "late"}}}, nil
	})
	select {
	case <-c.listChanged:
	case <-time.After(10 * time.Second):
		t.Fatal("no tools/list_changed through the merged server stream")
	}
	require.Equal(t, "late", callText(t, c.cs, "a_late"))
}

// sessionRouting Stateless: no session id is handed out, every request is
// served on upstream sessions of its own, GET and DELETE are refused.
func TestFederationStateless(t *testing.T) {
	a, b := newSDKServer(t, "a", 0), newSDKServer(t, "b", 0)
	yaml := strings.Replace(fedYAML(a.port(), b.port(), "FailClosed", "Conditional", ""), "    failureMode:", "    sessionRouting: Stateless\n    failureMode:", 1)
	e := newFedEnv(t, yaml)
	init := e.post(t, fedInitBody, nil)
	require.Equal(t, http.StatusOK, init.StatusCode)
	require.Empty(t, init.Header.Get("Mcp-Session-Id"))
	resp := e.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b_two","arguments":{}}}`, nil)
	require.Contains(t, readBody(t, resp), `"b:two"`)
	resp = e.do(t, http.MethodGet, "/mcp", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp = e.do(t, http.MethodDelete, "/mcp", "", map[string]string{"Mcp-Session-Id": "x"})
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// The official client works against it too.
	c := connect(t, e)
	require.Equal(t, "a:one", callText(t, c.cs, "a_one"))
}

// prefixMode Always prefixes even a single target; Conditional does not.
func TestFederationPrefixAlwaysOneTarget(t *testing.T) {
	a := newSDKServer(t, "a", 0)
	one := func(mode string) *env {
		y := fedYAML(a.port(), a.port(), "FailClosed", mode, "")
		y = strings.Replace(y, "    - {name: b, static: {host: 127.0.0.1, port: "+a.port()+", path: /mcp}}\n", "", 1)
		return newFedEnv(t, y)
	}
	e := one("Always")
	resp := e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	require.ElementsMatch(t, []string{"a_one", "a_two", "a_three"}, toolNames(t, readBody(t, resp)))
	resp = e.post(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a_two","arguments":{}}}`, nil)
	require.Contains(t, readBody(t, resp), `"a:two"`)
	resp = e.post(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"two","arguments":{}}}`, nil)
	require.Equal(t, "Unknown tool: two", decodeRPCError(t, readBody(t, resp)).Error.Message)

	e = one("Conditional")
	resp = e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
	body := readBody(t, resp)
	require.Contains(t, body, `"name":"two"`)
	require.NotContains(t, body, `"a_two"`)
}

func TestServerIDMapping(t *testing.T) {
	f := &federation{targets: []ir.Target{{Name: "a"}, {Name: "b_c"}}}
	for _, id := range []string{`0`, `-12`, `"x/y"`, `"mcpgate/a/1"`, `123456789012345678901234567890`} {
		for _, tg := range []string{"a", "b_c"} {
			mapped := mapServerID(tg, jsontext.Value(id))
			got, orig, ok := f.unmapServerID(mapped)
			require.True(t, ok, "%s %s", tg, mapped)
			require.Equal(t, tg, got.Name)
			require.Equal(t, id, string(orig))
		}
	}
	for _, id := range []string{`1`, `"1"`, `"mcpgate/"`, `"mcpgate/zz/1"`, `"mcpgate/a/"`, `"mcpgate/a/{}"`, `"mcpgate/a/1 2"`, `"mcpgate/a/true"`} {
		_, _, ok := f.unmapServerID(jsontext.Value(id))
		require.False(t, ok, id)
	}
	tg, orig, ok := f.targetOfEventID("b_c/17")
	require.True(t, ok)
	require.Equal(t, "b_c", tg.Name)
	require.Equal(t, "17", orig)
	for _, id := range []string{"", "17", "zz/1", "a/"} {
		_, _, ok := f.targetOfEventID(id)
		require.False(t, ok, id)
	}
}

// prefixMode Never with several targets: names as the targets give them,
// calls found by name; the policy still sees the real target.
func TestFederationPrefixNever(t *testing.T) {
	a := newSDKServer(t, "a", 0)
	_, pb := richServer(t, "b")
	policy := routePolicy("no-confirm-on-b", "Deny", `mcp.tool.target == "b" && mcp.tool.name == "confirm"`)
	e := newFedEnv(t, fedYAML(a.port(), pb, "FailClosed", "Never", policy))
	c := connect(t, e)
	ctx := context.Background()
	tools, err := c.cs.ListTools(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	require.ElementsMatch(t, []string{"one", "two", "three", "ask", "roots"}, names)
	require.Equal(t, "a:two", callText(t, c.cs, "two"))
	require.Equal(t, "b sampled: answer to from b", callText(t, c.cs, "ask"))
	_, err = c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "confirm", Arguments: map[string]any{}})
	require.ErrorContains(t, err, "Unknown tool: confirm")
	_, err = c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope", Arguments: map[string]any{}})
	require.ErrorContains(t, err, "Unknown tool: nope")
	p, err := c.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "greet"})
	require.NoError(t, err)
	require.Equal(t, "hi from b", p.Messages[0].Content.(*mcp.TextContent).Text)
	read, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "info://b"})
	require.NoError(t, err)
	require.Equal(t, "info://b", read.Contents[0].URI)
}

// ping reaches every target of the session; a dead one fails it with
// FailClosed and is left out with FailOpen. Without a session the gateway
// answers.
func TestFederationPing(t *testing.T) {
	for _, mode := range []string{"FailClosed", "FailOpen"} {
		a, b := newSDKServer(t, "a", 0), newSDKServer(t, "b", 0)
		e := newFedEnv(t, fedYAML(a.port(), b.port(), mode, "Conditional", ""))
		init := e.post(t, fedInitBody, nil)
		hdr := map[string]string{"Mcp-Session-Id": init.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-06-18"}
		resp := e.post(t, `{"jsonrpc":"2.0","id":7,"method":"ping"}`, hdr)
		require.JSONEq(t, `{"jsonrpc":"2.0","id":7,"result":{}}`, readBody(t, resp))
		for _, u := range []*sdkServer{a, b} {
			u.mu.Lock()
			require.Len(t, u.hdr, 2, "initialize and ping") // no session opened on the side
			u.mu.Unlock()
		}
		b.srv.Close()
		resp = e.post(t, `{"jsonrpc":"2.0","id":8,"method":"ping"}`, hdr)
		if mode == "FailClosed" {
			require.Equal(t, http.StatusBadGateway, resp.StatusCode, mode)
			require.Equal(t, "upstream MCP server unavailable", decodeRPCError(t, readBody(t, resp)).Error.Message)
		} else {
			require.JSONEq(t, `{"jsonrpc":"2.0","id":8,"result":{}}`, readBody(t, resp), mode)
		}
		resp = e.post(t, `{"jsonrpc":"2.0","id":9,"method":"ping"}`, nil)
		require.JSONEq(t, `{"jsonrpc":"2.0","id":9,"result":{}}`, readBody(t, resp), mode)
	}
}

func TestWithPrefixedMember(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{`{"name":"echo","description":"x"}`, `{"name":"a_echo","description":"x"}`, ""},
		{`{ "description" : "the name" , "name" : "e\u0063ho" ,"inputSchema":{"name":"inner"}}`, `{ "description" : "the name" , "name" : "a_echo" ,"inputSchema":{"name":"inner"}}`, ""},
		{`{"inputSchema":{"name":"inner"},"name":"x"}`, `{"inputSchema":{"name":"inner"},"name":"a_x"}`, ""},
		{`{"name":"a","name":"b"}`, "", "duplicate"},
		{`{"title":"x"}`, "", "no name"},
		{`{"name":1}`, "", "not a string"},
		{`["name"]`, "", "not a JSON object"},
	} {
		got, err := withPrefixedMember(jsontext.Value(c.in), "name", "a_")
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, string(got))
	}
}

// What a target sends is mapped in place: only the mapped values change.
func TestFromTarget(t *testing.T) {
	f := &federation{targets: []ir.Target{{Name: "a"}}, prefixed: true}
	rw := f.fromTarget(ir.Target{Name: "a"}, "resources/read")
	for _, c := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0", "id":7,"method":"sampling/createMessage","params":{}}`, `{"jsonrpc":"2.0", "id":"mcpgate/a/7","method":"sampling/createMessage","params":{}}`},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x","reason":"r"}}`, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"mcpgate/a/\"x\"","reason":"r"}}`},
		{`{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"info://a"}}`, `{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"a+info://a"}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"info://a","text":"t"},{"text":"no uri"}]}}`, `{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"a+info://a","text":"t"},{"text":"no uri"}]}}`},
		{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`},
		{`not json "method"`, `not json "method"`},
	} {
		got, err := rw([]byte(c.in))
		require.NoError(t, err)
		require.Equal(t, c.want, string(got), c.in)
	}
}
