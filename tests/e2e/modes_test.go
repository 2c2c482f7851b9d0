package e2e

import (
	"testing"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// Optional admits callers without a token but rejects a bad one; Permissive
// never rejects. A valid token is accepted in every mode.
func TestAuthenticationModes(t *testing.T) {
	d, u := dex(t), upstream(t)
	good := agentToken(t, d)
	_, _, parts := jwtParts(t, good)
	bad := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA" // signature broken

	for _, tc := range []struct {
		mode        string
		none, wrong int // 200 or 401
	}{
		{"Strict", 401, 401},
		{"Optional", 200, 401},
		{"Permissive", 200, 200},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			g := gatewayFor(t, harness.Config{UpstreamPort: u.Port(), Auth: harness.ForDex(d, tc.mode)})
			mcpURL := g.URL() + "/mcp"
			check := func(t *testing.T, token string, want int) {
				r := walkthroughCurl(t, mcpURL, token)
				if want == 200 {
					requireToolList(t, r)
				} else {
					requireUnauthorized(t, g, r)
				}
			}
			t.Run("no token", func(t *testing.T) { check(t, "", tc.none) })
			t.Run("invalid token", func(t *testing.T) { check(t, bad, tc.wrong) })
			t.Run("valid token", func(t *testing.T) { check(t, good, 200) })
		})
	}
}

// Without an authentication policy the route is open (the walkthrough's
// state before Step 3).
func TestNoAuthenticationPolicy(t *testing.T) {
	u := upstream(t)
	g := gatewayFor(t, harness.Config{UpstreamPort: u.Port()})
	requireToolList(t, walkthroughCurl(t, g.URL()+"/mcp", ""))
}

// The keycloak Service can come from the command line instead of a Service
// object, and the JWKS from a URL instead of a backendRef.
func TestJWKSSources(t *testing.T) {
	d, u := dex(t), upstream(t)
	tok := agentToken(t, d)
	for _, tc := range []struct {
		name string
		auth func() *harness.AuthConfig
		args []string
	}{
		{"backendRef via --resolve", func() *harness.AuthConfig {
			a := harness.ForDex(d, "Strict")
			a.JWKS = harness.JWKSBackendRefNoService
			return a
		}, harness.ResolveArg(d.Port())},
		{"jwks url", func() *harness.AuthConfig {
			a := harness.ForDex(d, "Strict")
			a.JWKS, a.JWKSURL = harness.JWKSURL, d.JWKSURL()
			return a
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewayFor(t, harness.Config{UpstreamPort: u.Port(), Auth: tc.auth()}, tc.args...)
			requireUnauthorized(t, g, walkthroughCurl(t, g.URL()+"/mcp", ""))
			requireToolList(t, walkthroughCurl(t, g.URL()+"/mcp", tok))
		})
	}
}
