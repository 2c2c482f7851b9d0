// Package load is mcpgate's load harness: it starts a fast go-sdk MCP server
// (./upstream), a bare httputil.ReverseProxy (./bareproxy), the gateway with
// full policy (JWT + CEL authorization + a high local rate limit) and, for
// realism, the reference server-everything, all on 127.0.0.1, and measures
// tools/call and tools/list through each of them in one run: at fixed rates
// (open loop, latency from the intended send time, so a slow response delays
// no measurement) and at saturation (closed loop, N workers). It reports
// latency percentiles, throughput, errors, and the CPU and RSS of every
// process read from /proc, as a markdown table with the ratios the design
// budget (DESIGN.md §7) is stated in.
//
// The federation scenario (Options.Federation, Plan.Federation) adds a
// backend of three go-sdk targets with 100 tools each and compares it, in
// the same run, with one server of 300 tools directly, through the bare
// proxy and through a one-target gateway.
//
// `make load` runs it (./cmd/load); `go test ./tests/load -run Smoke` runs
// every target briefly at a low rate and checks that nothing fails. Nothing
// here asserts timings.
package load
