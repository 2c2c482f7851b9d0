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
	"text/template"
	"time"
)

// Realm is the path under which Dex serves the walkthrough's realm, so that
// the issuer reads like Keycloak's: http://127.0.0.1:<port>/realms/agentgateway.
const Realm = "/realms/agentgateway"

// Identities configured in tests/e2e/testdata/dex.yaml.tmpl.
const (
	ClientID     = "mcp-agent"
	ClientSecret = "agent-secret-123"
	OtherClient  = "other-client" // a second client: its tokens have aud=other-client
	OtherSecret  = "other-secret"

	AgentUser = "agent-user" // groups [mcp-users]
	AgentPass = "agent-pass"
	AdminUser = "admin-user" // groups [mcp-admins, mcp-users]
	AdminPass = "admin-pass"
	GuestUser = "guest-user" // no groups
	GuestPass = "guest-pass"

	// TokenScope asks Dex for every claim the policies may look at. Dex's
	// password grant requires "openid"; "groups", "profile" and "email" add
	// the groups, name/preferred_username and email claims.
	TokenScope = "openid groups profile email"
)

// DexOptions configures a Dex instance; the zero value is the walkthrough realm.
type DexOptions struct {
	// Port to listen on; 0 picks a free one.
	Port int
	// TokenExpiry is the lifetime of ID and access tokens (Dex signs both the
	// same way, with expiry.idTokens); 0 means 1h.
	TokenExpiry time.Duration
}

// Dex is a running Dex identity provider.
type Dex struct {
	port int
	dir  string
	proc *process
}

// StartDex starts Dex for the duration of the test.
func StartDex(t testing.TB, opts DexOptions) *Dex {
	t.Helper()
	d, err := NewDex(opts)
	Require(t, err)
	logOnFailure(t, "dex", d.Output)
	t.Cleanup(d.Close)
	return d
}

// NewDex starts Dex and waits for its discovery document. The caller must
// call Close.
func NewDex(opts DexOptions) (*Dex, error) {
	bin, err := DexBin()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	expiry := opts.TokenExpiry
	if expiry == 0 {
		expiry = time.Hour
	}
	cfg, err := RenderDexConfig(filepath.Join(root, "tests", "e2e", "testdata", "dex.yaml.tmpl"), port, expiry)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcpgate-dex-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: %w", err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Dir = dir
	proc, err := startProcess("dex", cmd)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &Dex{port: port, dir: dir, proc: proc}
	if err := proc.waitReady(startTimeout, httpReady(d.Issuer()+"/.well-known/openid-configuration", http.StatusOK)); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// RenderDexConfig renders the Dex configuration template for a port and a
// token lifetime.
func RenderDexConfig(templatePath string, port int, tokenExpiry time.Duration) ([]byte, error) {
	tmpl, err := template.ParseFiles(templatePath)
	if err != nil {
		return nil, fmt.Errorf("harness: dex config template: %w", err)
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, struct {
		Port          int
		IDTokenExpiry string
	}{port, shortDuration(tokenExpiry)})
	if err != nil {
		return nil, fmt.Errorf("harness: dex config template: %w", err)
	}
	return buf.Bytes(), nil
}

// shortDuration formats d the way people write it in YAML: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "m0s")
	if strings.HasSuffix(s, "h0") {
		s = strings.TrimSuffix(s, "0")
	} else if s != d.String() {
		s += "m"
	}
	return s
}

// Close stops Dex and removes its configuration directory.
func (d *Dex) Close() {
	d.proc.stop(syscall.SIGTERM, 5*time.Second)
	os.RemoveAll(d.dir)
}

// Output is what Dex logged so far.
func (d *Dex) Output() string { return d.proc.Output() }

// Port is the loopback port Dex listens on.
func (d *Dex) Port() int { return d.port }

// Issuer is the iss claim of Dex's tokens.
func (d *Dex) Issuer() string { return "http://127.0.0.1:" + itoa(d.port) + Realm }

// JWKSURL is where Dex serves its signing keys.
func (d *Dex) JWKSURL() string { return d.Issuer() + "/keys" }

// JWKSPath is JWKSURL without scheme and host, for policies that reach Dex
// through a backendRef.
func (d *Dex) JWKSPath() string { return Realm + "/keys" }

// TokenURL is Dex's token endpoint.
func (d *Dex) TokenURL() string { return d.Issuer() + "/token" }

// PasswordToken runs the password grant (scope TokenScope) and returns the
// access token, a JWT with aud=clientID.
func (d *Dex) PasswordToken(t testing.TB, clientID, secret, user, pass string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := d.Token(ctx, clientID, secret, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Token is PasswordToken for callers without a testing.TB.
func (d *Dex) Token(ctx context.Context, clientID, secret, user, pass string) (string, error) {
	form := url.Values{
		"grant_type":    {"password"},
		"client_id":     {clientID},
		"client_secret": {secret},
		"username":      {user},
		"password":      {pass},
		"scope":         {TokenScope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenURL(), bytes.NewBufferString(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("harness: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("harness: token request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("harness: token for %s/%s: status %d: %s", clientID, user, resp.StatusCode, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("harness: token for %s/%s: no access_token in %s", clientID, user, body)
	}
	return tr.AccessToken, nil
}
