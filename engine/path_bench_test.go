package engine

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fastUpstream answers every POST with a small tools/call result carrying
// the request's id, so the benchmark measures what sits in front of it.
func fastUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := "1"
		if i := bytes.Index(body, []byte(`"id":`)); i >= 0 {
			rest := body[i+5:]
			if j := bytes.IndexAny(rest, ",}"); j > 0 {
				id = string(rest[:j])
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":`+id+`,"result":{"content":[{"type":"text","text":"Echo: hello"}]}}`)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// pathPolicies adds, to the test configuration, what a production route
// carries: CEL authorization (an Allow by tool and group, a Deny) and a
// local rate limit high enough never to refuse.
const pathPolicies = `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: tools
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  backend:
    mcp:
      authorization:
        action: Allow
        policy:
          matchExpressions:
          - 'mcp.tool.name == "echo" && "mcp-users" in jwt.groups'
          - 'mcp.tool.name == "get-sum"'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: no-env
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions:
          - 'mcp.tool.name == "get-env"'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: limit
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  traffic:
    rateLimit:
      local:
      - requests: 100000000
        unit: Seconds
`

// BenchmarkRequestPath is one tools/call over loopback HTTP, three ways in
// the same run: straight to the upstream, through a bare
// httputil.ReverseProxy (no policy), and through the gateway with JWT
// authentication (verified-token cache warm), CEL authorization and a rate
// limit (with and without the decision cache: the calls repeat, so with
// it every decision but the first is a cache hit). cpu-ns/op is the whole process's CPU (client, proxy, upstream,
// GC) per call; the differences between the three are what the proxy and
// the gateway add. docs/performance.md reports the ratios.
func BenchmarkRequestPath(b *testing.B) {
	upstream := fastUpstream(b)
	port := upstream.URL[strings.LastIndex(upstream.URL, ":")+1:]
	jwks := newJWKS(b)
	bndl := buildBundle(b, configYAML(port, jwks.URL+"/keys")+pathPolicies, nil)
	gateway := func(opts Options) string {
		gw := New(opts)
		if err := gw.Activate(context.Background(), bndl); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(gw.Handler(testPort))
		b.Cleanup(srv.Close)
		return srv.URL
	}
	gwURL, gwUncachedURL := gateway(Options{}), gateway(Options{NoDecisionCache: true})
	target, _ := url.Parse(upstream.URL)
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	b.Cleanup(bare.Close)
	tok := token()

	for _, c := range []struct {
		name, url string
		auth      bool
	}{
		{"direct", upstream.URL + "/mcp", false},
		{"bare-proxy", bare.URL + "/mcp", false},
		{"gateway", gwURL + "/mcp", true},
		{"gateway-no-decision-cache", gwUncachedURL + "/mcp", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			call := func(id int) {
				body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}`
				req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Session-Id", "bench-session")
				req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
				if c.auth {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"result"`)) {
					b.Fatalf("status %d: %s", resp.StatusCode, out)
				}
			}
			call(0) // connections, verified-token cache
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

func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
