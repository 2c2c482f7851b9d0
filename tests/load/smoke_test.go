package load

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// TestSmoke starts every process of the harness and runs each target at a
// low fixed rate for a second, then the closed loop briefly: the harness
// works end to end (sessions, JWT, policy, SSE and JSON answers, /proc
// readings, the report). It asserts no timings.
func TestSmoke(t *testing.T) {
	_, nodeErr := harness.NodeBin()
	if nodeErr == nil {
		_, nodeErr = harness.NodeModules()
	}
	everything := true
	if nodeErr != nil {
		if os.Getenv("CI") != "" || !errors.Is(nodeErr, harness.ErrToolMissing) {
			t.Fatal(nodeErr)
		}
		t.Logf("measuring without server-everything: %v", nodeErr)
		everything = false
	}
	ctx := t.Context()
	e, err := Setup(ctx, Options{Everything: everything, Federation: true})
	harness.Require(t, err)
	t.Cleanup(e.Close)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range e.Processes() {
				t.Logf("--- %s output ---\n%s", p.Name, p.Output())
			}
		}
	})

	plan := Plan{
		Duration: time.Second, Rates: []float64{50}, Concurrency: 2, Sessions: 4,
		Methods: []Method{ToolsCall, ToolsList}, Drain: 10 * time.Second,
		EverythingRates: []float64{20},
		Federation:      &FederationPlan{CallRates: []float64{20}, ListRates: []float64{5}},
	}
	res, err := Run(ctx, e, plan)
	if err != nil {
		t.Fatal(err)
	}
	want := 3*2 + 4*2 // main; federation
	if everything {
		want += 2 * 2
	}
	if len(res.Rows) != want {
		t.Fatalf("got %d rows, want %d", len(res.Rows), want)
	}
	for _, r := range res.Rows {
		st := r.Stats
		if st.Errors != 0 || st.OK == 0 || st.Sent != st.OK || st.Percentile(.5) <= 0 {
			t.Errorf("%s %s %s: got %d ok, %d errors of %d sent (first: %s), p50 %v; want every request answered",
				r.Upstream, r.Target, r.Method, st.OK, st.Errors, st.Sent, st.FirstErr, st.Percentile(.5))
		}
	}
	// The gateway's list filtering shows: the policy denies delete and
	// get-env of the go-sdk server's ten tools.
	tools := func(upstream, target string) int {
		r, ok := res.Find(upstream, target, ToolsList, plan.Rates[0])
		if !ok {
			t.Fatalf("no tools/list row for %s %s", upstream, target)
		}
		return r.Stats.Tools
	}
	if d, b, g := tools("go-sdk", "direct"), tools("go-sdk", "bare-proxy"), tools("go-sdk", "gateway"); d != 10 || b != 10 || g != 8 {
		t.Errorf("tools listed direct / bare proxy / gateway: got %d / %d / %d, want 10 / 10 / 8", d, b, g)
	}
	// Federation: 300 tools directly and through the bare proxy; the policy
	// hides delete and get-env of the one server (298), of each of the
	// three (294); the call through three targets reaches b's echo.
	fed := func(upstream, target string) int {
		r, ok := res.Find(upstream, target, ToolsList, 5)
		if !ok {
			t.Fatalf("no tools/list row for %s %s", upstream, target)
		}
		return r.Stats.Tools
	}
	if d, b, g1, g3 := fed(FedOne, "direct"), fed(FedOne, "bare-proxy"), fed(FedOne, "gateway"), fed(FedThree, "gateway"); d != 300 || b != 300 || g1 != 298 || g3 != 294 {
		t.Errorf("federation tools listed direct / bare proxy / gateway 1 target / gateway 3 targets: got %d / %d / %d / %d, want 300 / 300 / 298 / 294", d, b, g1, g3)
	}
	if r, ok := res.Find(FedThree, "gateway", ToolsCall, 20); !ok || r.ServerCPU < 0 {
		t.Errorf("no federated tools/call row: %+v", r)
	}
	if r, _ := res.Find("go-sdk", "gateway", ToolsCall, plan.Rates[0]); r.ProxyMem.RSS <= 0 {
		t.Errorf("gateway RSS after its run: got %d, want > 0", r.ProxyMem.RSS)
	}

	var md strings.Builder
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| go-sdk | direct | tools/call | 50/s |", "| go-sdk | gateway | tools/list | 50/s |",
		"| go-sdk | bare-proxy |", "## Ratios against DESIGN.md §7", "added latency vs direct: gateway p50",
		"| go-sdk 3×100 | gateway | tools/list | 5/s |", "## Federation: one backend of 3 targets × 100 tools",
		"tools listed: direct 300, bare proxy 300, gateway 1 target 298, gateway 3 targets 294"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, md.String())
		}
	}
	if everything && !strings.Contains(md.String(), "| server-everything | gateway | tools/call | 20/s |") {
		t.Errorf("report lacks the server-everything rows:\n%s", md.String())
	}

	// The closed loop (saturation mode) against each go-sdk target.
	for _, tg := range e.Targets() {
		c := NewClient(tg.URL, tg.Token, 2)
		ss, err := OpenSessions(ctx, c, 2)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ClosedLoop(ctx, ss, ToolsCall, 300*time.Millisecond)
		CloseSessions(ss)
		c.Close()
		if err != nil || st.Errors != 0 || st.OK == 0 {
			t.Errorf("closed loop via %s: got %d ok, %d errors (%s), %v; want every request answered", tg.Name, st.OK, st.Errors, st.FirstErr, err)
		}
	}
}
