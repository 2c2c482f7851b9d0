package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The caller's token authenticates the caller to the gateway only: it never
// reaches the upstream MCP server, in any header.
func TestTokenNeverReachesUpstream(t *testing.T) {
	d, u := dex(t), upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	g := gatewayFor(t, harness.Config{UpstreamHost: rec.Host(), UpstreamPort: rec.Port(), Auth: harness.ForDex(d, "Strict")})
	tok := agentToken(t, d)

	requireToolList(t, walkthroughCurl(t, g.URL()+"/mcp", tok))

	ctx := testContext(t, 60*time.Second)
	cs := connectSDK(t, ctx, g.URL()+"/mcp", tok, nil, &mcp.ClientSessionOptions{ProtocolVersion: "2025-06-18"})
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 1, "b": 1}}); err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	cs.Close()

	reqs := rec.Requests()
	if len(reqs) < 2 {
		t.Fatalf("upstream saw %d requests, want at least 2 (the curl and the SDK session)", len(reqs))
	}
	_, payload, parts := jwtParts(t, tok)
	for i, r := range reqs {
		if v := r.Header.Values("Authorization"); len(v) > 0 {
			t.Errorf("upstream request %d (%s %s) carries Authorization %q", i, r.Method, r.Path, v)
		}
		for name, values := range r.Header {
			for _, v := range values {
				// The token, or its signature, in any header (X-Forwarded-*,
				// a custom one) is a leak too.
				if strings.Contains(v, parts[2]) {
					t.Errorf("upstream request %d header %s carries the caller's token", i, name)
				}
			}
		}
		if r.Path != "/mcp" {
			t.Errorf("upstream request %d path %q, want /mcp", i, r.Path)
		}
	}
	if t.Failed() {
		t.Logf("token sub=%v; upstream requests: %+v", payload["sub"], summarize(reqs))
	}
}

func summarize(reqs []harness.RecordedRequest) []string {
	var out []string
	for _, r := range reqs {
		h := r.Header.Clone()
		if a := h.Get("Authorization"); a != "" {
			h.Set("Authorization", a[:min(len(a), 16)]+"…")
		}
		out = append(out, r.Method+" "+r.Path+" "+headerLine(h))
	}
	return out
}

func headerLine(h http.Header) string {
	var b strings.Builder
	for k, v := range h {
		b.WriteString(k + "=" + strings.Join(v, ",") + " ")
	}
	return b.String()
}

// For a caller without a session (the walkthrough's curl) the gateway opens
// an upstream session itself; it must close it again (DELETE), or every such
// call would leave a session behind on the MCP server.
func TestSessionlessCallClosesUpstreamSession(t *testing.T) {
	d, u := dex(t), upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	g := gatewayFor(t, harness.Config{UpstreamHost: rec.Host(), UpstreamPort: rec.Port(), Auth: harness.ForDex(d, "Strict")})
	requireToolList(t, walkthroughCurl(t, g.URL()+"/mcp", agentToken(t, d)))

	opened := map[string]bool{}
	closed := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		clear(opened)
		clear(closed)
		for _, r := range rec.Requests() {
			if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
				opened[sid] = true
				if r.Method == http.MethodDelete {
					closed[sid] = true
				}
			}
		}
		if len(opened) > 0 && len(closed) == len(opened) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream sessions used %v, closed with DELETE %v; requests: %v", keys(opened), keys(closed), summarize(rec.Requests()))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
