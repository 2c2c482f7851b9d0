package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// The gateway process, with real Dex tokens and server-everything: the
// admin listener's metrics count the traffic sent, the decision log file
// holds one OPA event per decision with its id in the response header and
// no credentials, a dry-run policy reports and never blocks, and /readyz
// tells a configured gateway from one that is not.
func TestObservabilityEndToEnd(t *testing.T) {
	d, u := dex(t), upstream(t)
	tok := agentToken(t, d)
	logPath := filepath.Join(t.TempDir(), "decisions.jsonl")
	cfg := harness.Config{UpstreamPort: u.Port(), Auth: harness.ForDex(d, "Strict")}
	yaml := strings.TrimRight(cfg.YAML(), "\n") + "\n" + `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: would-hide-echo
  namespace: agentgateway-system
  annotations:
    mcpgate.dev/dry-run: "true"
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp-route
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions: ['mcp.tool.name == "echo"']
`
	g := harness.StartGateway(t, yaml, "--decision-log", logPath)

	ready := adminGet(t, g, "/readyz")
	if ready.Status != http.StatusOK {
		t.Fatalf("/readyz: %s", ready)
	}

	const lists, calls = 2, 3
	ids := map[string]bool{}
	for range lists {
		r := walkthroughCurl(t, g.URL()+"/mcp", tok)
		requireToolList(t, r)
		ids[r.Header.Get("X-Mcpgate-Decision-Id")] = true
	}
	for range calls {
		r := curlPost(t, g.URL()+"/mcp", tok, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Echo: hi") {
			t.Fatalf("the dry-run Deny must not block echo: %s", r)
		}
		ids[r.Header.Get("X-Mcpgate-Decision-Id")] = true
	}
	unauth := walkthroughCurl(t, g.URL()+"/mcp", "")
	if unauth.Status != http.StatusUnauthorized {
		t.Fatalf("without a token: %s", unauth)
	}
	ids[unauth.Header.Get("X-Mcpgate-Decision-Id")] = true
	delete(ids, "")
	if len(ids) != lists+calls+1 {
		t.Fatalf("want %d distinct decision ids in the response headers, got %v", lists+calls+1, ids)
	}

	m := adminGet(t, g, "/metrics")
	for _, want := range []string{
		`mcpgate_requests_total{mcp_method="tools/list",route="agentgateway-system/mcp-route/0",status="200",tool=""} 2`,
		`mcpgate_requests_total{mcp_method="tools/call",route="agentgateway-system/mcp-route/0",status="200",tool="echo"} 3`,
		`mcpgate_requests_total{mcp_method="tools/list",route="agentgateway-system/mcp-route/0",status="401",tool=""} 1`,
		`mcpgate_decisions_total{result="dry_run_deny"} 3`,
		`mcpgate_decisions_total{result="unauthenticated"} 1`,
		`mcpgate_bundle_activations_total{result="ok"} 1`,
		`mcpgate_jwks_fetches_total{authn="agentgateway-system/mcp-oauth-auth",result="ok"}`,
		`mcpgate_decision_duration_seconds_count{phase="decision"} 6`,
		`mcpgate_decision_duration_seconds_count{phase="list"} 2`,
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The decision log: every request decision and list decision.
	var raw []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw, _ = os.ReadFile(logPath)
		if strings.Count(string(raw), "\n") >= lists+calls+1+lists || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(string(raw), tok) {
		t.Fatal("the decision log contains the bearer token")
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	dryRuns := 0
	for sc.Scan() {
		var ev struct {
			DecisionID string                       `json:"decision_id"`
			Path       string                       `json:"path"`
			Input      map[string]any               `json:"input"`
			Result     map[string]any               `json:"result"`
			Bundles    map[string]map[string]string `json:"bundles"`
			Timestamp  time.Time                    `json:"timestamp"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("decision-log line is not an event: %v\n%s", err, sc.Text())
		}
		if ev.Path != "mcpgate/decision" || ev.Input == nil || ev.Result == nil || ev.Bundles["mcpgate"]["revision"] == "" || ev.Timestamp.IsZero() {
			t.Errorf("incomplete event: %s", sc.Text())
		}
		if _, ok := ev.Result["dry_run"]; ok {
			dryRuns++
		}
		seen[ev.DecisionID] = true
	}
	for id := range ids {
		if !seen[id] {
			t.Errorf("decision %s (from a response header) is not in the decision log", id)
		}
	}
	if dryRuns < calls {
		t.Errorf("want the %d echo calls' events to carry dry_run, got %d", calls, dryRuns)
	}
}

func adminGet(t *testing.T, g *harness.Gateway, path string) curlResult {
	t.Helper()
	resp, err := http.Get(g.AdminURL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return curlResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
