package engine

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// MCPRateLimitPolicy with a CEL key counts per key value, and its CEL
// condition selects which requests count: two calls per subject per minute,
// while other methods pass uncounted.
func TestRateLimitKeyedCEL(t *testing.T) {
	e := newLimitEnv(t, Options{}, `
---
apiVersion: mcpgate.dev/v1alpha1
kind: MCPRateLimitPolicy
metadata:
  name: per-subject
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  limits:
  - requests: 2
    unit: Minutes
    key: 'jwt.sub'
    when: 'mcp.method == "tools/call"'
`)
	alice, bob := asUser("alice"), asUser("bob")
	requireAdmitted(t, e.post(t, callBody(`1`), alice), 2, 1)
	requireAdmitted(t, e.post(t, callBody(`2`), alice), 2, 0)
	requireLimited(t, e.post(t, callBody(`3`), alice), `3`, 2)
	// Another subject has a counter of its own.
	requireAdmitted(t, e.post(t, callBody(`4`), bob), 2, 1)
	require.Equal(t, 3, upstreamCalls(e.upstream), "upstream calls for 3 admitted requests")
	// The condition holds only for tools/call: alice can still list tools.
	for i := range 3 {
		resp := e.post(t, `{"jsonrpc":"2.0","id":`+strconv.Itoa(100+i)+`,"method":"tools/list"}`, alice)
		body := readBody(t, resp)
		require.Equal(t, 200, resp.StatusCode, "tools/list for alice: %s", body)
		require.Empty(t, resp.Header.Get("X-Ratelimit-Limit"), "tools/list is not counted")
	}
}
