package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// This file holds the test fixtures: an identity provider serving a JWKS, a
// minimal MCP Streamable HTTP server that records what it receives, and the
// configuration that puts the gateway in front of it.

const (
	testIssuer   = "https://idp.test/realms/mcp"
	testAudience = "mcp-agent"
	testKID      = "k1"
	testPort     = 8080
	testSession  = "sess-known" // a session the upstream knows from the start
)

var (
	signingKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	otherKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// newJWKS serves the public half of signingKey.
func newJWKS(t testing.TB) *httptest.Server {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(&signingKey().PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: testKID, USE: jwkset.UseSig, ALG: jwkset.AlgRS256}})
	require.NoError(t, err)
	doc, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// token is a valid access token, as Dex would issue it.
func token() string {
	return signToken(signingKey(), nil)
}

// signToken signs the default claims, with override applied (a nil value
// removes a claim).
func signToken(key *rsa.PrivateKey, override jwt.MapClaims) string {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":                testIssuer,
		"sub":                "agent-user",
		"aud":                testAudience,
		"iat":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
		"email":              "agent-user@example.com",
		"groups":             []string{"mcp-users"},
		"preferred_username": "agent-user",
	}
	for k, v := range override {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = testKID
	s, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// recorded is one request the upstream received.
type recorded struct {
	Method string
	Header http.Header
	Body   []byte
	RPC    string // the JSON-RPC method of a POST ("" for others)
}

// mcpServer is a minimal MCP Streamable HTTP server, strict the way
// server-everything is: it needs an initialize before anything else, and
// answers tools/list as JSON or as SSE depending on sse.
type mcpServer struct {
	srv        *httptest.Server
	sse        atomic.Bool   // answer requests with text/event-stream
	refuseInit atomic.Bool   // answer initialize with an error
	release    chan struct{} // the "stream" tool waits on it between its two events
	cancelled  chan struct{} // closed when a "stream" call's request context ends early
	seq        atomic.Int64

	mu       sync.Mutex
	reqs     []recorded
	sessions map[string]bool
}

func newMCPServer(t testing.TB) *mcpServer {
	t.Helper()
	u := &mcpServer{sessions: map[string]bool{testSession: true}, release: make(chan struct{}), cancelled: make(chan struct{})}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	return u
}

// received returns what the upstream received so far and forgets it.
func (u *mcpServer) received() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.reqs
	u.reqs = nil
	return out
}

func (u *mcpServer) peek() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *mcpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	if r.Method == http.MethodPost {
		_ = json.Unmarshal(body, &msg)
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, recorded{Method: r.Method, Header: r.Header.Clone(), Body: body, RPC: msg.Method})
	sid := r.Header.Get("Mcp-Session-Id")
	known := u.sessions[sid]
	u.mu.Unlock()

	if r.URL.Path != "/mcp" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		if !known {
			http.Error(w, "unknown session", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "id: 43\nevent: message\ndata: %s\n\n", `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`)
		return
	case http.MethodDelete:
		if !known {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		u.mu.Lock()
		if sid != testSession {
			delete(u.sessions, sid)
		}
		u.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	accept := r.Header.Get("Accept")
	if !strings.Contains(accept, "application/json") || !strings.Contains(accept, "text/event-stream") {
		writeJSON(w, http.StatusNotAcceptable, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Not Acceptable: Client must accept both application/json and text/event-stream"}}`)
		return
	}
	if msg.Method == "initialize" {
		if u.refuseInit.Load() {
			writeJSON(w, http.StatusInternalServerError, `{"jsonrpc":"2.0","id":`+string(msg.ID)+`,"error":{"code":-32603,"message":"broken"}}`)
			return
		}
		sid := fmt.Sprintf("sess-%d", u.seq.Add(1))
		u.mu.Lock()
		u.sessions[sid] = true
		u.mu.Unlock()
		w.Header().Set("Mcp-Session-Id", sid)
		writeJSON(w, http.StatusOK, `{"jsonrpc":"2.0","id":`+string(msg.ID)+`,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"test","version":"1"}}}`)
		return
	}
	if !known {
		writeJSON(w, http.StatusBadRequest, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Server not initialized"}}`)
		return
	}
	if len(msg.ID) == 0 || msg.Method == "" {
		w.WriteHeader(http.StatusAccepted) // notifications and responses
		return
	}
	// Like the JavaScript and Python SDKs, answer with the id as decoded
	// and encoded again, not with the bytes the client sent.
	msg.ID = reencode(msg.ID)
	var result string
	switch msg.Method {
	case "tools/list":
		result = `{"tools":[{"name":"echo","description":"Echoes","inputSchema":{"type":"object"}}]}`
	case "tools/call":
		switch msg.Params.Name {
		case "stream":
			u.stream(w, r, msg.ID)
			return
		case "noresponse":
			// A stream that ends without the response.
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"bye"}}`)
			return
		}
		result = `{"content":[{"type":"text","text":"Echo: hi"}]}`
	default:
		result = `{}`
	}
	resp := `{"jsonrpc":"2.0","id":` + string(msg.ID) + `,"result":` + result + `}`
	if !u.sse.Load() {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	// A server-initiated message first, as real servers send logs and
	// progress before the response.
	fmt.Fprintf(w, "event: message\ndata: %s\n\n", `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"working"}}`)
	fmt.Fprintf(w, "event: message\nid: 2\ndata: %s\n\n", resp)
}

// stream sends a progress event, waits until the test releases it, then
// sends the response: a gateway that buffers would hold the first event.
func (u *mcpServer) stream(w http.ResponseWriter, r *http.Request, id json.RawMessage) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "event: message\ndata: %s\n\n", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`)
	w.(http.Flusher).Flush()
	select {
	case <-u.release:
	case <-r.Context().Done():
		close(u.cancelled)
		return
	case <-time.After(10 * time.Second):
		return
	}
	fmt.Fprintf(w, "event: message\ndata: %s\n\n", `{"jsonrpc":"2.0","id":`+string(id)+`,"result":{"content":[{"type":"text","text":"done"}]}}`)
}

// reencode decodes and encodes a JSON value, as a server written in
// another language echoes an id: "\u0061" comes back as "a".
func reencode(v json.RawMessage) json.RawMessage {
	var x any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&x) != nil {
		return v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(x) != nil {
		return v
	}
	return bytes.TrimSpace(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// configYAML is the walkthrough's shape: a Gateway, an HTTPRoute on /mcp
// protected by an AgentgatewayPolicy, and an unprotected route on /open,
// both to one backend.
func configYAML(upstreamPort, jwksURL string) string {
	return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: team
spec:
  gatewayClassName: agentgateway
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: be
  namespace: team
spec:
  mcp:
    targets:
    - name: everything
      static:
        host: 127.0.0.1
        port: ` + upstreamPort + `
        path: /mcp
        protocol: StreamableHTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: mcp
  namespace: team
spec:
  parentRefs:
  - name: gw
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /mcp
    backendRefs:
    - name: be
      group: agentgateway.dev
      kind: AgentgatewayBackend
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: open
  namespace: team
spec:
  parentRefs:
  - name: gw
  rules:
  - matches:
    - path:
        type: Exact
        value: /open
    backendRefs:
    - name: be
      group: agentgateway.dev
      kind: AgentgatewayBackend
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: auth
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  backend:
    mcp:
      authentication:
        issuer: ` + testIssuer + `
        audiences: [` + testAudience + `]
        jwks:
          url: ` + jwksURL + `
        mode: Strict
        provider: Keycloak
        resourceMetadata:
          resource: http://mcp.test/mcp
          scopesSupported: [openid]
          bearerMethodsSupported: [header]
`
}

// buildBundle compiles the configuration the way `gateway run` does.
func buildBundle(t testing.TB, yaml string, user map[string]string) *bundle.Bundle {
	t.Helper()
	res := &translate.Resources{Sources: map[string]string{}}
	errs := load.Decode("inline.yaml", []byte(yaml), res)
	require.Empty(t, errs)
	out, err := translate.Translate(res)
	require.NoError(t, err)
	b, err := translate.Bundle(out, user)
	require.NoError(t, err)
	return b
}

// env is a gateway in front of an MCP server, behind an httptest server.
type env struct {
	gw       *Gateway
	srv      *httptest.Server
	upstream *mcpServer
	jwks     *httptest.Server
	bundle   *bundle.Bundle
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{upstream: newMCPServer(t), jwks: newJWKS(t)}
	port := e.upstream.srv.URL[strings.LastIndex(e.upstream.srv.URL, ":")+1:]
	e.bundle = buildBundle(t, configYAML(port, e.jwks.URL+"/keys"), nil)
	e.gw = New(opts)
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request to the gateway. Headers with an empty value are
// removed from the defaults.
func (e *env) do(t testing.TB, method, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, rd)
	require.NoError(t, err)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) post(t testing.TB, body string, hdr map[string]string) *http.Response {
	t.Helper()
	return e.do(t, http.MethodPost, "/mcp", body, hdr)
}

func authed(extra ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token()}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// rpcError decodes a JSON-RPC error response.
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    any    `json:"data"`
	} `json:"error"`
}

func decodeRPCError(t testing.TB, body string) rpcError {
	t.Helper()
	var e rpcError
	require.NoError(t, json.Unmarshal([]byte(body), &e), "body %q", body)
	require.Equal(t, "2.0", e.JSONRPC, "body %q", body)
	return e
}

// readEvent reads one SSE event (up to and including its blank line).
func readEvent(r *bufio.Reader) (string, error) {
	var ev bytes.Buffer
	for {
		line, err := r.ReadString('\n')
		ev.WriteString(line)
		if err != nil {
			return ev.String(), err
		}
		if strings.TrimRight(line, "\r\n") == "" && ev.Len() > len(line) {
			return ev.String(), nil
		}
	}
}

// dataOf returns the joined data lines of an event.
func dataOf(ev string) string {
	var data []string
	for _, line := range strings.Split(ev, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data:"); ok {
			data = append(data, strings.TrimPrefix(v, " "))
		}
	}
	return strings.Join(data, "\n")
}

// routePolicy is an AgentgatewayPolicy document with one authorization
// rule (action Allow, Deny or Require) on HTTPRoute team/mcp, the route of
// fedYAML.
func routePolicy(name, action, expr string) string {
	return fmt.Sprintf(`---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: %s, namespace: team}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp}]
  backend:
    mcp:
      authorization:
        action: %s
        policy:
          matchExpressions: ['%s']
`, name, action, strings.ReplaceAll(expr, "'", "''"))
}
