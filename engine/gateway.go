// Package engine is the request path: listener, route, MCP decode, token
// verification, one policy decision, upstream. Configuration arrives as a
// bundle; Activate prepares everything a request needs into an immutable
// snapshot and publishes it with one atomic swap, so requests never see a
// half-built configuration and the read path takes no locks.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/bridge"
	"github.com/mcpgate/mcpgate/engine/policy"
	"github.com/mcpgate/mcpgate/engine/ratelimit"
	"github.com/mcpgate/mcpgate/ir"
)

// ErrActivate is wrapped by every activation error; the previous
// configuration keeps serving.
var ErrActivate = errors.New("activate")

// Options configure a Gateway; the zero value means defaults.
type Options struct {
	Logger *slog.Logger
	// Upstream is the client for MCP servers; nil means a pooled client
	// with a connect timeout and no overall timeout (streams may be long;
	// UpstreamTimeout bounds each answer).
	Upstream *http.Client
	// UpstreamTimeout bounds the wait for an upstream's answer: its
	// response headers, and the whole answer when it is JSON (or an SSE
	// stream the gateway turns into JSON for a client that cannot read
	// SSE). An SSE stream relayed to the client is not bounded once its
	// headers arrived: it carries the progress of long operations and
	// server-initiated messages. On expiry the client gets 504 with
	// JSON-RPC error -32603. 0: 60s.
	UpstreamTimeout time.Duration
	// MaxBodyBytes bounds a request body (default 4 MiB; larger → 413).
	MaxBodyBytes int64
	// BodyTimeout bounds reading a request body once its headers arrived
	// (a client trickling its body gets 408). 0: 30s.
	BodyTimeout time.Duration
	// Authn tunes token verification (JWKS HTTP client, cache size...).
	Authn authn.Options
	// Limiter counts rate-limit descriptors; nil means an in-memory limiter.
	Limiter *ratelimit.Limiter
	// RateLimitFailOpen admits requests when the limiter's store is
	// unavailable; by default (fail closed) they get 503.
	RateLimitFailOpen bool
	// Metrics receives the gateway's Prometheus metrics; nil: a fresh set
	// (Gateway.Metrics returns it for the admin listener).
	Metrics *Metrics
	// DecisionLog writes one event per decision; nil: no decision log.
	DecisionLog *DecisionLog
	// Tracer records OpenTelemetry spans of each request (tracing.go);
	// nil: tracing off.
	Tracer trace.Tracer
	// NoDecisionCache evaluates every decision even when the policy can be
	// memoised (engine/policy/cache.go).
	NoDecisionCache bool
	// SessionKey seals the session ids the gateway issues for multi-target
	// backends (AES-256-GCM, SessionKeySize bytes; ParseSessionKey reads
	// one). Replicas serving the same clients must share it. nil: a random
	// key, so sessions do not survive a restart. New panics on a key of
	// the wrong size.
	SessionKey []byte
	// AllowStdio admits stdio targets: the gateway then starts the
	// configured commands (engine/bridge). Only the standalone gateway sets
	// it; a configuration with stdio targets fails to activate otherwise.
	AllowStdio bool
}

// Gateway serves MCP traffic for the active configuration.
type Gateway struct {
	opts        Options
	log         *slog.Logger
	metrics     *Metrics
	decisionLog *DecisionLog
	snap        atomic.Pointer[snapshot]
	mu          sync.Mutex // serialises activations
	// oauth serves authorization-server metadata and client registration
	// (asmeta.go); its cache outlives activations.
	oauth    *oauthProxy // sessions seals and opens the session ids of multi-target backends.
	sessions *sessionCodec
	// bridges serve the targets of other transports than Streamable HTTP
	// (legacy SSE, stdio) in process, behind opts.Upstream.
	bridges *bridge.Manager
}

// New returns a gateway with no configuration: every request gets 503 until
// the first Activate.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	if opts.Upstream == nil {
		opts.Upstream = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // MCP servers are dialled directly, never via the environment's proxy
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			// Shorter than Node's default keep-alive (5 s): reusing a
			// connection the server is closing fails a POST, which Go
			// does not retry (it may have been processed).
			IdleConnTimeout:    4 * time.Second,
			DisableCompression: true, // relay bytes as they come; SSE must not sit in a gzip buffer
		}}
	}
	if opts.Limiter == nil {
		opts.Limiter = ratelimit.New(ratelimit.Options{Logger: opts.Logger})
	}
	if opts.Authn.Logger == nil {
		opts.Authn.Logger = opts.Logger
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	sessions, err := newSessionCodec(opts.SessionKey)
	if err != nil {
		panic("engine: " + err.Error())
	}
	bridges := bridge.NewManager(bridge.Options{Logger: opts.Logger, Client: opts.Upstream, AllowStdio: opts.AllowStdio})
	opts.Upstream = bridge.Wrap(opts.Upstream, bridges)
	return &Gateway{opts: opts, log: opts.Logger, metrics: opts.Metrics, decisionLog: opts.DecisionLog, oauth: newOAuthProxy(opts.Authn.HTTPClient, opts.Logger), sessions: sessions, bridges: bridges}
}

// Close ends the bridged upstream sessions and stops the stdio servers the
// gateway started, waiting for them until ctx ends.
func (g *Gateway) Close(ctx context.Context) { g.bridges.Close(ctx) }

// Metrics returns the gateway's metrics (for the admin listener).
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// snapshot is everything one configuration needs at request time.
type snapshot struct {
	revision  string
	cfg       *ir.Config
	eval      *policy.Evaluator
	verifiers map[string]*verifierEntry // by authn key
	listeners map[int]http.Handler      // by port
}

type verifierEntry struct {
	fingerprint string
	v           *authn.Verifier
}

// Revision returns the active bundle revision, "" before the first activation.
func (g *Gateway) Revision() string {
	if s := g.snap.Load(); s != nil {
		return s.revision
	}
	return ""
}

// Config returns the active configuration (read-only), nil before the first
// activation.
func (g *Gateway) Config() *ir.Config {
	if s := g.snap.Load(); s != nil {
		return s.cfg
	}
	return nil
}

// Activate prepares a bundle and makes it the active configuration. On error
// nothing changes.
func (g *Gateway) Activate(ctx context.Context, b *bundle.Bundle) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.snap.Load()
	err := g.activate(ctx, b)
	if err != nil {
		g.metrics.activations.WithLabelValues("error").Inc()
		return err
	}
	g.metrics.activations.WithLabelValues("ok").Inc()
	if old != nil {
		g.metrics.bundleInfo.DeleteLabelValues(old.revision)
	}
	g.metrics.bundleInfo.WithLabelValues(b.Revision).Set(1)
	// Compiling a bundle allocates far more than serving it holds; give
	// that memory back now rather than when the runtime gets round to it
	// (activations are rare; this costs one collection).
	debug.FreeOSMemory()
	return nil
}

func (g *Gateway) activate(ctx context.Context, b *bundle.Bundle) error {
	start := time.Now()
	var popts []policy.Option
	if g.opts.NoDecisionCache {
		popts = append(popts, policy.WithoutCache())
	}
	ev, err := policy.New(ctx, b, popts...)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrActivate, err)
	}
	old := g.snap.Load()
	s := &snapshot{revision: b.Revision, cfg: b.Config, eval: ev, verifiers: map[string]*verifierEntry{}, listeners: map[int]http.Handler{}}
	var created []*authn.Verifier
	for k, an := range b.Config.Authn {
		fp, _ := json.Marshal(an)
		if old != nil {
			// Keep a verifier whose configuration did not change, with its
			// warm key set and token cache.
			if e, ok := old.verifiers[k]; ok && e.fingerprint == string(fp) {
				s.verifiers[k] = e
				continue
			}
		}
		aopts := g.opts.Authn
		fetches := g.metrics.jwksFetches
		aopts.OnFetch = func(err error) {
			result := "ok"
			if err != nil {
				result = "error"
			}
			fetches.WithLabelValues(an.Key, result).Inc()
		}
		v, err := authn.New(context.WithoutCancel(ctx), an, aopts)
		if err != nil {
			for _, c := range created {
				c.Close()
			}
			return fmt.Errorf("%w: authentication policy %s: %v", ErrActivate, k, err)
		}
		created = append(created, v)
		s.verifiers[k] = &verifierEntry{fingerprint: string(fp), v: v}
	}
	for _, l := range b.Config.Listeners {
		s.listeners[l.Port] = g.router(s, l)
	}
	if err := g.bridges.Prepare(b.Config); err != nil {
		for _, c := range created {
			c.Close()
		}
		return fmt.Errorf("%w: %v", ErrActivate, err)
	}
	g.snap.Store(s)
	g.bridges.Prune(b.Config)
	if old != nil {
		var stale []*authn.Verifier
		for k, e := range old.verifiers {
			if cur, ok := s.verifiers[k]; !ok || cur != e {
				stale = append(stale, e.v)
			}
		}
		// Requests already running may still hold the old snapshot; give
		// them time before stopping the old key refreshers.
		if len(stale) > 0 {
			time.AfterFunc(time.Minute, func() {
				for _, v := range stale {
					v.Close()
				}
			})
		}
	}
	g.log.Info("configuration active", "revision", b.Revision, "decision_cache", ev.Cached(), "listeners", len(b.Config.Listeners),
		"routes", len(b.Config.Routes), "took", time.Since(start).String())
	return nil
}

// Ports lists the listener ports of the active configuration.
func (g *Gateway) Ports() []int {
	s := g.snap.Load()
	if s == nil {
		return nil
	}
	var out []int
	for p := range s.listeners {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// Handler serves the listener configured on port. It follows activations:
// each request uses the snapshot active when it arrived.
func (g *Gateway) Handler(port int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := g.snap.Load()
		if s == nil {
			writeJSONRPCError(w, http.StatusServiceUnavailable, nil, -32603, "gateway has no active configuration", nil)
			return
		}
		h, ok := s.listeners[port]
		if !ok {
			writeJSONRPCError(w, http.StatusNotFound, nil, -32601, "no listener configured on this port", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// router builds the gorilla/mux router of one listener.
func (g *Gateway) router(s *snapshot, l ir.Listener) http.Handler {
	r := mux.NewRouter()
	// OAuth discovery first: its path-appended forms (/mcp/.well-known/…)
	// would otherwise fall under a route's path prefix.
	wk := &wellKnown{g: g, s: s, listener: l}
	r.MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool { return isWellKnown(r.URL.Path) }).Handler(wk)
	handlers := map[string]*routeHandler{}
	for _, m := range l.Matches {
		h, ok := handlers[m.Route]
		if !ok {
			h = g.newRouteHandler(s, l, s.cfg.Routes[m.Route])
			handlers[m.Route] = h
		}
		r.MatcherFunc(pathMatcher(m.PathMatch)).Handler(withCORS(h.cors, h))
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONRPCError(w, http.StatusNotFound, nil, -32601, "no route for "+r.URL.Path, nil)
	})
	return r
}

// pathMatcher adapts matchPath to gorilla/mux.
func pathMatcher(m ir.PathMatch) mux.MatcherFunc {
	return func(r *http.Request, _ *mux.RouteMatch) bool { return matchPath(m, r.URL.Path) }
}

// matchPath implements Gateway API path matching: PathPrefix matches whole
// path elements ("/mcp" matches "/mcp" and "/mcp/x", not "/mcpx").
func matchPath(m ir.PathMatch, p string) bool {
	v := m.Value
	switch {
	case m.Type == "Exact":
		return p == v
	case v == "/":
		return true
	}
	return p == v || (len(p) > len(v) && p[:len(v)] == v && p[len(v)] == '/')
}

// routeTerm is input.route for one route, built once and shared by all its
// requests (never mutated).
func routeTerm(l ir.Listener, rt *ir.Route, target ir.Target) *ast.Term {
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("key"), ast.StringTerm(rt.Key)),
		ast.Item(ast.StringTerm("gateway"), ast.StringTerm(rt.Gateway)),
		ast.Item(ast.StringTerm("listener"), ast.StringTerm(l.Name)),
		ast.Item(ast.StringTerm("route"), ast.StringTerm(rt.Route)),
		ast.Item(ast.StringTerm("rule"), ast.IntNumberTerm(rt.Rule)),
		ast.Item(ast.StringTerm("backend"), ast.StringTerm(rt.Backend)),
		ast.Item(ast.StringTerm("target"), ast.StringTerm(target.Name)),
	)
}

// Ready reports whether the gateway can serve: a configuration is active
// and every authentication policy holds keys (its JWKS was reachable at
// least once). The reason says what is missing.
func (g *Gateway) Ready() (bool, string) {
	s := g.snap.Load()
	if s == nil {
		return false, "no active configuration"
	}
	keys := make([]string, 0, len(s.verifiers))
	for k := range s.verifiers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !s.verifiers[k].v.Ready() {
			return false, "no keys yet for authentication policy " + k
		}
	}
	return true, "revision " + s.revision
}
