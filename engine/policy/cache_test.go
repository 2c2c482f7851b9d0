package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// evaluators compiles YAML (and user modules) twice: with the decision
// cache and without.
func evaluators(t *testing.T, yaml string, modules ...translate.Module) (cached, plain *Evaluator) {
	t.Helper()
	res := &translate.Resources{Sources: map[string]string{}, Modules: modules}
	require.Empty(t, load.Decode("cache.yaml", []byte(yaml), res))
	out, err := translate.Translate(res)
	require.NoError(t, err)
	b, err := translate.Bundle(out, nil)
	require.NoError(t, err)
	cached, err = New(context.Background(), b)
	require.NoError(t, err)
	plain, err = New(context.Background(), b, WithoutCache())
	require.NoError(t, err)
	return cached, plain
}

const cacheYAML = oneRouteYAML + `apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: authz}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  backend:
    mcp:
      authorization:
        policy:
          matchExpressions:
          - 'mcp.tool.name == "echo" && "mcp-users" in jwt.groups'
          - 'mcp.tool.name == "get-sum" && mcp.tool.arguments.a < 100'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: limit}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  traffic:
    rateLimit:
      local: [{requests: 100, unit: Minutes}]
`

func cacheInput(id int, tool, groups, args string) ast.Value {
	return ast.MustParseTerm(fmt.Sprintf(`{
		"version": "v1", "phase": "request",
		"request": {"method": "POST", "path": "/mcp", "host": "localhost:8080", "scheme": "http", "headers": {"content-length": "%d"}},
		"source": {"address": "127.0.0.1", "port": "%d"},
		"route": {"key": "default/r/0"},
		"mcp": {"method": "tools/call", "kind": "request", "id": %d, "params": {}, "tool": {"name": %q, "target": "t", "arguments": %s}},
		"jwt": {"present": true, "valid": true, "error": "", "claims": {"sub": "alice", "groups": %s}}
	}`, 100+id, 40000+id, id, tool, args, groups)).Value
}

// The cache never changes an answer: the same inputs get the same
// decisions with and without it, in any order, including inputs that
// differ only in what the policy reads (tool, groups, arguments).
func TestDecisionCacheChangesNoAnswer(t *testing.T) {
	cached, plain := evaluators(t, cacheYAML)
	require.True(t, cached.Cached())
	require.False(t, plain.Cached())
	inputs := []ast.Value{
		cacheInput(1, "echo", `["mcp-users"]`, `{}`),
		cacheInput(2, "echo", `["guests"]`, `{}`),
		cacheInput(3, "get-sum", `[]`, `{"a": 5}`),
		cacheInput(4, "get-sum", `[]`, `{"a": 500}`),
		cacheInput(5, "get-env", `["mcp-users"]`, `{}`),
		cacheInput(6, "echo", `["mcp-users"]`, `{"x": 1}`),
	}
	for round := range 3 {
		for i, in := range inputs {
			want, err := plain.Decide(context.Background(), in)
			require.NoError(t, err)
			got, err := cached.Decide(context.Background(), in)
			require.NoError(t, err)
			assert.Equal(t, want, got, "round %d input %d", round, i)
		}
	}
	// One entry per distinct readable input: inputs 0 and 5 differ only in
	// an argument no rule reads (rules read mcp.tool.arguments.a only).
	assert.Len(t, cached.cache.cur, len(inputs)-1)
	// What the policy does not read (id, headers, client port) does not
	// split the cache either.
	_, err := cached.Decide(context.Background(), cacheInput(99, "echo", `["mcp-users"]`, `{}`))
	require.NoError(t, err)
	assert.Len(t, cached.cache.cur, len(inputs)-1)
}

func TestDecisionCachePaths(t *testing.T) {
	cached, _ := evaluators(t, cacheYAML)
	var paths []string
	for _, p := range cached.cache.paths {
		paths = append(paths, p.String())
	}
	assert.Contains(t, paths, "input.mcp.tool.name")
	assert.Contains(t, paths, "input.jwt.claims.groups")
	assert.NotContains(t, paths, "input.mcp.id")
	assert.NotContains(t, paths, "input.source")
	for _, p := range paths {
		assert.NotEqual(t, "input.request.headers", p)
	}
}

func TestDecisionCacheDisabled(t *testing.T) {
	for name, mod := range map[string]string{
		"time":        "package mcpgate.user.clock\n\ndeny contains \"late\" if time.now_ns() > 0\n",
		"whole input": "package mcpgate.user.everything\n\ndeny contains \"x\" if count(input) > 100\n",
		"dynamic key": "package mcpgate.user.dyn\n\ndeny contains k if some k, _ in input\n",
	} {
		t.Run(name, func(t *testing.T) {
			cached, _ := evaluators(t, cacheYAML, translate.Module{Source: name + ".rego", Text: mod})
			assert.False(t, cached.Cached())
		})
	}
}

func TestDecisionCacheSkipsLongKeys(t *testing.T) {
	cached, plain := evaluators(t, cacheYAML)
	big := fmt.Sprintf(`{"a": %q}`, strings.Repeat("x", maxKeyBytes)) // a value the rules read
	in := cacheInput(1, "get-sum", `[]`, big)
	want, err := plain.Decide(context.Background(), in)
	require.NoError(t, err)
	got, err := cached.Decide(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Empty(t, cached.cache.cur)
}

func TestReadsHeaders(t *testing.T) {
	cached, plain := evaluators(t, cacheYAML)
	assert.False(t, cached.ReadsHeaders(), "no rule reads a header")
	assert.True(t, plain.ReadsHeaders(), "without the scan, assume it does")
	withHeader, _ := evaluators(t, cacheYAML, translate.Module{Source: "h.rego", Text: "package mcpgate.user.h\n\ndeny contains \"no agent\" if not input.request.headers[\"user-agent\"]\n"})
	assert.True(t, withHeader.ReadsHeaders())
}

// However many distinct inputs callers send, the cache keeps at most two
// generations of keys.
func TestDecisionCacheIsBounded(t *testing.T) {
	c := &decisionCache{cur: map[string]*Decision{}}
	d := &Decision{Allow: true}
	key := strings.Repeat("k", 4<<10)
	for i := range 3 * maxGenBytes / len(key) {
		c.put(fmt.Sprintf("%s%d", key, i), d)
	}
	total := 0
	for k := range c.cur {
		total += len(k)
	}
	for k := range c.old {
		total += len(k)
	}
	assert.LessOrEqual(t, total, 2*maxGenBytes+2*len(key))
	assert.LessOrEqual(t, len(c.cur)+len(c.old), 2*maxEntries)
}
