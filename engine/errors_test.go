package engine

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/stretchr/testify/assert"

	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/engine/policy"
)

func TestSafeHeader(t *testing.T) {
	tests := []struct {
		name, value string
		want        bool
	}{
		{"X-RateLimit-Limit", "10", true},
		{"Retry-After", "3", true},
		{"WWW-Authenticate", `Bearer resource_metadata="http://x/.well-known/oauth-protected-resource/mcp"`, true},
		{"", "x", false},
		{"X-A", "a\r\nSet-Cookie: x=1", false},
		{"X-A", "a\nb", false},
		{"X-A", "a\rb", false},
		{"X-A", "a\x00b", false},
		{"X-A\r\nSet-Cookie", "x", false},
		{"X A", "x", false},
		{"X-A:", "x", false},
		{"X\tA", "x", false},
		{"Content-Length", "0", false},
		{"content-length", "0", false},
		{"Transfer-Encoding", "chunked", false},
		{"Connection", "close", false},
		{"Content-Type", "text/html", false},
		{"Set-Cookie", "session=x", false},
		{"SET-COOKIE", "session=x", false},
	}
	for _, tt := range tests {
		if got := safeHeader(tt.name, tt.value); got != tt.want {
			t.Errorf("safeHeader(%q, %q): got %v, want %v", tt.name, tt.value, got, tt.want)
		}
	}
}

func TestWriteDenial(t *testing.T) {
	tests := []struct {
		name     string
		id       jsontext.Value
		d        policy.Decision
		status   int
		body     string
		headers  map[string]string
		noHeader []string
	}{
		{
			name:   "401 with an OAuth body",
			id:     jsontext.Value(`1`),
			d:      policy.Decision{HTTPStatus: 401, WWWAuthenticate: `Bearer resource_metadata="http://h/.well-known/oauth-protected-resource/mcp"`, OAuthError: &policy.OAuthError{Error: "unauthorized", Description: "missing bearer token"}},
			status: 401,
			body:   `{"error":"unauthorized","error_description":"missing bearer token"}`,
			headers: map[string]string{
				"WWW-Authenticate": `Bearer resource_metadata="http://h/.well-known/oauth-protected-resource/mcp"`,
				"Content-Type":     "application/json",
				"Cache-Control":    "no-store",
			},
		},
		{
			name:    "JSON-RPC error from the policy",
			id:      jsontext.Value(`"r-1"`),
			d:       policy.Decision{HTTPStatus: 403, JSONRPCError: &policy.JSONRPCError{Code: -32602, Message: "Unknown tool: printEnv"}},
			status:  403,
			body:    `{"jsonrpc":"2.0","id":"r-1","error":{"code":-32602,"message":"Unknown tool: printEnv"}}`,
			headers: map[string]string{"Content-Type": "application/json"},
		},
		{
			name:   "no JSON-RPC error: a generic one",
			id:     nil,
			d:      policy.Decision{HTTPStatus: 429},
			status: 429,
			body:   `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request denied by policy"}}`,
		},
		{
			name:   "a status that is not an error becomes 403",
			id:     jsontext.Value(`2`),
			d:      policy.Decision{HTTPStatus: 302},
			status: 403,
			body:   `{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"request denied by policy"}}`,
		},
		{
			name:   "an out-of-range status becomes 403",
			id:     jsontext.Value(`2`),
			d:      policy.Decision{HTTPStatus: 999},
			status: 403,
			body:   `{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"request denied by policy"}}`,
		},
		{
			name:    "policy headers, the unsafe ones dropped",
			id:      jsontext.Value(`3`),
			d:       policy.Decision{HTTPStatus: 429, Headers: map[string]string{"Retry-After": "3", "Set-Cookie": "x=1", "X-Bad": "a\r\nX-Injected: 1", "Content-Type": "text/html"}},
			status:  429,
			headers: map[string]string{"Retry-After": "3", "Content-Type": "application/json"},
			noHeader: []string{
				"Set-Cookie", "X-Bad", "X-Injected",
			},
		},
		{
			name:     "an unsafe WWW-Authenticate is dropped",
			d:        policy.Decision{HTTPStatus: 401, WWWAuthenticate: "Bearer x\r\nSet-Cookie: a=b", OAuthError: &policy.OAuthError{Error: "unauthorized"}},
			status:   401,
			body:     `{"error":"unauthorized"}`,
			noHeader: []string{"WWW-Authenticate", "Set-Cookie"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeDenial(rec, tt.id, &tt.d)
			assert.Equal(t, tt.status, rec.Code)
			if tt.body != "" {
				assert.JSONEq(t, tt.body, rec.Body.String())
			}
			for k, v := range tt.headers {
				assert.Equal(t, v, rec.Header().Get(k), "header %s", k)
			}
			for _, k := range tt.noHeader {
				assert.Empty(t, rec.Header().Values(k), "header %s", k)
			}
		})
	}
}

func TestWriteParseError(t *testing.T) {
	rec := httptest.NewRecorder()
	writeParseError(rec, &mcp.Error{Code: mcp.CodeInvalidRequest, Message: "invalid request: batch requests are not supported"})
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request: batch requests are not supported"}}`, rec.Body.String())

	rec = httptest.NewRecorder()
	writeParseError(rec, errors.New("something else"))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`, rec.Body.String())
}
