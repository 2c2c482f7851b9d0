package e2e

import (
	"encoding/json"
	"mime"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// The walkthrough's Step 4, as curl sends it: without a token the gateway
// answers 401 with a Bearer challenge; with the token from Dex's password
// grant it answers the tool list, although curl sends Accept: */*, no
// initialize and no session.
func TestWalkthroughCurl(t *testing.T) {
	d, g := dex(t), strictGateway(t)
	mcpURL := g.URL() + "/mcp"

	t.Run("without token 401", func(t *testing.T) {
		requireUnauthorized(t, g, walkthroughCurl(t, mcpURL, ""))
	})
	t.Run("with token 200", func(t *testing.T) {
		requireToolList(t, walkthroughCurl(t, mcpURL, agentToken(t, d)))
	})
	t.Run("same token twice", func(t *testing.T) {
		// The second request may hit the verified-token cache; it must
		// answer the same way.
		tok := agentToken(t, d)
		requireToolList(t, walkthroughCurl(t, mcpURL, tok))
		requireToolList(t, walkthroughCurl(t, mcpURL, tok))
	})
	t.Run("every realm user", func(t *testing.T) {
		// Authentication alone admits any user of the realm, whatever
		// their groups (the walkthrough adds no authorization rules).
		for _, u := range [][2]string{{"admin-user", "admin-pass"}, {"guest-user", "guest-pass"}} {
			tok := d.PasswordToken(t, "mcp-agent", "agent-secret-123", u[0], u[1])
			requireToolList(t, walkthroughCurl(t, mcpURL, tok))
		}
	})
}

// The 401's resource_metadata URL serves RFC 9728 protected resource metadata
// built from the policy's resourceMetadata (camelCase → snake_case). With
// provider: Keycloak the authorization server it names is the gateway
// itself, as agentgateway does; the gateway serves Dex's OpenID discovery
// there, fixed up (TestWalkthroughAuthServerMetadata).
func TestProtectedResourceMetadata(t *testing.T) {
	g := strictGateway(t)
	url := g.URL() + "/.well-known/oauth-protected-resource/mcp"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", url, resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("metadata is not JSON: %v", err)
	}
	want := map[string]any{
		"resource":                 "http://mcp-server.default.svc.cluster.local",
		"authorization_servers":    []any{g.URL() + "/mcp"},
		"scopes_supported":         []any{"openid"},
		"bearer_methods_supported": []any{"header"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		for _, camel := range []string{"scopesSupported", "bearerMethodsSupported", "authorizationServers"} {
			if k == camel {
				t.Errorf("metadata has camelCase key %q; RFC 9728 keys are snake_case", k)
			}
		}
	}
}

// The quickstart's objects (what make demo serves) compile: every file of
// the folder is a gateway object, and they translate into a bundle.
func TestQuickstartCompiles(t *testing.T) {
	bin, err := harness.GatewayBin()
	harness.Require(t, err)
	root, err := harness.RepoRoot()
	harness.Require(t, err)
	out, err := exec.Command(bin, "bundle", "-f", filepath.Join(root, "examples", "quickstart"), "-o", filepath.Join(t.TempDir(), "bundle.tar.gz")).CombinedOutput()
	if err != nil {
		t.Fatalf("gateway bundle -f examples/quickstart: %v\n%s", err, out)
	}
}
