package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Helpers for the tool authorization tests (authz_test.go): policy YAML
// appended to the harness configuration, tokens per realm user, list
// results read through the Go SDK and through raw HTTP, and a recording
// proxy that sees which JSON-RPC messages reach the upstream.

// authzPolicy is one AgentgatewayPolicy with backend.mcp.authorization,
// attached to one of the harness's objects.
type authzPolicy struct {
	name   string
	target string // "Gateway", "HTTPRoute" or "AgentgatewayBackend"
	action string // Allow | Deny | Require
	exprs  []string
}

// yaml renders the policy as a YAML document for the harness's objects
// (namespace agentgateway-system: Gateway agentgateway, HTTPRoute
// mcp-route, AgentgatewayBackend mcp-backend).
func (p authzPolicy) yaml() string {
	group, name := "gateway.networking.k8s.io", ""
	switch p.target {
	case "Gateway":
		name = "agentgateway"
	case "HTTPRoute":
		name = "mcp-route"
	case "AgentgatewayBackend":
		group, name = "agentgateway.dev", "mcp-backend"
	default:
		panic("authzPolicy: unknown target " + p.target)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: %s
  namespace: agentgateway-system
spec:
  targetRefs:
  - group: %s
    kind: %s
    name: %s
  backend:
    mcp:
      authorization:
        action: %s
        policy:
          matchExpressions:
`, p.name, group, p.target, name, p.action)
	for _, e := range p.exprs {
		// Single-quoted YAML: only ' needs escaping (doubled).
		fmt.Fprintf(&b, "          - '%s'\n", strings.ReplaceAll(e, "'", "''"))
	}
	return b.String()
}

// authzGateway starts a gateway of its own for t: the walkthrough's objects
// (Strict authentication against the shared Dex) in front of upstreamHost:
// upstreamPort, plus the given authorization policies.
func authzGateway(t *testing.T, upstreamHost string, upstreamPort int, policies ...authzPolicy) *harness.Gateway {
	t.Helper()
	cfg := harness.Config{UpstreamHost: upstreamHost, UpstreamPort: upstreamPort, Auth: harness.ForDex(dex(t), "Strict")}
	yaml := strings.TrimRight(cfg.YAML(), "\n") + "\n"
	for _, p := range policies {
		yaml += p.yaml()
	}
	return harness.StartGateway(t, yaml)
}

var passwords = map[string]string{
	harness.AgentUser: harness.AgentPass,
	harness.AdminUser: harness.AdminPass,
	harness.GuestUser: harness.GuestPass,
}

// userToken is a fresh Dex access token (scope harness.TokenScope, so the
// groups claim is present for users that have groups) for a realm user.
func userToken(t *testing.T, user string) string {
	t.Helper()
	pass, ok := passwords[user]
	if !ok {
		t.Fatalf("no password for %q", user)
	}
	return dex(t).PasswordToken(t, harness.ClientID, harness.ClientSecret, user, pass)
}

// --- sets of names ---------------------------------------------------------------

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// keep returns the members of all that are in allowed, sorted.
func keep(all []string, allowed ...string) []string {
	out := []string{}
	for _, s := range all {
		if slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return sorted(out)
}

// drop returns the members of all that are not in denied, sorted.
func drop(all []string, denied ...string) []string {
	out := []string{}
	for _, s := range all {
		if !slices.Contains(denied, s) {
			out = append(out, s)
		}
	}
	return sorted(out)
}

// requireMembers fails t unless every name is in all: the expectations
// computed from the server's own list would mean little otherwise.
func requireMembers(t *testing.T, what string, all []string, names ...string) {
	t.Helper()
	for _, n := range names {
		if !slices.Contains(all, n) {
			t.Fatalf("server-everything's %s %v lack %q; the test's expectations need it", what, all, n)
		}
	}
}

// --- Go SDK ----------------------------------------------------------------------

func sdkTools(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if res.NextCursor != "" {
		t.Fatalf("tools/list: unexpected nextCursor %q (the test reads one page)", res.NextCursor)
	}
	names := []string{}
	for _, x := range res.Tools {
		names = append(names, x.Name)
	}
	return sorted(names)
}

func sdkPrompts(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatalf("prompts/list: %v", err)
	}
	names := []string{}
	for _, x := range res.Prompts {
		names = append(names, x.Name)
	}
	return sorted(names)
}

func sdkResources(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatalf("resources/list: %v", err)
	}
	uris := []string{}
	for _, x := range res.Resources {
		uris = append(uris, x.URI)
	}
	return sorted(uris)
}

func sdkTemplates(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatalf("resources/templates/list: %v", err)
	}
	uris := []string{}
	for _, x := range res.ResourceTemplates {
		uris = append(uris, x.URITemplate)
	}
	return sorted(uris)
}

// requireUnknown asserts that err is the JSON-RPC error a refused call gets
// (the SDK returns it from CallTool, GetPrompt, ReadResource as a wrapped
// *jsonrpc.Error).
func requireUnknown(t *testing.T, err error, wantMessage string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want JSON-RPC error -32602 %q", wantMessage)
	}
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("got error %v (%T), want a JSON-RPC error -32602 %q", err, err, wantMessage)
	}
	if we.Code != jsonrpc.CodeInvalidParams || we.Message != wantMessage {
		t.Fatalf("got JSON-RPC error %d %q, want -32602 %q", we.Code, we.Message, wantMessage)
	}
}

// --- raw HTTP --------------------------------------------------------------------

// rpcPost sends one JSON-RPC message with the given Accept header and
// (optional) token and session, the way a hand-written client does.
func rpcPost(t *testing.T, url, token, accept, session, body string) curlResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "mcpgate-e2e")
	req.Header.Set("Accept", accept)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
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

// rpcMessage is a JSON-RPC response.
type rpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// sseEvent is one event of a text/event-stream body.
type sseEvent struct {
	id, name string
	data     string
}

func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var (
		out  []sseEvent
		cur  sseEvent
		data []string
		seen bool
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if seen {
				cur.data = strings.Join(data, "\n")
				out = append(out, cur)
			}
			cur, data, seen = sseEvent{}, nil, false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.id, seen = value, true
		case "event":
			cur.name, seen = value, true
		case "data":
			data, seen = append(data, value), true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading SSE body: %v", err)
	}
	if seen {
		cur.data = strings.Join(data, "\n")
		out = append(out, cur)
	}
	return out
}

// responseTo returns the JSON-RPC response with the given id (a JSON
// literal) from a JSON or SSE answer, and the SSE event that carried it.
func responseTo(t *testing.T, r curlResult, id string) (rpcMessage, *sseEvent) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("got %s\nwant HTTP 200", r)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	decode := func(data string) (rpcMessage, bool) {
		var m rpcMessage
		if json.Unmarshal([]byte(data), &m) != nil || string(m.ID) != id {
			return m, false
		}
		return m, true
	}
	switch mt {
	case "application/json":
		m, ok := decode(string(r.Body))
		if !ok || m.JSONRPC != "2.0" {
			t.Fatalf("body %s\nis not a JSON-RPC response to id %s", r.Body, id)
		}
		return m, nil
	case "text/event-stream":
		for _, ev := range parseSSE(t, r.Body) {
			if m, ok := decode(ev.data); ok {
				return m, &ev
			}
		}
		t.Fatalf("SSE body has no response to id %s:\n%s", id, r.Body)
	}
	t.Fatalf("Content-Type %q, want application/json or text/event-stream:\n%s", r.Header.Get("Content-Type"), r.Body)
	return rpcMessage{}, nil
}

// listIDs reads the identifiers of a list result: tool and prompt names,
// resource URIs, template URI templates.
func listIDs(t *testing.T, method string, result json.RawMessage) []string {
	t.Helper()
	var res struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
		Prompts []struct {
			Name string `json:"name"`
		} `json:"prompts"`
		Resources []struct {
			URI string `json:"uri"`
		} `json:"resources"`
		ResourceTemplates []struct {
			URITemplate string `json:"uriTemplate"`
		} `json:"resourceTemplates"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(result, &res); err != nil {
		t.Fatalf("%s result %s: %v", method, result, err)
	}
	if res.NextCursor != "" {
		t.Fatalf("%s: unexpected nextCursor %q (the test reads one page)", method, res.NextCursor)
	}
	ids := []string{}
	switch method {
	case "tools/list":
		for _, x := range res.Tools {
			ids = append(ids, x.Name)
		}
	case "prompts/list":
		for _, x := range res.Prompts {
			ids = append(ids, x.Name)
		}
	case "resources/list":
		for _, x := range res.Resources {
			ids = append(ids, x.URI)
		}
	case "resources/templates/list":
		for _, x := range res.ResourceTemplates {
			ids = append(ids, x.URITemplate)
		}
	default:
		t.Fatalf("listIDs: unknown method %s", method)
	}
	return sorted(ids)
}

// rawList sends a list request without a session (the gateway opens an
// upstream session for it) and returns the listed identifiers.
func rawList(t *testing.T, mcpURL, token, accept, method string) []string {
	t.Helper()
	r := rpcPost(t, mcpURL, token, accept, "", `{"jsonrpc":"2.0","id":11,"method":"`+method+`"}`)
	m, _ := responseTo(t, r, "11")
	if m.Error != nil || m.Result == nil {
		t.Fatalf("%s: got %s, want a result", method, r.Body)
	}
	return listIDs(t, method, m.Result)
}

// directRawLists asks the upstream itself, in a session opened the way the
// gateway opens one for a sessionless client (no client capabilities, so
// the same conditional tools), for each list.
func directRawLists(t *testing.T, upstreamURL string, methods ...string) map[string][]string {
	t.Helper()
	const accept = "application/json, text/event-stream"
	r := rpcPost(t, upstreamURL, "", accept, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpgate-e2e","version":"1"}}}`)
	if m, _ := responseTo(t, r, "0"); m.Result == nil {
		t.Fatalf("direct initialize: %s", r.Body)
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("direct initialize: no Mcp-Session-Id")
	}
	defer func() {
		req, _ := http.NewRequest(http.MethodDelete, upstreamURL, nil)
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		if resp, err := curlClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if n := rpcPost(t, upstreamURL, "", accept, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); n.Status != http.StatusAccepted {
		t.Fatalf("direct notifications/initialized: %s", n)
	}
	out := map[string][]string{}
	for i, method := range methods {
		id := strconv.Itoa(i + 1)
		r := rpcPost(t, upstreamURL, "", accept, sid, `{"jsonrpc":"2.0","id":`+id+`,"method":"`+method+`"}`)
		m, _ := responseTo(t, r, id)
		if m.Result == nil {
			t.Fatalf("direct %s: %s", method, r.Body)
		}
		out[method] = listIDs(t, method, m.Result)
	}
	return out
}

// --- recording proxy ---------------------------------------------------------------

// rpcSeen is one JSON-RPC request the upstream received.
type rpcSeen struct {
	Method, Name, URI string
}

// rpcRecorder is a reverse proxy in front of the upstream that decodes the
// JSON-RPC requests passing through it (harness.Recorder keeps headers
// only), so a test can tell whether a refused call reached the server.
type rpcRecorder struct {
	srv *httptest.Server

	mu   sync.Mutex
	seen []rpcSeen
}

func startRPCRecorder(t *testing.T, upstreamURL string) *rpcRecorder {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	target := &url.URL{Scheme: u.Scheme, Host: u.Host}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
		FlushInterval: -1,
	}
	rec := &rpcRecorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Name string `json:"name"`
					URI  string `json:"uri"`
				} `json:"params"`
			}
			if json.Unmarshal(body, &msg) == nil && msg.Method != "" {
				rec.mu.Lock()
				rec.seen = append(rec.seen, rpcSeen{msg.Method, msg.Params.Name, msg.Params.URI})
				rec.mu.Unlock()
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *rpcRecorder) port() int {
	u, _ := url.Parse(r.srv.URL)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// calls returns the names of the tools/call, prompts/get and
// resources/read requests seen so far, as "method name-or-uri".
func (r *rpcRecorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.seen {
		switch s.Method {
		case "tools/call", "prompts/get":
			out = append(out, s.Method+" "+s.Name)
		case "resources/read":
			out = append(out, s.Method+" "+s.URI)
		}
	}
	return out
}

// resumeStream opens GET mcpURL with Last-Event-ID and reads events until
// one carries the response with the given id (a JSON literal), or wait
// passes (nil then).
func resumeStream(t *testing.T, mcpURL, token, session, lastEventID, id string, wait time.Duration) *rpcMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mcpURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	req.Header.Set("Last-Event-ID", lastEventID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s with Last-Event-ID: %v", mcpURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Logf("GET with Last-Event-ID: HTTP %d %s", resp.StatusCode, b)
		return nil
	}
	br := bufio.NewReader(resp.Body)
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil // deadline or end of stream
		}
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "data:"); ok {
			data = append(data, strings.TrimPrefix(v, " "))
			continue
		}
		if line != "" {
			continue
		}
		var m rpcMessage
		if json.Unmarshal([]byte(strings.Join(data, "\n")), &m) == nil && string(m.ID) == id {
			return &m
		}
		data = nil
	}
}
