package engine

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/attribute"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/ir"
)

// supportedVersions are the MCP protocol revisions a client may name in
// MCP-Protocol-Version.
var supportedVersions = map[string]bool{
	"2024-11-05": true, "2025-03-26": true, "2025-06-18": true, "2025-11-25": true,
}

// supportedVersionList is supportedVersions, newest first.
var supportedVersionList = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// latestVersion is offered when the gateway opens an upstream session itself.
const latestVersion = "2025-11-25"

// routeHandler serves one route of one snapshot.
type routeHandler struct {
	g        *Gateway
	s        *snapshot
	route    *ir.Route
	target   ir.Target
	targetU  *url.URL
	verifier *authn.Verifier // nil: no authentication on this route
	term     *ast.Term       // input.route, shared
	cors     *ir.CORS        // nil: same-origin only
	fed      *federation     // nil: a single-target backend (federate.go)
}

func (g *Gateway) newRouteHandler(s *snapshot, l ir.Listener, rt *ir.Route) *routeHandler {
	be := s.cfg.Backends[rt.Backend]
	h := &routeHandler{g: g, s: s, route: rt}
	if be != nil && len(be.Targets) > 0 {
		h.target = be.Targets[0]
		h.targetU, _ = url.Parse(h.target.URL)
	}
	if e, ok := s.verifiers[rt.Authn]; ok {
		h.verifier = e.v
	}
	h.term = routeTerm(l, rt, h.target)
	if be != nil && (len(be.Targets) > 1 || be.PrefixMode == "Always" || be.SessionRouting == "Stateless") {
		// Messages for every target name none in input.route.
		h.fed = newFederation(l, rt, be)
		h.term = h.fed.fanTerm
	}
	h.cors = s.cfg.CORS[rt.CORS]
	return h
}

func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	var msg *mcp.Message
	o := &observation{start: time.Now(), target: h.target.Name}
	r, endSpan := h.startRequestSpan(r)
	defer func() {
		h.finish(r, rec, o)
		endSpan(rec.status)
	}()
	w = rec

	if !h.originAllowed(r) {
		writeJSONRPCError(w, http.StatusForbidden, nil, mcp.CodeInvalidRequest, "origin not allowed", nil)
		return
	}
	if h.targetU == nil {
		writeJSONRPCError(w, http.StatusBadGateway, nil, mcp.CodeInternalError, "route has no upstream", nil)
		return
	}
	target, term := h.target, h.term // a multi-target backend's message names its own
	switch r.Method {
	case http.MethodPost:
		if !isJSON(r.Header.Get("Content-Type")) {
			writeJSONRPCError(w, http.StatusUnsupportedMediaType, nil, mcp.CodeInvalidRequest, "Content-Type must be application/json", nil)
			return
		}
		body, ok := h.readBody(w, r)
		if !ok {
			return
		}
		var err error
		if msg, err = mcp.Parse(body); err != nil {
			writeParseError(w, err)
			return
		}
		o.msg = msg
	case http.MethodGet, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeJSONRPCError(w, http.StatusMethodNotAllowed, nil, mcp.CodeInvalidRequest, "method not allowed", nil)
		return
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && !supportedVersions[v] {
		// As SEP-2575 asks: the versions the gateway speaks, so a client
		// trying a newer one (server/discover) falls back to initialize.
		writeJSONRPCError(w, http.StatusBadRequest, idOf(msg), mcp.CodeUnsupportedProtocolVersion,
			"unsupported MCP-Protocol-Version "+strconvQuote(v), map[string]any{"supported": supportedVersionList, "requested": v})
		return
	}

	var res authn.Result
	if h.verifier != nil {
		start := time.Now()
		span := h.stage(r.Context(), "mcpgate.authn")
		if tok, ok := authn.Bearer(r.Header.Get("Authorization")); ok {
			res = h.verifier.Verify(r.Context(), tok)
		} else if r.Header.Get("Authorization") != "" {
			res = authn.Result{Present: true, Error: "authorization header is not a bearer token"}
		}
		h.observeStage("authn", start)
		span.SetAttributes(attribute.Bool("mcpgate.jwt.present", res.Present), attribute.Bool("mcpgate.jwt.valid", res.Valid))
		span.End()
		o.subject = res.Subject
	}
	if h.fed != nil {
		o.target = "*"
		if msg != nil {
			msg, target = h.fedRoute(r.Context(), msg)
			term = h.fed.termOf(target)
			if target.Name != "" {
				o.target = target.Name
			}
		}
	}
	d, err := h.decide(r, buildInputPhase(r, term, target.Name, msg, res, nil, h.inputHeaders()), "decision", o)
	w.Header().Set(DecisionIDHeader, o.decisionID)
	if err != nil {
		// Fail closed, and tell the client nothing about the internals.
		h.g.log.Error("policy evaluation failed", "route", h.route.Key, "error", err)
		writeJSONRPCError(w, http.StatusInternalServerError, idOf(msg), mcp.CodeInternalError, "internal error", nil)
		return
	}
	if !d.Allow {
		writeDenial(w, idOf(msg), withDecisionID(d, o.decisionID))
		return
	}
	for k, v := range d.Headers {
		if safeHeader(k, v) {
			w.Header().Set(k, v)
		}
	}
	if len(d.RateLimit) > 0 {
		start := time.Now()
		span := h.stage(r.Context(), "mcpgate.ratelimit", attribute.Int("mcpgate.ratelimit.descriptors", len(d.RateLimit)))
		admitted := h.admit(w, r, msg, d)
		h.observeStage("ratelimit", start)
		span.SetAttributes(attribute.Bool("mcpgate.ratelimit.admitted", admitted))
		span.End()
		if !admitted {
			h.g.metrics.rateLimited.WithLabelValues(h.route.Key).Inc()
			return
		}
	}
	if h.fed != nil {
		h.serveFederated(w, r, msg, target, res)
		return
	}
	switch r.Method {
	case http.MethodPost:
		h.post(w, r, msg, h.responseFilter(r, res))
	case http.MethodGet:
		h.stream(w, r, h.responseFilter(r, res))
	case http.MethodDelete:
		h.deleteSession(w, r)
	}
}

func idOf(m *mcp.Message) []byte {
	if m == nil || m.Kind != mcp.Request {
		return nil
	}
	return m.ID
}

// originAllowed implements the DNS-rebinding defence the MCP transport spec
// asks for: a browser Origin must be this gateway's own host, or one the
// route's CORS policy allows. A page on evil.example whose name resolves to
// 127.0.0.1 sends Origin and Host evil.example, which agree; so when the
// request reached the gateway on a loopback address, that host must also be
// a loopback name (localhost, 127.0.0.0/8, ::1).
func (h *routeHandler) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || corsAllows(h.cors, o) {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	return !arrivedOnLoopback(r) || isLoopbackHost(r.Host)
}

// arrivedOnLoopback reports whether the request's connection was accepted on
// a loopback address.
func arrivedOnLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// isLoopbackHost reports whether a Host header (host or host:port) names
// the loopback interface: localhost or a loopback IP address.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == 0x7f {
			return '?'
		}
		return r
	}, s) + `"`
}

// statusRecorder remembers the status for the access log and passes
// flushes through (SSE needs them).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
