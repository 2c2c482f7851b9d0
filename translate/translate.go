// Package translate is the control path's pure core: typed objects in, the
// intermediate representation (ir.Config) and an OPA bundle out. It does no
// I/O, keeps no clock and logs nothing; every problem is returned as an
// *ObjectError naming the object and the field, joined with errors.Join,
// next to a partial result that holds everything that translated cleanly.
package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
)

// ErrTranslate is wrapped by every *ObjectError.
var ErrTranslate = errors.New("translate")

// ObjectError is one problem with one object.
type ObjectError struct {
	Kind, Namespace, Name string
	Field                 string // JSON path inside the object, e.g. spec.targetRefs[0].name
	Msg                   string
	Source                string // file and document, when known
	// Ref is set when the problem is a reference to another object that is
	// missing or invalid: that object, "Kind ns/name".
	Ref string
	// RefInvalid: the referenced object exists but is itself invalid, so the
	// problem goes away when that object is repaired (or replaced by its
	// last good version, see TranslateIsolated).
	RefInvalid bool
}

func (e *ObjectError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(", ")
	}
	b.WriteString(ObjectID(e.Kind, e.Namespace, e.Name))
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrTranslate) true.
func (e *ObjectError) Unwrap() error { return ErrTranslate }

type translator struct {
	res  *Resources
	errs []error

	gateways map[string]*gwv1.Gateway
	routes   map[string]*gwv1.HTTPRoute
	backends map[string]*v1alpha1.AgentgatewayBackend
	services map[string]*corev1.Service

	// bodies holds the Rego body of each compiled authorization rule by
	// "<package>.<rule>", for the routes module to inline.
	bodies map[string]string
}

func (t *translator) fail(kind, ns, name, field, format string, args ...any) {
	t.failRef("", false, kind, ns, name, field, format, args...)
}

// failRef records a problem with a reference to the object ref.
func (t *translator) failRef(ref string, invalid bool, kind, ns, name, field, format string, args ...any) {
	t.errs = append(t.errs, &ObjectError{
		Kind: kind, Namespace: ns, Name: name, Field: field,
		Msg:    fmt.Sprintf(format, args...),
		Source: t.res.Sources[ObjectID(kind, ns, name)],
		Ref:    ref, RefInvalid: invalid,
	})
}

// Result is what Translate produces: the IR and the Rego modules generated
// from the objects (compiled CEL rules), by bundle path.
type Result struct {
	Config  *ir.Config
	Modules map[string]string
}

// Translate turns resources into the IR and generated modules. The result is
// never nil; the error lists every object that could not be translated (those
// objects are left out of the result, so the rest still works).
func Translate(res *Resources) (*Result, error) {
	t := &translator{
		res:      res,
		gateways: map[string]*gwv1.Gateway{},
		routes:   map[string]*gwv1.HTTPRoute{},
		backends: map[string]*v1alpha1.AgentgatewayBackend{},
		services: map[string]*corev1.Service{},
		bodies:   map[string]string{},
	}
	if t.res.Sources == nil {
		t.res.Sources = map[string]string{}
	}
	cfg := &ir.Config{
		Version:   ir.Version,
		Routes:    map[string]*ir.Route{},
		Backends:  map[string]*ir.Backend{},
		Authn:     map[string]*ir.Authn{},
		CORS:      map[string]*ir.CORS{},
		Authz:     map[string]*ir.Authz{},
		User:      map[string]*ir.User{},
		RateLimit: map[string]*ir.RateLimitPolicy{},
	}
	out := &Result{Config: cfg, Modules: map[string]string{}}
	for _, g := range res.Gateways {
		t.gateways[key(g.Namespace, g.Name)] = g
	}
	for _, r := range res.HTTPRoutes {
		t.routes[key(r.Namespace, r.Name)] = r
	}
	for _, s := range res.Services {
		t.services[key(s.Namespace, s.Name)] = s
	}
	for _, b := range sortedBackends(res.Backends) {
		if be := t.backend(b); be != nil {
			cfg.Backends[be.Key] = be
			t.backends[be.Key] = b
		}
	}
	attach := t.policies(cfg, out.Modules)
	t.userModules(cfg, out.Modules, attach)
	t.keyedRateLimits(cfg, out.Modules, attach)
	for _, g := range sortedGateways(res.Gateways) {
		cfg.Listeners = append(cfg.Listeners, t.listeners(g)...)
	}
	for _, r := range sortedRoutes(res.HTTPRoutes) {
		t.route(cfg, r, attach)
	}
	for i := range cfg.Listeners {
		sortMatches(cfg.Listeners[i].Matches)
	}
	out.Modules[RoutesPath] = routesModule(cfg, t.bodies)
	return out, errors.Join(t.errs...)
}

func key(ns, name string) string { return ns + "/" + name }

func (t *translator) listeners(g *gwv1.Gateway) []ir.Listener {
	var out []ir.Listener
	if len(g.Spec.Listeners) == 0 {
		t.fail("Gateway", g.Namespace, g.Name, "spec.listeners", "at least one listener is required")
	}
	for i, l := range g.Spec.Listeners {
		field := fmt.Sprintf("spec.listeners[%d]", i)
		if l.Protocol != gwv1.HTTPProtocolType {
			t.fail("Gateway", g.Namespace, g.Name, field+".protocol", "unsupported protocol %q: mcpgate serves HTTP listeners (terminate TLS in front of it)", l.Protocol)
			continue
		}
		if l.Port < 1 || l.Port > 65535 {
			t.fail("Gateway", g.Namespace, g.Name, field+".port", "must be between 1 and 65535, got %d", l.Port)
			continue
		}
		out = append(out, ir.Listener{Gateway: key(g.Namespace, g.Name), Name: string(l.Name), Port: int(l.Port), Matches: []ir.RouteMatch{}})
	}
	return out
}

func (t *translator) backend(b *v1alpha1.AgentgatewayBackend) *ir.Backend {
	kind, ns, name := "AgentgatewayBackend", b.Namespace, b.Name
	m := b.Spec.MCP
	if m == nil {
		t.fail(kind, ns, name, "spec.mcp", "required: mcpgate serves MCP backends only")
		return nil
	}
	be := &ir.Backend{
		Key:            key(ns, name),
		SessionRouting: string(orDefault(m.SessionRouting, v1alpha1.Stateful)),
		FailureMode:    string(orDefault(m.FailureMode, v1alpha1.FailClosed)),
		PrefixMode:     string(orDefault(m.PrefixMode, v1alpha1.PrefixConditional)),
	}
	ok := true
	ok = t.enum(kind, ns, name, "spec.mcp.sessionRouting", be.SessionRouting, "Stateful", "Stateless") && ok
	ok = t.enum(kind, ns, name, "spec.mcp.failureMode", be.FailureMode, "FailClosed", "FailOpen") && ok
	ok = t.enum(kind, ns, name, "spec.mcp.prefixMode", be.PrefixMode, "Conditional", "Always", "Never") && ok
	if len(m.Targets) == 0 {
		t.fail(kind, ns, name, "spec.mcp.targets", "at least one target is required")
		return nil
	}
	seen := map[string]bool{}
	for i, tg := range m.Targets {
		field := fmt.Sprintf("spec.mcp.targets[%d]", i)
		if !validName(tg.Name) {
			t.fail(kind, ns, name, field+".name", "%q is not a valid target name (letters, digits, '-', '_'; at most 63)", tg.Name)
			ok = false
			continue
		}
		if seen[tg.Name] {
			t.fail(kind, ns, name, field+".name", "duplicate target name %q", tg.Name)
			ok = false
			continue
		}
		seen[tg.Name] = true
		var target ir.Target
		good := false
		switch {
		case tg.Static != nil && tg.Stdio != nil:
			t.fail(kind, ns, name, field, "set exactly one of static and stdio")
		case tg.Stdio != nil:
			target, good = t.stdioTarget(kind, ns, name, field+".stdio", be.Key, tg.Name, tg.Stdio)
		case tg.Static != nil:
			target, good = t.target(kind, ns, name, field+".static", tg.Name, tg.Static)
			if good && target.Protocol == "SSE" {
				target = bridged(target, "sse", be.Key)
			}
		default:
			t.fail(kind, ns, name, field+".static", "required (selector targets need Kubernetes service discovery, not supported yet)")
		}
		if !good {
			ok = false
			continue
		}
		be.Targets = append(be.Targets, target)
	}
	if !ok {
		return nil
	}
	return be
}

func (t *translator) target(kind, ns, name, field, tname string, s *v1alpha1.McpTarget) (ir.Target, bool) {
	proto := string(v1alpha1.ProtocolStreamable)
	if s.Protocol != nil {
		proto = string(*s.Protocol)
	}
	if !t.enum(kind, ns, name, field+".protocol", proto, "StreamableHTTP", "SSE") {
		return ir.Target{}, false
	}
	path := "/mcp"
	if proto == "SSE" {
		path = "/sse"
	}
	if s.Path != nil {
		path = *s.Path
	}
	if !strings.HasPrefix(path, "/") {
		t.fail(kind, ns, name, field+".path", "must start with '/', got %q", path)
		return ir.Target{}, false
	}
	if s.Port < 1 || s.Port > 65535 {
		t.fail(kind, ns, name, field+".port", "must be between 1 and 65535, got %d", s.Port)
		return ir.Target{}, false
	}
	var hostport string
	switch {
	case s.Host != nil && s.BackendRef != nil:
		t.fail(kind, ns, name, field, "set exactly one of host and backendRef")
		return ir.Target{}, false
	case s.Host != nil:
		hostport = t.resolveHost(*s.Host, int(s.Port))
	case s.BackendRef != nil:
		hp, err := t.resolveService(s.BackendRef.Name, ns, int(s.Port))
		if err != "" {
			t.failRef(ObjectID("Service", ns, s.BackendRef.Name), false, kind, ns, name, field+".backendRef", "%s", err)
			return ir.Target{}, false
		}
		hostport = hp
	default:
		t.fail(kind, ns, name, field, "set exactly one of host and backendRef")
		return ir.Target{}, false
	}
	u := &url.URL{Scheme: "http", Host: hostport, Path: path}
	return ir.Target{Name: tname, URL: u.String(), Protocol: proto}, true
}

// stdioTarget translates a stdio target: allowed only when the resources
// say so (the standalone gateway; never the Kubernetes controller).
func (t *translator) stdioTarget(kind, ns, name, field, backend, tname string, s *v1alpha1.StdioTarget) (ir.Target, bool) {
	if !t.res.AllowStdio {
		t.fail(kind, ns, name, field, "stdio targets are supported by the standalone gateway (gateway run) only: the Kubernetes controller never starts processes from cluster objects; run the server behind Streamable HTTP instead")
		return ir.Target{}, false
	}
	if strings.TrimSpace(s.Cmd) == "" {
		t.fail(kind, ns, name, field+".cmd", "required")
		return ir.Target{}, false
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			t.fail(kind, ns, name, field+".env", "invalid variable name %q", k)
			return ir.Target{}, false
		}
	}
	st := &ir.Stdio{Cmd: s.Cmd, Args: append([]string(nil), s.Args...)}
	if len(s.Env) > 0 {
		st.Env = make(map[string]string, len(s.Env))
		for k, v := range s.Env {
			st.Env[k] = v
		}
	}
	return bridged(ir.Target{Name: tname, Protocol: "Stdio", Stdio: st}, "stdio", backend), true
}

// bridged gives a target of another transport than Streamable HTTP its
// bridge URL (ir.BridgeDomain): a legacy SSE target keeps its address in
// SSEURL. The host label hashes the backend, the target and what it talks
// to, so a changed target gets a new bridge (and its processes or streams
// are ended) while an unchanged one keeps its sessions across reloads.
func bridged(tg ir.Target, kind, backend string) ir.Target {
	if kind == "sse" {
		tg.SSEURL, tg.URL = tg.URL, ""
	}
	spec, _ := json.Marshal(struct {
		Backend string
		Target  ir.Target
	}{backend, tg})
	sum := sha256.Sum256(spec)
	tg.URL = "http://" + hex.EncodeToString(sum[:10]) + "." + kind + "." + ir.BridgeDomain + "/mcp"
	return tg
}

// resolveHost applies --resolve to a literal host.
func (t *translator) resolveHost(host string, port int) string {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	if to, ok := t.res.Resolve[hp]; ok {
		return to
	}
	return hp
}

// resolveService finds the address of Service name.ns:port outside
// Kubernetes: a --resolve entry for "name.ns:port" (or the cluster DNS name),
// else a Service object of type ExternalName, dialled at its externalName and
// the targetPort of the matching port entry (the port itself when unset).
func (t *translator) resolveService(name, ns string, port int) (string, string) {
	p := strconv.Itoa(port)
	for _, k := range []string{name + "." + ns + ":" + p, name + "." + ns + ".svc:" + p, name + "." + ns + ".svc.cluster.local:" + p} {
		if to, ok := t.res.Resolve[k]; ok {
			return to, ""
		}
	}
	svc, ok := t.services[key(ns, name)]
	if !ok {
		return "", fmt.Sprintf("Service %s/%s not found: add a Service of type ExternalName to the configuration or pass --resolve %s.%s:%d=HOST:PORT", ns, name, name, ns, port)
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName == "" {
		return "", fmt.Sprintf("Service %s/%s has no address to dial: it is not of type ExternalName with spec.externalName set, and no ready endpoint or --resolve entry is known for port %d", ns, name, port)
	}
	target := port
	if len(svc.Spec.Ports) > 0 {
		found := false
		for _, sp := range svc.Spec.Ports {
			if int(sp.Port) == port {
				found = true
				if tp := sp.TargetPort.IntValue(); tp > 0 {
					target = tp
				}
			}
		}
		if !found {
			return "", fmt.Sprintf("Service %s/%s has no port %d", ns, name, port)
		}
	}
	return net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(target)), ""
}

func (t *translator) enum(kind, ns, name, field, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	t.fail(kind, ns, name, field, "unsupported value %q: want one of %s", v, strings.Join(allowed, ", "))
	return false
}

func orDefault[T ~string](v, d T) T {
	if v == "" {
		return d
	}
	return v
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_')) {
			return false
		}
	}
	return true
}

func sortedGateways(in []*gwv1.Gateway) []*gwv1.Gateway {
	out := append([]*gwv1.Gateway(nil), in...)
	sort.Slice(out, func(i, j int) bool { return key(out[i].Namespace, out[i].Name) < key(out[j].Namespace, out[j].Name) })
	return out
}

func sortedRoutes(in []*gwv1.HTTPRoute) []*gwv1.HTTPRoute {
	out := append([]*gwv1.HTTPRoute(nil), in...)
	sort.Slice(out, func(i, j int) bool { return key(out[i].Namespace, out[i].Name) < key(out[j].Namespace, out[j].Name) })
	return out
}

func sortedBackends(in []*v1alpha1.AgentgatewayBackend) []*v1alpha1.AgentgatewayBackend {
	out := append([]*v1alpha1.AgentgatewayBackend(nil), in...)
	sort.Slice(out, func(i, j int) bool { return key(out[i].Namespace, out[i].Name) < key(out[j].Namespace, out[j].Name) })
	return out
}
