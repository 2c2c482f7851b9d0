package engine

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the gateway's Prometheus collectors, on a registry of their
// own that the admin listener serves at /metrics (docs/observability.md).
type Metrics struct {
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec   // route, mcp_method, tool, status
	decisionSeconds *prometheus.HistogramVec // phase
	decisions       *prometheus.CounterVec   // result
	rateLimited     *prometheus.CounterVec   // route
	jwksFetches     *prometheus.CounterVec   // authn, result
	bundleInfo      *prometheus.GaugeVec     // revision
	activations     *prometheus.CounterVec   // result
	upstreamSeconds *prometheus.HistogramVec // route
	upstreamErrors  *prometheus.CounterVec   // route
	sessionsStarted prometheus.Counter
	sessionsEnded   prometheus.Counter
	sessionsActive  prometheus.Gauge

	tools labelSet
}

// maxToolLabels bounds the distinct tool names used as a label value: tool
// names come from clients, and an unbounded label would let any caller
// grow the gateway's memory and the metrics store. Names beyond the bound
// are counted as "other".
const maxToolLabels = 500

// NewMetrics creates the collectors on a fresh registry, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	decisionBuckets := []float64{5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 2e-2}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_requests_total", Help: "MCP requests served, by route, MCP method, tool and HTTP status.",
		}, []string{"route", "mcp_method", "tool", "status"}),
		decisionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mcpgate_decision_duration_seconds", Help: "Time to build the input and evaluate the policy decision, by phase (request, list).", Buckets: decisionBuckets,
		}, []string{"phase"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_decisions_total", Help: "Policy decisions by result (allow, deny, unauthenticated, error, dry_run_deny).",
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_ratelimited_total", Help: "Requests refused by a rate limit (429) or by an unavailable limiter (503), by route.",
		}, []string{"route"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_jwks_fetches_total", Help: "JWKS downloads by authentication policy and result (ok, error).",
		}, []string{"authn", "result"}),
		bundleInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcpgate_bundle_info", Help: "1 for the active bundle revision.",
		}, []string{"revision"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_bundle_activations_total", Help: "Bundle activations by result (ok, error).",
		}, []string{"result"}),
		upstreamSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mcpgate_upstream_duration_seconds", Help: "Time until the upstream MCP server's response headers, by route.", Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgate_upstream_errors_total", Help: "Upstream failures (unreachable, timeout, 5xx) by route.",
		}, []string{"route"}),
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpgate_sessions_started_total", Help: "MCP sessions opened through the gateway (initialize answered with Mcp-Session-Id).",
		}),
		sessionsEnded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcpgate_sessions_ended_total", Help: "MCP sessions ended through the gateway (DELETE).",
		}),
		sessionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcpgate_sessions_active", Help: "Sessions started minus sessions ended; sessions a server drops without a DELETE stay counted.",
		}),
	}
	m.Registry.MustRegister(m.requests, m.decisionSeconds, m.decisions, m.rateLimited, m.jwksFetches, m.bundleInfo,
		m.activations, m.upstreamSeconds, m.upstreamErrors, m.sessionsStarted, m.sessionsEnded, m.sessionsActive,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// toolLabel is the label value for a tool name: the name itself for the
// first maxToolLabels distinct names, "other" after that.
func (m *Metrics) toolLabel(name string) string {
	if name == "" || m.tools.admit(name) {
		return name
	}
	return "other"
}

func (m *Metrics) sessionStarted() {
	m.sessionsStarted.Inc()
	m.sessionsActive.Inc()
}

func (m *Metrics) sessionEnded() {
	m.sessionsEnded.Inc()
	m.sessionsActive.Dec()
}

// labelSet admits up to maxToolLabels distinct values.
type labelSet struct {
	mu   sync.RWMutex
	seen map[string]struct{}
}

func (s *labelSet) admit(v string) bool {
	s.mu.RLock()
	_, ok := s.seen[v]
	n := len(s.seen)
	s.mu.RUnlock()
	if ok {
		return true
	}
	if n >= maxToolLabels {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]struct{}{}
	}
	if len(s.seen) >= maxToolLabels {
		_, ok := s.seen[v]
		return ok
	}
	s.seen[v] = struct{}{}
	return true
}
