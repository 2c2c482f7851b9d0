package engine

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idp is an authorization server's discovery side: it serves its metadata
// at the paths a real provider would, counts fetches and records
// registrations.
type idp struct {
	srv      *httptest.Server
	oidcOnly bool        // serve only OpenID discovery (Keycloak-like)
	noReg    bool        // no registration_endpoint
	down     atomic.Bool // answer 503
	fetches  atomic.Int64

	mu      sync.Mutex
	regs    []*http.Request
	regBody []string
}

func newIDP(t testing.TB, realm string) *idp {
	t.Helper()
	p := &idp{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		issuer := p.srv.URL + realm
		switch {
		case p.down.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		case r.URL.Path == realm+"/register" && r.Method == http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			p.mu.Lock()
			p.regs = append(p.regs, r)
			p.regBody = append(p.regBody, string(b))
			p.mu.Unlock()
			writeJSON(w, http.StatusCreated, `{"client_id":"dyn-1","client_secret":"s"}`)
		case r.URL.Path == realm+oidcPath || (!p.oidcOnly && r.URL.Path == asPath+realm):
			p.fetches.Add(1)
			doc := map[string]any{
				"issuer":                           issuer,
				"authorization_endpoint":           issuer + "/auth?prompt=login",
				"token_endpoint":                   issuer + "/token",
				"jwks_uri":                         issuer + "/keys",
				"code_challenge_methods_supported": []string{"S256"},
			}
			if !p.noReg {
				doc["registration_endpoint"] = issuer + "/register"
			}
			b, _ := json.Marshal(doc)
			writeJSON(w, http.StatusOK, string(b))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// oauthYAML is the test configuration with its authentication policy
// replaced by spec (the lines under "spec:" of the AgentgatewayPolicy) and
// extra objects appended.
func oauthYAML(upstreamPort, spec, extra string) string {
	base := configYAML(upstreamPort, "http://unused.invalid/keys")
	i := strings.Index(base, "  targetRefs:\n  - group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: mcp\n  backend:")
	return base[:i] + spec + extra
}

func newOAuthEnv(t testing.TB, spec, extra string) *env {
	t.Helper()
	e := &env{upstream: newMCPServer(t), jwks: newJWKS(t)}
	port := e.upstream.srv.URL[strings.LastIndex(e.upstream.srv.URL, ":")+1:]
	e.bundle = buildBundle(t, oauthYAML(port, strings.ReplaceAll(spec, "JWKS_URL", e.jwks.URL+"/keys"), extra), nil)
	e.gw = New(Options{})
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)
	return e
}

func authnSpec(issuer, fields string) string {
	return `  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  backend:
    mcp:
      authentication:
        issuer: ` + issuer + `
        jwks:
          url: JWKS_URL
` + fields
}

func getJSON(t testing.TB, e *env, path string, hdr map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	resp := e.do(t, http.MethodGet, path, "", hdr)
	body := readBody(t, resp)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc), body)
	return resp.StatusCode, doc, resp.Header
}

func TestAuthServerMetadataKeycloak(t *testing.T) {
	p := newIDP(t, "/realms/mcp")
	p.oidcOnly = true
	issuer := p.srv.URL + "/realms/mcp"
	e := newOAuthEnv(t, authnSpec(issuer, "        provider: Keycloak\n"), "")

	// The protected resource names the gateway as its authorization server.
	status, prm, _ := getJSON(t, e, "/.well-known/oauth-protected-resource/mcp", nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []any{e.srv.URL + "/mcp"}, prm["authorization_servers"])
	assert.Equal(t, e.srv.URL+"/mcp", prm["resource"])

	// Every form a client derives from that URL answers the same document.
	for _, path := range []string{
		"/.well-known/oauth-authorization-server/mcp", // RFC 8414 path insertion
		"/.well-known/openid-configuration/mcp",       // OpenID, path inserted
		"/mcp/.well-known/openid-configuration",       // OpenID, path appended
		"/mcp/.well-known/oauth-authorization-server", // older clients
	} {
		t.Run(path, func(t *testing.T) {
			status, doc, hdr := getJSON(t, e, path, nil)
			require.Equal(t, http.StatusOK, status, doc)
			assert.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
			assert.Equal(t, e.srv.URL+"/mcp", doc["issuer"], "issuer is the URL the client asked about")
			assert.Equal(t, e.srv.URL+asPath+"/mcp"+regSuffix, doc["registration_endpoint"], "Keycloak registrations go through the gateway")
			assert.Equal(t, issuer+"/token", doc["token_endpoint"], "tokens come from the provider itself")
			assert.Equal(t, issuer+"/auth?prompt=login", doc["authorization_endpoint"])
		})
	}
	assert.Equal(t, int64(1), p.fetches.Load(), "the provider's document is cached")

	t.Run("registration is relayed to the provider without the client's headers", func(t *testing.T) {
		resp := e.do(t, http.MethodPost, asPath+"/mcp"+regSuffix, `{"client_name":"x","redirect_uris":["http://127.0.0.1:1/cb"]}`,
			map[string]string{"Authorization": "Bearer secret-for-the-gateway"})
		body := readBody(t, resp)
		require.Equal(t, http.StatusCreated, resp.StatusCode, body)
		assert.JSONEq(t, `{"client_id":"dyn-1","client_secret":"s"}`, body)
		p.mu.Lock()
		defer p.mu.Unlock()
		require.Len(t, p.regs, 1)
		assert.Empty(t, p.regs[0].Header.Get("Authorization"))
		assert.Equal(t, "application/json", p.regs[0].Header.Get("Content-Type"))
		assert.JSONEq(t, `{"client_name":"x","redirect_uris":["http://127.0.0.1:1/cb"]}`, p.regBody[0])
	})
	t.Run("registration preflight", func(t *testing.T) {
		resp := e.do(t, http.MethodOptions, asPath+"/mcp"+regSuffix, "", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "POST"})
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	})
	t.Run("registration takes POST only", func(t *testing.T) {
		resp := e.do(t, http.MethodGet, asPath+"/mcp"+regSuffix, "", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

func TestAuthServerMetadataAuth0AddsAudience(t *testing.T) {
	p := newIDP(t, "")
	e := newOAuthEnv(t, authnSpec(p.srv.URL+"/", "        audiences: [https://api.example/mcp]\n        provider: Auth0\n"), "")
	status, doc, _ := getJSON(t, e, asPath+"/mcp", nil)
	require.Equal(t, http.StatusOK, status, doc)
	u, err := url.Parse(doc["authorization_endpoint"].(string))
	require.NoError(t, err)
	assert.Equal(t, "https://api.example/mcp", u.Query().Get("audience"))
	assert.Equal(t, "login", u.Query().Get("prompt"), "the provider's own parameters stay")
	assert.Equal(t, p.srv.URL+"/register", doc["registration_endpoint"], "Auth0 registrations go to Auth0 directly")
	assert.Equal(t, e.srv.URL+"/mcp", doc["issuer"])
}

func TestAuthServerMetadataWithoutProvider(t *testing.T) {
	t.Run("RFC 8414 document, unchanged", func(t *testing.T) {
		p := newIDP(t, "/tenant")
		issuer := p.srv.URL + "/tenant"
		e := newOAuthEnv(t, authnSpec(issuer, ""), "")
		_, prm, _ := getJSON(t, e, "/.well-known/oauth-protected-resource/mcp", nil)
		assert.Equal(t, []any{issuer}, prm["authorization_servers"], "no provider: clients go to the issuer")
		status, doc, _ := getJSON(t, e, asPath+"/mcp", nil)
		require.Equal(t, http.StatusOK, status, doc)
		assert.Equal(t, issuer, doc["issuer"])
		assert.Equal(t, issuer+"/register", doc["registration_endpoint"])
	})
	t.Run("falls back to OpenID discovery", func(t *testing.T) {
		p := newIDP(t, "/tenant")
		p.oidcOnly = true
		e := newOAuthEnv(t, authnSpec(p.srv.URL+"/tenant", ""), "")
		status, doc, _ := getJSON(t, e, asPath+"/mcp", nil)
		require.Equal(t, http.StatusOK, status, doc)
		assert.Equal(t, p.srv.URL+"/tenant/token", doc["token_endpoint"])
	})
}

func TestAuthServerMetadataClientIDShortCircuitsRegistration(t *testing.T) {
	p := newIDP(t, "/realms/mcp")
	p.noReg = true
	e := newOAuthEnv(t, authnSpec(p.srv.URL+"/realms/mcp", "        provider: Keycloak\n        clientId: pre-registered\n"), "")
	_, doc, _ := getJSON(t, e, asPath+"/mcp", nil)
	assert.Equal(t, e.srv.URL+asPath+"/mcp"+regSuffix, doc["registration_endpoint"])

	resp := e.do(t, http.MethodPost, asPath+"/mcp"+regSuffix, `{"client_id":"mine","redirect_uris":["http://localhost:33418/callback"],"client_name":"agent"}`, nil)
	body := readBody(t, resp)
	require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	assert.JSONEq(t, `{"client_id":"pre-registered","client_id_issued_at":0,"token_endpoint_auth_method":"none",
		"grant_types":["authorization_code"],"response_types":["code"],"redirect_uris":["http://localhost:33418/callback"]}`, body)
	assert.Empty(t, p.regs, "nothing is registered at the provider")

	resp = e.do(t, http.MethodPost, asPath+"/mcp"+regSuffix, `not json`, nil)
	body = readBody(t, resp)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Contains(t, body, `"redirect_uris":[]`)
}

func TestAuthServerMetadataKeycloakWithoutRegistration(t *testing.T) {
	p := newIDP(t, "/realms/mcp")
	p.noReg = true
	e := newOAuthEnv(t, authnSpec(p.srv.URL+"/realms/mcp", "        provider: Keycloak\n"), "")
	status, doc, _ := getJSON(t, e, asPath+"/mcp", nil)
	require.Equal(t, http.StatusOK, status)
	_, has := doc["registration_endpoint"]
	assert.False(t, has, "no registration is advertised where there is none to relay")
	resp := e.do(t, http.MethodPost, asPath+"/mcp"+regSuffix, `{"redirect_uris":[]}`, nil)
	body := readBody(t, resp)
	assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	assert.Contains(t, body, "set clientId")
}

func TestAuthServerMetadataUnreachable(t *testing.T) {
	p := newIDP(t, "/realms/mcp")
	issuer := p.srv.URL + "/realms/mcp"
	e := newOAuthEnv(t, authnSpec(issuer, "        provider: Keycloak\n"), "")
	p.down.Store(true)
	status, doc, _ := getJSON(t, e, asPath+"/mcp", nil)
	assert.Equal(t, http.StatusBadGateway, status)
	assert.Equal(t, "temporarily_unavailable", doc["error"])
	assert.Contains(t, doc["error_description"], issuer, "the error names the provider that failed")

	// Once fetched, a copy outlives an outage.
	p.down.Store(false)
	clock := time.Now()
	e.gw.oauth.now = func() time.Time { return clock }
	clock = clock.Add(asRetryInterval)
	status, _, _ = getJSON(t, e, asPath+"/mcp", nil)
	require.Equal(t, http.StatusOK, status)
	p.down.Store(true)
	clock = clock.Add(asCacheTTL + time.Second)
	status, doc, _ = getJSON(t, e, asPath+"/mcp", nil)
	assert.Equal(t, http.StatusOK, status, "stale copy served while the provider is down")
	assert.Equal(t, e.srv.URL+"/mcp", doc["issuer"])
}

func TestAuthServerMetadataUnknownResource(t *testing.T) {
	p := newIDP(t, "")
	e := newOAuthEnv(t, authnSpec(p.srv.URL, ""), "")
	for _, path := range []string{asPath + "/open", asPath + "/nope", "/nope/.well-known/openid-configuration"} {
		resp := e.do(t, http.MethodGet, path, "", nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	assert.Zero(t, p.fetches.Load())
}

func TestParseWellKnown(t *testing.T) {
	for _, tc := range []struct {
		path     string
		kind     int
		resource string
	}{
		{"/.well-known/oauth-protected-resource", wkResource, ""},
		{"/.well-known/oauth-protected-resource/mcp", wkResource, "/mcp"},
		{"/.well-known/oauth-protected-resource-evil", wkNone, ""},
		{"/.well-known/oauth-authorization-server", wkAuthServer, ""},
		{"/.well-known/oauth-authorization-server/", wkAuthServer, ""},
		{"/.well-known/oauth-authorization-server/a/b", wkAuthServer, "/a/b"},
		{"/.well-known/oauth-authorization-server/mcp/client-registration", wkRegister, "/mcp"},
		{"/.well-known/oauth-authorization-server/client-registration", wkRegister, ""},
		{"/.well-known/openid-configuration/mcp", wkAuthServer, "/mcp"},
		{"/mcp/.well-known/openid-configuration", wkAuthServer, "/mcp"},
		{"/mcp/.well-known/oauth-authorization-server/", wkAuthServer, "/mcp"},
		{"/mcp", wkNone, ""},
		{"/mcp/.well-known/other", wkNone, ""},
	} {
		kind, res := parseWellKnown(tc.path)
		assert.Equal(t, tc.kind, kind, tc.path)
		assert.Equal(t, tc.resource, res, tc.path)
	}
}

const scopedSpec = `        audiences: [` + testAudience + `]
        provider: Keycloak
        requiredScopes: [mcp:read]
        toolScopes:
          echo: [mcp:write]
`

func TestStepUpInsufficientScope(t *testing.T) {
	e := newOAuthEnv(t, authnSpec(testIssuer, scopedSpec), "")
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`
	bearer := func(scopes any) map[string]string {
		return map[string]string{"Authorization": "Bearer " + signToken(signingKey(), jwt.MapClaims{"scp": scopes})}
	}

	t.Run("401 names the scopes", func(t *testing.T) {
		resp := e.post(t, toolsList, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer resource_metadata="`+e.srv.URL+`/.well-known/oauth-protected-resource/mcp", scope="mcp:read"`, resp.Header.Get("WWW-Authenticate"))
	})
	t.Run("metadata lists them", func(t *testing.T) {
		_, prm, _ := getJSON(t, e, "/.well-known/oauth-protected-resource/mcp", nil)
		assert.Equal(t, []any{"mcp:read", "mcp:write"}, prm["scopes_supported"])
	})
	t.Run("a token without the route scope gets 403", func(t *testing.T) {
		resp := e.post(t, toolsList, bearer([]string{"other"}))
		body := readBody(t, resp)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
		assert.Equal(t, `Bearer error="insufficient_scope", scope="mcp:read", resource_metadata="`+e.srv.URL+`/.well-known/oauth-protected-resource/mcp", error_description="insufficient scope: missing mcp:read"`,
			resp.Header.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"insufficient scope: missing mcp:read"}`, body)
	})
	t.Run("the route scope lists tools", func(t *testing.T) {
		resp := e.post(t, toolsList, bearer([]string{"mcp:read"}))
		assert.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
	})
	t.Run("a scoped tool needs its scope too", func(t *testing.T) {
		resp := e.post(t, call, bearer([]string{"mcp:read"}))
		require.Equal(t, http.StatusForbidden, resp.StatusCode, readBody(t, resp))
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `scope="mcp:read mcp:write"`)
		for _, r := range e.upstream.received() {
			assert.NotEqual(t, "tools/call", r.RPC, "a refused call never reaches the upstream")
		}
		resp = e.post(t, call, bearer("mcp:read mcp:write")) // scp as a string
		assert.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
		var called bool
		for _, r := range e.upstream.received() {
			called = called || r.RPC == "tools/call"
		}
		assert.True(t, called, "the call reached the upstream")
	})
}

func TestResourceIsAnAcceptedAudience(t *testing.T) {
	const resource = "http://mcp.test/mcp"
	spec := "        provider: Keycloak\n        resourceMetadata:\n          resource: " + resource + "\n"
	e := newOAuthEnv(t, authnSpec(testIssuer, spec), "")
	for _, tc := range []struct {
		aud  any
		want int
	}{
		{resource, http.StatusOK},
		{[]string{"other", resource}, http.StatusOK},
		{"mcp-agent", http.StatusUnauthorized}, // minted for another resource
		{nil, http.StatusUnauthorized},
	} {
		resp := e.post(t, toolsList, map[string]string{"Authorization": "Bearer " + signToken(signingKey(), jwt.MapClaims{"aud": tc.aud})})
		body := readBody(t, resp)
		assert.Equal(t, tc.want, resp.StatusCode, "aud %v: %s", tc.aud, body)
	}
}

const corsPolicy = `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: cors
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  traffic:
    cors:
      allowOrigins: ["http://localhost:6274", "https://*.agents.example"]
      allowHeaders: [authorization, content-type, mcp-protocol-version, mcp-session-id]
      exposeHeaders: [x-ratelimit-remaining]
      maxAge: 600
`

func TestCORS(t *testing.T) {
	e := newOAuthEnv(t, authnSpec(testIssuer, "        provider: Keycloak\n"), corsPolicy)
	const inspector = "http://localhost:6274"

	t.Run("preflight from an allowed origin", func(t *testing.T) {
		resp := e.do(t, http.MethodOptions, "/mcp", "", map[string]string{
			"Origin": inspector, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
		require.Equal(t, http.StatusNoContent, resp.StatusCode, readBody(t, resp))
		assert.Equal(t, inspector, resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "GET, POST, DELETE, OPTIONS", resp.Header.Get("Access-Control-Allow-Methods"))
		assert.Equal(t, "authorization, content-type, mcp-protocol-version, mcp-session-id", resp.Header.Get("Access-Control-Allow-Headers"))
		assert.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))
		assert.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"))
	})
	t.Run("the 401 is readable by the browser client", func(t *testing.T) {
		resp := e.post(t, toolsList, map[string]string{"Origin": inspector})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, inspector, resp.Header.Get("Access-Control-Allow-Origin"))
		expose := resp.Header.Get("Access-Control-Expose-Headers")
		for _, h := range []string{"www-authenticate", "mcp-session-id", "x-ratelimit-remaining"} {
			assert.Contains(t, expose, h)
		}
		assert.Contains(t, resp.Header.Values("Vary"), "Origin")
	})
	t.Run("an allowed origin passes the Origin check", func(t *testing.T) {
		resp := e.post(t, toolsList, authed("Origin", "https://a.agents.example"))
		assert.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
		assert.Equal(t, "https://a.agents.example", resp.Header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("other origins are refused", func(t *testing.T) {
		for _, o := range []string{"http://evil.example", "https://agents.example", "http://a.agents.example", "http://localhost:6275"} {
			resp := e.post(t, toolsList, authed("Origin", o))
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, o)
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), o)
			pre := e.do(t, http.MethodOptions, "/mcp", "", map[string]string{"Origin": o, "Access-Control-Request-Method": "POST"})
			assert.Empty(t, pre.Header.Get("Access-Control-Allow-Origin"), o)
		}
	})
	t.Run("discovery follows the route's policy", func(t *testing.T) {
		resp := e.do(t, http.MethodGet, "/.well-known/oauth-protected-resource/mcp", "", map[string]string{"Origin": inspector})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, inspector, resp.Header.Get("Access-Control-Allow-Origin"))
		resp = e.do(t, http.MethodGet, "/.well-known/oauth-protected-resource/mcp", "", map[string]string{"Origin": "http://evil.example"})
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
}

func TestNoCORSPolicyKeepsSameOrigin(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do(t, http.MethodOptions, "/mcp", "", map[string]string{"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}
