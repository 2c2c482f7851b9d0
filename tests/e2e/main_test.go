// Package e2e runs the gateway end to end: the real mcpgate binary between
// real MCP clients (net/http reproducing the walkthrough's curl, the Go SDK,
// the MCP Inspector CLI) and a real MCP server (server-everything), with
// tokens from a real identity provider (Dex). Everything listens on
// 127.0.0.1; components come from tests/e2e/harness.
//
// Run scripts/install-tools.sh first; without the tools the tests skip
// locally and fail when CI is set. One Dex, one server-everything and one
// gateway with the walkthrough's Strict policy are shared by the tests that
// do not need their own.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	harness.Cleanup()
	os.Exit(code)
}

var (
	sharedMu sync.Mutex
	closers  []func()

	sharedDex     *harness.Dex
	sharedDexErr  error
	sharedUp      *harness.Upstream
	sharedUpErr   error
	sharedGW      *harness.Gateway
	sharedGWErr   error
	sharedStarted = map[string]bool{}
)

// dex returns the shared Dex (walkthrough realm, 1h tokens).
func dex(t *testing.T) *harness.Dex {
	t.Helper()
	sharedMu.Lock()
	if !sharedStarted["dex"] {
		sharedStarted["dex"] = true
		if sharedDex, sharedDexErr = harness.NewDex(harness.DexOptions{}); sharedDexErr == nil {
			closers = append(closers, sharedDex.Close)
		}
	}
	d, err := sharedDex, sharedDexErr
	sharedMu.Unlock()
	harness.Require(t, err)
	logOnFailure(t, "shared dex", d.Output)
	return d
}

// upstream returns the shared server-everything.
func upstream(t *testing.T) *harness.Upstream {
	t.Helper()
	sharedMu.Lock()
	if !sharedStarted["upstream"] {
		sharedStarted["upstream"] = true
		if sharedUp, sharedUpErr = harness.NewEverything(); sharedUpErr == nil {
			closers = append(closers, sharedUp.Close)
		}
	}
	u, err := sharedUp, sharedUpErr
	sharedMu.Unlock()
	harness.Require(t, err)
	logOnFailure(t, "shared server-everything", u.Output)
	return u
}

// strictGateway returns the shared gateway running the walkthrough's objects
// (Strict, audiences [mcp-agent], JWKS through the keycloak Service) in front
// of the shared upstream.
func strictGateway(t *testing.T) *harness.Gateway {
	t.Helper()
	d, u := dex(t), upstream(t)
	sharedMu.Lock()
	if !sharedStarted["gateway"] {
		sharedStarted["gateway"] = true
		cfg := harness.Config{UpstreamPort: u.Port(), Auth: harness.ForDex(d, "Strict")}
		if sharedGW, sharedGWErr = harness.NewGateway(map[string]string{"config.yaml": cfg.YAML()}); sharedGWErr == nil {
			closers = append(closers, sharedGW.Close)
		}
	}
	g, err := sharedGW, sharedGWErr
	sharedMu.Unlock()
	harness.Require(t, err)
	logOnFailure(t, "shared gateway", g.Output)
	return g
}

// gatewayFor starts a gateway of its own for t.
func gatewayFor(t *testing.T, cfg harness.Config, extraArgs ...string) *harness.Gateway {
	t.Helper()
	return harness.StartGateway(t, cfg.YAML(), extraArgs...)
}

// logOnFailure logs what a shared component wrote while t ran, if t fails.
func logOnFailure(t *testing.T, name string, output func() string) {
	from := len(output())
	t.Cleanup(func() {
		if t.Failed() {
			if out := output(); len(out) > from {
				t.Logf("--- %s output during %s ---\n%s", name, t.Name(), out[from:])
			}
		}
	})
}

// agentToken is a fresh walkthrough token (mcp-agent / agent-user).
func agentToken(t *testing.T, d *harness.Dex) string {
	t.Helper()
	return d.PasswordToken(t, harness.ClientID, harness.ClientSecret, harness.AgentUser, harness.AgentPass)
}

// toolsListBody is the walkthrough's request body, byte for byte.
const toolsListBody = `{"jsonrpc":"2.0","method":"tools/list","id":1}`

// curlClient sends requests the way curl 7.88 does for the walkthrough's
// commands: no Accept-Encoding (curl sends none without --compressed), no
// Connection header, no redirects.
var curlClient = &http.Client{
	Transport: &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
	Timeout: 30 * time.Second,
}

// curlResult is a response as curl prints it.
type curlResult struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r curlResult) String() string {
	return fmt.Sprintf("HTTP %d %v\n%s", r.Status, r.Header, r.Body)
}

// walkthroughCurl reproduces
//
//	curl -s http://localhost:8080/mcp -H "Content-Type: application/json" \
//	  [-H "Authorization: Bearer $TOKEN"] -d '{"jsonrpc":"2.0","method":"tools/list","id":1}'
//
// with the headers curl sends: Host, User-Agent, Accept: */*, Content-Type,
// Content-Length (and Authorization when token is not empty).
func walkthroughCurl(t *testing.T, url, token string) curlResult {
	t.Helper()
	return curlPost(t, url, token, toolsListBody)
}

func curlPost(t *testing.T, url, token, body string) curlResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "curl/7.88.1")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := curlClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: reading body: %v", url, err)
	}
	return curlResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// requireToolList asserts the walkthrough's success: 200 and a JSON (jq can
// read it) JSON-RPC response to id 1 whose result lists the server's tools.
func requireToolList(t *testing.T, r curlResult) []string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("got %s\nwant HTTP 200 with the tool list", r)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (the walkthrough pipes the answer into jq)", r.Header.Get("Content-Type"))
	}
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  *struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &msg); err != nil {
		t.Fatalf("body is not one JSON object (%v):\n%s", err, r.Body)
	}
	if msg.JSONRPC != "2.0" || string(msg.ID) != "1" || msg.Result == nil || msg.Error != nil {
		t.Fatalf("got %s\nwant a JSON-RPC 2.0 result for id 1", r.Body)
	}
	var names []string
	for _, tool := range msg.Result.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"echo", "get-sum", "trigger-long-running-operation"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools = %v, missing %q", names, want)
		}
	}
	return names
}

// requireUnauthorized asserts the gateway's 401: a Bearer challenge pointing
// at the protected resource metadata, and an OAuth-style JSON error body.
func requireUnauthorized(t *testing.T, g *harness.Gateway, r curlResult) {
	t.Helper()
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("got %s\nwant HTTP 401", r)
	}
	want := `resource_metadata="` + g.URL() + `/.well-known/oauth-protected-resource/mcp"`
	challenge := r.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(challenge, "Bearer ") || !strings.Contains(challenge, want) {
		t.Errorf("WWW-Authenticate = %q, want Bearer with %s", challenge, want)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("401 body is not JSON (%v): %s", err, r.Body)
	} else if body.Error != "unauthorized" || body.Description == "" {
		t.Errorf("401 body = %s, want {\"error\":\"unauthorized\",\"error_description\":...}", r.Body)
	}
}

// --- JWT helpers ---------------------------------------------------------------

var b64 = base64.RawURLEncoding

// jwtParts splits a compact JWS and decodes header and payload.
func jwtParts(t *testing.T, tok string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("token part %d: %v", i, err)
		}
	}
	return header, payload, parts
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// bearer is an http.RoundTripper that adds the caller's token, the way an
// MCP client configured with a token does.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func bearerClient(token string) *http.Client {
	return &http.Client{Transport: bearer{token: token, base: http.DefaultTransport}}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
