package engine

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/ir"
)

// get reads a path of keys from an input document.
func get(t *testing.T, v ast.Value, path ...string) ast.Value {
	t.Helper()
	for _, k := range path {
		obj, ok := v.(ast.Object)
		require.True(t, ok, "got %T at %s, want an object", v, k)
		term := obj.Get(ast.StringTerm(k))
		require.NotNil(t, term, "no %q in %v", k, v)
		v = term.Value
	}
	return v
}

func has(v ast.Value, path ...string) bool {
	for _, k := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			return false
		}
		term := obj.Get(ast.StringTerm(k))
		if term == nil {
			return false
		}
		v = term.Value
	}
	return true
}

func TestBuildInput(t *testing.T) {
	l := ir.Listener{Gateway: "team/gw", Name: "http", Port: 8080}
	rt := &ir.Route{Key: "team/mcp/0", Gateway: "team/gw", Route: "team/mcp", Rule: 0, Backend: "team/be"}
	route := routeTerm(l, rt, ir.Target{Name: "everything"})

	r := httptest.NewRequest(http.MethodPost, "http://gw.example:8080/mcp/sub?x=1", strings.NewReader("{}"))
	r.RemoteAddr = "192.0.2.7:53422"
	r.Header.Set("Authorization", "Bearer secret-token")
	r.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	r.Header.Set("Cookie", "sid=secret")
	r.Header.Set("Mcp-Session-Id", "s-1")
	r.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	r.Header.Add("X-Multi", "a")
	r.Header.Add("X-Multi", "b")

	args := ast.MustParseTerm(`{"message":"hi","n":12345678901234567890}`)
	msg := &mcp.Message{
		Kind: mcp.Request, ID: jsontext.Value(`7`), Method: "tools/call", Name: "echo", Arguments: args,
		Params: ast.NewTerm(ast.NewObject(ast.Item(ast.StringTerm("name"), ast.StringTerm("echo")), ast.Item(ast.StringTerm("arguments"), args))),
	}
	claims := ast.MustParseTerm(`{"sub":"alice","groups":["a"]}`).Value
	header := ast.MustParseTerm(`{"alg":"RS256","kid":"k1"}`).Value
	in := buildInput(r, route, "everything", msg, authn.Result{Present: true, Valid: true, Claims: claims, Header: header, Subject: "alice"})

	assert.Equal(t, ast.String(ir.Version), get(t, in, "version"))
	assert.Equal(t, ast.String("request"), get(t, in, "phase"))

	// request
	assert.Equal(t, ast.String("POST"), get(t, in, "request", "method"))
	assert.Equal(t, ast.String("/mcp/sub"), get(t, in, "request", "path"))
	assert.Equal(t, ast.String("gw.example:8080"), get(t, in, "request", "host"))
	assert.Equal(t, ast.String("http"), get(t, in, "request", "scheme"))
	assert.Equal(t, ast.String("192.0.2.7:53422"), get(t, in, "request", "remote_addr"))
	assert.Equal(t, ast.String("s-1"), get(t, in, "request", "headers", "mcp-session-id"))
	assert.Equal(t, ast.String("a, b"), get(t, in, "request", "headers", "x-multi"))
	for _, h := range []string{"authorization", "proxy-authorization", "cookie", "Authorization", "Cookie"} {
		assert.False(t, has(in, "request", "headers", h), "credential header %s reached the policy", h)
	}
	assert.NotContains(t, in.String(), "secret", "no credential anywhere in the input")

	// source
	assert.Equal(t, ast.String("192.0.2.7"), get(t, in, "source", "address"))
	assert.Equal(t, ast.String("53422"), get(t, in, "source", "port"))

	// route
	assert.Equal(t, ast.String("team/mcp/0"), get(t, in, "route", "key"))
	assert.Equal(t, ast.String("everything"), get(t, in, "route", "target"))
	assert.Equal(t, ast.String("http"), get(t, in, "route", "listener"))

	// mcp
	assert.Equal(t, ast.String("tools/call"), get(t, in, "mcp", "method"))
	assert.Equal(t, ast.String("request"), get(t, in, "mcp", "kind"))
	assert.Equal(t, ast.Number("7"), get(t, in, "mcp", "id"))
	assert.Equal(t, ast.Boolean(true), get(t, in, "mcp", "session"))
	assert.Equal(t, ast.String("2025-06-18"), get(t, in, "mcp", "protocol_version"))
	assert.Equal(t, ast.String("echo"), get(t, in, "mcp", "tool", "name"))
	assert.Equal(t, ast.String("everything"), get(t, in, "mcp", "tool", "target"))
	assert.Equal(t, ast.Number("12345678901234567890"), get(t, in, "mcp", "tool", "arguments", "n"))
	assert.Equal(t, ast.String("echo"), get(t, in, "mcp", "params", "name"))

	// jwt
	assert.Equal(t, ast.Boolean(true), get(t, in, "jwt", "valid"))
	assert.Equal(t, ast.String("alice"), get(t, in, "jwt", "claims", "sub"))
	assert.Equal(t, ast.String("k1"), get(t, in, "jwt", "header", "kid"))

	// The input is a plain JSON document.
	_, err := ast.JSON(in)
	require.NoError(t, err)
}

func TestBuildInputVariants(t *testing.T) {
	route := routeTerm(ir.Listener{Name: "http"}, &ir.Route{Key: "k"}, ir.Target{Name: "tg"})
	t.Run("TLS", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "https://gw.example/mcp", nil)
		r.TLS = &tls.ConnectionState{}
		in := buildInput(r, route, "tg", nil, authn.Result{})
		assert.Equal(t, ast.String("https"), get(t, in, "request", "scheme"))
		assert.Equal(t, ast.String(""), get(t, in, "mcp", "method"), "a GET carries no message")
		assert.Equal(t, ast.Boolean(false), get(t, in, "mcp", "session"))
	})
	t.Run("remote address without port", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.RemoteAddr = "@unix"
		in := buildInput(r, route, "tg", nil, authn.Result{})
		assert.Equal(t, ast.String("@unix"), get(t, in, "source", "address"))
		assert.Equal(t, ast.String(""), get(t, in, "source", "port"))
	})
	t.Run("invalid token: no claims", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		in := buildInput(r, route, "tg", nil, authn.Result{
			Present: true, Valid: false, Error: "token is expired",
			Claims: ast.MustParseTerm(`{"sub":"mallory"}`).Value, Header: ast.MustParseTerm(`{"alg":"RS256"}`).Value,
		})
		assert.Equal(t, ast.Boolean(true), get(t, in, "jwt", "present"))
		assert.Equal(t, ast.Boolean(false), get(t, in, "jwt", "valid"))
		assert.Equal(t, ast.String("token is expired"), get(t, in, "jwt", "error"))
		assert.Equal(t, 0, get(t, in, "jwt", "claims").(ast.Object).Len(), "claims of an invalid token never reach the policy")
		assert.Equal(t, ast.String("RS256"), get(t, in, "jwt", "header", "alg"))
	})
	t.Run("initialize names its protocol version", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Header.Set("Mcp-Protocol-Version", "2025-03-26")
		msg := &mcp.Message{Kind: mcp.Request, ID: jsontext.Value(`"i"`), Method: "initialize", ProtocolVersion: "2025-11-25",
			Params: ast.MustParseTerm(`{"protocolVersion":"2025-11-25"}`)}
		in := buildInput(r, route, "tg", msg, authn.Result{})
		assert.Equal(t, ast.String("2025-11-25"), get(t, in, "mcp", "protocol_version"))
		assert.Equal(t, ast.String("i"), get(t, in, "mcp", "id"))
	})
	t.Run("notification", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		msg := &mcp.Message{Kind: mcp.Notification, Method: "notifications/initialized"}
		in := buildInput(r, route, "tg", msg, authn.Result{})
		assert.Equal(t, ast.String("notification"), get(t, in, "mcp", "kind"))
		assert.False(t, has(in, "mcp", "id"))
		assert.Equal(t, 0, get(t, in, "mcp", "params").(ast.Object).Len())
	})
	t.Run("prompts and resources", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		in := buildInput(r, route, "tg", &mcp.Message{Kind: mcp.Request, ID: jsontext.Value(`1`), Method: "prompts/get", Name: "greet"}, authn.Result{})
		assert.Equal(t, ast.String("greet"), get(t, in, "mcp", "prompt", "name"))
		assert.Equal(t, 0, get(t, in, "mcp", "prompt", "arguments").(ast.Object).Len())
		in = buildInput(r, route, "tg", &mcp.Message{Kind: mcp.Request, ID: jsontext.Value(`1`), Method: "resources/read", URI: "file:///x"}, authn.Result{})
		assert.Equal(t, ast.String("file:///x"), get(t, in, "mcp", "resource", "uri"))
		assert.Equal(t, ast.String("tg"), get(t, in, "mcp", "resource", "target"))
	})
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		typ, value, path string
		want             bool
	}{
		{"Exact", "/mcp", "/mcp", true},
		{"Exact", "/mcp", "/mcp/", false},
		{"Exact", "/mcp", "/mcpx", false},
		{"Exact", "/mcp", "/MCP", false},
		{"PathPrefix", "/mcp", "/mcp", true},
		{"PathPrefix", "/mcp", "/mcp/", true},
		{"PathPrefix", "/mcp", "/mcp/x/y", true},
		{"PathPrefix", "/mcp", "/mcpx", false},
		{"PathPrefix", "/mcp", "/mc", false},
		{"PathPrefix", "/mcp", "/", false},
		{"PathPrefix", "/mcp", "/Mcp", false},
		{"PathPrefix", "/", "/", true},
		{"PathPrefix", "/", "/anything/at/all", true},
		{"PathPrefix", "/a/b", "/a/b/c", true},
		{"PathPrefix", "/a/b", "/a/bc", false},
	}
	for _, tt := range tests {
		if got := matchPath(ir.PathMatch{Type: tt.typ, Value: tt.value}, tt.path); got != tt.want {
			t.Errorf("matchPath(%s %s, %q): got %v, want %v", tt.typ, tt.value, tt.path, got, tt.want)
		}
	}
}

func TestAcceptsSSE(t *testing.T) {
	tests := map[string]bool{
		"":                                    false,
		"*/*":                                 false,
		"application/json":                    false,
		"text/*":                              false,
		"text/event-stream":                   true,
		"application/json, text/event-stream": true,
		"application/json,text/event-stream":  true,
		"TEXT/EVENT-STREAM":                   true,
		"text/event-stream;q=0.9":             true,
		"application/json; q=1, text/event-stream ; charset=utf-8": true,
		"text/event-streams": false,
	}
	for accept, want := range tests {
		if got := acceptsSSE(accept); got != want {
			t.Errorf("acceptsSSE(%q): got %v, want %v", accept, got, want)
		}
	}
}

func TestIsJSON(t *testing.T) {
	tests := map[string]bool{
		"application/json":                 true,
		"Application/JSON":                 true,
		"application/json; charset=utf-8":  true,
		" application/json ;charset=UTF-8": true,
		"":                                 false,
		"text/plain":                       false,
		"application/json-seq":             false,
		"application/jsonx":                false,
		"text/json":                        false,
	}
	for ct, want := range tests {
		if got := isJSON(ct); got != want {
			t.Errorf("isJSON(%q): got %v, want %v", ct, got, want)
		}
	}
}

func TestIsResponseTo(t *testing.T) {
	tests := []struct {
		data, id string
		want     bool
	}{
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, `1`, true},
		{`{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}}`, `"a"`, true},
		{`{"jsonrpc":"2.0","id": 1 ,"result":{}}`, `1`, true},
		{`{"jsonrpc":"2.0","id":2,"result":{}}`, `1`, false},
		{`{"jsonrpc":"2.0","id":"1","result":{}}`, `1`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"roots/list"}`, `1`, false},
		{`{"jsonrpc":"2.0","method":"notifications/message"}`, `1`, false},
		{``, `1`, false},
		{`not json`, `1`, false},
	}
	for _, tt := range tests {
		if got := isResponseTo([]byte(tt.data), jsontext.Value(tt.id)); got != tt.want {
			t.Errorf("isResponseTo(%s, %s): got %v, want %v", tt.data, tt.id, got, tt.want)
		}
	}
}

func TestStrconvQuote(t *testing.T) {
	assert.Equal(t, `"2025-06-18"`, strconvQuote("2025-06-18"))
	assert.Equal(t, `"a?b?c?"`, strconvQuote("a\"b\nc\x7f"))
	got := strconvQuote(strings.Repeat("x", 1000))
	assert.Len(t, got, 66, "long values are cut")
}

func TestIdOf(t *testing.T) {
	assert.Nil(t, idOf(nil))
	assert.Nil(t, idOf(&mcp.Message{Kind: mcp.Notification}))
	assert.Nil(t, idOf(&mcp.Message{Kind: mcp.Response, ID: jsontext.Value(`1`)}), "a response's id is not ours to answer")
	assert.Equal(t, []byte(`1`), idOf(&mcp.Message{Kind: mcp.Request, ID: jsontext.Value(`1`)}))
}
