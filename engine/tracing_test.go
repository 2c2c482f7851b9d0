package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestTracingSpansAndPropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	e := &env{upstream: newMCPServer(t), jwks: newJWKS(t)}
	port := e.upstream.srv.URL[strings.LastIndex(e.upstream.srv.URL, ":")+1:]
	e.bundle = buildBundle(t, configYAML(port, e.jwks.URL+"/keys"), nil)
	e.gw = New(Options{Tracer: tp.Tracer("mcpgate")})
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	defer e.srv.Close()

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp := e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`,
		authed("Traceparent", parent))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	readBody(t, resp)

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	require.Len(t, byName["mcpgate.request"], 1)
	root := byName["mcpgate.request"][0]
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", root.SpanContext().TraceID().String(), "the client's trace continues")
	assert.Equal(t, "00f067aa0ba902b7", root.Parent().SpanID().String())
	for _, name := range []string{"mcpgate.authn", "mcpgate.decision", "mcpgate.upstream"} {
		require.NotEmpty(t, byName[name], name)
		for _, s := range byName[name] {
			assert.Equal(t, root.SpanContext().SpanID(), s.Parent().SpanID(), "%s is a child of the request span", name)
		}
	}
	// The upstream received the trace context of its own span, in the
	// client's trace; never the client's header as sent.
	var sawCall bool
	for _, r := range e.upstream.received() {
		if r.RPC != "tools/call" {
			continue
		}
		sawCall = true
		tp := r.Header.Get("Traceparent")
		assert.True(t, strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-"), tp)
		assert.NotEqual(t, parent, tp)
		assert.Empty(t, r.Header.Get("Authorization"))
	}
	assert.True(t, sawCall)
}

func TestTracingOffSendsNoTraceContext(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		authed("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, r := range e.upstream.received() {
		assert.Empty(t, r.Header.Get("Traceparent"), "with tracing off no client header goes upstream")
	}
}
