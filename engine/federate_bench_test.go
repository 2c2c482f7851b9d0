package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// benchTools is a go-sdk Streamable HTTP server (stateful sessions, JSON
// answers) with n tools tool-000 … tool-<n-1>, each with a description and
// an input schema, answering "Echo: <message>".
func benchTools(tb testing.TB, n int) *httptest.Server {
	tb.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	type in struct {
		Message string `json:"message" jsonschema:"the text to return"`
	}
	for i := range n {
		mcp.AddTool(s, &mcp.Tool{Name: fmt.Sprintf("tool-%03d", i), Description: fmt.Sprintf("Tool number %d: echoes the message back.", i)},
			func(_ context.Context, _ *mcp.CallToolRequest, in in) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Echo: " + in.Message}}}, nil, nil
			})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: true, SessionTimeout: 5 * time.Minute})
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv
}

// fedBenchYAML is a Gateway and one HTTPRoute on /mcp to a backend with the
// given targets (name → port), with what the load harness's gateway carries:
// Strict JWT authentication, CEL authorization (an Allow rule on the tool
// name and the group, a Deny rule hiding tool-099) and a local rate limit
// that never refuses.
func fedBenchYAML(jwksURL string, targets [][2]string) string {
	var ts strings.Builder
	for _, t := range targets {
		fmt.Fprintf(&ts, "    - {name: %s, static: {host: 127.0.0.1, port: %s, path: /mcp, protocol: StreamableHTTP}}\n", t[0], t[1])
	}
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
    targets:
%s---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mcp, namespace: team}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mcp}}]
    backendRefs: [{name: fed, group: agentgateway.dev, kind: AgentgatewayBackend}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: auth, namespace: team}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp}]
  backend:
    mcp:
      authentication:
        issuer: %s
        audiences: [%s]
        jwks: {url: %s}
        mode: Strict
        provider: Keycloak
        resourceMetadata:
          resource: http://mcp.test/mcp
          scopesSupported: [openid]
          bearerMethodsSupported: [header]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: tools, namespace: team}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp}]
  backend:
    mcp:
      authorization:
        action: Allow
        policy:
          matchExpressions:
          - 'mcp.tool.name.startsWith("tool-") && "mcp-users" in jwt.groups'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: hide, namespace: team}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp}]
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions:
          - 'mcp.tool.name == "tool-099"'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: limit, namespace: team}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp}]
  traffic:
    rateLimit:
      local:
      - {requests: 100000000, unit: Seconds}
`, testPort, ts.String(), testIssuer, testAudience, jwksURL)
}

// benchSession is a minimal Streamable HTTP MCP client: one session,
// JSON-RPC over POST, the answer read whole (JSON or one SSE event).
type benchSession struct {
	tb     testing.TB
	client *http.Client
	url    string
	token  string
	id     string
}

func openBenchSession(tb testing.TB, endpoint, token string) *benchSession {
	tb.Helper()
	s := &benchSession{tb: tb, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, url: endpoint, token: token}
	resp, _ := s.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	s.id = resp.Header.Get("Mcp-Session-Id")
	if s.id == "" {
		tb.Fatalf("%s: initialize gave no session id", endpoint)
	}
	if resp, body := s.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("%s: notifications/initialized: %d %s", endpoint, resp.StatusCode, body)
	}
	tb.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, s.url, nil)
		s.headers(req)
		if resp, err := s.client.Do(req); err == nil {
			resp.Body.Close()
		}
		s.client.CloseIdleConnections()
	})
	return s
}

func (s *benchSession) headers(req *http.Request) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
}

func (s *benchSession) post(body string) (*http.Response, []byte) {
	req, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
	s.headers(req)
	resp, err := s.client.Do(req)
	if err != nil {
		s.tb.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s.tb.Fatal(err)
	}
	return resp, out
}

// result sends a request and returns its JSON-RPC result; anything else
// fails the benchmark.
func (s *benchSession) result(body string) json.RawMessage {
	resp, out := s.post(body)
	if resp.StatusCode != http.StatusOK {
		s.tb.Fatalf("status %d: %.300s", resp.StatusCode, out)
	}
	if i := bytes.Index(out, []byte("data: ")); i >= 0 && !bytes.HasPrefix(bytes.TrimSpace(out), []byte("{")) {
		out = out[i+len("data: "):]
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &env); err != nil || len(env.Result) == 0 {
		s.tb.Fatalf("no result: %.300s", out)
	}
	return env.Result
}

// fedBench is every way the benchmarks reach the tools, in one process:
// a go-sdk server with 300 tools directly and through a bare
// httputil.ReverseProxy; the gateway with one target (that server); the
// gateway with three targets a, b, c of 100 tools each.
type fedBench struct {
	direct, bare, gateway1, gateway3 string
	gateway1NoCache, gateway3NoCache string   // the same, with --no-decision-cache
	three                            []string // the three 100-tool servers, directly
	token                            string
}

func newFedBench(b *testing.B) *fedBench {
	b.Helper()
	big := benchTools(b, 300)
	port := func(s *httptest.Server) string { u, _ := url.Parse(s.URL); return u.Port() }
	jwks := newJWKS(b)
	gateway := func(targets [][2]string, opts Options) string {
		gw := New(opts)
		if err := gw.Activate(context.Background(), buildBundle(b, fedBenchYAML(jwks.URL, targets), nil)); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(gw.Handler(testPort))
		b.Cleanup(srv.Close)
		return srv.URL + "/mcp"
	}
	target, _ := url.Parse(big.URL)
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	b.Cleanup(bare.Close)
	var three [][2]string
	var threeURLs []string
	for _, name := range []string{"a", "b", "c"} {
		srv := benchTools(b, 100)
		three = append(three, [2]string{name, port(srv)})
		threeURLs = append(threeURLs, srv.URL+"/mcp")
	}
	return &fedBench{
		direct: big.URL + "/mcp", bare: bare.URL + "/mcp", three: threeURLs,
		gateway1: gateway([][2]string{{"big", port(big)}}, Options{}),
		gateway3: gateway(three, Options{}),

		gateway1NoCache: gateway([][2]string{{"big", port(big)}}, Options{NoDecisionCache: true}),
		gateway3NoCache: gateway(three, Options{NoDecisionCache: true}),
		token:           token(),
	}
}

// fedCase is one sub-benchmark: the endpoints one operation goes to (a
// list goes to each in turn; a call to the first) and the tool a
// tools/call names there.
type fedCase struct {
	name  string
	urls  []string
	token string
	tool  string
}

// cases are the sub-benchmarks in the order they run. direct-3x100 lists
// the three 100-tool servers one after the other (what a client without
// the gateway would do) and calls tool-001 on b. The gateway's decision
// cache takes keys up to 8 KiB: one target's list of 100 tools fits (every
// list decision but the first is a hit), a list of 300 does not (evaluated
// every time), so the no-decision-cache cases compare the two backends
// with every decision evaluated.
func (f *fedBench) cases() []fedCase {
	return []fedCase{
		{"direct-1x300", []string{f.direct}, "", "tool-001"},
		{"direct-3x100", []string{f.three[1], f.three[0], f.three[2]}, "", "tool-001"},
		{"bare-proxy-1x300", []string{f.bare}, "", "tool-001"},
		{"gateway-1x300", []string{f.gateway1}, f.token, "tool-001"},
		{"gateway-3x100", []string{f.gateway3}, f.token, "b_tool-001"},
		{"gateway-1x300-no-decision-cache", []string{f.gateway1NoCache}, f.token, "tool-001"},
		{"gateway-3x100-no-decision-cache", []string{f.gateway3NoCache}, f.token, "b_tool-001"},
	}
}

// BenchmarkFederatedList3x100 is tools/list over one session: a go-sdk
// server with 300 tools directly, through a bare reverse proxy, through the
// gateway with that server as its one target, and through the gateway with
// a backend of three targets of 100 tools each (fan-out, every page read,
// each target's list filtered by the policy, names prefixed, merged). The
// gateway runs JWT, CEL authorization (the Deny rule hides tool-099, so it
// lists 299 tools with one target and 297 with three) and a rate limit.
// cpu-ns/op is the whole process's CPU (client, gateway, servers, GC) per
// list; "tools" is the number listed. docs/performance.md reports the
// ratios to direct.
func BenchmarkFederatedList3x100(b *testing.B) {
	f := newFedBench(b)
	for _, c := range f.cases() {
		b.Run(c.name, func(b *testing.B) {
			var ss []*benchSession
			for _, u := range c.urls {
				ss = append(ss, openBenchSession(b, u, c.token))
			}
			list := func(id int) int {
				n := 0
				for _, s := range ss {
					var res struct {
						Tools []struct {
							Name string `json:"name"`
						} `json:"tools"`
						NextCursor string `json:"nextCursor"`
					}
					if err := json.Unmarshal(s.result(`{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"tools/list","params":{}}`), &res); err != nil {
						b.Fatal(err)
					}
					if res.NextCursor != "" {
						b.Fatalf("%s: tools/list paged", c.name)
					}
					n += len(res.Tools)
				}
				return n
			}
			n := list(0) // connections, sessions, verified-token cache
			if n < 297 {
				b.Fatalf("%s: listed %d tools, want at least 297", c.name, n)
			}
			b.ReportAllocs()
			start := processCPU()
			id := 1
			for b.Loop() {
				list(id)
				id++
			}
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(n), "tools")
		})
	}
}

// BenchmarkFederatedCall is tools/call over one session, the same four
// ways as BenchmarkFederatedList3x100: on the three-target backend the
// client calls b_tool-001, which the gateway routes to target b as
// tool-001.
func BenchmarkFederatedCall(b *testing.B) {
	f := newFedBench(b)
	for _, c := range f.cases() {
		b.Run(c.name, func(b *testing.B) {
			s := openBenchSession(b, c.urls[0], c.token)
			call := func(id int) {
				out := s.result(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + c.tool + `","arguments":{"message":"hello"}}}`)
				if !bytes.Contains(out, []byte(`Echo: hello`)) || bytes.Contains(out, []byte(`"isError":true`)) {
					b.Fatalf("%s: %.300s", c.name, out)
				}
			}
			call(0)
			b.ReportAllocs()
			start := processCPU()
			id := 1
			for b.Loop() {
				call(id)
				id++
			}
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
