package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/engine"
)

// obsFlags are the observability options of `gateway run`.
type obsFlags struct {
	adminAddr    string
	decisionLog  string
	sample       float64
	otlpEndpoint string
	noCache      bool
}

func (o *obsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:15000", "admin listener: /metrics, /healthz, /readyz, /debug/pprof ('' disables)")
	fs.StringVar(&o.decisionLog, "decision-log", "", "write OPA decision-log events as JSON lines to this file, or 'stdout' (default: off)")
	fs.Float64Var(&o.sample, "decision-log-sample-allowed", 1, "fraction of allowed decisions logged (denials are always logged)")
	fs.BoolVar(&o.noCache, "no-decision-cache", false, "evaluate every decision, even when the policy can be memoised (see docs/performance.md)")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "export OpenTelemetry traces over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318 (default: tracing off)")
}

// tracer sets up OTLP/HTTP trace export; nil (tracing off) without
// --otlp-endpoint. The returned function flushes and stops the exporter.
func (o *obsFlags) tracer(ctx context.Context) (trace.Tracer, func(context.Context) error, error) {
	if o.otlpEndpoint == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.otlpEndpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "mcpgate"), attribute.String("service.version", version))),
	)
	return tp.Tracer("github.com/mcpgate/mcpgate"), tp.Shutdown, nil
}

// openDecisionLog opens the decision-log destination; the closer is a
// no-op for stdout.
func (o *obsFlags) openDecisionLog(version string) (*engine.DecisionLog, io.Closer, error) {
	if o.sample <= 0 || o.sample > 1 {
		return nil, nil, fmt.Errorf("--decision-log-sample-allowed %v: want 0 < s <= 1", o.sample)
	}
	var w io.Writer
	var c io.Closer = io.NopCloser(nil)
	switch o.decisionLog {
	case "":
		return nil, c, nil
	case "stdout", "-":
		w = os.Stdout
	default:
		f, err := os.OpenFile(o.decisionLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--decision-log: %w", err)
		}
		w, c = f, f
	}
	host, _ := os.Hostname()
	return engine.NewDecisionLog(engine.DecisionLogOptions{
		Writer:        w,
		SampleAllowed: o.sample,
		Labels:        map[string]string{"id": host, "version": version, "app": "mcpgate"},
	}), c, nil
}

// startAdmin serves the admin endpoints, plus extra handlers by pattern
// (the controller's bundle endpoint); nil when disabled.
func (o *obsFlags) startAdmin(gw *engine.Gateway, log *slog.Logger, errc chan<- error, extra map[string]http.Handler) (*http.Server, error) {
	if o.adminAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", o.adminAddr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", gw.AdminHandler(version))
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("admin listening", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- err:
			default:
			}
		}
	}()
	return srv, nil
}
