package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// The official MCP conformance suite (@modelcontextprotocol/conformance,
// pinned in tests/node/package.json) is run as a client against an MCP
// server twice: directly, and through the gateway (one static target, no
// authentication — the suite has no token — and an authorization policy
// that allows everything, so every call and list goes through the policy
// engine). The gateway must add no failure: a check that succeeds directly
// must succeed through the gateway too, and a check that warns directly must
// not fail through it.
//
// Two servers: tests/node/conformance-server.mjs, which implements what the
// suite's scenarios ask for (so every check passes directly and the
// comparison covers all of them), and server-everything, the walkthrough's
// server (many scenarios fail directly because it does not have the tools
// they call; those checks compare nothing).

// allowAllPolicies is an Allow rule that matches everything and a Require
// rule every loopback request meets: every decision is taken by the policy
// engine and none refuses.
var allowAllPolicies = []authzPolicy{
	{"allow-all", "HTTPRoute", "Allow", []string{`true`}},
	{"loopback-only", "HTTPRoute", "Require", []string{`source.address == "127.0.0.1"`}},
}

func TestConformanceThroughGateway(t *testing.T) {
	// Locate the suite first: without it (locally) skip before starting
	// anything; in CI a missing tool fails.
	_, err := harness.ConformanceNode()
	harness.Require(t, err)
	_, err = harness.ConformanceCLI()
	harness.Require(t, err)
	scenarios, err := harness.ConformanceScenarios(testContext(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		start func(testing.TB) *harness.Upstream
		// allPass: every check must succeed or warn directly (the server
		// implements every scenario).
		allPass bool
		// federated: the server is one of two targets of a backend with
		// prefixMode Never (the other a Go SDK server), so the suite sees
		// its names unchanged and the gateway must find their target.
		federated bool
		// exempt: checks allowed to be missing through the gateway, with
		// the reason.
		exempt map[string]string
	}{
		{"conformance-server", harness.StartConformanceServer, true, false, nil},
		{"server-everything", harness.StartEverything, false, false, nil},
		{"conformance-server-federated", harness.StartConformanceServer, true, true, map[string]string{
			// A fan-out list is assembled by the gateway and answered as
			// JSON (the transport lets a server choose); the suite then
			// reports the streams check as INFO "SSE streams optional".
			"server-sse-multiple-streams/server-sse-streams-functional": "fan-out lists are answered as application/json",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.start(t)
			cfg := harness.Config{UpstreamPort: u.Port()}
			yaml := strings.TrimRight(cfg.YAML(), "\n") + "\n"
			if tc.federated {
				yaml = federate(yaml, harness.StartGoServer(t))
			}
			for _, p := range allowAllPolicies {
				yaml += p.yaml()
			}
			g := harness.StartGateway(t, yaml)

			direct, directRan := runConformance(t, u.URL())
			via, viaRan := runConformance(t, g.URL()+"/mcp")
			for _, sc := range scenarios {
				if !directRan[sc] || !viaRan[sc] {
					t.Errorf("scenario %s: results directly %v, through the gateway %v (the suite stopped early?)", sc, directRan[sc], viaRan[sc])
				}
			}
			t.Logf("%s directly:            %s", tc.name, direct.counts())
			t.Logf("%s through the gateway: %s", tc.name, via.counts())

			if len(direct) == 0 {
				t.Fatal("the suite reported no checks against the server directly")
			}
			if tc.allPass {
				if bad := direct.failures(); len(bad) > 0 {
					t.Fatalf("%s fails checks directly (the server should implement every scenario of the pinned suite):\n  %s",
						tc.name, strings.Join(bad, "\n  "))
				}
			} else if direct.counts().success == 0 {
				t.Fatal("no check succeeds directly: nothing to compare")
			}

			for k, why := range tc.exempt {
				if _, ok := via[k]; !ok {
					t.Logf("exempt: %s not reported through the gateway (%s)", k, why)
					via[k] = direct[k]
				}
			}
			if reg := regressions(direct, via); len(reg) > 0 {
				t.Errorf("%d check(s) pass directly but not through the gateway:\n  %s\ndirectly:\n%s\nthrough the gateway:\n%s",
					len(reg), strings.Join(reg, "\n  "), direct.summary(), via.summary())
			}
			for _, k := range direct.keys() {
				if via[k] > direct[k] {
					t.Logf("better through the gateway than directly: %s: %s -> %s", k, rankName(direct[k]), rankName(via[k]))
				}
			}

			// The policy engine took the decisions (an allow-everything
			// policy that was never consulted would prove nothing).
			m := string(adminGet(t, g, "/metrics").Body)
			for _, want := range []string{`mcpgate_decisions_total{result="allow"}`, `mcpgate_decision_duration_seconds_count{phase="list"}`} {
				if !strings.Contains(m, want) {
					t.Errorf("/metrics lacks %s: the policy path was not exercised", want)
				}
			}
		})
	}
}

// Check outcomes, worst first. INFO entries (the suite's traces of what was
// sent and received) are not outcomes and are left out.
const (
	rankFailure = 1 + iota
	rankWarning
	rankSuccess
)

func rankName(r int) string {
	switch r {
	case rankFailure:
		return "FAILURE"
	case rankWarning:
		return "WARNING"
	case rankSuccess:
		return "SUCCESS"
	}
	return "missing"
}

// conformanceResults maps "scenario/check-id" to the worst outcome of that
// check in the run.
type conformanceResults map[string]int

type conformanceCounts struct{ success, warning, failure int }

func (c conformanceCounts) String() string {
	return fmt.Sprintf("%d passed, %d warnings, %d failed", c.success, c.warning, c.failure)
}

func (r conformanceResults) counts() conformanceCounts {
	var c conformanceCounts
	for _, v := range r {
		switch v {
		case rankSuccess:
			c.success++
		case rankWarning:
			c.warning++
		case rankFailure:
			c.failure++
		}
	}
	return c
}

func (r conformanceResults) keys() []string {
	ks := make([]string, 0, len(r))
	for k := range r {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (r conformanceResults) failures() []string {
	var out []string
	for _, k := range r.keys() {
		if r[k] == rankFailure {
			out = append(out, k)
		}
	}
	return out
}

func (r conformanceResults) summary() string {
	var b strings.Builder
	for _, k := range r.keys() {
		fmt.Fprintf(&b, "  %-7s %s\n", rankName(r[k]), k)
	}
	return b.String()
}

// regressions lists the checks whose outcome through the gateway is worse
// than directly: a check missing through the gateway counts as failed, and
// a failed check only the gateway run reported (a scenario's error check)
// is new.
func regressions(direct, via conformanceResults) []string {
	var out []string
	for _, k := range direct.keys() {
		if via[k] < direct[k] {
			out = append(out, fmt.Sprintf("%s: %s directly, %s through the gateway", k, rankName(direct[k]), rankName(via[k])))
		}
	}
	for _, k := range via.keys() {
		if _, ok := direct[k]; !ok && via[k] == rankFailure {
			out = append(out, fmt.Sprintf("%s: not reported directly, FAILURE through the gateway", k))
		}
	}
	return out
}

// scenarioDir is the suite's per-scenario result directory:
// server-<scenario>-<ISO timestamp with - for : and .>.
var scenarioDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)

// runConformance runs the suite against url and reads every scenario's
// checks.json; it returns the outcomes and the scenarios that wrote results.
func runConformance(t *testing.T, url string) (conformanceResults, map[string]bool) {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	out, err := harness.RunConformance(testContext(t, 3*time.Minute), url, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("suite against %s: %s", url, time.Since(start).Round(10*time.Millisecond))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, ran := conformanceResults{}, map[string]bool{}
	for _, e := range entries {
		m := scenarioDir.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		ran[m[1]] = true
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "checks.json"))
		if err != nil {
			t.Fatalf("scenario %s: %v\nsuite output:\n%s", m[1], err, out)
		}
		var checks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &checks); err != nil {
			t.Fatalf("scenario %s: checks.json: %v", m[1], err)
		}
		for _, c := range checks {
			var r int
			switch c.Status {
			case "SUCCESS":
				r = rankSuccess
			case "WARNING":
				r = rankWarning
			case "FAILURE":
				r = rankFailure
			case "INFO", "SKIPPED":
				continue
			default:
				t.Fatalf("scenario %s: check %s has unknown status %q", m[1], c.ID, c.Status)
			}
			k := m[1] + "/" + c.ID
			if old, ok := res[k]; !ok || r < old {
				res[k] = r
			}
		}
	}
	if len(res) == 0 {
		t.Fatalf("the conformance suite against %s wrote no results; output:\n%s", url, out)
	}
	return res, ran
}

// The comparison itself, on hand-made results.
func TestConformanceRegressions(t *testing.T) {
	direct := conformanceResults{
		"a/pass":    rankSuccess,
		"b/warn":    rankWarning,
		"c/fail":    rankFailure,
		"d/dropped": rankSuccess,
		"e/same":    rankSuccess,
	}
	via := conformanceResults{
		"a/pass":  rankFailure, // lost
		"b/warn":  rankSuccess, // better
		"c/fail":  rankFailure, // failed both ways: not the gateway's doing
		"e/same":  rankSuccess,
		"f/error": rankFailure, // only through the gateway
		"g/info":  rankWarning, // a new warning is not a failure
	}
	got := regressions(direct, via)
	want := []string{
		"a/pass: SUCCESS directly, FAILURE through the gateway",
		"d/dropped: SUCCESS directly, missing through the gateway",
		"f/error: not reported directly, FAILURE through the gateway",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("regressions:\n got %q\nwant %q", got, want)
	}
	if c := via.counts(); c != (conformanceCounts{success: 2, warning: 1, failure: 3}) {
		t.Fatalf("counts: %+v", c)
	}
}

// federate turns the harness configuration's backend into two targets,
// the Go SDK server first and the server under test after it (so its names are not simply the first target's), with prefixMode Never.
func federate(yaml string, second *harness.Upstream) string {
	return strings.Replace(yaml, "    targets:\n", fmt.Sprintf(`    prefixMode: Never
    targets:
    - name: second
      static: {host: 127.0.0.1, port: %d, path: /mcp}
`, second.Port()), 1)
}
