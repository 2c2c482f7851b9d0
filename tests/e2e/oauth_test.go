package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// OAuth discovery with real clients and a real authorization server: ORY
// Hydra issues client_credentials tokens; the clients start with no token
// and only the MCP URL and their credentials, and find everything else from
// the gateway's 401.
//
// The policy: every request needs mcp:read; echo needs mcp:write too
// (step-up); get-env needs mcp:admin, which Hydra never grants this client.
// Tokens must carry the gateway's resource URL as audience (RFC 8707).

// The clients Hydra knows: the TypeScript SDK authenticates with HTTP Basic,
// the go-sdk prefers client_secret_post when the server offers both, and
// Hydra accepts only the method registered.
var (
	oauthClient   = harness.HydraClient{ID: "mcp-m2m", Secret: "m2m-secret-123", Scope: "mcp:read mcp:write"}
	oauthClientGo = harness.HydraClient{ID: "mcp-m2m-go", Secret: "m2m-go-secret-456", Scope: "mcp:read mcp:write", AuthMethod: "client_secret_post"}
)

type oauthSetup struct {
	hydra    *harness.Hydra
	gw       *harness.Gateway
	mcpURL   string // also the protected resource (RFC 8707)
	provider string
}

// startOAuth starts Hydra and a gateway in front of the shared
// server-everything. provider "" makes clients read Hydra's metadata from
// Hydra; "Keycloak" makes the gateway the authorization server clients see
// (its metadata proxy fetches Hydra's OpenID discovery, as for Keycloak).
func startOAuth(t *testing.T, provider string, extraYAML ...string) *oauthSetup {
	t.Helper()
	u := upstream(t)
	h := harness.StartHydra(t)
	port, err := harness.FreePort()
	harness.Require(t, err)
	s := &oauthSetup{hydra: h, mcpURL: fmt.Sprintf("http://127.0.0.1:%d/mcp", port), provider: provider}
	for _, c := range []harness.HydraClient{oauthClient, oauthClientGo} {
		c.Audience = []string{s.mcpURL, "urn:another-resource"}
		h.CreateClient(t, c)
	}
	providerLine := ""
	if provider != "" {
		providerLine = "        provider: " + provider + "\n"
	}
	policy := `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: mcp-oauth
  namespace: agentgateway-system
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp-route
  backend:
    mcp:
      authentication:
        issuer: ` + h.Issuer() + `
        jwks:
          url: ` + h.JWKSURL() + `
        mode: Strict
` + providerLine + `        resourceMetadata:
          resource: ` + s.mcpURL + `
          resourceName: everything behind mcpgate
        requiredScopes: [mcp:read]
        toolScopes:
          echo: [mcp:write]
          get-env: [mcp:admin]
`
	cfg := harness.Config{UpstreamPort: u.Port()}
	s.gw = harness.StartGatewayOnPort(t, port, map[string]string{"config.yaml": cfg.YAML() + policy + strings.Join(extraYAML, "")})
	return s
}

func (s *oauthSetup) prmURL() string { return s.gw.URL() + "/.well-known/oauth-protected-resource/mcp" }

// exchange is one HTTP exchange a client made.
type exchange struct {
	Method          string `json:"method"`
	URL             string `json:"url"`
	Status          int    `json:"status"`
	WWWAuthenticate string `json:"www_authenticate"`
}

// checkDiscovery asserts the path every client must take: an unauthenticated
// request answered 401 with the metadata URL and the scope, the protected
// resource metadata, the authorization server's metadata (from the gateway
// with a provider, from Hydra without), then Hydra's token endpoint.
func (s *oauthSetup) checkDiscovery(t *testing.T, ex []exchange) {
	t.Helper()
	find := func(what string, match func(e exchange) bool) int {
		for i, e := range ex {
			if match(e) {
				return i
			}
		}
		t.Errorf("no %s among the client's requests:\n%s", what, dump(ex))
		return -1
	}
	first := find("401 from the gateway", func(e exchange) bool { return e.URL == s.mcpURL && e.Status == http.StatusUnauthorized })
	if first >= 0 {
		www := ex[first].WWWAuthenticate
		if !strings.Contains(www, `resource_metadata="`+s.prmURL()+`"`) || !strings.Contains(www, `scope="mcp:read"`) {
			t.Errorf("401 WWW-Authenticate = %q, want resource_metadata=%q and scope=\"mcp:read\"", www, s.prmURL())
		}
	}
	prm := find("protected resource metadata", func(e exchange) bool { return e.URL == s.prmURL() && e.Status == http.StatusOK })
	asPrefix := s.hydra.Issuer() + "/.well-known/"
	if s.provider != "" {
		asPrefix = s.gw.URL() + "/.well-known/oauth-authorization-server/mcp"
	}
	as := find("authorization server metadata at "+asPrefix, func(e exchange) bool {
		return e.Method == http.MethodGet && strings.HasPrefix(e.URL, asPrefix) && e.Status == http.StatusOK
	})
	tok := find("token from Hydra", func(e exchange) bool { return e.URL == s.hydra.TokenURL() && e.Status == http.StatusOK })
	if !(first < prm && prm < as && as < tok) {
		t.Errorf("discovery out of order (401 %d, resource metadata %d, AS metadata %d, token %d):\n%s", first, prm, as, tok, dump(ex))
	}
}

func dump(ex []exchange) string {
	var b strings.Builder
	for _, e := range ex {
		fmt.Fprintf(&b, "  %s %s -> %d %s\n", e.Method, e.URL, e.Status, e.WWWAuthenticate)
	}
	return b.String()
}

// stepUp finds the 403 that asked for more scope on a tool call.
func stepUp(ex []exchange, scope string) bool {
	for _, e := range ex {
		if e.Status == http.StatusForbidden && strings.Contains(e.WWWAuthenticate, `error="insufficient_scope"`) &&
			strings.Contains(e.WWWAuthenticate, `scope="`+scope+`"`) {
			return true
		}
	}
	return false
}

type tsResult struct {
	Tools []string `json:"tools"`
	Calls []struct {
		Name    string `json:"name"`
		OK      bool   `json:"ok"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Error *struct {
			Name    string `json:"name"`
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"calls"`
	Exchanges []exchange `json:"exchanges"`
	Tokens    []struct {
		Requested struct {
			Scope    *string `json:"scope"`
			Resource *string `json:"resource"`
		} `json:"requested"`
		Claims map[string]any `json:"claims"`
	} `json:"tokens"`
	Error *struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
}

// runTSClient runs tests/node/oauth-client.mjs.
func runTSClient(t *testing.T, mcpURL string, c harness.HydraClient, calls ...string) tsResult {
	t.Helper()
	node, err := harness.NodeBin()
	harness.Require(t, err)
	mods, err := harness.NodeModules()
	harness.Require(t, err)
	if _, err := os.Stat(filepath.Join(mods, "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		harness.Require(t, fmt.Errorf("%w: @modelcontextprotocol/sdk not installed (run scripts/install-tools.sh)", harness.ErrToolMissing))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	script := filepath.Join(filepath.Dir(mods), "oauth-client.mjs")
	cmd := exec.CommandContext(ctx, node, append([]string{script, mcpURL, c.ID, c.Secret}, calls...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oauth-client.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	var res tsResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("oauth-client.mjs output is not JSON (%v):\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("TypeScript client exchanges:\n%s", dump(res.Exchanges))
	return res
}

// The official TypeScript SDK client (StreamableHTTPClientTransport with a
// client_credentials authProvider) discovers, authenticates, steps up and
// is refused a scope it cannot get.
func TestOAuthTypeScriptSDKClient(t *testing.T) {
	for _, provider := range []string{"", "Keycloak"} {
		name := "authorization server direct"
		if provider != "" {
			name = "through the gateway's metadata proxy (provider " + provider + ")"
		}
		t.Run(name, func(t *testing.T) {
			s := startOAuth(t, provider)
			res := runTSClient(t, s.mcpURL, oauthClient,
				"get-sum", `{"a":2,"b":3}`,
				"echo", `{"message":"stepped up"}`,
				"get-env", `{}`)
			if res.Error != nil {
				t.Fatalf("client failed: %s: %s", res.Error.Name, res.Error.Message)
			}
			s.checkDiscovery(t, res.Exchanges)
			for _, want := range []string{"get-sum", "echo", "get-env"} {
				if !slices.Contains(res.Tools, want) {
					t.Errorf("tools = %v, want %s among them", res.Tools, want)
				}
			}
			if len(res.Tokens) == 0 || res.Tokens[0].Claims == nil {
				t.Fatalf("no token obtained: %+v", res.Tokens)
			}
			first := res.Tokens[0]
			if first.Requested.Resource == nil || *first.Requested.Resource != s.mcpURL {
				t.Errorf("token request resource = %v, want %s (from the metadata)", first.Requested.Resource, s.mcpURL)
			}
			if aud, _ := first.Claims["aud"].([]any); !slices.Contains(aud, any(s.mcpURL)) {
				t.Errorf("token aud = %v, want %s", first.Claims["aud"], s.mcpURL)
			}
			if scp := first.Claims["scp"]; fmt.Sprint(scp) != "[mcp:read]" {
				t.Errorf("first token scp = %v, want [mcp:read] (the 401's scope)", scp)
			}
			if len(res.Calls) != 3 {
				t.Fatalf("calls = %+v, want 3", res.Calls)
			}
			if c := res.Calls[0]; !c.OK || len(c.Content) == 0 || !strings.Contains(c.Content[0].Text, "5") {
				t.Errorf("get-sum = %+v, want ok with 5", c)
			}
			// echo: 403 insufficient_scope, a new token with both scopes,
			// the retried call succeeds.
			if !stepUp(res.Exchanges, "mcp:read mcp:write") {
				t.Errorf("no 403 insufficient_scope asking for \"mcp:read mcp:write\":\n%s", dump(res.Exchanges))
			}
			if c := res.Calls[1]; !c.OK || len(c.Content) == 0 || !strings.Contains(c.Content[0].Text, "stepped up") {
				t.Errorf("echo after step-up = %+v, want ok", c)
			}
			if len(res.Tokens) < 2 || fmt.Sprint(res.Tokens[1].Claims["scp"]) != "[mcp:read mcp:write]" {
				t.Errorf("tokens = %+v, want a second token with scp [mcp:read mcp:write]", res.Tokens)
			}
			// get-env: the gateway asks for mcp:admin; Hydra refuses it, so
			// the client gives up and reports the failure.
			if !stepUp(res.Exchanges, "mcp:admin mcp:read") {
				t.Errorf("no 403 insufficient_scope asking for \"mcp:admin mcp:read\":\n%s", dump(res.Exchanges))
			}
			if c := res.Calls[2]; c.OK || c.Error == nil || !strings.Contains(strings.ToLower(c.Error.Message), "scope") {
				t.Errorf("get-env = %+v, want a failure about the scope", c)
			}
		})
	}
}

// recorder is an http.RoundTripper that records exchanges for the go-sdk
// client. It carries the one accommodation Hydra needs, as the TypeScript
// client does: go-sdk v1.8.0's client_credentials handler sends no RFC 8707
// resource, and Hydra ignores resource anyway, so token requests get
// Hydra's audience parameter set to the resource the client read from the
// protected resource metadata on its way (nothing is hand-fed).
type recorder struct {
	mu       sync.Mutex
	ex       []exchange
	resource string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		form, _ := url.ParseQuery(string(b))
		r.mu.Lock()
		res := r.resource
		r.mu.Unlock()
		if form.Get("grant_type") == "client_credentials" && res != "" && form.Get("audience") == "" {
			form.Set("audience", res)
		}
		enc := form.Encode()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(strings.NewReader(enc))
		req.ContentLength = int64(len(enc))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.ex = append(r.ex, exchange{Method: req.Method, URL: req.URL.String(), Status: resp.StatusCode, WWWAuthenticate: resp.Header.Get("WWW-Authenticate")})
	r.mu.Unlock()
	if resp.StatusCode == http.StatusOK && strings.Contains(req.URL.Path, "/.well-known/oauth-protected-resource") {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var prm struct {
			Resource string `json:"resource"`
		}
		if json.Unmarshal(b, &prm) == nil {
			r.mu.Lock()
			r.resource = prm.Resource
			r.mu.Unlock()
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, nil
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ex)
}

// The Go SDK's client_credentials OAuth handler (auth/extauth, v1.8.0)
// discovers through the gateway's 401, steps up on 403 insufficient_scope
// (it unions the scopes it had with the challenged ones) and fails cleanly
// when the authorization server refuses a scope.
func TestOAuthGoSDKClient(t *testing.T) {
	for _, provider := range []string{"", "Keycloak"} {
		name := "authorization server direct"
		if provider != "" {
			name = "through the gateway's metadata proxy (provider " + provider + ")"
		}
		t.Run(name, func(t *testing.T) {
			s := startOAuth(t, provider)
			rec := &recorder{}
			httpClient := &http.Client{Transport: rec, Timeout: 30 * time.Second}
			handler, err := extauth.NewClientCredentialsHandler(&extauth.ClientCredentialsHandlerConfig{
				Credentials: &oauthex.ClientCredentials{
					ClientID:         oauthClientGo.ID,
					ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: oauthClientGo.Secret},
				},
				HTTPClient: httpClient,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testContext(t, 60*time.Second)
			client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-oauth-e2e", Version: "v0.0.0"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint:     s.mcpURL,
				HTTPClient:   httpClient,
				OAuthHandler: handler,
				MaxRetries:   -1,
			}, nil)
			if err != nil {
				t.Fatalf("connect: %v\n%s", err, dump(rec.exchanges()))
			}
			defer cs.Close()
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			if len(tools.Tools) == 0 {
				t.Errorf("no tools listed")
			}
			s.checkDiscovery(t, rec.exchanges())

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 3}})
			if err != nil || res.IsError || !strings.Contains(textOf(res), "5") {
				t.Errorf("get-sum = %v, %v; want 5", res, err)
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "stepped up"}})
			if err != nil || res.IsError || !strings.Contains(textOf(res), "stepped up") {
				t.Errorf("echo after step-up = %v, %v; want ok", res, err)
			}
			if !stepUp(rec.exchanges(), "mcp:read mcp:write") {
				t.Errorf("no 403 insufficient_scope asking for \"mcp:read mcp:write\":\n%s", dump(rec.exchanges()))
			}
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
			if err == nil || !strings.Contains(err.Error(), "scope") {
				t.Errorf("get-env: err = %v, want a failure about the scope", err)
			}
			if !stepUp(rec.exchanges(), "mcp:admin mcp:read") {
				t.Errorf("no 403 insufficient_scope asking for \"mcp:admin mcp:read\":\n%s", dump(rec.exchanges()))
			}
			t.Logf("go-sdk client exchanges:\n%s", dump(rec.exchanges()))
		})
	}
}

// The MCP Inspector CLI with a token obtained beforehand: enough scope
// lists and calls; audience checked.
func TestOAuthInspectorCLIWithToken(t *testing.T) {
	s := startOAuth(t, "")
	tok := s.hydra.Token(t, oauthClient, "mcp:read mcp:write", s.mcpURL)
	auth := "Authorization: Bearer " + tok
	out := runInspector(t, s.mcpURL, "--transport", "http", "--method", "tools/list", "--header", auth)
	if !bytes.Contains(out, []byte(`"get-sum"`)) {
		t.Errorf("tools/list output lacks get-sum:\n%s", out)
	}
	out = runInspector(t, s.mcpURL, "--transport", "http", "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=from the inspector", "--header", auth)
	if !bytes.Contains(out, []byte("from the inspector")) {
		t.Errorf("tools/call echo output lacks the echo:\n%s", out)
	}
}

// RFC 8707: a token minted for another resource is refused even though the
// same authorization server signed it; the resource's own token passes.
func TestOAuthAudienceIsTheResource(t *testing.T) {
	s := startOAuth(t, "")
	list := `{"jsonrpc":"2.0","method":"tools/list","id":1}`
	for _, tc := range []struct {
		name     string
		audience []string
		want     int
	}{
		{"aud is this resource", []string{s.mcpURL}, http.StatusOK},
		{"aud is another resource", []string{"urn:another-resource"}, http.StatusUnauthorized},
		{"no aud", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := curlPost(t, s.mcpURL, s.hydra.Token(t, oauthClient, "mcp:read", tc.audience...), list)
			if r.Status != tc.want {
				t.Fatalf("got %s\nwant HTTP %d", r, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.Contains(string(r.Body), "invalid audience") {
				t.Errorf("401 body = %s, want the reason invalid audience", r.Body)
			}
		})
	}
}

// The walkthrough (provider: Keycloak, Dex playing Keycloak): the gateway
// serves the authorization server metadata by fetching Dex's OpenID
// discovery, with the issuer rewritten to the gateway and Dex's endpoints
// kept.
func TestWalkthroughAuthServerMetadata(t *testing.T) {
	d, g := dex(t), strictGateway(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server/mcp", "/.well-known/openid-configuration/mcp", "/mcp/.well-known/openid-configuration"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(g.URL() + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var doc map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: status %d, %v", path, resp.StatusCode, err)
			}
			if doc["issuer"] != g.URL()+"/mcp" {
				t.Errorf("issuer = %v, want %s", doc["issuer"], g.URL()+"/mcp")
			}
			if doc["token_endpoint"] != d.TokenURL() {
				t.Errorf("token_endpoint = %v, want Dex's %s", doc["token_endpoint"], d.TokenURL())
			}
			if doc["jwks_uri"] != d.JWKSURL() {
				t.Errorf("jwks_uri = %v, want Dex's %s", doc["jwks_uri"], d.JWKSURL())
			}
		})
	}
}

// CORS for browser-based clients (the Inspector's web UI runs on
// http://localhost:6274): the real binary loads traffic.cors, answers the
// preflight, lets the browser read the 401's challenge and the discovery
// documents, and still refuses other origins.
func TestOAuthCORSForBrowserClients(t *testing.T) {
	const inspector = "http://localhost:6274"
	s := startOAuth(t, "Keycloak", `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: browser-clients
  namespace: agentgateway-system
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp-route
  traffic:
    cors:
      allowOrigins: ["`+inspector+`"]
      maxAge: 600
`)
	do := func(method, u string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPost {
			req.Body = io.NopCloser(strings.NewReader(`{"jsonrpc":"2.0","method":"tools/list","id":1}`))
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	pre := do(http.MethodOptions, s.mcpURL, map[string]string{"Origin": inspector, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version"})
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != inspector ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "authorization") || pre.Header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	unauth := do(http.MethodPost, s.mcpURL, map[string]string{"Origin": inspector})
	if unauth.StatusCode != http.StatusUnauthorized || unauth.Header.Get("Access-Control-Allow-Origin") != inspector ||
		!strings.Contains(unauth.Header.Get("Access-Control-Expose-Headers"), "www-authenticate") {
		t.Errorf("401 for the browser: %d %v", unauth.StatusCode, unauth.Header)
	}
	for _, u := range []string{s.prmURL(), s.gw.URL() + "/.well-known/oauth-authorization-server/mcp"} {
		if r := do(http.MethodGet, u, map[string]string{"Origin": inspector}); r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != inspector {
			t.Errorf("GET %s from the browser: %d %v", u, r.StatusCode, r.Header)
		}
	}
	evil := do(http.MethodPost, s.mcpURL, map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer " + s.hydra.Token(t, oauthClient, "mcp:read", s.mcpURL)})
	if evil.StatusCode != http.StatusForbidden || evil.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %d %v, want 403 without CORS headers", evil.StatusCode, evil.Header)
	}
}
