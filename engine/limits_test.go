package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/engine/ratelimit"
)

// limitsYAML adds to configYAML a traffic.rateLimit.local policy on the mcp
// route (requests + burst per minute) and, when perSub > 0, a user Rego
// module counting perSub requests per minute per token subject.
func limitsYAML(requests, burst, perSub int) string {
	y := `
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: limits
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  traffic:
    rateLimit:
      local:
      - requests: ` + strconv.Itoa(requests) + `
        unit: Minutes
        burst: ` + strconv.Itoa(burst) + `
`
	if perSub > 0 {
		y += `---
apiVersion: mcpgate.dev/v1alpha1
kind: MCPRegoPolicy
metadata:
  name: per-sub
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  modules:
  - name: per-sub
    rego: |
      package mcpgate.user.per_sub

      ratelimit contains {"key": input.jwt.claims.sub, "limit": ` + strconv.Itoa(perSub) + `, "period": 60}
`
	}
	return y
}

// newLimitEnv is newEnv with extra YAML documents appended to the
// configuration.
func newLimitEnv(t *testing.T, opts Options, extra string) *env {
	t.Helper()
	e := &env{upstream: newMCPServer(t), jwks: newJWKS(t)}
	port := e.upstream.srv.URL[strings.LastIndex(e.upstream.srv.URL, ":")+1:]
	e.bundle = buildBundle(t, configYAML(port, e.jwks.URL+"/keys")+extra, nil)
	e.gw = New(opts)
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)
	return e
}

// limited is a refused request's JSON-RPC error.
type limited struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			RetryAfterSeconds *int `json:"retry_after_seconds"`
		} `json:"data"`
	} `json:"error"`
}

func callBody(id string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`
}

// asUser is authed() for another subject.
func asUser(sub string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + signToken(signingKey(), jwt.MapClaims{"sub": sub}), "Mcp-Session-Id": testSession}
}

// upstreamCalls counts the tools/call requests the upstream received since
// the last call, and forgets them.
func upstreamCalls(u *mcpServer) int {
	n := 0
	for _, r := range u.received() {
		if r.RPC == "tools/call" {
			n++
		}
	}
	return n
}

// requireAdmitted checks a 200 with the x-ratelimit-* headers of the
// tightest counter.
func requireAdmitted(t *testing.T, resp *http.Response, limit, remaining int) {
	t.Helper()
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body %s", body)
	require.Contains(t, body, "Echo: hi")
	require.Equal(t, strconv.Itoa(limit), resp.Header.Get("X-Ratelimit-Limit"), "x-ratelimit-limit")
	require.Equal(t, strconv.Itoa(remaining), resp.Header.Get("X-Ratelimit-Remaining"), "x-ratelimit-remaining")
	reset, err := strconv.Atoi(resp.Header.Get("X-Ratelimit-Reset"))
	require.NoError(t, err, "x-ratelimit-reset %q", resp.Header.Get("X-Ratelimit-Reset"))
	require.True(t, reset > 0 && reset <= 60, "x-ratelimit-reset = %d, want in (0, 60]", reset)
	require.Empty(t, resp.Header.Get("Retry-After"), "Retry-After on an admitted request")
}

// requireLimited checks the 429: Retry-After, x-ratelimit-* and the JSON-RPC
// error -32029 with data.retry_after_seconds, answering id.
func requireLimited(t *testing.T, resp *http.Response, id string, limit int) {
	t.Helper()
	body := readBody(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "body %s", body)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
	require.True(t, retry >= 1 && retry <= 60, "Retry-After = %d, want in [1, 60]", retry)
	require.Equal(t, strconv.Itoa(limit), resp.Header.Get("X-Ratelimit-Limit"), "x-ratelimit-limit")
	require.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining"), "x-ratelimit-remaining")
	require.Equal(t, strconv.Itoa(retry), resp.Header.Get("X-Ratelimit-Reset"), "x-ratelimit-reset")
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))

	var e limited
	require.NoError(t, json.Unmarshal([]byte(body), &e), "body %s", body)
	require.Equal(t, "2.0", e.JSONRPC, "body %s", body)
	require.JSONEq(t, id, string(e.ID), "id in %s", body)
	require.Equal(t, CodeRateLimited, e.Error.Code, "body %s", body)
	require.Equal(t, -32029, e.Error.Code)
	require.Equal(t, "rate limit exceeded", e.Error.Message)
	require.NotNil(t, e.Error.Data.RetryAfterSeconds, "data.retry_after_seconds missing in %s", body)
	require.Equal(t, retry, *e.Error.Data.RetryAfterSeconds, "data.retry_after_seconds vs Retry-After")
}

// traffic.rateLimit.local {requests: 3, unit: Minutes, burst: 1}: four calls
// pass with decreasing x-ratelimit-remaining, the fifth gets 429 and never
// reaches the upstream.
func TestRateLimitLocalRule(t *testing.T) {
	e := newLimitEnv(t, Options{}, limitsYAML(3, 1, 0))
	hdr := authed("Mcp-Session-Id", testSession)
	for i := range 4 {
		requireAdmitted(t, e.post(t, callBody(strconv.Itoa(i+1)), hdr), 4, 3-i)
	}
	require.Equal(t, 4, upstreamCalls(e.upstream), "upstream calls for 4 admitted requests")

	requireLimited(t, e.post(t, callBody(`"fifth"`), hdr), `"fifth"`, 4)
	requireLimited(t, e.post(t, callBody(`6`), hdr), `6`, 4)
	require.Equal(t, 0, upstreamCalls(e.upstream), "upstream calls for refused requests")

	// The budget is the route's, whoever calls.
	requireLimited(t, e.post(t, callBody(`7`), asUser("someone-else")), `7`, 4)

	// Routes without the policy are not limited and carry no headers.
	for range 6 {
		resp := e.do(t, http.MethodPost, "/open", callBody(`8`), map[string]string{"Mcp-Session-Id": testSession})
		require.Equal(t, http.StatusOK, resp.StatusCode, "/open: %s", readBody(t, resp))
		require.Empty(t, resp.Header.Get("X-Ratelimit-Limit"), "/open has no rate limit")
	}
}

// A user Rego module counts per input.jwt.claims.sub: one subject exhausting
// its budget does not limit another, and its refused requests take nothing
// from the route's local budget.
func TestRateLimitPerUserRego(t *testing.T) {
	// Local: 4 per minute for the route; per subject: 2 per minute.
	e := newLimitEnv(t, Options{}, limitsYAML(3, 1, 2))
	alice, bob, carol := asUser("alice"), asUser("bob"), asUser("carol")

	requireAdmitted(t, e.post(t, callBody(`1`), alice), 2, 1)
	requireAdmitted(t, e.post(t, callBody(`2`), alice), 2, 0)
	for i := range 3 {
		id := strconv.Itoa(10 + i)
		requireLimited(t, e.post(t, callBody(id), alice), id, 2)
	}
	require.Equal(t, 2, upstreamCalls(e.upstream), "upstream calls after alice's 2 admitted and 3 refused")

	// Bob has his own 2, and the route still has 2 of its 4: alice's three
	// refusals consumed nothing.
	// (On a tie the route's counter, listed first, is the one reported.)
	requireAdmitted(t, e.post(t, callBody(`20`), bob), 4, 1)
	requireAdmitted(t, e.post(t, callBody(`21`), bob), 4, 0)
	require.Equal(t, 2, upstreamCalls(e.upstream))

	// Carol's own budget is untouched but the route's is spent.
	requireLimited(t, e.post(t, callBody(`30`), carol), `30`, 4)
	require.Equal(t, 0, upstreamCalls(e.upstream))
}

// Requests refused before the rate limit (401 without or with a bad token)
// consume no budget.
func TestRateLimitUnauthenticatedConsumesNothing(t *testing.T) {
	e := newLimitEnv(t, Options{}, limitsYAML(3, 1, 2))
	for i := range 20 {
		hdr := map[string]string{"Mcp-Session-Id": testSession}
		if i%2 == 1 {
			hdr["Authorization"] = "Bearer " + signToken(otherKey(), nil) // unknown signature
		}
		resp := e.post(t, callBody(strconv.Itoa(i)), hdr)
		body := readBody(t, resp)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "request %d: %s", i, body)
		require.Empty(t, resp.Header.Get("X-Ratelimit-Limit"), "a 401 is not counted")
	}
	require.Equal(t, 0, upstreamCalls(e.upstream))
	// Full budgets: per subject 2 (remaining 1 after this one), route 4.
	requireAdmitted(t, e.post(t, callBody(`100`), authed("Mcp-Session-Id", testSession)), 2, 1)
	requireAdmitted(t, e.post(t, callBody(`101`), asUser("other")), 2, 1)
	requireAdmitted(t, e.post(t, callBody(`102`), asUser("third")), 4, 1) // the route's 4 - 3 ties the subject's 2 - 1
}

// With the limiter's Redis unreachable: 503 (FailClosed, the default) or
// admitted (FailOpen). Nothing reaches the upstream when closed.
func TestRateLimitStoreUnavailable(t *testing.T) {
	closed := closedAddr(t)
	for _, tt := range []struct {
		name     string
		failOpen bool
		status   int
	}{
		{"FailClosed", false, http.StatusServiceUnavailable},
		{"FailOpen", true, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := ratelimit.New(ratelimit.Options{RedisAddr: closed, Timeout: 100 * time.Millisecond})
			t.Cleanup(func() { l.Close() })
			e := newLimitEnv(t, Options{Limiter: l, RateLimitFailOpen: tt.failOpen}, limitsYAML(3, 1, 0))
			// Past the route's 4 and across the limiter's one-second retry
			// pause: the answer never changes.
			for i := range 6 {
				id := fmt.Sprintf(`"req-%d"`, i)
				start := time.Now()
				resp := e.post(t, callBody(id), authed("Mcp-Session-Id", testSession))
				body := readBody(t, resp)
				require.Less(t, time.Since(start), 2*time.Second, "request %d took too long", i)
				require.Equal(t, tt.status, resp.StatusCode, "request %d: %s", i, body)
				require.Empty(t, resp.Header.Get("Retry-After"), "request %d", i)
				if tt.failOpen {
					require.Contains(t, body, "Echo: hi")
					require.Equal(t, 1, upstreamCalls(e.upstream), "request %d reached the upstream", i)
				} else {
					got := decodeRPCError(t, body)
					require.JSONEq(t, id, string(got.ID))
					require.Equal(t, -32603, got.Error.Code, "body %s", body)
					require.Equal(t, "rate limit unavailable", got.Error.Message)
					require.Equal(t, 0, upstreamCalls(e.upstream), "request %d reached the upstream", i)
				}
				if i == 2 {
					time.Sleep(1100 * time.Millisecond) // let the limiter try Redis again
				}
			}
			// Unauthenticated requests are refused before the limiter is asked.
			resp := e.post(t, callBody(`1`), map[string]string{"Mcp-Session-Id": testSession})
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, readBody(t, resp))
		})
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
