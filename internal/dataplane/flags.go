// Package dataplane is the command-line side of the request path, shared by
// the gateway and gateway-controller binaries: the data-plane flags, the
// listeners that follow the active configuration, and the admin listener
// (metrics, health, decision logs, tracing).
package dataplane

import (
	"cmp"
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
	"github.com/mcpgate/mcpgate/engine/ratelimit"
)

// Flags are the flags of the request path, shared by `gateway run` and
// `gateway-controller`.
type Flags struct {
	Bind            *string
	LogLevel        *string
	MaxBody         *int64
	Shutdown        *time.Duration
	RedisAddr       *string
	FailureMode     *string
	UpstreamTimeout *time.Duration
	SessionKey      *string
	BodyTimeout     *time.Duration
	HeaderTimeout   *time.Duration
	IdleTimeout     *time.Duration
	Obs             ObsFlags
	// AllowStdio lets the gateway start the stdio targets of its
	// configuration: set by `gateway run` (standalone), never by the
	// controller.
	AllowStdio bool
}

func (d *Flags) Register(fs *flag.FlagSet) {
	d.Bind = fs.String("bind", "0.0.0.0", "address the listeners bind to")
	d.LogLevel = fs.String("log-level", "info", "debug, info, warn or error")
	d.MaxBody = fs.Int64("max-body-bytes", 4<<20, "largest accepted request body; larger gets 413")
	d.Shutdown = fs.Duration("shutdown-timeout", 30*time.Second, "how long in-flight requests may finish after SIGTERM (or after their listener is removed)")
	d.RedisAddr = fs.String("ratelimit-redis", "", "keep rate-limit counters in Redis at HOST:PORT, shared by every replica (default: in memory)")
	d.FailureMode = fs.String("ratelimit-failure-mode", "FailClosed", "when the rate-limit store is unavailable: FailClosed (503) or FailOpen (admit)")
	d.UpstreamTimeout = fs.Duration("upstream-timeout", engine.DefaultUpstreamTimeout, "how long to wait for an upstream's answer (headers, and the whole answer unless it is an SSE stream relayed to the client); then 504 with a JSON-RPC error")
	d.BodyTimeout = fs.Duration("body-timeout", engine.DefaultBodyTimeout, "how long a client may take to send a request body once its headers arrived; then 408")
	d.HeaderTimeout = fs.Duration("read-header-timeout", 10*time.Second, "how long a client may take to send its request headers (slowloris defence)")
	d.IdleTimeout = fs.Duration("idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	d.SessionKey = fs.String("session-key", "", "32-byte key (hex or base64) sealing the session ids of multi-target backends; replicas serving the same clients must share it; or set MCPGATE_SESSION_KEY, which ps does not show (default: random at startup)")
	d.Obs.Register(fs)
}

func (d *Flags) Logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*d.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

// Gateway builds the request path; close releases the rate limiter, the
// decision log and the trace exporter.
func (d *Flags) Gateway(ctx context.Context, log *slog.Logger, version string) (gw *engine.Gateway, close func(), err error) {
	if *d.FailureMode != "FailClosed" && *d.FailureMode != "FailOpen" {
		return nil, nil, fmt.Errorf("--ratelimit-failure-mode %q: want FailClosed or FailOpen", *d.FailureMode)
	}
	for name, v := range map[string]time.Duration{"upstream-timeout": *d.UpstreamTimeout, "body-timeout": *d.BodyTimeout, "read-header-timeout": *d.HeaderTimeout, "idle-timeout": *d.IdleTimeout} {
		if v <= 0 {
			return nil, nil, fmt.Errorf("--%s %s: must be positive", name, v)
		}
	}
	var sessionKey []byte
	if k := cmp.Or(*d.SessionKey, os.Getenv("MCPGATE_SESSION_KEY")); k != "" {
		if sessionKey, err = engine.ParseSessionKey(k); err != nil {
			return nil, nil, fmt.Errorf("--session-key: %v", err)
		}
	}
	dlog, dlogClose, err := d.Obs.openDecisionLog(version)
	if err != nil {
		return nil, nil, err
	}
	tracer, stopTracing, err := d.Obs.tracer(ctx, version)
	if err != nil {
		_ = dlogClose.Close()
		return nil, nil, err
	}
	limiter := ratelimit.New(ratelimit.Options{RedisAddr: *d.RedisAddr, Logger: log})
	gw = engine.New(engine.Options{Logger: log, MaxBodyBytes: *d.MaxBody, Limiter: limiter, RateLimitFailOpen: *d.FailureMode == "FailOpen",
		UpstreamTimeout: *d.UpstreamTimeout, BodyTimeout: *d.BodyTimeout, DecisionLog: dlog, Tracer: tracer, NoDecisionCache: d.Obs.NoCache, SessionKey: sessionKey, AllowStdio: d.AllowStdio})
	return gw, func() {
		bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
		gw.Close(bctx) // stdio servers stopped
		bcancel()
		limiter.Close()
		_ = dlogClose.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx)
	}, nil
}

// ObsFlags are the observability options of the data plane.
type ObsFlags struct {
	adminAddr    string
	decisionLog  string
	sample       float64
	otlpEndpoint string
	NoCache      bool
}

func (o *ObsFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:15000", "admin listener: /metrics, /healthz, /readyz, /debug/pprof ('' disables)")
	fs.StringVar(&o.decisionLog, "decision-log", "", "write OPA decision-log events as JSON lines to this file, or 'stdout' (default: off)")
	fs.Float64Var(&o.sample, "decision-log-sample-allowed", 1, "fraction of allowed decisions logged (denials are always logged)")
	fs.BoolVar(&o.NoCache, "no-decision-cache", false, "evaluate every decision, even when the policy can be memoised (see docs/performance.md)")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", "", "export OpenTelemetry traces over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318 (default: tracing off)")
}

// tracer sets up OTLP/HTTP trace export; nil (tracing off) without
// --otlp-endpoint. The returned function flushes and stops the exporter.
func (o *ObsFlags) tracer(ctx context.Context, version string) (trace.Tracer, func(context.Context) error, error) {
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
func (o *ObsFlags) openDecisionLog(version string) (*engine.DecisionLog, io.Closer, error) {
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

// StartAdmin serves the admin endpoints, plus extra handlers by pattern
// (the controller's bundle endpoint); nil when disabled.
func (o *ObsFlags) StartAdmin(gw *engine.Gateway, log *slog.Logger, errc chan<- error, version string, extra map[string]http.Handler) (*http.Server, error) {
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
