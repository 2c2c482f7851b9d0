package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool authorization (AgentgatewayPolicy spec.backend.mcp.authorization)
// through the real gateway, with Dex tokens and server-everything: what a
// caller may call is exactly what it sees listed. Expectations are computed
// from the lists server-everything gives directly, so a new tool in the
// server changes them without breaking the tests.

const sseAccept = "application/json, text/event-stream"

// groupPolicies is the scenario of the brief: everyone may use echo and
// get-sum, admins everything, nobody get-env, and every caller must have a
// subject.
func groupPolicies() []authzPolicy {
	return []authzPolicy{
		{"tools-for-all-and-admins", "HTTPRoute", "Allow", []string{
			`mcp.tool.name in ["echo", "get-sum"]`,
			`"mcp-admins" in jwt.groups`,
		}},
		{"never-get-env", "HTTPRoute", "Deny", []string{`mcp.tool.name == "get-env"`}},
		{"subject-required", "HTTPRoute", "Require", []string{`has(jwt.sub)`}},
	}
}

// Lists and calls for the three realm users under Allow (by name and by
// group), Deny and Require rules, through the Go SDK (SSE answers) and
// through raw HTTP (JSON and SSE answers).
func TestAuthzToolsByGroup(t *testing.T) {
	u := upstream(t)
	rec := startRPCRecorder(t, u.URL())
	g := authzGateway(t, "127.0.0.1", rec.port(), groupPolicies()...)
	mcpURL := g.URL() + "/mcp"

	// What the server lists to the Go SDK directly (the same client
	// capabilities, so the same conditional tools).
	ctx := testContext(t, 120*time.Second)
	all := sdkTools(t, ctx, connectSDK(t, ctx, u.URL(), "direct", nil, nil))
	requireMembers(t, "tools", all, "echo", "get-sum", "get-env", "get-tiny-image")

	wantTools := map[string][]string{
		harness.AgentUser: keep(all, "echo", "get-sum"),
		harness.AdminUser: drop(all, "get-env"), // Deny beats the admins' Allow
		harness.GuestUser: keep(all, "echo", "get-sum"),
	}
	tokens := map[string]string{}
	for user := range wantTools {
		tokens[user] = userToken(t, user)
	}

	t.Run("sdk lists", func(t *testing.T) {
		for _, user := range []string{harness.AgentUser, harness.AdminUser, harness.GuestUser} {
			t.Run(user, func(t *testing.T) {
				ctx := testContext(t, 60*time.Second)
				cs := connectSDK(t, ctx, mcpURL, tokens[user], nil, nil)
				if got, want := sdkTools(t, ctx, cs), wantTools[user]; !slices.Equal(got, want) {
					t.Errorf("tools/list for %s = %v\nwant %v (server lists %v)", user, got, want, all)
				}
			})
		}
	})

	t.Run("sdk calls", func(t *testing.T) {
		sessions := map[string]*mcp.ClientSession{}
		for user, tok := range tokens {
			sessions[user] = connectSDK(t, ctx, mcpURL, tok, nil, nil)
		}
		for _, tc := range []struct {
			user, tool string
			args       map[string]any
			allowed    bool
		}{
			{harness.AgentUser, "get-sum", map[string]any{"a": 2, "b": 3}, true},
			{harness.AgentUser, "echo", map[string]any{"message": "authorized"}, true},
			{harness.AgentUser, "get-tiny-image", nil, false},
			{harness.AgentUser, "get-env", nil, false},
			{harness.AgentUser, "no-such-tool", nil, false}, // indistinguishable from a hidden one
			{harness.GuestUser, "get-sum", map[string]any{"a": 2, "b": 3}, true},
			{harness.GuestUser, "get-tiny-image", nil, false},
			{harness.AdminUser, "get-tiny-image", nil, true},
			{harness.AdminUser, "get-sum", map[string]any{"a": 2, "b": 3}, true},
			{harness.AdminUser, "get-env", nil, false}, // Deny beats Allow
		} {
			t.Run(tc.user+"/"+tc.tool, func(t *testing.T) {
				params := &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{}}
				if tc.args != nil { // a nil map would go out as "arguments": null
					params.Arguments = tc.args
				}
				res, err := sessions[tc.user].CallTool(ctx, params)
				if !tc.allowed {
					requireUnknown(t, err, "Unknown tool: "+tc.tool)
					return
				}
				if err != nil {
					t.Fatalf("tools/call %s: %v", tc.tool, err)
				}
				if res.IsError {
					t.Fatalf("tools/call %s failed: %s", tc.tool, textOf(res))
				}
				if tc.tool == "get-sum" {
					if got, want := textOf(res), "The sum of 2 and 3 is 5."; got != want {
						t.Errorf("get-sum {a:2,b:3} = %q, want %q", got, want)
					}
				}
			})
		}
		// A refused call is answered by the gateway: it never reaches the
		// server. The allowed ones did.
		calls := rec.calls()
		for _, c := range calls {
			if c == "tools/call get-env" || c == "tools/call no-such-tool" {
				t.Errorf("the upstream received a refused call: %s (all calls: %v)", c, calls)
			}
		}
		if n := strings.Count(strings.Join(calls, "\n"), "tools/call get-tiny-image"); n != 1 {
			t.Errorf("upstream received get-tiny-image %d times, want once (the admin's call only); calls: %v", n, calls)
		}
		if !slices.Contains(calls, "tools/call get-sum") {
			t.Errorf("upstream never received the allowed get-sum; calls: %v", calls)
		}
	})

	// The gateway opens an upstream session without client capabilities for
	// a client that has none: compare with such a session.
	rawAll := directRawLists(t, u.URL(), "tools/list")["tools/list"]
	requireMembers(t, "tools (no client capabilities)", rawAll, "echo", "get-sum", "get-env")
	wantRaw := map[string][]string{
		harness.AgentUser: keep(rawAll, "echo", "get-sum"),
		harness.AdminUser: drop(rawAll, "get-env"),
		harness.GuestUser: keep(rawAll, "echo", "get-sum"),
	}

	t.Run("curl lists JSON", func(t *testing.T) {
		for user, want := range wantRaw {
			t.Run(user, func(t *testing.T) {
				r := rpcPost(t, mcpURL, tokens[user], "*/*", "", `{"jsonrpc":"2.0","id":11,"method":"tools/list"}`)
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type = %q, want application/json for Accept */*", ct)
				}
				m, _ := responseTo(t, r, "11")
				if m.Result == nil {
					t.Fatalf("got %s, want a result", r.Body)
				}
				if got := listIDs(t, "tools/list", m.Result); !slices.Equal(got, want) {
					t.Errorf("tools/list for %s = %v\nwant %v", user, got, want)
				}
			})
		}
	})

	t.Run("raw lists SSE", func(t *testing.T) {
		for user, want := range wantRaw {
			t.Run(user, func(t *testing.T) {
				r := rpcPost(t, mcpURL, tokens[user], sseAccept, "", `{"jsonrpc":"2.0","id":"list-1","method":"tools/list"}`)
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
					t.Fatalf("Content-Type = %q, want text/event-stream (server-everything answers SSE)", ct)
				}
				m, ev := responseTo(t, r, `"list-1"`)
				if ev.id == "" {
					t.Errorf("the rewritten event lost its id: field:\n%s", r.Body)
				}
				if m.Result == nil {
					t.Fatalf("got %s, want a result", r.Body)
				}
				if got := listIDs(t, "tools/list", m.Result); !slices.Equal(got, want) {
					t.Errorf("tools/list for %s = %v\nwant %v", user, got, want)
				}
			})
		}
	})

	t.Run("curl refused call", func(t *testing.T) {
		for _, tc := range []struct{ user, tool string }{
			{harness.AdminUser, "get-env"},
			{harness.AgentUser, "get-tiny-image"},
		} {
			for _, accept := range []string{"*/*", sseAccept} {
				r := rpcPost(t, mcpURL, tokens[tc.user], accept, "",
					`{"jsonrpc":"2.0","id":"c-7","method":"tools/call","params":{"name":"`+tc.tool+`","arguments":{}}}`)
				m, _ := responseTo(t, r, `"c-7"`)
				if m.Error == nil || m.Error.Code != -32602 || m.Error.Message != "Unknown tool: "+tc.tool {
					t.Errorf("%s calling %s (Accept %s): got %s\nwant HTTP 200 with error -32602 \"Unknown tool: %s\"", tc.user, tc.tool, accept, r, tc.tool)
				}
			}
		}
	})
}

// A Require rule on a claim no user has refuses every call and hides every
// item of every list, for admins too.
func TestAuthzRequireUnmetRefusesEverything(t *testing.T) {
	u := upstream(t)
	g := authzGateway(t, u.Host(), u.Port(),
		authzPolicy{"admins-welcome", "HTTPRoute", "Allow", []string{`"mcp-admins" in jwt.groups`}},
		authzPolicy{"impossible", "HTTPRoute", "Require", []string{`has(jwt.nonexistent)`}},
	)
	mcpURL := g.URL() + "/mcp"
	ctx := testContext(t, 60*time.Second)

	// Control: the server has something to hide.
	direct := connectSDK(t, ctx, u.URL(), "direct", nil, nil)
	if len(sdkTools(t, ctx, direct)) == 0 || len(sdkPrompts(t, ctx, direct)) == 0 ||
		len(sdkResources(t, ctx, direct)) == 0 || len(sdkTemplates(t, ctx, direct)) == 0 {
		t.Fatal("server-everything lists no tools, prompts, resources or templates; nothing to hide")
	}

	for _, user := range []string{harness.AdminUser, harness.AgentUser} {
		t.Run(user, func(t *testing.T) {
			tok := userToken(t, user)
			cs := connectSDK(t, ctx, mcpURL, tok, nil, nil)
			for what, got := range map[string][]string{
				"tools/list":               sdkTools(t, ctx, cs),
				"prompts/list":             sdkPrompts(t, ctx, cs),
				"resources/list":           sdkResources(t, ctx, cs),
				"resources/templates/list": sdkTemplates(t, ctx, cs),
			} {
				if len(got) != 0 {
					t.Errorf("%s = %v, want empty", what, got)
				}
			}
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}})
			requireUnknown(t, err, "Unknown tool: echo")
			_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "simple-prompt"})
			requireUnknown(t, err, "Unknown prompt: simple-prompt")
			const uri = "demo://resource/static/document/features.md"
			_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
			requireUnknown(t, err, "Unknown resource: "+uri)

			if got := rawList(t, mcpURL, tok, "*/*", "tools/list"); len(got) != 0 {
				t.Errorf("tools/list (JSON) = %v, want empty", got)
			}
		})
	}
}

// A rule on the arguments decides each call by its arguments.
func TestAuthzArgumentRule(t *testing.T) {
	u := upstream(t)
	g := authzGateway(t, u.Host(), u.Port(),
		authzPolicy{"small-sums", "HTTPRoute", "Allow", []string{`mcp.tool.name == "get-sum" && mcp.tool.arguments.a < 100`}},
	)
	ctx := testContext(t, 60*time.Second)
	cs := connectSDK(t, ctx, g.URL()+"/mcp", userToken(t, harness.AgentUser), nil, nil)

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 3}})
	if err != nil {
		t.Fatalf("get-sum {a:2,b:3}: %v", err)
	}
	if got, want := textOf(res), "The sum of 2 and 3 is 5."; got != want {
		t.Errorf("get-sum {a:2,b:3} = %q, want %q", got, want)
	}
	for name, args := range map[string]map[string]any{
		"a too large": {"a": 500, "b": 3},
		"a missing":   {"b": 3},
		"a a string":  {"a": "2", "b": 3}, // a CEL type error: no match
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: args})
			requireUnknown(t, err, "Unknown tool: get-sum")
		})
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "x"}})
	requireUnknown(t, err, "Unknown tool: echo")

	// Lists have no arguments: the rule is approximated so that get-sum,
	// which some calls may use, stays listed, and nothing else is.
	if got := sdkTools(t, ctx, cs); len(got) != 1 || got[0] != "get-sum" {
		t.Errorf("tools/list = %v, want [get-sum]", got)
	}
}

// Rules on mcp.prompt.name and mcp.resource.uri filter prompts/list and
// resources/list and decide prompts/get and resources/read.
func TestAuthzPromptsAndResources(t *testing.T) {
	u := upstream(t)
	const (
		features     = "demo://resource/static/document/features.md"
		architecture = "demo://resource/static/document/architecture.md"
		textTemplate = "demo://resource/dynamic/text/{resourceId}"
	)
	g := authzGateway(t, u.Host(), u.Port(),
		authzPolicy{"some-prompts-and-resources", "HTTPRoute", "Allow", []string{
			`mcp.prompt.name == "simple-prompt"`,
			`mcp.resource.uri == "` + features + `"`,
			`mcp.resource.uriTemplate.startsWith("demo://resource/dynamic/text/")`,
		}},
	)
	mcpURL := g.URL() + "/mcp"
	ctx := testContext(t, 60*time.Second)

	direct := connectSDK(t, ctx, u.URL(), "direct", nil, nil)
	prompts, resources, templates := sdkPrompts(t, ctx, direct), sdkResources(t, ctx, direct), sdkTemplates(t, ctx, direct)
	requireMembers(t, "prompts", prompts, "simple-prompt", "args-prompt")
	requireMembers(t, "resources", resources, features, architecture)
	requireMembers(t, "resource templates", templates, textTemplate)

	tok := userToken(t, harness.AgentUser)
	cs := connectSDK(t, ctx, mcpURL, tok, nil, nil)
	for what, c := range map[string]struct{ got, want []string }{
		"prompts/list":             {sdkPrompts(t, ctx, cs), keep(prompts, "simple-prompt")},
		"resources/list":           {sdkResources(t, ctx, cs), keep(resources, features)},
		"resources/templates/list": {sdkTemplates(t, ctx, cs), keep(templates, textTemplate)},
		"tools/list":               {sdkTools(t, ctx, cs), []string{}}, // Allow rules exist, none names a tool
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v", what, c.got, c.want)
		}
	}

	if res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "simple-prompt"}); err != nil {
		t.Errorf("prompts/get simple-prompt: %v", err)
	} else if len(res.Messages) == 0 {
		t.Errorf("prompts/get simple-prompt: no messages")
	}
	_, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "args-prompt", Arguments: map[string]string{"city": "Paris"}})
	requireUnknown(t, err, "Unknown prompt: args-prompt")

	if res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: features}); err != nil {
		t.Errorf("resources/read %s: %v", features, err)
	} else if len(res.Contents) == 0 || res.Contents[0].URI != features {
		t.Errorf("resources/read %s: contents %+v", features, res.Contents)
	}
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: architecture})
	requireUnknown(t, err, "Unknown resource: "+architecture)

	// The same lists as JSON for a curl-like client.
	raw := directRawLists(t, u.URL(), "prompts/list", "resources/list")
	if got, want := rawList(t, mcpURL, tok, "*/*", "prompts/list"), keep(raw["prompts/list"], "simple-prompt"); !slices.Equal(got, want) {
		t.Errorf("prompts/list (JSON) = %v, want %v", got, want)
	}
	if got, want := rawList(t, mcpURL, tok, "*/*", "resources/list"), keep(raw["resources/list"], features); !slices.Equal(got, want) {
		t.Errorf("resources/list (JSON) = %v, want %v", got, want)
	}
}

// Policies attached at the Gateway, the backend and the route all apply:
// their rules merge into one set.
func TestAuthzPoliciesMergeAcrossLevels(t *testing.T) {
	u := upstream(t)
	g := authzGateway(t, u.Host(), u.Port(),
		authzPolicy{"gateway-deny-sum", "Gateway", "Deny", []string{`mcp.tool.name == "get-sum"`}},
		authzPolicy{"backend-deny-env", "AgentgatewayBackend", "Deny", []string{`mcp.tool.name == "get-env"`}},
		authzPolicy{"route-allow", "HTTPRoute", "Allow", []string{`mcp.tool.name in ["echo", "get-sum", "get-env"]`}},
	)
	ctx := testContext(t, 60*time.Second)
	all := sdkTools(t, ctx, connectSDK(t, ctx, u.URL(), "direct", nil, nil))
	requireMembers(t, "tools", all, "echo", "get-sum", "get-env")

	for _, user := range []string{harness.AgentUser, harness.AdminUser} {
		t.Run(user, func(t *testing.T) {
			cs := connectSDK(t, ctx, g.URL()+"/mcp", userToken(t, user), nil, nil)
			if got, want := sdkTools(t, ctx, cs), keep(all, "echo"); !slices.Equal(got, want) {
				t.Errorf("tools/list = %v, want %v (route Allow minus Gateway and backend Deny)", got, want)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "merged"}})
			if err != nil || res.IsError || !strings.Contains(textOf(res), "merged") {
				t.Errorf("echo: %v %v", err, res)
			}
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 3}})
			requireUnknown(t, err, "Unknown tool: get-sum")
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env"})
			requireUnknown(t, err, "Unknown tool: get-env")
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-tiny-image"})
			requireUnknown(t, err, "Unknown tool: get-tiny-image")
		})
	}
}

// A client that resumes a stream (GET with Last-Event-ID, as the Streamable
// HTTP transport allows after a broken connection) must not get back, from
// the server's event store, a list answer the gateway filtered the first
// time.
func TestAuthzResumedStreamIsFiltered(t *testing.T) {
	u := upstream(t)
	g := authzGateway(t, u.Host(), u.Port(), groupPolicies()...)
	mcpURL := g.URL() + "/mcp"
	tok := userToken(t, harness.AgentUser)

	r := rpcPost(t, mcpURL, tok, sseAccept, "", `{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpgate-e2e","version":"1"}}}`)
	_, initEvent := responseTo(t, r, `"init"`)
	sid := r.Header.Get("Mcp-Session-Id")
	if initEvent == nil || initEvent.id == "" || sid == "" {
		t.Skipf("server-everything answered initialize without an event id or session (%s); nothing to resume", r)
	}
	if n := rpcPost(t, mcpURL, tok, sseAccept, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); n.Status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %s", n)
	}
	r = rpcPost(t, mcpURL, tok, sseAccept, sid, `{"jsonrpc":"2.0","id":"list-1","method":"tools/list"}`)
	m, _ := responseTo(t, r, `"list-1"`)
	if got := listIDs(t, "tools/list", m.Result); slices.Contains(got, "get-env") || slices.Contains(got, "get-tiny-image") {
		t.Fatalf("tools/list = %v, already unfiltered", got)
	}

	// Resume after the initialize response: the server replays what it sent
	// since, the tools/list answer included.
	replayed := resumeStream(t, mcpURL, tok, sid, initEvent.id, `"list-1"`, 3*time.Second)
	if replayed == nil {
		t.Logf("no replay of the tools/list answer within 3s")
		return
	}
	if replayed.Result != nil {
		if got := listIDs(t, "tools/list", replayed.Result); slices.Contains(got, "get-env") || slices.Contains(got, "get-tiny-image") {
			t.Errorf("GET with Last-Event-ID %s replayed the tools/list answer unfiltered: %v\nwant only echo and get-sum (or no replay)", initEvent.id, got)
		}
	}
}
