package engine

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/ir"
)

// The DNS-rebinding defence (originAllowed): found by the conformance
// suite's dns-rebinding-protection scenario through the gateway
// (tests/e2e/conformance_test.go), where a page from evil.example resolved
// to 127.0.0.1 sends Origin and Host evil.example — headers that agree.
func TestOriginAllowed(t *testing.T) {
	loopback := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}
	loopback6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080}
	public := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8080}
	cors := &ir.CORS{AllowOrigins: []string{"http://evil.example"}}
	for _, tt := range []struct {
		name   string
		local  net.Addr // nil: no local address in the context
		host   string
		origin string
		cors   *ir.CORS
		want   bool
	}{
		{"no Origin (not a browser)", loopback, "evil.example", "", nil, true},
		{"rebinding: Origin and Host agree on a foreign name, on loopback", loopback, "evil.example", "http://evil.example", nil, false},
		{"rebinding with a port", loopback, "evil.example:8080", "http://evil.example:8080", nil, false},
		{"rebinding on ::1", loopback6, "evil.example:8080", "http://evil.example:8080", nil, false},
		{"same origin 127.0.0.1", loopback, "127.0.0.1:8080", "http://127.0.0.1:8080", nil, true},
		{"same origin localhost", loopback, "localhost:8080", "http://localhost:8080", nil, true},
		{"same origin LOCALHOST without port", loopback, "LOCALHOST", "http://LOCALHOST", nil, true},
		{"same origin [::1]", loopback6, "[::1]:8080", "http://[::1]:8080", nil, true},
		{"same origin 127.0.0.2", loopback, "127.0.0.2:8080", "http://127.0.0.2:8080", nil, true},
		{"same origin on a public address (a named gateway)", public, "mcp.example.com", "https://mcp.example.com", nil, true},
		{"same origin, no local address known", nil, "mcp.example.com", "https://mcp.example.com", nil, true},
		{"foreign Origin", loopback, "127.0.0.1:8080", "http://evil.example", nil, false},
		{"foreign Origin on a public address", public, "mcp.example.com", "http://evil.example", nil, false},
		{"Origin null", loopback, "127.0.0.1:8080", "null", nil, false},
		{"Origin the CORS policy allows", loopback, "evil.example", "http://evil.example", cors, true},
		{"localhost.evil.example is not localhost", loopback, "localhost.evil.example", "http://localhost.evil.example", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://"+tt.host+"/mcp", nil)
			r.Host = tt.host
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.local != nil {
				r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, tt.local))
			}
			h := &routeHandler{cors: tt.cors}
			assert.Equal(t, tt.want, h.originAllowed(r))
		})
	}
}

// End to end through the handler: the rebinding request is refused before
// anything reaches the upstream; the same request naming 127.0.0.1 passes.
func TestOriginRebindingRefused(t *testing.T) {
	e := newEnv(t, Options{})
	send := func(host string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/mcp", strings.NewReader(toolsList))
		require.NoError(t, err)
		req.Host = host
		for k, v := range authed("Mcp-Session-Id", testSession, "Origin", "http://"+host) {
			req.Header.Set(k, v)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp, readBody(t, resp)
	}
	port := e.srv.URL[strings.LastIndex(e.srv.URL, ":")+1:]

	resp, body := send("evil.example:" + port)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	assert.Equal(t, -32600, decodeRPCError(t, body).Error.Code)
	assert.Empty(t, e.upstream.received(), "a refused request must not reach the upstream")

	resp, body = send("127.0.0.1:" + port)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Len(t, e.upstream.received(), 1)
}
