package harness

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
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hydra is a running ORY Hydra OAuth 2.0 server: an in-memory store,
// loopback ports, JWT access tokens signed with ES256. Its endpoints are Hydra's own:
// discovery at /.well-known/openid-configuration, tokens at /oauth2/token,
// keys at /.well-known/jwks.json, clients through the admin API.
type Hydra struct {
	public, admin int
	dir           string
	proc          *process
}

// HydraClient is an OAuth client registered in Hydra.
type HydraClient struct {
	ID, Secret string
	// Scope lists the scopes the client may ask for (space-separated).
	Scope string
	// Audience lists the audiences the client may ask for.
	Audience []string
	// AuthMethod is how the client authenticates at the token endpoint:
	// client_secret_basic ("", the default) or client_secret_post. Hydra
	// accepts only the one registered.
	AuthMethod string
}

func (c HydraClient) authMethod() string {
	if c.AuthMethod == "" {
		return "client_secret_basic"
	}
	return c.AuthMethod
}

// StartHydra starts Hydra for the duration of the test.
func StartHydra(t testing.TB) *Hydra {
	t.Helper()
	h, err := NewHydra()
	Require(t, err)
	logOnFailure(t, "hydra", h.Output)
	t.Cleanup(h.Close)
	return h
}

// NewHydra starts Hydra and waits until its discovery document is served.
// The caller must call Close.
func NewHydra() (*Hydra, error) {
	bin, err := HydraBin()
	if err != nil {
		return nil, err
	}
	public, err := FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcpgate-hydra-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	h := &Hydra{public: public, admin: admin, dir: dir}
	// dsn memory: nothing outlives the process. --dev allows the plain-HTTP
	// issuer on loopback. The system secret only encrypts Hydra's own
	// database fields; it is a test value.
	cfg := fmt.Sprintf(`dsn: memory
serve:
  public: {host: 127.0.0.1, port: %d}
  admin: {host: 127.0.0.1, port: %d}
urls:
  self:
    issuer: %s
strategies:
  access_token: jwt
ttl:
  access_token: 1h
secrets:
  system: ["mcpgate-e2e-hydra-system-secret-not-for-production"]
log:
  level: warn
`, public, admin, h.Issuer())
	cfgPath := filepath.Join(dir, "hydra.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: %w", err)
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "-c", cfgPath)
	cmd.Dir = dir
	// Hydra reads its configuration from the environment too; keep the
	// caller's from leaking in, and its telemetry off.
	cmd.Env = append(cleanEnv(), "SQA_OPT_OUT=true")
	proc, err := startProcess("hydra", cmd)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	h.proc = proc
	// Order matters. Hydra creates its signing keys (RSA-4096) on the first
	// public request that needs them, and every request made meanwhile
	// starts another generation: polling the public discovery endpoint on a
	// busy two-core machine kept Hydra generating keys for minutes. So wait
	// on the admin API (which needs no keys), give Hydra ES256 keys through
	// it, and only then touch the public side.
	if err := proc.waitReady(startTimeout, httpReady(h.AdminURL()+"/health/alive", http.StatusOK)); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.createKeys(); err != nil {
		h.Close()
		return nil, err
	}
	if err := proc.waitReady(startTimeout, httpReady(h.Issuer()+"/.well-known/openid-configuration", http.StatusOK)); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// createKeys gives Hydra ES256 signing keys before anything asks for them
// (see NewHydra): left alone, Hydra generates RSA-4096 key sets on first
// use, which on a busy two-core machine takes longer than its own 10s
// request timeout, so the first JWKS or token requests fail.
func (h *Hydra) createKeys() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, set := range []string{"hydra.jwt.access-token", "hydra.openid.id-token"} {
		body := `{"alg":"ES256","use":"sig","kid":"` + set + `-es256"}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.AdminURL()+"/admin/keys/"+set, strings.NewReader(body))
		if err != nil {
			return fmt.Errorf("harness: hydra keys: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("harness: hydra keys %s: %w", set, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("harness: hydra keys %s: status %d: %s", set, resp.StatusCode, out)
		}
	}
	return nil
}

// cleanEnv is the process environment without Hydra's configuration
// variables (DSN, SERVE_*, URLS_*, …), which would override the file.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "LANG", strings.HasPrefix(k, "LC_"):
			out = append(out, kv)
		}
	}
	return out
}

// Close stops Hydra and removes its configuration directory.
func (h *Hydra) Close() {
	if h.proc != nil {
		h.proc.stop(syscall.SIGTERM, 5*time.Second)
	}
	os.RemoveAll(h.dir)
}

// Output is what Hydra logged so far.
func (h *Hydra) Output() string { return h.proc.Output() }

// Issuer is the iss claim of Hydra's tokens (no trailing slash).
func (h *Hydra) Issuer() string { return "http://127.0.0.1:" + itoa(h.public) }

// JWKSURL is where Hydra serves its signing keys.
func (h *Hydra) JWKSURL() string { return h.Issuer() + "/.well-known/jwks.json" }

// TokenURL is Hydra's token endpoint.
func (h *Hydra) TokenURL() string { return h.Issuer() + "/oauth2/token" }

// AdminURL is the base of Hydra's admin API.
func (h *Hydra) AdminURL() string { return "http://127.0.0.1:" + itoa(h.admin) }

// CreateClient registers a confidential client for the client_credentials
// grant that gets JWT access tokens.
func (h *Hydra) CreateClient(t testing.TB, c HydraClient) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"client_id":                  c.ID,
		"client_secret":              c.Secret,
		"grant_types":                []string{"client_credentials"},
		"scope":                      c.Scope,
		"audience":                   c.Audience,
		"token_endpoint_auth_method": c.authMethod(),
		"access_token_strategy":      "jwt",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.AdminURL()+"/admin/clients", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("harness: hydra create client: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("harness: hydra create client %s: status %d: %s", c.ID, resp.StatusCode, out)
	}
}

// Token runs the client_credentials grant directly (for tests that need a
// token without going through a client's discovery) and returns the access
// token. audience is Hydra's own parameter: it ignores RFC 8707 resource.
func (h *Hydra) Token(t testing.TB, c HydraClient, scope string, audience ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	for _, a := range audience {
		form.Add("audience", a)
	}
	post := c.authMethod() == "client_secret_post"
	if post {
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if !post {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("harness: hydra token: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("harness: hydra token for %s: status %d: %s", c.ID, resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("harness: hydra token for %s: no access_token in %s", c.ID, body)
	}
	return tr.AccessToken
}
