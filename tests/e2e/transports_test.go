package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// Upstream transports other than Streamable HTTP, with real servers:
// @modelcontextprotocol/server-memory over stdio (started by the gateway)
// and server-everything in its legacy SSE mode, each alone and together
// with a Streamable HTTP server in one multi-target backend.

// memoryTarget is the stdio target running server-memory with its graph in
// dir.
func memoryTarget(t *testing.T, name string) string {
	t.Helper()
	node, err := harness.NodeBin()
	harness.Require(t, err)
	mods, err := harness.NodeModules()
	harness.Require(t, err)
	entry := filepath.Join(mods, "@modelcontextprotocol", "server-memory", "dist", "index.js")
	if _, err := os.Stat(entry); err != nil {
		harness.Require(t, fmt.Errorf("%w: server-memory not installed at %s (run scripts/install-tools.sh)", harness.ErrToolMissing, entry))
	}
	return fmt.Sprintf(`{name: %s, stdio: {cmd: %q, args: [%q], env: {MEMORY_FILE_PATH: %q}}}`,
		name, node, entry, filepath.Join(t.TempDir(), "memory.jsonl"))
}

// startEverythingSSE starts server-everything's legacy SSE transport
// (GET /sse, POST /message) on a free loopback port.
func startEverythingSSE(t *testing.T) int {
	t.Helper()
	node, err := harness.NodeBin()
	harness.Require(t, err)
	mods, err := harness.NodeModules()
	harness.Require(t, err)
	entry := filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js")
	preload := filepath.Join(filepath.Dir(mods), "loopback-only.cjs")
	port, err := harness.FreePort()
	harness.Require(t, err)
	cmd := exec.Command(node, "--require", preload, entry, "sse")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "MCPGATE_LISTEN_HOST=127.0.0.1")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server-everything (sse) output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything (sse) not listening on %d", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// transportsConfig is a Gateway on 8080 with one route per backend:
// /<name> → backend <name> holding the given targets.
func transportsConfig(backends map[string][]string, extra string) string {
	var b strings.Builder
	b.WriteString(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: agentgateway
  listeners: [{name: http, protocol: HTTP, port: 8080}]
`)
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: %[1]s, namespace: ns}
spec:
  mcp:
    targets:
`, n)
		for _, tg := range backends[n] {
			fmt.Fprintf(&b, "    - %s\n", tg)
		}
		fmt.Fprintf(&b, `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %[1]s, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /%[1]s}}]
    backendRefs: [{name: %[1]s, group: agentgateway.dev, kind: AgentgatewayBackend}]
`, n)
	}
	b.WriteString(extra)
	return b.String()
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(testContext(t, 60*time.Second), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(testContext(t, 60*time.Second), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("tools/call %s: error result %s", name, textOf(res))
	}
	return textOf(res)
}

// logLines are the gateway's JSON log records with the given msg.
func logLines(output, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// eventuallyE2E polls cond (a process's exit or log line arrives
// asynchronously).
func eventuallyE2E(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// server-memory over stdio behind a single-target backend: its tools, a
// graph that persists within the process, its stderr in the gateway log,
// and a killed process: the session ends (404) and a new one works.
func TestTransportStdio(t *testing.T) {
	g := harness.StartGateway(t, transportsConfig(map[string][]string{"memory": {memoryTarget(t, "memory")}}, ""))
	cs := connectPlain(t, g.URL()+"/memory")
	if name := cs.InitializeResult().ServerInfo.Name; name != "memory-server" {
		t.Errorf("serverInfo.name = %q, want memory-server (a single target is passed through)", name)
	}
	names := toolNames(t, cs)
	for _, want := range []string{"create_entities", "read_graph", "search_nodes"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools = %v, missing %s", names, want)
		}
	}
	callTool(t, cs, "create_entities", map[string]any{"entities": []map[string]any{{"name": "mcpgate", "entityType": "gateway", "observations": []string{"bridges stdio"}}}})
	if got := callTool(t, cs, "read_graph", map[string]any{}); !strings.Contains(got, "bridges stdio") {
		t.Errorf("read_graph = %s, want the entity just created", got)
	}

	// stderr, line by line, with backend and target.
	eventuallyE2E(t, "server-memory's stderr in the gateway log", func() bool {
		for _, rec := range logLines(g.Output(), "bridge: stdio server stderr") {
			if rec["line"] == "Knowledge Graph MCP Server running on stdio" && rec["backend"] == "ns/memory" && rec["target"] == "memory" {
				return true
			}
		}
		return false
	})

	// Kill the session's process (and only it: the warm spare stays).
	started := logLines(g.Output(), "bridge: session started")
	if len(started) == 0 {
		t.Fatalf("no session start logged:\n%s", g.Output())
	}
	pid := int(started[len(started)-1]["pid"].(float64))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
	eventuallyE2E(t, "the session ended with its process", func() bool {
		for _, rec := range logLines(g.Output(), "bridge: session ended") {
			if strings.Contains(fmt.Sprint(rec["reason"]), "signal: killed") {
				return true
			}
		}
		return false
	})
	// Documented: the session is gone (404, the client initializes again).
	req, _ := http.NewRequest(http.MethodPost, g.URL()+"/memory", strings.NewReader(`{"jsonrpc":"2.0","id":5,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", cs.ID())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "session not found") {
		t.Errorf("request on the killed process's session: %d %s, want 404 session not found", resp.StatusCode, body)
	}
	if _, err := cs.CallTool(testContext(t, 30*time.Second), &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a call on the session of a killed process succeeded")
	}
	// A new session gets a new process; the graph file outlives it.
	cs2 := connectPlain(t, g.URL()+"/memory")
	if got := callTool(t, cs2, "read_graph", map[string]any{}); !strings.Contains(got, "bridges stdio") {
		t.Errorf("new session: read_graph = %s, want the entity saved to the graph file", got)
	}

	// Shutting the gateway down stops every process it started (they are
	// in process groups of their own: the gateway, not the harness, must
	// stop them).
	var pids []int
	for _, rec := range logLines(g.Output(), "bridge: stdio server started") {
		pids = append(pids, int(rec["pid"].(float64)))
	}
	if len(pids) < 3 {
		t.Errorf("stdio servers started: %v, want at least 3 (a spare, two sessions)", pids)
	}
	// Clients leave first: the gateway's shutdown waits for open streams.
	cs.Close()
	cs2.Close()
	if err := g.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := g.Wait(30 * time.Second); err != nil {
		t.Errorf("gateway exit: %v", err)
	}
	for _, pid := range pids {
		eventuallyE2E(t, fmt.Sprintf("stdio server %d gone", pid), func() bool { return !alive(pid) })
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// server-everything's legacy SSE transport behind a single-target backend
// (before bridging, the gateway POSTed to /sse as if it were Streamable
// HTTP).
func TestTransportSSE(t *testing.T) {
	port := startEverythingSSE(t)
	g := harness.StartGateway(t, transportsConfig(map[string][]string{
		"legacy": {fmt.Sprintf("{name: legacy, static: {host: 127.0.0.1, port: %d, protocol: SSE}}", port)},
	}, ""))
	cs := connectPlain(t, g.URL()+"/legacy")
	names := toolNames(t, cs)
	for _, want := range []string{"echo", "get-sum"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools = %v, missing %s", names, want)
		}
	}
	if got := callTool(t, cs, "echo", map[string]any{"message": "over sse"}); got != "Echo: over sse" {
		t.Errorf("echo = %q", got)
	}
	if got := callTool(t, cs, "get-sum", map[string]any{"a": 20, "b": 22}); got != "The sum of 20 and 22 is 42." {
		t.Errorf("get-sum = %q", got)
	}
	// A client without a session (curl-style) gets one opened and closed
	// for it.
	resp, err := http.Post(g.URL()+"/legacy", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"sessionless"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Echo: sessionless") {
		t.Errorf("sessionless call: %d %s", resp.StatusCode, body)
	}
}

// stdio, legacy SSE and Streamable HTTP targets in one backend: prefixed
// tools, calls on the right server, and a policy that refuses one target.
func TestTransportsFederated(t *testing.T) {
	port := startEverythingSSE(t)
	second := harness.StartGoServer(t)
	deny := `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: deny-old-echo, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: fed}]
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions:
          - 'mcp.tool.target == "old" && mcp.tool.name == "echo"'
`
	g := harness.StartGateway(t, transportsConfig(map[string][]string{"fed": {
		memoryTarget(t, "mem"),
		fmt.Sprintf("{name: old, static: {host: 127.0.0.1, port: %d, protocol: SSE}}", port),
		fmt.Sprintf("{name: new, static: {host: 127.0.0.1, port: %d, path: /mcp}}", second.Port()),
	}}, deny))
	cs := connectPlain(t, g.URL()+"/fed")
	names := toolNames(t, cs)
	for _, want := range []string{"mem_create_entities", "mem_read_graph", "old_get-sum", "new_add"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools = %v, missing %s", names, want)
		}
	}
	if slices.Contains(names, "old_echo") {
		t.Errorf("tools = %v: old_echo is denied and must be hidden", names)
	}
	callTool(t, cs, "mem_create_entities", map[string]any{"entities": []map[string]any{{"name": "fed", "entityType": "test", "observations": []string{"federated"}}}})
	if got := callTool(t, cs, "mem_read_graph", map[string]any{}); !strings.Contains(got, "federated") {
		t.Errorf("mem_read_graph = %s", got)
	}
	if got := callTool(t, cs, "old_get-sum", map[string]any{"a": 1, "b": 2}); got != "The sum of 1 and 2 is 3." {
		t.Errorf("old_get-sum = %q", got)
	}
	if got := callTool(t, cs, "new_add", map[string]any{"a": 1, "b": 2}); got != "second: 3" {
		t.Errorf("new_add = %q", got)
	}
	_, err := cs.CallTool(testContext(t, 30*time.Second), &mcp.CallToolParams{Name: "old_echo", Arguments: map[string]any{"message": "x"}})
	if err == nil {
		t.Error("old_echo: denied by policy, but the call succeeded")
	}
	// The same tool name on another target is not affected.
	if got := callTool(t, cs, "mem_search_nodes", map[string]any{"query": "fed"}); !strings.Contains(got, "federated") {
		t.Errorf("mem_search_nodes = %s", got)
	}
}

// A reload that changes a stdio target stops the processes of the old one:
// its sessions end (404) and new sessions run the new command line.
func TestTransportStdioReload(t *testing.T) {
	dir := t.TempDir()
	cfg := func(file string) string {
		tg := memoryTarget(t, "memory")
		i := strings.Index(tg, "MEMORY_FILE_PATH: ")
		tg = tg[:i] + fmt.Sprintf("MEMORY_FILE_PATH: %q}}}", filepath.Join(dir, file))
		return transportsConfig(map[string][]string{"memory": {tg}}, "")
	}
	g := harness.StartGateway(t, cfg("a.jsonl"))
	cs := connectPlain(t, g.URL()+"/memory")
	callTool(t, cs, "create_entities", map[string]any{"entities": []map[string]any{{"name": "before", "entityType": "test", "observations": []string{"in a"}}}})
	var oldPids []int
	for _, rec := range logLines(g.Output(), "bridge: stdio server started") {
		oldPids = append(oldPids, int(rec["pid"].(float64)))
	}

	if err := os.WriteFile(filepath.Join(g.Dir(), "config.yaml"), []byte(cfg("b.jsonl")), 0o600); err != nil {
		t.Fatal(err)
	}
	eventuallyE2E(t, "the changed configuration active", func() bool { return len(logLines(g.Output(), "configuration active")) >= 2 })
	for _, pid := range oldPids {
		eventuallyE2E(t, fmt.Sprintf("old stdio server %d stopped", pid), func() bool { return !alive(pid) })
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL()+"/memory", strings.NewReader(`{"jsonrpc":"2.0","id":5,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", cs.ID())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("old session after the reload: status %d, want 404", resp.StatusCode)
	}
	cs2 := connectPlain(t, g.URL()+"/memory")
	if got := callTool(t, cs2, "read_graph", map[string]any{}); strings.Contains(got, "in a") {
		t.Errorf("new session reads the old graph file: %s", got)
	}
	callTool(t, cs2, "create_entities", map[string]any{"entities": []map[string]any{{"name": "after", "entityType": "test", "observations": []string{"in b"}}}})
	if data, err := os.ReadFile(filepath.Join(dir, "b.jsonl")); err != nil || !strings.Contains(string(data), "in b") {
		t.Errorf("b.jsonl = %q, %v: the new command line is not the one running", data, err)
	}
}

// server-everything over stdio: the child's environment holds the
// configured variables and PATH/HOME only (not the gateway's secrets),
// progress notifications of a long call reach the client, and killing the
// process during a call answers that call with an error naming the exit.
func TestTransportStdioEverything(t *testing.T) {
	node, err := harness.NodeBin()
	harness.Require(t, err)
	mods, err := harness.NodeModules()
	harness.Require(t, err)
	entry := filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js")
	// The gateway inherits the test's environment: a session key and
	// another secret the child must not see.
	t.Setenv("MCPGATE_SESSION_KEY", strings.Repeat("ab", 32))
	t.Setenv("MCPGATE_TEST_SECRET", "do-not-pass")
	g := harness.StartGateway(t, transportsConfig(map[string][]string{"ev": {
		fmt.Sprintf(`{name: ev, stdio: {cmd: %q, args: [%q, stdio], env: {FOO: bar}}}`, node, entry),
	}}, ""))

	var mu sync.Mutex
	var progress []float64
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, r.Params.Progress)
			mu.Unlock()
		}})
	// Without the GET stream, whose end would be the client's first error.
	cs, err := client.Connect(testContext(t, 60*time.Second), &mcp.StreamableClientTransport{Endpoint: g.URL() + "/ev", MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })

	var env map[string]string
	if err := json.Unmarshal([]byte(callTool(t, cs, "get-env", map[string]any{})), &env); err != nil {
		t.Fatal(err)
	}
	if env["FOO"] != "bar" || env["PATH"] == "" {
		t.Errorf("child environment %v: want FOO=bar and PATH", env)
	}
	for k := range env {
		if k != "FOO" && k != "PATH" && k != "HOME" {
			t.Errorf("child environment has %s, which the configuration does not set", k)
		}
	}

	res, err := cs.CallTool(testContext(t, 60*time.Second), &mcp.CallToolParams{Name: "trigger-long-running-operation",
		Arguments: map[string]any{"duration": 0.4, "steps": 2}, Meta: mcp.Meta{"progressToken": "p1"}})
	if err != nil || res.IsError {
		t.Fatalf("long-running operation: %v %+v", err, res)
	}
	eventuallyE2E(t, "two progress notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) == 2
	})

	// Kill the process while a call runs.
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(testContext(t, 60*time.Second), &mcp.CallToolParams{Name: "trigger-long-running-operation",
			Arguments: map[string]any{"duration": 60, "steps": 60}, Meta: mcp.Meta{"progressToken": "p2"}})
		done <- err
	}()
	eventuallyE2E(t, "the long call under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) >= 3
	})
	started := logLines(g.Output(), "bridge: session started")
	pid := int(started[len(started)-1]["pid"].(float64))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "upstream MCP server ended the session: stdio server exited: signal: killed") {
			t.Errorf("call in flight when its process was killed: %v, want the documented error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call in flight was not answered after its process was killed")
	}
}
