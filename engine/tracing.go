package engine

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is off unless Options.Tracer is set (gateway run --otlp-endpoint):
// then each request is a server span ("mcpgate.request", child of the
// client's traceparent) with children for authentication, the decision,
// the rate limit and each upstream call, and the trace context is sent
// upstream (W3C traceparent/tracestate), so the MCP server's spans join
// the trace. The client's other headers still never go upstream.

var propagator = propagation.TraceContext{}

// startRequestSpan opens the request's server span; it returns r unchanged
// and a no-op end when tracing is off.
func (h *routeHandler) startRequestSpan(r *http.Request) (*http.Request, func(status int)) {
	t := h.g.opts.Tracer
	if t == nil {
		return r, func(int) {}
	}
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.Start(ctx, "mcpgate.request", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
			attribute.String("mcpgate.route", h.route.Key), attribute.String("mcpgate.target", h.target.Name)))
	return r.WithContext(ctx), func(status int) {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// stage opens a child span of the request's span; a no-op when tracing is
// off.
func (h *routeHandler) stage(ctx context.Context, name string, attrs ...attribute.KeyValue) trace.Span {
	if h.g.opts.Tracer == nil {
		return trace.SpanFromContext(context.Background()) // a non-recording span
	}
	_, span := h.g.opts.Tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	return span
}

// injectTrace puts the trace context of ctx on an upstream request.
func (h *routeHandler) injectTrace(ctx context.Context, req *http.Request) {
	if h.g.opts.Tracer != nil {
		propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
}
