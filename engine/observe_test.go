package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// syncBuffer is a bytes.Buffer safe for the decision log's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// obsEnv is a gateway with a decision log, behind httptest servers for its
// listener and its admin handler. extraYAML is appended to the test
// configuration; logRego, when set, is a package system.log module.
type obsEnv struct {
	*env
	admin *httptest.Server
	dlog  *syncBuffer
	logs  *syncBuffer
}

func newObsEnv(t *testing.T, extraYAML, logRego string) *obsEnv {
	t.Helper()
	e := &env{upstream: newMCPServer(t), jwks: newJWKS(t)}
	port := e.upstream.srv.URL[strings.LastIndex(e.upstream.srv.URL, ":")+1:]
	res := &translate.Resources{Sources: map[string]string{}}
	require.Empty(t, load.Decode("inline.yaml", []byte(configYAML(port, e.jwks.URL+"/keys")+extraYAML), res))
	if logRego != "" {
		res.Modules = append(res.Modules, translate.Module{Source: "log.rego", Text: logRego})
	}
	out, err := translate.Translate(res)
	require.NoError(t, err)
	e.bundle, err = translate.Bundle(out, nil)
	require.NoError(t, err)
	o := &obsEnv{env: e, dlog: &syncBuffer{}, logs: &syncBuffer{}}
	e.gw = New(Options{
		Logger:      slogJSON(o.logs),
		DecisionLog: NewDecisionLog(DecisionLogOptions{Writer: o.dlog, Labels: map[string]string{"id": "test"}}),
	})
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)
	o.admin = httptest.NewServer(e.gw.AdminHandler("test"))
	t.Cleanup(o.admin.Close)
	return o
}

// scrape reads the admin /metrics endpoint.
func (o *obsEnv) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(o.admin.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// metricValue is the value of the sample of family name whose labels
// include want; -1 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// events parses the decision log.
func (o *obsEnv) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(o.dlog.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), "decision-log line %q", sc.Text())
		out = append(out, ev)
	}
	return out
}

const echoCall = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`

func TestMetricsAfterKnownTraffic(t *testing.T) {
	o := newObsEnv(t, "", "")
	for range 3 {
		resp := o.post(t, echoCall, authed())
		require.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
		readBody(t, resp)
	}
	resp := o.post(t, echoCall, map[string]string{}) // no token
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	fams := o.scrape(t)
	assert.Equal(t, 3.0, metricValue(fams, "mcpgate_requests_total", map[string]string{"route": "team/mcp/0", "mcp_method": "tools/call", "tool": "echo", "status": "200"}))
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_requests_total", map[string]string{"route": "team/mcp/0", "tool": "echo", "status": "401"}))
	assert.Equal(t, 3.0, metricValue(fams, "mcpgate_decisions_total", map[string]string{"result": "allow"}))
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_decisions_total", map[string]string{"result": "unauthenticated"}))
	assert.Equal(t, 4.0, metricValue(fams, "mcpgate_decision_duration_seconds", map[string]string{"phase": "decision"}))
	assert.Equal(t, 4.0, metricValue(fams, "mcpgate_decision_duration_seconds", map[string]string{"phase": "authn"}))
	// Each call opened and closed an upstream session for the sessionless
	// client: initialize, notifications/initialized, the call, DELETE.
	// The DELETEs run after the answers: wait for the last one.
	require.Eventually(t, func() bool {
		return metricValue(o.scrape(t), "mcpgate_upstream_duration_seconds", map[string]string{"route": "team/mcp/0"}) == 12
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_bundle_info", map[string]string{"revision": o.bundle.Revision}))
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_bundle_activations_total", map[string]string{"result": "ok"}))
	assert.GreaterOrEqual(t, metricValue(fams, "mcpgate_jwks_fetches_total", map[string]string{"authn": "team/auth", "result": "ok"}), 1.0)
	assert.Equal(t, -1.0, metricValue(fams, "mcpgate_upstream_errors_total", nil), "no upstream errors were counted")

	// A refused activation is counted and changes nothing.
	bad := &bundle.Bundle{Revision: o.bundle.Revision, Config: o.bundle.Config,
		Modules: map[string]string{"mcpgate/decision.rego": "package mcpgate\n\ndecision := "}}
	require.Error(t, o.gw.Activate(context.Background(), bad))
	fams = o.scrape(t)
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_bundle_activations_total", map[string]string{"result": "error"}))
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_bundle_info", map[string]string{"revision": o.bundle.Revision}))
}

func TestToolLabelsAreBounded(t *testing.T) {
	m := NewMetrics()
	for i := range maxToolLabels {
		require.Equal(t, "t"+itoa(i), m.toolLabel("t"+itoa(i)))
	}
	assert.Equal(t, "other", m.toolLabel("one-too-many"))
	assert.Equal(t, "t7", m.toolLabel("t7"), "names seen before keep their label")
}

func TestDecisionLogEvents(t *testing.T) {
	o := newObsEnv(t, "", "")
	tok := token()
	resp := o.post(t, echoCall, map[string]string{"Authorization": "Bearer " + tok, "X-Api-Key": "secret-key-value"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	allowID := resp.Header.Get(DecisionIDHeader)
	resp = o.post(t, echoCall, map[string]string{})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	denyID := resp.Header.Get(DecisionIDHeader)
	require.NotEmpty(t, allowID)
	require.NotEqual(t, allowID, denyID)

	raw := o.dlog.String()
	assert.NotContains(t, raw, tok, "the token never reaches the decision log")
	assert.NotContains(t, raw, "secret-key-value", "credential headers are masked")
	evs := o.events(t)
	require.Len(t, evs, 2)
	byID := map[string]map[string]any{}
	for _, ev := range evs {
		for _, k := range []string{"decision_id", "path", "input", "result", "bundles", "timestamp", "metrics", "labels"} {
			assert.Contains(t, ev, k)
		}
		assert.Equal(t, "mcpgate/decision", ev["path"])
		assert.Equal(t, o.bundle.Revision, ev["bundles"].(map[string]any)["mcpgate"].(map[string]any)["revision"])
		byID[ev["decision_id"].(string)] = ev
	}
	allow := byID[allowID]
	require.NotNil(t, allow, "the allowed decision's id names its event")
	assert.Equal(t, true, allow["result"].(map[string]any)["allow"])
	assert.Contains(t, allow["erased"], "/input/request/headers/x-api-key")
	assert.Equal(t, "agent-user", allow["input"].(map[string]any)["jwt"].(map[string]any)["claims"].(map[string]any)["sub"])
	deny := byID[denyID]
	require.NotNil(t, deny)
	assert.Equal(t, 401.0, deny["result"].(map[string]any)["http_status"])
}

func TestDecisionIDInJSONRPCError(t *testing.T) {
	o := newObsEnv(t, denyEnvPolicy, "")
	resp := o.post(t, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get-env","arguments":{}}}`, authed())
	body := readBody(t, resp)
	e := decodeRPCError(t, body)
	assert.Equal(t, -32602, e.Error.Code)
	data, _ := e.Error.Data.(map[string]any)
	require.NotNil(t, data, body)
	assert.Equal(t, resp.Header.Get(DecisionIDHeader), data["decision_id"])
}

const denyEnvPolicy = `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: no-env
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions: ['mcp.tool.name == "get-env"']
`

func TestDecisionLogUserMaskAndDrop(t *testing.T) {
	mask := `package system.log

mask contains "/input/jwt/claims/email"

mask contains {"op": "upsert", "path": "/input/jwt/claims/sub", "value": "**masked**"}

drop if input.input.mcp.method == "ping"
`
	o := newObsEnv(t, "", mask)
	resp := o.post(t, echoCall, authed())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = o.post(t, `{"jsonrpc":"2.0","id":5,"method":"ping"}`, authed())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	assert.NotContains(t, o.dlog.String(), "agent-user@example.com")
	evs := o.events(t)
	require.Len(t, evs, 1, "the ping decision is dropped by data.system.log.drop")
	claims := evs[0]["input"].(map[string]any)["jwt"].(map[string]any)["claims"].(map[string]any)
	assert.NotContains(t, claims, "email")
	assert.Equal(t, "**masked**", claims["sub"])
	assert.Contains(t, evs[0]["erased"], "/input/jwt/claims/email")
	assert.Contains(t, evs[0]["masked"], "/input/jwt/claims/sub")
}

func TestDryRunNeverBlocks(t *testing.T) {
	dry := strings.Replace(denyEnvPolicy, "  name: no-env\n", "  name: no-echo\n  annotations:\n    mcpgate.dev/dry-run: \"true\"\n", 1)
	dry = strings.Replace(dry, `mcp.tool.name == "get-env"`, `mcp.tool.name == "echo"`, 1)
	o := newObsEnv(t, dry, "")
	resp := o.post(t, echoCall, authed())
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"result"`, "the call reached the upstream")

	fams := o.scrape(t)
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_decisions_total", map[string]string{"result": "dry_run_deny"}))
	assert.Equal(t, 1.0, metricValue(fams, "mcpgate_decisions_total", map[string]string{"result": "allow"}))
	assert.Contains(t, o.logs.String(), "dry-run policy would deny")
	evs := o.events(t)
	require.Len(t, evs, 1)
	dr := evs[0]["result"].(map[string]any)["dry_run"].(map[string]any)
	assert.Equal(t, true, dr["would_deny"])
	assert.Equal(t, []any{`team/no-echo rule 0 (Deny) matched: mcp.tool.name == "echo"`}, dr["reasons"])

	// tools/list is not filtered by the dry-run policy.
	resp = o.post(t, `{"jsonrpc":"2.0","id":6,"method":"tools/list"}`, authed())
	assert.Contains(t, readBody(t, resp), `"echo"`)
}

func TestReadiness(t *testing.T) {
	gw := New(Options{})
	admin := httptest.NewServer(gw.AdminHandler("test"))
	defer admin.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(admin.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode, readBody(t, resp)
	}
	code, _ := get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body := get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "no active configuration")

	// A JWKS that cannot be reached: the configuration is active but the
	// gateway cannot accept any token yet.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	upstream := newMCPServer(t)
	port := upstream.srv.URL[strings.LastIndex(upstream.srv.URL, ":")+1:]
	require.NoError(t, gw.Activate(context.Background(), buildBundle(t, configYAML(port, deadURL+"/keys"), nil)))
	code, body = get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "no keys yet for authentication policy team/auth")

	jwks := newJWKS(t)
	b := buildBundle(t, configYAML(port, jwks.URL+"/keys"), nil)
	require.NoError(t, gw.Activate(context.Background(), b))
	// The new policy's key set is fetched in the background.
	require.Eventually(t, func() bool { code, body = get("/readyz"); return code == http.StatusOK }, 10*time.Second, 20*time.Millisecond, body)
	assert.Contains(t, body, b.Revision)

	code, _ = get("/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code)
}

func slogJSON(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func itoa(i int) string { return strconv.Itoa(i) }

// A policy that reads a header gets it (the input carries the headers of
// policies that read them); one that does not is decided without them.
func TestHeadersReachPoliciesThatReadThem(t *testing.T) {
	e := &env{upstream: newMCPServer(t), jwks: newJWKS(t)}
	port := e.upstream.srv.URL[strings.LastIndex(e.upstream.srv.URL, ":")+1:]
	res := &translate.Resources{Sources: map[string]string{}}
	require.Empty(t, load.Decode("inline.yaml", []byte(configYAML(port, e.jwks.URL+"/keys")), res))
	res.Modules = append(res.Modules, translate.Module{Source: "agent.rego", Text: "package mcpgate.user.agent\n\ndeny contains \"no agent name\" if not input.request.headers[\"x-agent\"]\n"})
	out, err := translate.Translate(res)
	require.NoError(t, err)
	e.bundle, err = translate.Bundle(out, nil)
	require.NoError(t, err)
	e.gw = New(Options{})
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	require.True(t, e.gw.snap.Load().eval.ReadsHeaders())
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)

	// A user module's deny hides the tool ("Unknown tool" in a 200).
	assert.Contains(t, readBody(t, e.post(t, echoCall, authed())), "Unknown tool: echo")
	assert.Contains(t, readBody(t, e.post(t, echoCall, authed("X-Agent", "bot-1"))), `"result"`)
	assert.Contains(t, readBody(t, e.post(t, echoCall, authed())), "Unknown tool: echo", "a cached decision is keyed by the header too")
}
