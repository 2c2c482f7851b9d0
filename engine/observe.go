package engine

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/engine/policy"
)

// DecisionIDHeader carries the decision id of a request to the client, so
// an operator can find the decision-log event of any answer.
const DecisionIDHeader = "X-Mcpgate-Decision-Id"

// observation collects what the access log, the metrics and the decision
// log say about one request.
type observation struct {
	start      time.Time
	msg        *mcp.Message
	subject    string
	target     string // the target the message went to; "*" for every target of a multi-target backend
	decisionID string
	result     string // allow, deny, unauthenticated, error; "" without a decision
	dryRun     bool   // a dry-run policy would have refused
}

// decide evaluates the decision for one input, and times it (phase
// "decision" or "list"), names it (a decision id), counts it and logs it.
// o receives the id and result of the request's own decision.
func (h *routeHandler) decide(r *http.Request, in ast.Value, phase string, o *observation) (*policy.Decision, error) {
	start := time.Now()
	span := h.stage(r.Context(), "mcpgate.decision", attribute.String("mcpgate.phase", phase))
	d, err := h.s.eval.Decide(r.Context(), in)
	took := time.Since(start)
	m := h.g.metrics
	m.decisionSeconds.WithLabelValues(phase).Observe(took.Seconds())
	id := newDecisionID()
	result := decisionResult(d, err)
	m.decisions.WithLabelValues(result).Inc()
	if d != nil && d.DryRun != nil && d.DryRun.WouldDeny {
		m.decisions.WithLabelValues("dry_run_deny").Inc()
		attrs := []any{"route", h.route.Key, "decision_id", id, "reasons", d.DryRun.Reasons}
		if o != nil && o.msg != nil {
			attrs = append(attrs, "mcp_method", o.msg.Method, "name", o.msg.Name)
		}
		h.g.log.Warn("dry-run policy would deny", attrs...)
		if o != nil {
			o.dryRun = true
		}
	}
	h.g.decisionLog.log(r.Context(), h.s.eval, id, r.RemoteAddr, in, d, err, took)
	span.SetAttributes(attribute.String("mcpgate.decision_id", id), attribute.String("mcpgate.decision", result))
	span.End()
	if o != nil {
		o.decisionID, o.result = id, result
	}
	return d, err
}

func decisionResult(d *policy.Decision, err error) string {
	switch {
	case err != nil || d == nil:
		return "error"
	case d.Allow:
		return "allow"
	case d.HTTPStatus == http.StatusUnauthorized:
		return "unauthenticated"
	default:
		return "deny"
	}
}

// observeStage records the duration of a stage of the request path
// (authn, ratelimit) in the phase histogram.
func (h *routeHandler) observeStage(phase string, start time.Time) {
	h.g.metrics.decisionSeconds.WithLabelValues(phase).Observe(time.Since(start).Seconds())
}

// finish writes the access log line and counts the request.
func (h *routeHandler) finish(r *http.Request, rec *statusRecorder, o *observation) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	method, tool := "", ""
	if o.msg != nil {
		method = o.msg.Method
		if method == "tools/call" {
			tool = o.msg.Name
		}
	}
	h.g.metrics.requests.WithLabelValues(h.route.Key, method, h.g.metrics.toolLabel(tool), strconv.Itoa(status)).Inc()
	if !h.g.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("http_method", r.Method), slog.String("path", r.URL.Path), slog.String("route", h.route.Key),
		slog.String("target", o.target), slog.Int("status", status), slog.Duration("duration", time.Since(o.start)),
	}
	if o.msg != nil {
		attrs = append(attrs, slog.String("method", o.msg.Method))
		if o.msg.Name != "" {
			attrs = append(attrs, slog.String("name", o.msg.Name))
		}
		if tool != "" {
			attrs = append(attrs, slog.String("tool", tool))
		}
	}
	if o.subject != "" {
		attrs = append(attrs, slog.String("subject", o.subject))
	}
	if o.result != "" {
		attrs = append(attrs, slog.String("decision", o.result), slog.String("decision_id", o.decisionID))
	}
	if o.dryRun {
		attrs = append(attrs, slog.Bool("dry_run_would_deny", true))
	}
	h.g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.Attr{Key: "mcp", Value: slog.GroupValue(attrs...)})
}

// do sends a request upstream, timing it until the response headers and
// counting failures (no answer, or a 5xx).
func (h *routeHandler) do(req *http.Request) (*http.Response, error) {
	start := time.Now()
	span := h.stage(req.Context(), "mcpgate.upstream", attribute.String("http.request.method", req.Method), attribute.String("mcpgate.target", h.target.Name))
	defer span.End()
	h.injectTrace(trace.ContextWithSpan(req.Context(), span), req)
	resp, err := h.g.opts.Upstream.Do(req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	h.g.metrics.upstreamSeconds.WithLabelValues(h.route.Key).Observe(time.Since(start).Seconds())
	if err != nil || resp.StatusCode >= 500 {
		h.g.metrics.upstreamErrors.WithLabelValues(h.route.Key).Inc()
	}
	return resp, err
}

// withDecisionID returns the decision with its id added to the denial's
// JSON-RPC error data (an object, or none yet), so an agent can quote it.
// d itself is not modified: decisions may be shared (policy cache).
func withDecisionID(d *policy.Decision, id string) *policy.Decision {
	if d.JSONRPCError == nil || id == "" {
		return d
	}
	var data map[string]any
	switch v := d.JSONRPCError.Data.(type) {
	case nil:
		data = map[string]any{}
	case map[string]any:
		data = make(map[string]any, len(v)+1)
		for k, x := range v {
			data[k] = x
		}
	default:
		return d
	}
	data["decision_id"] = id
	cp, je := *d, *d.JSONRPCError
	je.Data = data
	cp.JSONRPCError = &je
	return &cp
}

// inputHeaders reports whether the input documents of this snapshot carry
// the request headers: when the policy may read them, and always for the
// decision log (which records the input in full).
func (h *routeHandler) inputHeaders() bool {
	return h.g.decisionLog != nil || h.s.eval.ReadsHeaders()
}
