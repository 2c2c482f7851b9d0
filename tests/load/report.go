package load

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// Budgets of DESIGN.md §7 the report states its ratios against.
const (
	BudgetAddedP50   = 150 * time.Microsecond // gateway vs direct at 1k req/s
	BudgetAddedP99   = 500 * time.Microsecond
	BudgetSaturation = 0.90                   // gateway / bare proxy throughput
	BudgetCPU        = 230 * time.Microsecond // gateway CPU per tools/call
	BudgetIdleRSS    = 40 << 20
)

func loadName(r Row) string {
	if r.Rate == 0 {
		return fmt.Sprintf("sat. c=%d", r.Concurrency)
	}
	return fmt.Sprintf("%g/s", r.Rate)
}

// fmtDur prints a latency in µs below 10 ms, else in ms.
func fmtDur(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// Find returns the row for upstream, target, method and rate (0:
// saturation).
func (r *Results) Find(upstream, target string, m Method, rate float64) (Row, bool) {
	for _, row := range r.Rows {
		if row.Upstream == upstream && row.Target == target && row.Method == m && row.Rate == rate {
			return row, true
		}
	}
	return Row{}, false
}

// cpuPerRequest is target's CPU over every run of method m against
// upstream, divided by the requests of those runs.
func (r *Results) cpuPerRequest(upstream, target string, m Method) (time.Duration, bool) {
	var cpu time.Duration
	n := 0
	for _, row := range r.Rows {
		if row.Upstream == upstream && row.Target == target && row.Method == m {
			cpu += row.ProxyCPU
			n += row.Stats.Sent
		}
	}
	if n == 0 {
		return 0, false
	}
	return cpu / time.Duration(n), true
}

// machine describes where the run happened, from /proc.
func machine() string {
	model, cores := "?", 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				model = strings.TrimSpace(v)
				cores++
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscan(strings.TrimSpace(v), &kb); err == nil {
					mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d logical CPUs, %s RAM, Linux %s, %s %s/%s", model, cores, mem, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// verdict words a budget comparison.
func verdict(ok bool) string {
	if ok {
		return "within budget"
	}
	return "**over budget**"
}

// WriteMarkdown writes the results table and the ratios.
func (r *Results) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := r.Plan
	fmt.Fprintf(&b, "# mcpgate load run %s\n\n", r.Start.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- machine: %s\n", machine())
	fmt.Fprintf(&b, "- load average before / after: %s / %s (the machine is shared: figures are noisy; compare rows of the same run)\n", r.LoadStart, r.LoadEnd)
	fmt.Fprintf(&b, "- %s per measurement after a %s warm-up per target; open loop over %d sessions (latency from the intended send time), saturation = closed loop with %d workers; targets interleaved per load\n",
		p.Duration, p.Warmup, p.Sessions, p.Concurrency)
	if p.Federation != nil {
		fmt.Fprintf(&b, "- federation scenario: go-sdk servers with 300 tools (direct, bare proxy, a gateway with it as its one target) and three with 100 tools (a gateway whose backend has targets %s); the gateways' Allow rule also admits tool-NNN\n", strings.Join(FederationTargets, ", "))
	}
	fmt.Fprintf(&b, "- gateway: JWT (RS256, Strict, verified-token cache) + CEL authorization (Allow rule on tool and group, Deny rule) + local rate limit 1,000,000/s; bare-proxy: httputil.ReverseProxy; upstreams: go-sdk v1.8.0 (JSON responses, 10 tools) and server-everything (SSE)\n")
	fmt.Fprintf(&b, "- CPU µs/req: user+system time of the process from /proc/<pid>/stat over the run, divided by the requests sent (USER_HZ resolution: ±%.0f ms per run)\n\n", 1000/clockTicks())

	b.WriteString("| upstream | target | method | load | req/s | p50 | p90 | p99 | max | errors | proxy CPU µs/req | server CPU µs/req | load-gen CPU µs/req | proxy RSS MB | tools listed |\n")
	b.WriteString("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, row := range r.Rows {
		st := row.Stats
		proxyCPU, proxyRSS := "–", "–"
		if row.Target != "direct" {
			proxyCPU = fmt.Sprintf("%.0f", row.PerRequest(row.ProxyCPU))
			proxyRSS = mb(row.ProxyMem.RSS)
		}
		tools := "–"
		if row.Method == ToolsList {
			tools = fmt.Sprint(st.Tools)
		}
		errs := fmt.Sprint(st.Errors)
		if st.Errors > 0 {
			errs = fmt.Sprintf("%d (%s)", st.Errors, strings.ReplaceAll(truncate(st.FirstErr, 120), "|", "/"))
		}
		var maxLat time.Duration
		if len(st.Latencies) > 0 {
			maxLat = st.Latencies[len(st.Latencies)-1]
		}
		load := loadName(row)
		if row.Overloaded() {
			load += " ⚠"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %.0f | %.0f | %s | %s |\n",
			row.Upstream, row.Target, row.Method, load, st.Throughput(),
			fmtDur(st.Percentile(.5)), fmtDur(st.Percentile(.9)), fmtDur(st.Percentile(.99)), fmtDur(maxLat),
			errs, proxyCPU, row.PerRequest(row.ServerCPU), row.PerRequest(row.LoadCPU), proxyRSS, tools)
	}

	b.WriteString("\n⚠: the target fell behind the offered rate (requests unsent or under 95% answered); its latencies are queueing, and errors count the requests never sent before the run's deadline.\n")
	if !p.SkipMain {
		r.writeMain(&b)
	}
	b.WriteString(r.federation())
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMain writes the ratios of the main scenario against the budgets.
func (r *Results) writeMain(b *strings.Builder) {
	p := r.Plan
	b.WriteString("\n## Ratios against DESIGN.md §7\n\n")
	for _, m := range p.Methods {
		b.WriteString(r.addedLatency(m, closest(p.Rates, 1000)))
	}
	if p.Saturation {
		for _, m := range p.Methods {
			d, ok1 := r.Find("go-sdk", "direct", m, 0)
			g, ok2 := r.Find("go-sdk", "gateway", m, 0)
			bp, ok3 := r.Find("go-sdk", "bare-proxy", m, 0)
			if ok1 && ok2 && ok3 {
				gb := g.Stats.Throughput() / bp.Stats.Throughput()
				fmt.Fprintf(b, "- %s saturation throughput: gateway/bare proxy %.0f%% (budget ≥ %.0f%%: %s), gateway/direct %.0f%%, bare/direct %.0f%% (%.0f / %.0f / %.0f req/s)\n",
					m, 100*gb, 100*BudgetSaturation, verdict(gb >= BudgetSaturation),
					100*g.Stats.Throughput()/d.Stats.Throughput(), 100*bp.Stats.Throughput()/d.Stats.Throughput(),
					g.Stats.Throughput(), bp.Stats.Throughput(), d.Stats.Throughput())
			}
		}
	}
	for _, m := range p.Methods {
		gc, ok1 := r.cpuPerRequest("go-sdk", "gateway", m)
		bc, ok2 := r.cpuPerRequest("go-sdk", "bare-proxy", m)
		if ok1 && ok2 {
			line := fmt.Sprintf("- %s CPU per request over all its runs: gateway %d µs, bare proxy %d µs, gateway/bare ×%.2f", m, gc.Microseconds(), bc.Microseconds(), ratio(gc, bc))
			if m == ToolsCall {
				line += fmt.Sprintf(" (budget ≤ %d µs: %s)", BudgetCPU.Microseconds(), verdict(gc <= BudgetCPU))
			}
			b.WriteString(line + "\n")
		}
	}
	fmt.Fprintf(b, "- gateway RSS: idle %s MB (budget < %s MB: %s), after the go-sdk runs %s MB, peak %s MB\n",
		mb(r.GatewayIdle.RSS), mb(BudgetIdleRSS), verdict(r.GatewayIdle.RSS < BudgetIdleRSS), mb(r.GatewayPeak.RSS), mb(r.GatewayPeak.Peak))
	for _, m := range p.Methods {
		for _, rate := range p.EverythingRates {
			d, ok1 := r.Find("server-everything", "direct", m, rate)
			g, ok2 := r.Find("server-everything", "gateway", m, rate)
			if ok1 && ok2 {
				if d.Overloaded() || g.Overloaded() {
					fmt.Fprintf(b, "- server-everything %s at %g req/s: not sustained in this run (direct %.0f, gateway %.0f req/s answered)\n", m, rate, d.Stats.Throughput(), g.Stats.Throughput())
					continue
				}
				fmt.Fprintf(b, "- server-everything %s at %g req/s: gateway adds p50 %s, p99 %s (gateway/direct p50 ×%.2f)\n", m, rate,
					fmtSigned(g.Stats.Percentile(.5)-d.Stats.Percentile(.5)), fmtSigned(g.Stats.Percentile(.99)-d.Stats.Percentile(.99)),
					ratio(g.Stats.Percentile(.5), d.Stats.Percentile(.5)))
			}
		}
		if p.EverythingSaturation {
			d, ok1 := r.Find("server-everything", "direct", m, 0)
			g, ok2 := r.Find("server-everything", "gateway", m, 0)
			if ok1 && ok2 {
				fmt.Fprintf(b, "- server-everything %s saturation: gateway/direct %.0f%% (%.0f / %.0f req/s)\n", m,
					100*g.Stats.Throughput()/d.Stats.Throughput(), g.Stats.Throughput(), d.Stats.Throughput())
			}
		}
	}
}

// federation is the report's section on the federation scenario: the
// three-target gateway against direct (one server with all 300 tools), the
// bare proxy and the one-target gateway, as ratios within this run. Empty
// when the scenario was not measured.
func (r *Results) federation() string {
	fp := r.Plan.Federation
	if fp == nil {
		return ""
	}
	if _, ok := r.Find(FedThree, "gateway", ToolsCall, 0); !ok {
		if _, ok := r.Find(FedThree, "gateway", ToolsList, firstOr(fp.ListRates)); !ok {
			return ""
		}
	}
	type tgt struct{ upstream, target, label string }
	direct := tgt{FedOne, "direct", "direct"}
	bare := tgt{FedOne, "bare-proxy", "bare proxy"}
	one := tgt{FedOne, "gateway", "gateway 1 target"}
	three := tgt{FedThree, "gateway", "gateway 3 targets"}
	all := []tgt{direct, bare, one, three}

	var b strings.Builder
	b.WriteString("\n## Federation: one backend of 3 targets × 100 tools\n\n")
	b.WriteString("Baselines from this run: direct = one go-sdk server with all 300 tools; bare proxy in front of it; gateway 1 target = the same policy with that server as its one target. " +
		"Gateway 3 targets: tools/list fans out to three go-sdk servers of 100 tools, filters each by the policy, prefixes and merges; tools/call names `" + FederatedTool + "`. " +
		"Server CPU of the 3-target rows is the three servers' sum.\n\n")
	for _, m := range r.Plan.Methods {
		for _, rate := range fp.Rates(m) {
			rows := map[tgt]Row{}
			var parts, behind []string
			for _, t := range all {
				row, ok := r.Find(t.upstream, t.target, m, rate)
				if !ok {
					continue
				}
				rows[t] = row
				parts = append(parts, fmt.Sprintf("%s %s / %s", t.label, fmtDur(row.Stats.Percentile(.5)), fmtDur(row.Stats.Percentile(.99))))
				if row.Overloaded() {
					behind = append(behind, t.label)
				}
			}
			if len(rows) == 0 {
				continue
			}
			line := fmt.Sprintf("- %s at %g req/s, p50 / p99: %s", m, rate, strings.Join(parts, ", "))
			d, g3, g1 := rows[direct], rows[three], rows[one]
			if len(behind) > 0 {
				line += fmt.Sprintf("; not sustained by %s (queueing)", strings.Join(behind, ", "))
			} else if d.Stats.OK > 0 && g3.Stats.OK > 0 && g1.Stats.OK > 0 {
				line += fmt.Sprintf("; p50 gateway 3 targets/direct ×%.2f, 3 targets/1 target ×%.2f; added vs direct p50 %s, p99 %s",
					ratio(g3.Stats.Percentile(.5), d.Stats.Percentile(.5)), ratio(g3.Stats.Percentile(.5), g1.Stats.Percentile(.5)),
					fmtSigned(g3.Stats.Percentile(.5)-d.Stats.Percentile(.5)), fmtSigned(g3.Stats.Percentile(.99)-d.Stats.Percentile(.99)))
			}
			b.WriteString(line + "\n")
		}
		if fp.Saturation {
			d, ok1 := r.Find(direct.upstream, direct.target, m, 0)
			bp, ok2 := r.Find(bare.upstream, bare.target, m, 0)
			g1, ok3 := r.Find(one.upstream, one.target, m, 0)
			g3, ok4 := r.Find(three.upstream, three.target, m, 0)
			if ok1 && ok2 && ok3 && ok4 {
				tp := func(x Row) float64 { return x.Stats.Throughput() }
				fmt.Fprintf(&b, "- %s saturation: gateway 3 targets/direct %.0f%%, /bare proxy %.0f%%, /gateway 1 target %.0f%% (direct %.0f, bare %.0f, gateway 1 target %.0f, gateway 3 targets %.0f req/s)\n",
					m, 100*tp(g3)/tp(d), 100*tp(g3)/tp(bp), 100*tp(g3)/tp(g1), tp(d), tp(bp), tp(g1), tp(g3))
			}
		}
		g3c, ok1 := r.cpuPerRequest(three.upstream, three.target, m)
		g1c, ok2 := r.cpuPerRequest(one.upstream, one.target, m)
		bc, ok3 := r.cpuPerRequest(bare.upstream, bare.target, m)
		ds, ok4 := r.serverCPUPerRequest(direct.upstream, direct.target, m)
		g3s, ok5 := r.serverCPUPerRequest(three.upstream, three.target, m)
		if ok1 && ok2 && ok3 && ok4 && ok5 {
			fmt.Fprintf(&b, "- %s CPU per request over all its runs: gateway 3 targets %s, gateway 1 target %s, bare proxy %s (3 targets/1 target ×%.2f, 3 targets/bare ×%.2f); servers: 3 targets %s, direct %s (×%.2f)\n",
				m, fmtDur(g3c), fmtDur(g1c), fmtDur(bc), ratio(g3c, g1c), ratio(g3c, bc), fmtDur(g3s), fmtDur(ds), ratio(g3s, ds))
		}
		if m == ToolsList {
			rate := firstOr(fp.ListRates)
			var parts []string
			for _, t := range all {
				if row, ok := r.Find(t.upstream, t.target, m, rate); ok {
					parts = append(parts, fmt.Sprintf("%s %d", t.label, row.Stats.Tools))
				}
			}
			if len(parts) > 0 {
				fmt.Fprintf(&b, "- tools listed: %s (the policy hides delete and get-env of each server)\n", strings.Join(parts, ", "))
			}
		}
	}
	return b.String()
}

// serverCPUPerRequest is like cpuPerRequest for the MCP servers' CPU.
func (r *Results) serverCPUPerRequest(upstream, target string, m Method) (time.Duration, bool) {
	var cpu time.Duration
	n := 0
	for _, row := range r.Rows {
		if row.Upstream == upstream && row.Target == target && row.Method == m {
			cpu += row.ServerCPU
			n += row.Stats.Sent
		}
	}
	if n == 0 {
		return 0, false
	}
	return cpu / time.Duration(n), true
}

func firstOr(rates []float64) float64 {
	if len(rates) == 0 {
		return 0
	}
	return rates[0]
}

// Overloaded reports whether an open-loop run fell behind its schedule:
// requests left unsent, or under 95% of the offered rate answered. Its
// latencies are then mostly queueing in front of a saturated target.
func (r Row) Overloaded() bool {
	return r.Rate > 0 && (r.Stats.Unsent > 0 || r.Stats.Throughput() < 0.95*r.Rate)
}

// addedLatency is the budget line for m at rate ref: what the gateway (and
// the bare proxy) add to the direct p50 and p99. When a target could not
// sustain ref, the line says so and compares at the highest rate all three
// sustained instead.
func (r *Results) addedLatency(m Method, ref float64) string {
	rows := func(rate float64) (d, g, bp Row, ok bool) {
		var ok1, ok2, ok3 bool
		d, ok1 = r.Find("go-sdk", "direct", m, rate)
		g, ok2 = r.Find("go-sdk", "gateway", m, rate)
		bp, ok3 = r.Find("go-sdk", "bare-proxy", m, rate)
		return d, g, bp, ok1 && ok2 && ok3
	}
	d, g, bp, ok := rows(ref)
	if !ok {
		return ""
	}
	var b strings.Builder
	rate := ref
	if d.Overloaded() || g.Overloaded() || bp.Overloaded() {
		var behind []string
		for _, row := range []Row{d, bp, g} {
			if row.Overloaded() {
				behind = append(behind, fmt.Sprintf("%s answered %.0f req/s", row.Target, row.Stats.Throughput()))
			}
		}
		fmt.Fprintf(&b, "- %s at %g req/s: not measurable in this run, the offered rate was not sustained (%s); latencies there are queueing\n", m, ref, strings.Join(behind, ", "))
		rate = 0
		for _, x := range r.Plan.Rates {
			if dx, gx, bx, okx := rows(x); okx && !dx.Overloaded() && !gx.Overloaded() && !bx.Overloaded() && x > rate {
				rate, d, g, bp = x, dx, gx, bx
			}
		}
		if rate == 0 {
			return b.String()
		}
	}
	a50 := g.Stats.Percentile(.5) - d.Stats.Percentile(.5)
	a99 := g.Stats.Percentile(.99) - d.Stats.Percentile(.99)
	b50 := bp.Stats.Percentile(.5) - d.Stats.Percentile(.5)
	b99 := bp.Stats.Percentile(.99) - d.Stats.Percentile(.99)
	fmt.Fprintf(&b, "- %s at %g req/s, added latency vs direct: gateway p50 %s (budget ≤ %s at 1k req/s: %s), p99 %s (budget ≤ %s: %s); bare proxy p50 %s, p99 %s; gateway/direct p50 ×%.2f, gateway/bare p50 ×%.2f\n",
		m, rate, fmtSigned(a50), fmtDur(BudgetAddedP50), verdict(a50 <= BudgetAddedP50),
		fmtSigned(a99), fmtDur(BudgetAddedP99), verdict(a99 <= BudgetAddedP99),
		fmtSigned(b50), fmtSigned(b99),
		ratio(g.Stats.Percentile(.5), d.Stats.Percentile(.5)), ratio(g.Stats.Percentile(.5), bp.Stats.Percentile(.5)))
	return b.String()
}

func fmtSigned(d time.Duration) string {
	if d < 0 {
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func closest(rates []float64, want float64) float64 {
	best := math.NaN()
	for _, r := range rates {
		if math.IsNaN(best) || math.Abs(r-want) < math.Abs(best-want) {
			best = r
		}
	}
	return best
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
