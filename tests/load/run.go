package load

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// Plan is what one harness run measures.
type Plan struct {
	Duration    time.Duration // per measurement
	Rates       []float64     // fixed rates (req/s) for the go-sdk targets
	Saturation  bool          // also a closed-loop run per target and method
	Concurrency int           // closed-loop workers
	Sessions    int           // open-loop sessions (concurrent requests at most)
	Methods     []Method
	Warmup      time.Duration // per target, before anything is recorded
	Drain       time.Duration // how long an open-loop run may overrun its schedule
	Pause       time.Duration // between runs

	// EverythingRates are the fixed rates for server-everything direct and
	// through the gateway (measured only when Env has it).
	EverythingRates      []float64
	EverythingSaturation bool

	// SkipMain leaves out the go-sdk targets above (Rates, Saturation):
	// a run of other scenarios only.
	SkipMain bool
	// Federation is the federation scenario (measured only when Env has
	// it); nil skips it.
	Federation *FederationPlan

	// Logf reports progress; nil is quiet.
	Logf func(format string, args ...any)
}

// DefaultPlan is `make load`: the design's rates (500, 1k, 2k req/s) and
// saturation, plus 200 req/s, which a loaded 2-core machine sustains through
// every target, so an added latency is measured even when the others queue.
func DefaultPlan() Plan {
	return Plan{
		Duration: 10 * time.Second, Rates: []float64{200, 500, 1000, 2000}, Saturation: true,
		Concurrency: 16, Sessions: 64, Methods: []Method{ToolsCall, ToolsList},
		Warmup: 2 * time.Second, Drain: 10 * time.Second, Pause: time.Second,
		EverythingRates: []float64{100}, EverythingSaturation: true,
	}
}

// FederationPlan is what the federation scenario measures: its fixed
// rates per method (a list of 300 tools costs the go-sdk server itself
// tens of times a call, so lists get lower rates), and saturation.
type FederationPlan struct {
	CallRates, ListRates []float64
	Saturation           bool
}

// DefaultFederationPlan is `make load`'s federation scenario.
func DefaultFederationPlan() *FederationPlan {
	return &FederationPlan{CallRates: []float64{200}, ListRates: []float64{20}, Saturation: true}
}

// Rates are the fixed rates for m.
func (f *FederationPlan) Rates(m Method) []float64 {
	if m == ToolsList {
		return f.ListRates
	}
	return f.CallRates
}

// Row is one measurement: a target, a method, a load.
type Row struct {
	Target      string // direct, bare-proxy, gateway
	Upstream    string // go-sdk, server-everything
	Method      Method
	Rate        float64 // offered req/s; 0 means saturation (closed loop)
	Concurrency int     // closed-loop workers
	Stats       Stats
	// CPU used during the run by the process in the middle (zero when
	// direct), the MCP server, and the load generator itself.
	ProxyCPU, ServerCPU, LoadCPU time.Duration
	// Memory after the run.
	ProxyMem, ServerMem Memory
}

// PerRequest is cpu divided over the requests sent in the run, in µs.
func (r Row) PerRequest(cpu time.Duration) float64 {
	if r.Stats.Sent == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(r.Stats.Sent)
}

// Results is a whole run.
type Results struct {
	Plan        Plan
	Start, End  time.Time
	LoadStart   string // /proc/loadavg before the run
	LoadEnd     string // and after
	GatewayIdle Memory
	GatewayPeak Memory // the gateway (go-sdk) after every run
	Rows        []Row
}

// Run measures every target of e as p says. Targets are interleaved per
// (method, load), so the figures compared with each other were taken
// minutes apart at most, under the same background load.
func Run(ctx context.Context, e *Env, p Plan) (*Results, error) {
	logf := p.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := &Results{Plan: p, Start: time.Now().UTC(), LoadStart: loadavg(), GatewayIdle: e.GatewayIdle}
	measure := func(t Target, m Method, rate float64) error {
		row, err := measureOne(ctx, t, m, rate, p)
		if err != nil {
			return err
		}
		logf("%-17s %-10s %-10s %-10s ok %6d err %4d  %7.0f req/s  p50 %7s  p99 %7s", row.Upstream, row.Target, m, loadName(row), row.Stats.OK, row.Stats.Errors,
			row.Stats.Throughput(), fmtDur(row.Stats.Percentile(.5)), fmtDur(row.Stats.Percentile(.99)))
		res.Rows = append(res.Rows, row)
		time.Sleep(p.Pause)
		return nil
	}
	warm := func(ts ...Target) error {
		for _, t := range ts {
			for _, m := range p.Methods {
				c := NewClient(t.URL, t.Token, 4)
				c.Tool = t.Tool
				ss, err := OpenSessions(ctx, c, 4)
				if err == nil {
					_, err = ClosedLoop(ctx, ss, m, p.Warmup/time.Duration(len(p.Methods)))
					CloseSessions(ss)
				}
				c.Close()
				if err != nil {
					return fmt.Errorf("load: warm-up %s %s: %w", t.Name, m, err)
				}
			}
		}
		return nil
	}

	targets := e.Targets()
	if p.SkipMain {
		targets = nil
	}
	if p.Warmup > 0 && len(targets) > 0 {
		logf("warming up %d targets", len(targets))
		if err := warm(targets...); err != nil {
			return nil, err
		}
	}
	for _, m := range p.Methods {
		if len(targets) == 0 {
			break
		}
		for _, rate := range p.Rates {
			for _, t := range targets {
				if err := measure(t, m, rate); err != nil {
					return nil, err
				}
			}
		}
		if p.Saturation {
			for _, t := range targets {
				if err := measure(t, m, 0); err != nil {
					return nil, err
				}
			}
		}
	}
	var err error
	if res.GatewayPeak, err = ReadMemory(e.Gateway.Proxy.PID()); err != nil {
		return nil, err
	}

	if e.Everything != nil {
		ev := []Target{*e.Everything, *e.GatewayEverything}
		if p.Warmup > 0 {
			if err := warm(ev...); err != nil {
				return nil, err
			}
		}
		for _, m := range p.Methods {
			for _, rate := range p.EverythingRates {
				for _, t := range ev {
					if err := measure(t, m, rate); err != nil {
						return nil, err
					}
				}
			}
			if p.EverythingSaturation {
				for _, t := range ev {
					if err := measure(t, m, 0); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if f := e.Federation; f != nil && p.Federation != nil {
		targets := f.Targets()
		if p.Warmup > 0 {
			logf("warming up the %d federation targets", len(targets))
			if err := warm(targets...); err != nil {
				return nil, err
			}
		}
		for _, m := range p.Methods {
			for _, rate := range p.Federation.Rates(m) {
				for _, t := range targets {
					if err := measure(t, m, rate); err != nil {
						return nil, err
					}
				}
			}
			if p.Federation.Saturation {
				for _, t := range targets {
					if err := measure(t, m, 0); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	res.End = time.Now().UTC()
	res.LoadEnd = loadavg()
	return res, nil
}

// measureOne runs one open-loop (rate > 0) or closed-loop (rate 0) load
// against t, reading the processes' CPU time before and after.
func measureOne(ctx context.Context, t Target, m Method, rate float64, p Plan) (Row, error) {
	row := Row{Target: t.Name, Upstream: t.Upstream, Method: m, Rate: rate}
	conns := p.Sessions
	if rate == 0 {
		conns = p.Concurrency
		row.Concurrency = p.Concurrency
	}
	c := NewClient(t.URL, t.Token, conns)
	c.Tool = t.Tool
	defer c.Close()

	cpu := func() (proxy, server, self time.Duration, err error) {
		if t.Proxy != nil {
			if proxy, err = CPUTime(t.Proxy.PID()); err != nil {
				return
			}
		}
		if server, err = CPUTime(t.Server.PID()); err != nil {
			return
		}
		for _, more := range t.MoreServers {
			var c time.Duration
			if c, err = CPUTime(more.PID()); err != nil {
				return
			}
			server += c
		}
		self, err = CPUTime(os.Getpid())
		return
	}
	// Sessions open before and close after the CPU readings: only the
	// measured requests are in the CPU figures.
	sessions, err := OpenSessions(ctx, c, conns)
	if err != nil {
		return row, fmt.Errorf("load: %s %s: %w", t.Upstream, t.Name, err)
	}
	defer CloseSessions(sessions)
	p0, s0, l0, err := cpu()
	if err != nil {
		return row, err
	}
	if rate > 0 {
		row.Stats, err = OpenLoop(ctx, sessions, m, rate, p.Duration, p.Drain)
	} else {
		row.Stats, err = ClosedLoop(ctx, sessions, m, p.Duration)
	}
	if err != nil {
		return row, fmt.Errorf("load: %s %s %s: %w", t.Upstream, t.Name, m, err)
	}
	p1, s1, l1, err := cpu()
	if err != nil {
		return row, err
	}
	row.ProxyCPU, row.ServerCPU, row.LoadCPU = p1-p0, s1-s0, l1-l0
	if t.Proxy != nil {
		if row.ProxyMem, err = ReadMemory(t.Proxy.PID()); err != nil {
			return row, err
		}
	}
	if row.ServerMem, err = ReadMemory(t.Server.PID()); err != nil {
		return row, err
	}
	return row, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
