package load

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range n {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, .5, 0},
		{"one", ms(7), .99, 7 * time.Millisecond},
		{"median of ten", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), .5, 5 * time.Millisecond},
		{"p90 of ten", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), .9, 9 * time.Millisecond},
		{"p99 of ten is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), .99, 10 * time.Millisecond},
		{"max", ms(1, 2, 3), 1, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("percentile(%v, %g) = %v, want %v", tt.sorted, tt.q, got, tt.want)
			}
		})
	}
}

func TestCheckResult(t *testing.T) {
	tests := []struct {
		name, ct, body, id string
		wantErr            error
		wantTools          int
		wantContent        int
	}{
		{name: "json call result", ct: "application/json", id: "3",
			body: `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"Echo: x"}]}}`, wantContent: 1},
		{name: "json list result", ct: "application/json", id: "4",
			body: `{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"a"},{"name":"b"}]}}`, wantTools: 2},
		{name: "sse after a notification", ct: "text/event-stream", id: "5",
			body: "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n" +
				"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[{\"name\":\"a\"}]}}\r\n\r\n", wantTools: 1},
		{name: "json-rpc error", ct: "application/json", id: "6",
			body: `{"jsonrpc":"2.0","id":6,"error":{"code":-32602,"message":"Unknown tool: delete"}}`, wantErr: ErrJSONRPC},
		{name: "wrong id", ct: "application/json", id: "7",
			body: `{"jsonrpc":"2.0","id":8,"result":{}}`, wantErr: errOtherID},
		{name: "sse without the response", ct: "text/event-stream; charset=utf-8", id: "9",
			body: "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n", wantErr: ErrResponse},
		{name: "null result", ct: "application/json", id: "1",
			body: `{"jsonrpc":"2.0","id":1,"result":null}`, wantErr: ErrResponse},
		{name: "not json", ct: "application/json", id: "1", body: `<html>`, wantErr: ErrResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r result
			err := checkResultInto([]byte(tt.body), tt.ct, tt.id, &r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(r.Tools) != tt.wantTools || len(r.Content) != tt.wantContent {
				t.Errorf("got %d tools and %d content items, want %d and %d", len(r.Tools), len(r.Content), tt.wantTools, tt.wantContent)
			}
		})
	}
}

var spinSink int

func TestProcReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no /proc on this system: the load harness reads CPU and RSS from it (%v)", err)
		}
		t.Skip("no /proc on this system")
	}
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has charged at least one tick more.
	var after time.Duration
	for after <= before {
		for i := range 1_000_000 {
			spinSink += i * i
		}
		if after, err = CPUTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("got RSS %d, peak %d; want 0 < RSS <= peak", m.RSS, m.Peak)
	}
}

// row builds a go-sdk row with n answers of latency lat at rate over 1 s.
func row(target string, m Method, rate float64, n int, lat time.Duration) Row {
	st := Stats{Sent: n, OK: n, Elapsed: time.Second}
	for range n {
		st.Latencies = append(st.Latencies, lat)
	}
	if rate > 0 && float64(n) < rate {
		st.Unsent = int(rate) - n
		st.Errors = st.Unsent
	}
	return Row{Target: target, Upstream: "go-sdk", Method: m, Rate: rate, Stats: st}
}

func TestReportRatios(t *testing.T) {
	res := &Results{
		Plan: Plan{Rates: []float64{500, 1000}, Methods: []Method{ToolsCall}, Saturation: true},
		Rows: []Row{
			row("direct", ToolsCall, 500, 500, 400*time.Microsecond),
			row("bare-proxy", ToolsCall, 500, 500, 500*time.Microsecond),
			row("gateway", ToolsCall, 500, 500, 600*time.Microsecond),
			row("direct", ToolsCall, 1000, 1000, 400*time.Microsecond),
			row("bare-proxy", ToolsCall, 1000, 1000, 500*time.Microsecond),
			row("gateway", ToolsCall, 1000, 700, 2*time.Second), // fell behind
			row("direct", ToolsCall, 0, 1000, time.Millisecond),
			row("bare-proxy", ToolsCall, 0, 800, time.Millisecond),
			row("gateway", ToolsCall, 0, 720, time.Millisecond),
		},
	}
	var md strings.Builder
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| go-sdk | gateway | tools/call | 1000/s ⚠ | 700 |",
		"tools/call at 1000 req/s: not measurable in this run, the offered rate was not sustained (gateway answered 700 req/s)",
		"tools/call at 500 req/s, added latency vs direct: gateway p50 +200 µs (budget ≤ 150 µs at 1k req/s: **over budget**), p99 +200 µs (budget ≤ 500 µs: within budget); bare proxy p50 +100 µs",
		"tools/call saturation throughput: gateway/bare proxy 90% (budget ≥ 90%: within budget), gateway/direct 72%",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}

func TestReportFederation(t *testing.T) {
	fed := func(upstream, target string, m Method, rate float64, n int, lat time.Duration, proxyCPU time.Duration) Row {
		r := row(target, m, rate, n, lat)
		r.Upstream = upstream
		r.ProxyCPU, r.ServerCPU = proxyCPU, time.Duration(n)*time.Millisecond
		return r
	}
	res := &Results{
		Plan: Plan{Methods: []Method{ToolsCall}, SkipMain: true,
			Federation: &FederationPlan{CallRates: []float64{200}, Saturation: true}},
		Rows: []Row{
			fed(FedOne, "direct", ToolsCall, 200, 200, 1*time.Millisecond, 0),
			fed(FedOne, "bare-proxy", ToolsCall, 200, 200, 1500*time.Microsecond, 200*40*time.Microsecond),
			fed(FedOne, "gateway", ToolsCall, 200, 200, 2*time.Millisecond, 200*50*time.Microsecond),
			fed(FedThree, "gateway", ToolsCall, 200, 200, 3*time.Millisecond, 200*100*time.Microsecond),
			fed(FedOne, "direct", ToolsCall, 0, 1000, 10*time.Millisecond, 0),
			fed(FedOne, "bare-proxy", ToolsCall, 0, 800, 10*time.Millisecond, 800*40*time.Microsecond),
			fed(FedOne, "gateway", ToolsCall, 0, 500, 10*time.Millisecond, 500*50*time.Microsecond),
			fed(FedThree, "gateway", ToolsCall, 0, 400, 10*time.Millisecond, 400*100*time.Microsecond),
		},
	}
	var md strings.Builder
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| go-sdk 3×100 | gateway | tools/call | 200/s | 200 |",
		"- tools/call at 200 req/s, p50 / p99: direct 1000 µs / 1000 µs, bare proxy 1500 µs / 1500 µs, gateway 1 target 2000 µs / 2000 µs, gateway 3 targets 3000 µs / 3000 µs; p50 gateway 3 targets/direct ×3.00, 3 targets/1 target ×1.50; added vs direct p50 +2000 µs, p99 +2000 µs",
		"- tools/call saturation: gateway 3 targets/direct 40%, /bare proxy 50%, /gateway 1 target 80% (direct 1000, bare 800, gateway 1 target 500, gateway 3 targets 400 req/s)",
		"- tools/call CPU per request over all its runs: gateway 3 targets 100 µs, gateway 1 target 50 µs, bare proxy 40 µs (3 targets/1 target ×2.00, 3 targets/bare ×2.50); servers: 3 targets 1000 µs, direct 1000 µs (×1.00)",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "Ratios against DESIGN.md") {
		t.Errorf("the main scenario's ratios are reported for a federation-only run:\n%s", md.String())
	}
}
