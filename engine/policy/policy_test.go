package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

const (
	routeStrict     = "team/mcp/0"
	routeOptional   = "team/optional/0"
	routePermissive = "team/permissive/0"
	routeOpen       = "team/open/0"
	issuer          = "http://127.0.0.1:5556/realms/agentgateway"
)

// testConfig is a small IR: one listener, one route per authentication mode
// and one route without authentication.
func testConfig() *ir.Config {
	cfg := &ir.Config{
		Version:  ir.Version,
		Routes:   map[string]*ir.Route{},
		Backends: map[string]*ir.Backend{"team/be": {Key: "team/be", Targets: []ir.Target{{Name: "everything", URL: "http://127.0.0.1:3001/mcp", Protocol: "StreamableHTTP"}}, SessionRouting: "Stateful", FailureMode: "FailClosed", PrefixMode: "Conditional"}},
		Authn:    map[string]*ir.Authn{},
	}
	l := ir.Listener{Gateway: "team/gw", Name: "http", Port: 8080}
	for i, r := range []struct{ key, path, mode string }{
		{routeStrict, "/mcp", "Strict"},
		{routeOptional, "/optional", "Optional"},
		{routePermissive, "/permissive", "Permissive"},
		{routeOpen, "/open", ""},
	} {
		name := strings.Split(r.key, "/")[1]
		rt := &ir.Route{Key: r.key, Gateway: "team/gw", Route: "team/" + name, Matches: []ir.PathMatch{{Type: "PathPrefix", Value: r.path}}, Backend: "team/be"}
		if r.mode != "" {
			ak := fmt.Sprintf("team/auth-%d", i)
			cfg.Authn[ak] = &ir.Authn{Key: ak, Mode: r.mode, Issuer: issuer, Audiences: []string{"mcp-agent"}, JWKSURL: issuer + "/keys", CacheSeconds: 300}
			rt.Authn = ak
		}
		cfg.Routes[r.key] = rt
		l.Matches = append(l.Matches, ir.RouteMatch{PathMatch: rt.Matches[0], Route: r.key})
	}
	cfg.Listeners = []ir.Listener{l}
	return cfg
}

func newEvaluator(tb testing.TB, cfg *ir.Config, user map[string]string) *Evaluator {
	tb.Helper()
	b, err := translate.Bundle(&translate.Result{Config: cfg}, user)
	require.NoError(tb, err)
	ev, err := New(context.Background(), b)
	require.NoError(tb, err)
	require.Equal(tb, b.Revision, ev.Revision())
	return ev
}

// dexClaims are the claims of a Dex password-grant access token (the demo's
// identity provider), as engine/authn hands them over.
const dexClaims = `{
	"iss": "http://127.0.0.1:5556/realms/agentgateway",
	"sub": "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",
	"aud": "mcp-agent",
	"exp": 1800003600,
	"iat": 1800000000,
	"at_hash": "6hlbmmpjr2eIDQd4h1xVkQ",
	"c_hash": "XzmF6ZzE2bBq0N1QvOkGxw",
	"email": "agent-user@example.com",
	"email_verified": true,
	"groups": ["mcp-users", "developers"],
	"name": "agent-user",
	"preferred_username": "agent-user",
	"federated_claims": {"connector_id": "local", "user_id": "08a8684b-db88-4b73-90a9-3cd1661f5466"}
}`

type jwtCase int

const (
	jwtValid jwtCase = iota
	jwtMissing
	jwtExpired
)

// input is an input document as engine.buildInput assembles it
// (docs/input.md) for a tools/call on route key.
func input(tb testing.TB, key, path string, jc jwtCase) ast.Value {
	tb.Helper()
	var jwt string
	switch jc {
	case jwtValid:
		jwt = `{"present": true, "valid": true, "error": "", "claims": ` + dexClaims + `, "header": {"alg": "RS256", "kid": "3b8e1a0c"}}`
	case jwtMissing:
		jwt = `{"present": false, "valid": false, "error": "", "claims": {}}`
	case jwtExpired:
		jwt = `{"present": true, "valid": false, "error": "token is expired", "claims": {}, "header": {"alg": "RS256", "kid": "3b8e1a0c"}}`
	}
	doc := `{
		"version": "v1",
		"request": {
			"method": "POST", "path": "` + path + `", "host": "gw.example:8080", "scheme": "http",
			"headers": {
				"accept": "application/json, text/event-stream",
				"content-type": "application/json",
				"content-length": "143",
				"mcp-protocol-version": "2025-06-18",
				"mcp-session-id": "6f1d6c2e-5b3a-4c1e-9f7a-0c2b1e8d4a55",
				"user-agent": "node"
			},
			"remote_addr": "127.0.0.1:53422"
		},
		"source": {"address": "127.0.0.1", "port": "53422"},
		"route": {"key": "` + key + `", "gateway": "team/gw", "listener": "http", "route": "team/mcp", "rule": 0, "backend": "team/be", "target": "everything"},
		"mcp": {
			"session": true, "protocol_version": "2025-06-18", "method": "tools/call", "kind": "request", "id": 7,
			"params": {"name": "echo", "arguments": {"message": "hello"}, "_meta": {"progressToken": 7}},
			"tool": {"name": "echo", "target": "everything", "arguments": {"message": "hello"}}
		},
		"jwt": ` + jwt + `,
		"phase": "request"
	}`
	return ast.MustParseTerm(doc).Value
}

func TestDecide(t *testing.T) {
	ev := newEvaluator(t, testConfig(), nil)
	const meta = `Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource`
	tests := []struct {
		name   string
		key    string
		path   string
		jwt    jwtCase
		want   Decision
		reason string
	}{
		{name: "strict, valid token", key: routeStrict, path: "/mcp", jwt: jwtValid, want: Decision{Allow: true, HTTPStatus: 200}},
		{
			name: "strict, no token", key: routeStrict, path: "/mcp", jwt: jwtMissing,
			want: Decision{
				HTTPStatus:      401,
				WWWAuthenticate: meta + `/mcp"`,
				OAuthError:      &OAuthError{Error: "unauthorized", Description: "missing bearer token"},
				Reasons:         []string{"missing bearer token"},
			},
		},
		{
			name: "strict, expired token", key: routeStrict, path: "/mcp/sub", jwt: jwtExpired,
			want: Decision{
				HTTPStatus:      401,
				WWWAuthenticate: meta + `/mcp/sub", error="invalid_token"`,
				OAuthError:      &OAuthError{Error: "unauthorized", Description: "invalid bearer token: token is expired"},
				Reasons:         []string{"invalid bearer token: token is expired"},
			},
		},
		{name: "optional, no token", key: routeOptional, path: "/optional", jwt: jwtMissing, want: Decision{Allow: true, HTTPStatus: 200}},
		{
			name: "optional, expired token", key: routeOptional, path: "/optional", jwt: jwtExpired,
			want: Decision{
				HTTPStatus:      401,
				WWWAuthenticate: meta + `/optional", error="invalid_token"`,
				OAuthError:      &OAuthError{Error: "unauthorized", Description: "invalid bearer token: token is expired"},
				Reasons:         []string{"invalid bearer token: token is expired"},
			},
		},
		{name: "permissive, no token", key: routePermissive, path: "/permissive", jwt: jwtMissing, want: Decision{Allow: true, HTTPStatus: 200}},
		{name: "permissive, expired token", key: routePermissive, path: "/permissive", jwt: jwtExpired, want: Decision{Allow: true, HTTPStatus: 200}},
		{name: "no authentication", key: routeOpen, path: "/open", jwt: jwtMissing, want: Decision{Allow: true, HTTPStatus: 200}},
		{
			name: "unknown route", key: "team/nope/0", path: "/mcp", jwt: jwtValid,
			want: Decision{HTTPStatus: 404, JSONRPCError: &JSONRPCError{Code: -32601, Message: "no route for this path"}, Reasons: []string{"unknown route"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ev.Decide(context.Background(), input(t, tt.key, tt.path, tt.jwt))
			require.NoError(t, err)
			assert.Equal(t, tt.want, *d)
		})
	}
}

// The walkthrough's configuration, loaded and compiled the way `gateway run`
// does it.
func TestDecideQuickstart(t *testing.T) {
	res, err := load.Files([]string{filepath.Join("..", "..", "examples", "quickstart")})
	require.NoError(t, err)
	out, err := translate.Translate(res.Resources)
	require.NoError(t, err)
	cfg := out.Config
	require.Len(t, cfg.Routes, 1)
	var key string
	for k := range cfg.Routes {
		key = k
	}
	ev := newEvaluator(t, cfg, nil)

	d, err := ev.Decide(context.Background(), input(t, key, "/mcp", jwtValid))
	require.NoError(t, err)
	assert.True(t, d.Allow, "got allow=false (%v), want true", d.Reasons)
	assert.Equal(t, 200, d.HTTPStatus)

	d, err = ev.Decide(context.Background(), input(t, key, "/mcp", jwtMissing))
	require.NoError(t, err)
	assert.False(t, d.Allow)
	assert.Equal(t, 401, d.HTTPStatus)
	assert.Equal(t, `Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource/mcp"`, d.WWWAuthenticate)
	require.NotNil(t, d.OAuthError)
	assert.Equal(t, OAuthError{Error: "unauthorized", Description: "missing bearer token"}, *d.OAuthError)
}

// Anything but one well-formed decision object denies.
func TestDecideFailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		module string
		input  func(testing.TB) ast.Value
	}{
		{
			// A user module adds a second, different value for the decision
			// of the same request: a conflict is an evaluation error.
			name: "conflicting decision",
			module: `package mcpgate

decision := {"allow": true, "http_status": 200, "reasons": ["user override"]} if input.jwt.present == false
`,
			input: func(tb testing.TB) ast.Value { return input(tb, routeStrict, "/mcp", jwtMissing) },
		},
		{
			// A conflict inside the library's own rules (two reasons to
			// reject): also an evaluation error.
			name: "conflicting reject reason",
			module: `package mcpgate.authn

reject := "user says no" if input.jwt.present == false
`,
			input: func(tb testing.TB) ast.Value { return input(tb, routeStrict, "/mcp", jwtMissing) },
		},
		{
			// A user module turns the decision into something that is not
			// a well-formed decision.
			name: "malformed decision",
			module: `package mcpgate

decision := "allow" if input.jwt.present == false
`,
			input: func(tb testing.TB) ast.Value { return input(tb, routeStrict, "/mcp", jwtMissing) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := translate.Bundle(&translate.Result{Config: testConfig()}, map[string]string{"mcpgate/user/x.rego": tt.module})
			if err != nil {
				// Refusing the bundle outright is fail-closed too.
				t.Logf("bundle refused: %v", err)
				return
			}
			ev, err := New(context.Background(), b)
			if err != nil {
				t.Logf("evaluator refused: %v", err)
				return
			}
			d, err := ev.Decide(context.Background(), tt.input(t))
			require.Error(t, err, "got decision %+v, want ErrNoDecision", d)
			assert.ErrorIs(t, err, ErrNoDecision)
			assert.Nil(t, d)
		})
	}
}

func TestNewRejectsBrokenBundle(t *testing.T) {
	b := &bundle.Bundle{Revision: "broken", Config: testConfig(), Modules: map[string]string{"mcpgate/user/x.rego": "package x\n\np := \n"}}
	ev, err := New(context.Background(), b)
	require.Error(t, err)
	assert.Nil(t, ev)
	assert.ErrorIs(t, err, bundle.ErrBundle)

	// A bundle without the library has no decision to prepare... or if it
	// prepares, it must never allow.
	b = &bundle.Bundle{Revision: "empty", Config: testConfig(), Modules: map[string]string{}}
	ev, err = New(context.Background(), b)
	if err == nil {
		d, err := ev.Decide(context.Background(), input(t, routeStrict, "/mcp", jwtValid))
		assert.ErrorIs(t, err, ErrNoDecision, "got decision %+v, want ErrNoDecision", d)
	}
}

func TestParse(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	tests := []struct {
		name string
		in   string // JSON, numbers decoded as json.Number like the OPA result set
		want *Decision
		err  string
	}{
		{name: "allow", in: `{"allow":true,"http_status":200,"reasons":[],"headers":{},"ratelimit":[]}`, want: &Decision{Allow: true, HTTPStatus: 200}},
		{name: "allow with 204", in: `{"allow":true,"http_status":204}`, want: &Decision{Allow: true, HTTPStatus: 204}},
		{
			name: "everything",
			in: `{"allow":false,"http_status":429,"reasons":["too many",1,"calls"],"headers":{"Retry-After":"3"},
				"jsonrpc_error":{"code":-32000,"message":"rate limited","data":{"retry_after":3}},
				"oauth_error":{"error":"unauthorized","error_description":"missing bearer token"},
				"www_authenticate":"Bearer realm=\"x\"",
				"ratelimit":[{"key":"sub:alice","limit":10,"period":60,"burst":5,"message":"slow down"},{"key":"tool:echo","limit":0,"period":1}],
				"unknown":"ignored"}`,
			want: &Decision{
				HTTPStatus:      429,
				Reasons:         []string{"too many", "calls"},
				Headers:         map[string]string{"Retry-After": "3"},
				JSONRPCError:    &JSONRPCError{Code: -32000, Message: "rate limited", Data: map[string]any{"retry_after": num("3")}},
				OAuthError:      &OAuthError{Error: "unauthorized", Description: "missing bearer token"},
				WWWAuthenticate: `Bearer realm="x"`,
				RateLimit:       []RateLimit{{Key: "sub:alice", Limit: 10, Period: 60, Burst: 5, Message: "slow down"}, {Key: "tool:echo", Limit: 0, Period: 1}},
			},
		},
		{name: "empty", in: `{}`, err: "allow is not a boolean"},
		{name: "allow is a string", in: `{"allow":"true","http_status":200}`, err: "allow is not a boolean"},
		{name: "allow is a number", in: `{"allow":1,"http_status":200}`, err: "allow is not a boolean"},
		{name: "allow is null", in: `{"allow":null,"http_status":200}`, err: "allow is not a boolean"},
		{name: "no status", in: `{"allow":true}`, err: "http_status"},
		{name: "status a string", in: `{"allow":true,"http_status":"200"}`, err: "http_status"},
		{name: "status not an integer", in: `{"allow":true,"http_status":200.5}`, err: "http_status"},
		{name: "allow with 401", in: `{"allow":true,"http_status":401}`, err: "allow=true with http_status 401"},
		{name: "allow with 302", in: `{"allow":true,"http_status":302}`, err: "allow=true with http_status 302"},
		{name: "deny with 200", in: `{"allow":false,"http_status":200}`, err: "allow=false with http_status 200"},
		{name: "deny with 302", in: `{"allow":false,"http_status":302,"jsonrpc_error":{"code":-32602,"message":"x"}}`, err: "allow=false with http_status 302"},
		{
			// A hidden tool is refused inside a 200, as if it did not exist.
			name: "deny with 200 and a JSON-RPC error",
			in:   `{"allow":false,"http_status":200,"jsonrpc_error":{"code":-32602,"message":"Unknown tool: printEnv"},"reasons":["tool not allowed"]}`,
			want: &Decision{HTTPStatus: 200, JSONRPCError: &JSONRPCError{Code: -32602, Message: "Unknown tool: printEnv"}, Reasons: []string{"tool not allowed"}},
		},
		{name: "header not a string", in: `{"allow":true,"http_status":200,"headers":{"X-A":1}}`, err: `header "X-A" is not a string`},
		{name: "jsonrpc_error code missing", in: `{"allow":false,"http_status":403,"jsonrpc_error":{"message":"x"}}`, err: "jsonrpc_error.code"},
		{name: "jsonrpc_error code a string", in: `{"allow":false,"http_status":403,"jsonrpc_error":{"code":"-32602","message":"x"}}`, err: "jsonrpc_error.code"},
		{name: "ratelimit entry not an object", in: `{"allow":true,"http_status":200,"ratelimit":["sub"]}`, err: "ratelimit[0] is not an object"},
		{name: "ratelimit entry without key", in: `{"allow":true,"http_status":200,"ratelimit":[{"limit":10,"period":60}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit entry with an empty key", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"","limit":10,"period":60}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit key not a string", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":7,"limit":10,"period":60}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit without limit", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"k","period":60}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit with a negative limit", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"k","limit":-1,"period":60}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit with period 0", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"k","limit":1,"period":0}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit with a fractional period", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"k","limit":1,"period":0.5}]}`, err: "ratelimit[0] is malformed"},
		{name: "ratelimit with a string burst", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"k","limit":1,"period":1,"burst":"2"}]}`, err: "ratelimit[0] is malformed"},
		{name: "second ratelimit entry bad", in: `{"allow":true,"http_status":200,"ratelimit":[{"key":"k","limit":1,"period":1},{"key":"k2"}]}`, err: "ratelimit[1] is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(tt.in))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&m))
			d, err := parse(ast.MustInterfaceToValue(m))
			if tt.err != "" {
				require.Error(t, err, "got decision %+v, want an error", d)
				assert.ErrorIs(t, err, ErrNoDecision)
				assert.Contains(t, err.Error(), tt.err)
				assert.Nil(t, d)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, d)
		})
	}
}

func TestIntOf(t *testing.T) {
	tests := []struct {
		in   any
		want int
		ok   bool
	}{
		{json.Number("200"), 200, true},
		{json.Number("-32602"), -32602, true},
		{json.Number("1.5"), 0, false},
		{json.Number("1e3"), 0, false},
		{json.Number("99999999999999999999"), 0, false},
		{429, 429, true},
		{int64(7), 7, true},
		{float64(404), 404, true},
		{float64(404.5), 0, false},
		{"200", 0, false},
		{nil, 0, false},
		{true, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T(%v)", tt.in, tt.in), func(t *testing.T) {
			got, err := intOf(ast.MustInterfaceToValue(tt.in))
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			} else {
				assert.Error(t, err, "got %d, want an error", got)
			}
		})
	}
}

func TestDecideConcurrent(t *testing.T) {
	ev := newEvaluator(t, testConfig(), nil)
	allow := input(t, routeStrict, "/mcp", jwtValid)
	deny := input(t, routeStrict, "/mcp", jwtMissing)
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				in, want := allow, true
				if (g+i)%2 == 1 {
					in, want = deny, false
				}
				d, err := ev.Decide(context.Background(), in)
				if err != nil {
					errs <- err
					return
				}
				if d.Allow != want {
					errs <- fmt.Errorf("got allow=%v, want %v", d.Allow, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestDecideCancelledContext(t *testing.T) {
	ev := newEvaluator(t, testConfig(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := ev.Decide(ctx, input(t, routeStrict, "/mcp", jwtValid))
	if err == nil {
		// OPA may finish a short evaluation before it looks at ctx; what
		// it must never do is hand back something half-made.
		require.NotNil(t, d)
		return
	}
	assert.True(t, errors.Is(err, ErrNoDecision), "got %v, want ErrNoDecision", err)
}

// BenchmarkDecide is the policy decision budget of DESIGN.md §7: verified
// claims in, decision out (≤ 20 µs median).
//
// The decision cache is off here: this is the cost of evaluating the policy.
// BenchmarkDecideCached is the cost of a repeated decision.
func BenchmarkDecide(b *testing.B) {
	ev := newEvaluator(b, testConfig(), nil)
	ev.cache = nil
	in := input(b, routeStrict, "/mcp", jwtValid)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for b.Loop() {
		d, err := ev.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("got %+v, %v; want allow", d, err)
		}
	}
}

// BenchmarkDecideDeny is the 401 path (builds the challenge).
func BenchmarkDecideDeny(b *testing.B) {
	ev := newEvaluator(b, testConfig(), nil)
	ev.cache = nil
	in := input(b, routeStrict, "/mcp", jwtMissing)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for b.Loop() {
		d, err := ev.Decide(ctx, in)
		if err != nil || d.HTTPStatus != 401 {
			b.Fatalf("got %+v, %v; want 401", d, err)
		}
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	ev := newEvaluator(b, testConfig(), nil)
	ev.cache = nil
	in := input(b, routeStrict, "/mcp", jwtValid)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := ev.Decide(ctx, in)
			if err != nil || !d.Allow {
				b.Errorf("got %+v, %v; want allow", d, err)
				return
			}
		}
	})
}

// BenchmarkDecideCached is a decision the evaluator made before for an
// input that agrees on everything the policy reads (cache.go): the cache
// key built from the input, and a lookup.
func BenchmarkDecideCached(b *testing.B) {
	ev := newEvaluator(b, testConfig(), nil)
	require.True(b, ev.Cached())
	in := input(b, routeStrict, "/mcp", jwtValid)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for b.Loop() {
		d, err := ev.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("got %+v, %v; want allow", d, err)
		}
	}
}

// BenchmarkEvalFloor is the baseline for the figures above, measured in the
// same run: a prepared query on the same input that reads one constant
// (DESIGN.md §7 quotes ~7 µs for it on the reference machine).
func BenchmarkEvalFloor(b *testing.B) {
	ctx := context.Background()
	pq, err := rego.New(
		rego.Query("data.floor.allow"),
		rego.Module("floor.rego", "package floor\n\nallow := true\n"),
	).PrepareForEval(ctx)
	require.NoError(b, err)
	in := input(b, routeStrict, "/mcp", jwtValid)
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for b.Loop() {
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(in))
		if err != nil || len(rs) != 1 {
			b.Fatalf("got %v, %v", rs, err)
		}
	}
}

// A built-in error (division by zero, concat of a number) makes the rule
// that hit it undefined: OPA's default, and what CEL's evaluation errors
// mean for agentgateway's rules (an erroring rule does not match). Compiled
// CEL relies on it, so the query does not run with strict built-in errors:
// evaluation errors other than built-in ones (conflicts, malformed
// decisions) still fail closed.
func TestBuiltinErrorMakesTheRuleUndefined(t *testing.T) {
	b, err := translate.Bundle(&translate.Result{Config: testConfig()}, map[string]string{"mcpgate/user/x.rego": `package mcpgate.authn

reject := x if {
	input.jwt.valid
	x := sprintf("over quota: %d", [1 / 0])
}
`})
	require.NoError(t, err)
	ev, err := New(context.Background(), b)
	require.NoError(t, err)
	d, err := ev.Decide(context.Background(), input(t, routeStrict, "/mcp", jwtValid))
	require.NoError(t, err)
	assert.True(t, d.Allow, "got %+v, want the erroring rule to be undefined", d)
}
