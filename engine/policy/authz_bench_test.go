package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// oneRouteYAML is a Gateway, a backend and one HTTPRoute rule
// (route key default/r/0), for policies to attach to.
const oneRouteYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: agentgateway
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: be}
spec:
  mcp:
    targets: [{name: t, static: {host: 127.0.0.1, port: 3001}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{group: agentgateway.dev, kind: AgentgatewayBackend, name: be}]}]
---
`

// authzConfig is one route with an Allow policy of n rules, one per tool
// name, plus a Deny rule and a Require rule on claims.
func authzConfig(tb testing.TB, n int) *Evaluator {
	tb.Helper()
	var exprs strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&exprs, "          - 'mcp.tool.name == \"tool_%d\" && \"mcp-users\" in jwt.groups'\n", i)
	}
	yaml := oneRouteYAML + `apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: allow}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  backend:
    mcp:
      authorization:
        policy:
          matchExpressions:
` + exprs.String() + `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: deny}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  backend:
    mcp:
      authorization:
        action: Deny
        policy: {matchExpressions: ['mcp.tool.name == "get-env"']}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: require}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  backend:
    mcp:
      authorization:
        action: Require
        policy: {matchExpressions: ['has(jwt.sub)']}
`
	res := &translate.Resources{Sources: map[string]string{}}
	require.Empty(tb, load.Decode("bench.yaml", []byte(yaml), res))
	out, err := translate.Translate(res)
	require.NoError(tb, err)
	b, err := translate.Bundle(out, nil)
	require.NoError(tb, err)
	ev, err := New(context.Background(), b)
	require.NoError(tb, err)
	return ev
}

func callInput(tool string) ast.Value {
	return ast.MustParseTerm(fmt.Sprintf(`{
		"version": "v1", "phase": "request",
		"request": {"method": "POST", "path": "/mcp", "host": "localhost:8080", "scheme": "http", "headers": {"content-type": "application/json"}},
		"source": {"address": "127.0.0.1", "port": "50000"},
		"route": {"key": "default/r/0", "gateway": "default/gw", "route": "default/r", "rule": 0, "backend": "default/be", "target": "t"},
		"mcp": {"method": "tools/call", "kind": "request", "id": 1, "session": true, "protocol_version": "2025-06-18",
		        "params": {"name": %q, "arguments": {"a": 1}}, "tool": {"name": %q, "target": "t", "arguments": {"a": 1}}},
		"jwt": {"present": true, "valid": true, "error": "", "claims": {"sub": "alice", "groups": ["mcp-users"], "aud": "mcp-agent", "exp": 1900000000}}
	}`, tool, tool)).Value
}

// BenchmarkDecideRules is the decision for a tools/call with 10, 100 and
// 1,000 attached rules; the matching rule is the last one.
func BenchmarkDecideRules(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			ev := authzConfig(b, n)
			ev.cache = nil // the cost of evaluating; BenchmarkDecideCached is a repeat
			in := callInput(fmt.Sprintf("tool_%d", n-1))
			ctx := context.Background()
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				d, err := ev.Decide(ctx, in)
				if err != nil || !d.Allow {
					b.Fatalf("got %+v, %v; want allow", d, err)
				}
			}
		})
	}
}

// BenchmarkFilterList is one list decision over a 500-tool list with 10
// rules: the cost a tools/list pays, once per response.
func BenchmarkFilterList(b *testing.B) {
	for _, n := range []int{100, 300, 500} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) { benchFilterList(b, n) })
	}
}

func benchFilterList(b *testing.B, n int) {
	ev := authzConfig(b, 10)
	ev.cache = nil
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"name": "tool_%d", "target": "t"}`, i)
	}
	in := ast.MustParseTerm(`{
		"version": "v1", "phase": "list",
		"request": {"method": "POST", "path": "/mcp", "host": "localhost:8080", "scheme": "http", "headers": {}},
		"route": {"key": "default/r/0"},
		"mcp": {"method": "tools/list", "list": {"tools": [` + strings.Join(items, ",") + `]}},
		"jwt": {"present": true, "valid": true, "error": "", "claims": {"sub": "alice", "groups": ["mcp-users"]}}
	}`).Value
	ctx := context.Background()
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		d, err := ev.Decide(ctx, in)
		if err != nil || len(d.Visible["tools"]) != 10 {
			b.Fatalf("got %d visible, %v; want 10", len(d.Visible["tools"]), err)
		}
	}
}
