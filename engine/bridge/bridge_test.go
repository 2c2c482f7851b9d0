package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/ir"
)

// The test binary doubles as the stdio server: re-executed with
// BRIDGE_TEST_SERVER=stdio it serves a go-sdk MCP server on stdin/stdout.
func TestMain(m *testing.M) {
	if os.Getenv("BRIDGE_TEST_SERVER") == "stdio" {
		fmt.Fprintln(os.Stderr, "test server ready on stdio")
		if err := testServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type addIn struct {
	A int `json:"a"`
	B int `json:"b"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func testServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "bridge-test", Version: "v1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "add"}, func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, any, error) {
		return text(fmt.Sprint(in.A + in.B)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "env"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		var names []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			names = append(names, k)
		}
		sort.Strings(names)
		return text(strings.Join(names, ",")), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "exit"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		fmt.Fprintln(os.Stderr, "exiting on request")
		os.Exit(3)
		return nil, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			for i := 1; i <= 2; i++ {
				if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 2}); err != nil {
					return nil, nil, err
				}
			}
		}
		return text("done"), nil, nil
	})
	return s
}

// syncBuf collects log output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const stdioURL = "http://0123456789abcdef0123.stdio." + ir.BridgeDomain + "/mcp"
const sseURL = "http://0123456789abcdef0123.sse." + ir.BridgeDomain + "/mcp"

func stdioConfig(cmd string, env map[string]string) *ir.Config {
	return &ir.Config{Backends: map[string]*ir.Backend{"default/be": {Key: "default/be", Targets: []ir.Target{
		{Name: "local", URL: stdioURL, Protocol: "Stdio", Stdio: &ir.Stdio{Cmd: cmd, Env: env}},
	}}}}
}

func newManager(t *testing.T, cfg *ir.Config, opts Options) (*Manager, *syncBuf) {
	t.Helper()
	logs := &syncBuf{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.AllowStdio = true
	m := NewManager(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(ctx)
		if n := m.Processes(); n != 0 {
			t.Errorf("%d processes left after Close", n)
		}
	})
	if err := m.Prepare(cfg); err != nil {
		t.Fatal(err)
	}
	return m, logs
}

func connect(t *testing.T, m *Manager, url string, copts *mcp.ClientOptions, tweak ...func(*mcp.StreamableClientTransport)) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v1"}, copts)
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: Wrap(nil, m), MaxRetries: -1}
	for _, f := range tweak {
		f(tr)
	}
	cs, err := c.Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError || len(res.Content) != 1 {
		t.Fatalf("%s: unexpected result %+v", name, res)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// eventually polls cond until it holds (processes exit asynchronously).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStdioBridge(t *testing.T) {
	t.Setenv("MCPGATE_SESSION_KEY", "secret-not-for-children")
	m, logs := newManager(t, stdioConfig(os.Args[0], map[string]string{"BRIDGE_TEST_SERVER": "stdio", "EXTRA": "x"}), Options{})
	var mu sync.Mutex
	var progress []float64
	cs := connect(t, m, stdioURL, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progress = append(progress, r.Params.Progress)
		mu.Unlock()
	}})
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 4 {
		t.Fatalf("want 4 tools, got %d", len(tools.Tools))
	}
	if got := callText(t, cs, "add", map[string]int{"a": 2, "b": 40}); got != "42" {
		t.Fatalf("add = %q", got)
	}
	// Only the configured variables, PATH and HOME reach the child.
	env := callText(t, cs, "env", map[string]any{})
	for _, name := range strings.Split(env, ",") {
		switch name {
		case "BRIDGE_TEST_SERVER", "EXTRA", "PATH", "HOME":
		default:
			t.Errorf("child environment has %s (all: %s)", name, env)
		}
	}
	// Progress notifications ride on the request's stream, before its result.
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{}, Meta: mcp.Meta{"progressToken": "tok-1"}})
	if err != nil || res.IsError {
		t.Fatalf("progress: %v %+v", err, res)
	}
	// The client handles notifications asynchronously.
	eventually(t, "two progress notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) == 2
	})
	mu.Lock()
	got := fmt.Sprint(progress)
	mu.Unlock()
	if got != "[1 2]" {
		t.Errorf("progress notifications = %s, want [1 2]", got)
	}
	if !strings.Contains(logs.String(), "test server ready on stdio") || !strings.Contains(logs.String(), "target=local") {
		t.Errorf("stderr not logged with the target:\n%s", logs.String())
	}
	ep := m.lookup("0123456789abcdef0123.stdio." + ir.BridgeDomain)
	if n := ep.Sessions(); n != 1 {
		t.Fatalf("sessions = %d, want 1", n)
	}
	// Closing the client session (DELETE) stops its process; the warm
	// spare stays.
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "session process stopped", func() bool { return ep.Sessions() == 0 && m.Processes() == 1 })
}

func TestStdioProcessExit(t *testing.T) {
	m, logs := newManager(t, stdioConfig(os.Args[0], map[string]string{"BRIDGE_TEST_SERVER": "stdio"}), Options{})
	// Without the GET stream, whose end would be the client's first error.
	cs := connect(t, m, stdioURL, nil, func(tr *mcp.StreamableClientTransport) { tr.DisableStandaloneSSE = true })
	sid := cs.ID()
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "exit", Arguments: map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "stdio server exited") {
		t.Fatalf("in-flight request: want an error naming the exit, got %v", err)
	}
	// The session is gone: 404, so the client initialises again.
	resp := rawPost(t, m, stdioURL, sid, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after the exit: status %d, want 404", resp.StatusCode)
	}
	cs2 := connect(t, m, stdioURL, nil)
	defer cs2.Close()
	if got := callText(t, cs2, "add", map[string]int{"a": 1, "b": 1}); got != "2" {
		t.Fatalf("new session: add = %q", got)
	}
	if !strings.Contains(logs.String(), "exiting on request") {
		t.Errorf("stderr line missing from the log:\n%s", logs.String())
	}
}

func rawPost(t *testing.T, m *Manager, url, sid, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := Wrap(nil, m).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Ids go upstream as the client wrote them and come back as the upstream
// wrote them; matching is by value.
func TestStdioIDsByValue(t *testing.T) {
	m, _ := newManager(t, stdioConfig(os.Args[0], map[string]string{"BRIDGE_TEST_SERVER": "stdio"}), Options{NoSpare: true})
	resp := rawPost(t, m, stdioURL, "", `{"jsonrpc":"2.0","id":"\u0069nit","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	body, _ := io.ReadAll(resp.Body)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" || !strings.Contains(string(body), `"id":"init"`) {
		t.Fatalf("initialize: %d %q %s", resp.StatusCode, sid, body)
	}
	if r := rawPost(t, m, stdioURL, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.StatusCode != http.StatusAccepted {
		t.Fatalf("notification: status %d, want 202", r.StatusCode)
	}
	r := rawPost(t, m, stdioURL, sid, `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)
	body, _ = io.ReadAll(r.Body)
	var out struct {
		ID     json.RawMessage `json:"id"`
		Result struct{ Tools []any }
	}
	if err := json.Unmarshal(body, &out); err != nil || string(out.ID) != "7" || len(out.Result.Tools) != 4 {
		t.Fatalf("tools/list: %s", body)
	}
	if r := rawPost(t, m, stdioURL, "nope", `{"jsonrpc":"2.0","id":8,"method":"tools/list"}`); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown session: status %d, want 404", r.StatusCode)
	}
}

func TestStdioSpawnFailureBacksOff(t *testing.T) {
	m, logs := newManager(t, stdioConfig("/nonexistent/mcp-server", nil), Options{NoSpare: true})
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	r := rawPost(t, m, stdioURL, "", init)
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "upstream MCP server unavailable") {
		t.Fatalf("first attempt: %d %s", r.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "starting mcp-server") || !strings.Contains(logs.String(), "retry_in=500ms") {
		t.Fatalf("spawn failure not logged with its backoff:\n%s", logs.String())
	}
	r = rawPost(t, m, stdioURL, "", init)
	body, _ = io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "/nonexistent") {
		t.Fatalf("attempt within the backoff: %d %s", r.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "keeps failing") {
		t.Fatalf("backoff refusal not logged:\n%s", logs.String())
	}
}

func TestStdioRefusedUnlessAllowed(t *testing.T) {
	m := NewManager(Options{})
	defer m.Close(context.Background())
	err := m.Prepare(stdioConfig("true", nil))
	if err == nil || !strings.Contains(err.Error(), "standalone gateway only") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestConfigChangeStopsProcesses(t *testing.T) {
	m, _ := newManager(t, stdioConfig(os.Args[0], map[string]string{"BRIDGE_TEST_SERVER": "stdio"}), Options{})
	cs := connect(t, m, stdioURL, nil)
	if got := callText(t, cs, "add", map[string]int{"a": 1, "b": 2}); got != "3" {
		t.Fatalf("add = %q", got)
	}
	m.Prune(&ir.Config{})
	eventually(t, "processes stopped", func() bool { return m.Processes() == 0 })
	if _, err := Wrap(nil, m).Get(stdioURL); err == nil || !strings.Contains(err.Error(), "not in the active configuration") {
		t.Fatalf("removed bridge: want an error, got %v", err)
	}
}

func sseServer(t *testing.T) *httptest.Server {
	s := testServer()
	srv := httptest.NewServer(mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv
}

func sseConfig(u string) *ir.Config {
	return &ir.Config{Backends: map[string]*ir.Backend{"default/be": {Key: "default/be", Targets: []ir.Target{
		{Name: "legacy", URL: sseURL, Protocol: "SSE", SSEURL: u},
	}}}}
}

func TestSSEBridge(t *testing.T) {
	srv := sseServer(t)
	m, _ := newManager(t, sseConfig(srv.URL), Options{Client: srv.Client()})
	var mu sync.Mutex
	var progress int
	cs := connect(t, m, sseURL, &mcp.ClientOptions{ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progress++
		mu.Unlock()
	}})
	if got := callText(t, cs, "add", map[string]int{"a": 20, "b": 22}); got != "42" {
		t.Fatalf("add = %q", got)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{}, Meta: mcp.Meta{"progressToken": 99}})
	if err != nil || res.IsError {
		t.Fatalf("progress: %v %+v", err, res)
	}
	eventually(t, "two progress notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return progress == 2
	})
	// Losing the SSE stream ends the session: 404.
	sid := cs.ID()
	srv.CloseClientConnections()
	ep := m.lookup("0123456789abcdef0123.sse." + ir.BridgeDomain)
	eventually(t, "session ended with its stream", func() bool { return ep.Sessions() == 0 })
	if r := rawPost(t, m, sseURL, sid, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); r.StatusCode != http.StatusNotFound {
		t.Fatalf("after stream loss: status %d, want 404", r.StatusCode)
	}
	cs2 := connect(t, m, sseURL, nil)
	defer cs2.Close()
	if got := callText(t, cs2, "add", map[string]int{"a": 1, "b": 1}); got != "2" {
		t.Fatalf("new session: add = %q", got)
	}
}

func TestSSEEndpointOnAnotherOriginRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "event: endpoint\ndata: http://169.254.169.254/latest?sessionId=1\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	m, logs := newManager(t, sseConfig(srv.URL+"/sse"), Options{Client: srv.Client()})
	r := rawPost(t, m, sseURL, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "169.254") {
		t.Fatalf("want the endpoint refused without naming addresses, got %d %s", r.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "not on the stream's origin") {
		t.Fatalf("refusal not logged:\n%s", logs.String())
	}
}

func TestIDKey(t *testing.T) {
	same := [][]string{
		{`1`, `1.0`, `1e0`, `10e-1`},
		{`"a"`, `"\u0061"`},
		{`12345678901234567890123`, `12345678901234567890123.0`},
	}
	for _, group := range same {
		for _, id := range group[1:] {
			if idKey(json.RawMessage(id)) != idKey(json.RawMessage(group[0])) {
				t.Errorf("%s and %s are different ids", id, group[0])
			}
		}
	}
	for _, pair := range [][2]string{{`1e999999999`, `1e999999998`}, {`1`, `"1"`}, {`12345678901234567890123`, `12345678901234567890124`}, {`1`, `2`}} {
		if idKey(json.RawMessage(pair[0])) == idKey(json.RawMessage(pair[1])) {
			t.Errorf("%s and %s are the same id", pair[0], pair[1])
		}
	}
}
