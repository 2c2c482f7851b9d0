// Package bridge presents upstream MCP servers of other transports than
// Streamable HTTP (legacy SSE, stdio) as in-process Streamable HTTP
// endpoints, so the request path's relay and federation code speaks one
// transport. Targets of those transports carry a bridge URL on the reserved
// domain ir.BridgeDomain (translate gives it them); the gateway's upstream
// client gets a RoundTripper (Wrap) that hands requests for those URLs to
// the bridge's http.Handler in process, with no network in between.
//
// Each bridge serves the server side of Streamable HTTP: POST initialize
// opens an upstream session (a process for stdio, an SSE stream for legacy
// SSE) and returns Mcp-Session-Id; POST of a request answers with its
// response (application/json, or text/event-stream carrying the server's
// messages emitted before it when the client accepts it); POST of a
// notification or response answers 202; GET is the stream of the session's
// server-initiated messages; DELETE ends the session; an unknown session
// gets 404, so the client initialises again. JSON-RPC messages are forwarded
// byte for byte.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/ir"
)

// Options tune a Manager; the zero value means defaults.
type Options struct {
	Logger *slog.Logger
	// Client reaches legacy SSE servers; nil: http.DefaultClient.
	Client *http.Client
	// AllowStdio admits stdio targets. Only the standalone gateway sets it.
	AllowStdio bool
	// MaxProcesses bounds the stdio processes alive at once, warm spares
	// included (default 64). An initialize beyond it gets 503.
	MaxProcesses int
	// IdleTimeout ends a session nobody used for that long (no request, no
	// open GET stream); its client gets 404 and initialises again.
	// Default 15 minutes.
	IdleTimeout time.Duration
	// NoSpare turns off the warm spare process of each stdio target.
	NoSpare bool
}

// Manager owns the bridges of the active configuration.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	endpoints map[string]*Endpoint // by bridge host
	procs     int                  // stdio processes alive
	closed    bool
	stop      chan struct{}
	wg        sync.WaitGroup // processes being stopped, reaper
}

// NewManager returns a manager with no bridges.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = 64
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 15 * time.Minute
	}
	m := &Manager{opts: opts, log: opts.Logger, endpoints: map[string]*Endpoint{}, stop: make(chan struct{})}
	m.wg.Add(1)
	go m.reap()
	return m
}

// IsBridgeHost reports whether host (of a URL) is a bridge's.
func IsBridgeHost(host string) bool {
	return strings.HasSuffix(strings.ToLower(host), "."+ir.BridgeDomain)
}

// bridgeTarget is one bridged target of a configuration.
type bridgeTarget struct {
	backend string
	target  ir.Target
	host    string
}

func bridgedTargets(cfg *ir.Config) ([]bridgeTarget, error) {
	var out []bridgeTarget
	keys := make([]string, 0, len(cfg.Backends))
	for k := range cfg.Backends {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, t := range cfg.Backends[k].Targets {
			if t.Protocol != "SSE" && t.Protocol != "Stdio" {
				continue
			}
			host, err := hostOf(t.URL)
			if err != nil || !IsBridgeHost(host) {
				return nil, fmt.Errorf("backend %s target %s: %s transport needs a bridge URL on %s, got %q", k, t.Name, t.Protocol, ir.BridgeDomain, t.URL)
			}
			switch {
			case t.Protocol == "SSE" && t.SSEURL == "":
				return nil, fmt.Errorf("backend %s target %s: SSE target without sse_url", k, t.Name)
			case t.Protocol == "Stdio" && (t.Stdio == nil || t.Stdio.Cmd == ""):
				return nil, fmt.Errorf("backend %s target %s: stdio target without a command", k, t.Name)
			}
			out = append(out, bridgeTarget{backend: k, target: t, host: host})
		}
	}
	return out, nil
}

func hostOf(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", errors.New("not an http URL")
	}
	host, _, _ := strings.Cut(rest, "/")
	return strings.ToLower(host), nil
}

// Prepare checks the bridged targets of cfg and starts the bridges it adds
// (a stdio target's warm spare is spawned now). Bridges of the previous
// configuration keep running until Prune. An error (stdio not allowed, a
// malformed target) changes nothing.
func (m *Manager) Prepare(cfg *ir.Config) error {
	bts, err := bridgedTargets(cfg)
	if err != nil {
		return err
	}
	for _, bt := range bts {
		if bt.target.Protocol == "Stdio" && !m.opts.AllowStdio {
			return fmt.Errorf("backend %s target %s: stdio targets are allowed in the standalone gateway only", bt.backend, bt.target.Name)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("bridges closed")
	}
	for _, bt := range bts {
		if _, ok := m.endpoints[bt.host]; ok {
			continue // unchanged: the host hashes the target's whole definition
		}
		ep := newEndpoint(m, bt)
		m.endpoints[bt.host] = ep
		ep.start()
	}
	return nil
}

// Prune ends the bridges cfg no longer has: their sessions end and their
// processes are stopped.
func (m *Manager) Prune(cfg *ir.Config) {
	bts, _ := bridgedTargets(cfg)
	keep := map[string]bool{}
	for _, bt := range bts {
		keep[bt.host] = true
	}
	m.mu.Lock()
	var stale []*Endpoint
	for h, ep := range m.endpoints {
		if !keep[h] {
			stale = append(stale, ep)
			delete(m.endpoints, h)
		}
	}
	m.mu.Unlock()
	for _, ep := range stale {
		ep.close("configuration changed")
	}
}

// Close ends every bridge and waits (up to ctx) until their processes are
// gone.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	close(m.stop)
	eps := m.endpoints
	m.endpoints = map[string]*Endpoint{}
	m.mu.Unlock()
	for _, ep := range eps {
		ep.close("gateway shutting down")
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (m *Manager) lookup(host string) *Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.endpoints[strings.ToLower(host)]
}

// reserve counts one more stdio process, refusing beyond the bound.
func (m *Manager) reserve() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("gateway shutting down")
	}
	if m.procs >= m.opts.MaxProcesses {
		return fmt.Errorf("too many stdio processes (limit %d)", m.opts.MaxProcesses)
	}
	m.procs++
	return nil
}

func (m *Manager) release() {
	m.mu.Lock()
	m.procs--
	m.mu.Unlock()
}

// Processes reports how many stdio processes are alive.
func (m *Manager) Processes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.procs
}

// reap ends idle sessions.
func (m *Manager) reap() {
	defer m.wg.Done()
	every := min(m.opts.IdleTimeout/4, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.mu.Lock()
			eps := make([]*Endpoint, 0, len(m.endpoints))
			for _, ep := range m.endpoints {
				eps = append(eps, ep)
			}
			m.mu.Unlock()
			for _, ep := range eps {
				ep.reapIdle(now.Add(-m.opts.IdleTimeout))
			}
		}
	}
}

// Wrap returns a copy of c whose transport serves bridge URLs from m in
// process and everything else as c did.
func Wrap(c *http.Client, m *Manager) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cp := *c
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cp.Transport = &transport{m: m, next: next}
	return &cp
}

type transport struct {
	m    *Manager
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !IsBridgeHost(req.URL.Host) {
		return t.next.RoundTrip(req)
	}
	ep := t.m.lookup(req.URL.Host)
	if ep == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("bridge %s: not in the active configuration", req.URL.Host)
	}
	return serveInProcess(ep, req)
}

// serveInProcess runs h for req and returns its answer as a client-side
// response whose body streams what h writes. Closing the body cancels the
// handler's request context.
func serveInProcess(h http.Handler, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	sreq := req.Clone(ctx)
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "bridge"
	pr, pw := io.Pipe()
	rw := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				pw.CloseWithError(fmt.Errorf("bridge: handler panic: %v", p))
			}
			rw.WriteHeader(http.StatusOK) // a handler that wrote nothing
			pw.Close()
			sreq.Body.Close()
		}()
		h.ServeHTTP(rw, sreq)
	}()
	select {
	case <-rw.ready:
	case <-ctx.Done():
		cancel()
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", rw.status, http.StatusText(rw.status)),
		StatusCode:    rw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.sent,
		Body:          &cancelBody{ReadCloser: pr, cancel: cancel},
		ContentLength: -1,
		Request:       req,
	}, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	b.cancel()
	return b.ReadCloser.Close()
}

// pipeWriter is the handler side of serveInProcess.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	status int
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(p)
}

// Flush is a no-op: every Write reaches the reader as it happens.
func (w *pipeWriter) Flush() {}

// childEnv is a stdio server's whole environment: what the configuration
// says, plus PATH and HOME from the gateway's environment when unset. The
// gateway's other variables (which may hold secrets such as
// MCPGATE_SESSION_KEY) are never passed on.
func childEnv(cfg map[string]string) []string {
	env := make([]string, 0, len(cfg)+2)
	for k, v := range cfg {
		env = append(env, k+"="+v)
	}
	for _, k := range []string{"PATH", "HOME"} {
		if _, ok := cfg[k]; ok {
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	sort.Strings(env)
	return env
}
