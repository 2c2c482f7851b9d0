package translate

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
)

// defaultJWKSCache is agentgateway's default cacheDuration.
const defaultJWKSCache = 5 * time.Minute

// attachments records which authentication policy applies to which target.
// Keys: "HTTPRoute ns/name", "HTTPRoute ns/name/section",
// "AgentgatewayBackend ns/name", "Gateway ns/name".
type attachments struct {
	authn      map[string]string   // target -> authn policy key
	authz      map[string][]string // target -> authz policy keys, in name order
	user       map[string][]string // target -> user Rego package names
	ratelimit  map[string][]string // target -> rate-limit policy keys
	cors       map[string]string   // target -> CORS policy key
	globalUser []string            // user Rego packages that apply everywhere
}

// authzFor merges the authorization policies of every level: the Gateway,
// the backend, the route and the route rule. Rules of all levels combine as
// one set (see rego/mcpgate/authz.rego).
func (a *attachments) authzFor(route, section, backend, gateway string) []string {
	return merged(a.authz, route, section, backend, gateway, nil)
}

// rateLimitFor merges the rate-limit policies of every level: each must
// admit the request.
func (a *attachments) rateLimitFor(route, section, backend, gateway string) []string {
	return merged(a.ratelimit, route, section, backend, gateway, nil)
}

// userFor lists the user Rego modules of a route: the global ones (files
// next to the YAML), then those attached at any level.
func (a *attachments) userFor(route, section, backend, gateway string) []string {
	return merged(a.user, route, section, backend, gateway, a.globalUser)
}

func merged(m map[string][]string, route, section, backend, gateway string, first []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, p := range first {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, k := range []string{
		"Gateway " + gateway,
		"AgentgatewayBackend " + backend,
		"HTTPRoute " + route,
		"HTTPRoute " + route + "/" + section,
	} {
		if strings.HasSuffix(k, "/") {
			continue
		}
		for _, p := range m[k] {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// authnFor picks the most specific authentication policy: a route rule
// (sectionName) beats the route, which beats the backend, which beats the
// Gateway.
func (a *attachments) authnFor(route, section, backend, gateway string) string {
	return mostSpecific(a.authn, route, section, backend, gateway)
}

// corsFor picks the most specific CORS policy, as authnFor does.
func (a *attachments) corsFor(route, section, backend, gateway string) string {
	return mostSpecific(a.cors, route, section, backend, gateway)
}

func mostSpecific(m map[string]string, route, section, backend, gateway string) string {
	for _, k := range []string{
		"HTTPRoute " + route + "/" + section,
		"HTTPRoute " + route,
		"AgentgatewayBackend " + backend,
		"Gateway " + gateway,
	} {
		if strings.HasSuffix(k, "/") {
			continue
		}
		if p, ok := m[k]; ok {
			return p
		}
	}
	return ""
}

func (t *translator) policies(cfg *ir.Config, modules map[string]string) *attachments {
	at := &attachments{authn: map[string]string{}, authz: map[string][]string{}, user: map[string][]string{}, ratelimit: map[string][]string{}, cors: map[string]string{}}
	owner := map[string]string{}     // target -> policy that claimed its authentication, for conflicts
	corsOwner := map[string]string{} // target -> policy that claimed its CORS, for conflicts
	pols := append([]*v1alpha1.AgentgatewayPolicy(nil), t.res.Policies...)
	sort.Slice(pols, func(i, j int) bool {
		return key(pols[i].Namespace, pols[i].Name) < key(pols[j].Namespace, pols[j].Name)
	})
	for _, p := range pols {
		kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
		pkey := key(ns, name)
		// Validate everything before giving up on the policy: every problem
		// is reported at once.
		targets, targetsOK := t.targetRefs(kind, ns, name, p.Spec.TargetRefs)
		an, authnSet, authnOK := t.authn(p)
		az, authzSet, authzOK := t.authz(p, modules)
		if az != nil {
			az.DryRun = dryRun(p.Annotations)
		}
		rl, rlSet, rlOK := t.rateLimit(p)
		co, corsSet, corsOK := t.cors(p)
		if !targetsOK || !authnOK || !authzOK || !rlOK || !corsOK {
			if authzSet && az != nil {
				delete(modules, GeneratedPath(az.Package))
			}
			continue
		}
		if !authnSet && !authzSet && !rlSet && !corsSet {
			t.fail(kind, ns, name, "spec", "sets nothing mcpgate implements: use backend.mcp.authentication, backend.mcp.authorization, traffic.jwtAuthentication, traffic.rateLimit or traffic.cors")
			continue
		}
		if corsSet {
			conflict := false
			for _, tg := range targets {
				if other, taken := corsOwner[tg]; taken {
					t.fail(kind, ns, name, "spec.targetRefs", "conflicts with AgentgatewayPolicy %s, which already sets traffic.cors for %s", other, tg)
					conflict = true
				}
			}
			if !conflict {
				cfg.CORS[pkey] = co
				for _, tg := range targets {
					corsOwner[tg] = pkey
					at.cors[tg] = pkey
				}
			}
		}
		if rlSet {
			cfg.RateLimit[pkey] = rl
			for _, tg := range targets {
				at.ratelimit[tg] = append(at.ratelimit[tg], pkey)
			}
		}
		if authnSet {
			conflict := false
			for _, tg := range targets {
				if other, taken := owner[tg]; taken {
					t.fail(kind, ns, name, "spec.targetRefs", "conflicts with AgentgatewayPolicy %s, which already sets authentication for %s", other, tg)
					conflict = true
				}
			}
			if conflict {
				continue
			}
			cfg.Authn[pkey] = an
			for _, tg := range targets {
				owner[tg] = pkey
				at.authn[tg] = pkey
			}
		}
		if authzSet {
			cfg.Authz[pkey] = az
			for _, tg := range targets {
				at.authz[tg] = append(at.authz[tg], pkey)
			}
		}
	}
	return at
}

// targetRefs validates a policy's spec.targetRefs and returns attachment
// keys.
func (t *translator) targetRefs(kind, ns, name string, refs []v1alpha1.LocalPolicyTargetReferenceWithSectionName) ([]string, bool) {
	if len(refs) == 0 {
		t.fail(kind, ns, name, "spec.targetRefs", "at least one targetRef is required")
		return nil, false
	}
	var out []string
	ok := true
	for i, r := range refs {
		field := fmt.Sprintf("spec.targetRefs[%d]", i)
		k := key(ns, string(r.Name))
		var exists bool
		switch {
		case string(r.Group) == gwv1.GroupName && r.Kind == "Gateway":
			_, exists = t.gateways[k]
		case string(r.Group) == gwv1.GroupName && r.Kind == "HTTPRoute":
			var rt *gwv1.HTTPRoute
			rt, exists = t.routes[k]
			if exists && r.SectionName != nil && !hasRule(rt, string(*r.SectionName)) {
				t.fail(kind, ns, name, field+".sectionName", "HTTPRoute %s has no rule named %q", k, *r.SectionName)
				ok = false
				continue
			}
		case string(r.Group) == v1alpha1.GroupName && r.Kind == "AgentgatewayBackend":
			exists = t.backendDeclared(k)
		default:
			t.fail(kind, ns, name, field, "unsupported target %s/%s: want gateway.networking.k8s.io Gateway or HTTPRoute, or agentgateway.dev AgentgatewayBackend", r.Group, r.Kind)
			ok = false
			continue
		}
		if !exists {
			t.failRef(ObjectID(string(r.Kind), ns, string(r.Name)), false, kind, ns, name, field+".name", "%s %s not found", r.Kind, k)
			ok = false
			continue
		}
		tk := string(r.Kind) + " " + k
		if r.SectionName != nil && r.Kind == "HTTPRoute" {
			tk += "/" + string(*r.SectionName)
		} else if r.SectionName != nil {
			t.fail(kind, ns, name, field+".sectionName", "sectionName is only supported on HTTPRoute targets")
			ok = false
			continue
		}
		out = append(out, tk)
	}
	return out, ok
}

func hasRule(r *gwv1.HTTPRoute, section string) bool {
	for _, rule := range r.Spec.Rules {
		if rule.Name != nil && string(*rule.Name) == section {
			return true
		}
	}
	return false
}

// authn translates either authentication form. set is false when the policy
// has none.
func (t *translator) authn(p *v1alpha1.AgentgatewayPolicy) (an *ir.Authn, set, ok bool) {
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	var mcpAuth *v1alpha1.MCPAuthentication
	if p.Spec.Backend != nil && p.Spec.Backend.MCP != nil {
		mcpAuth = p.Spec.Backend.MCP.Authentication
	}
	var jwtAuth *v1alpha1.JWTAuthentication
	if p.Spec.Traffic != nil {
		jwtAuth = p.Spec.Traffic.JWTAuthentication
	}
	switch {
	case mcpAuth != nil && jwtAuth != nil:
		t.fail(kind, ns, name, "spec", "set either backend.mcp.authentication or traffic.jwtAuthentication, not both")
		return nil, true, false
	case mcpAuth != nil:
		an, ok = t.mcpAuthn(p, mcpAuth)
		return an, true, ok
	case jwtAuth != nil:
		an, ok = t.jwtAuthn(p, jwtAuth)
		return an, true, ok
	}
	return nil, false, true
}

func (t *translator) mcpAuthn(p *v1alpha1.AgentgatewayPolicy, a *v1alpha1.MCPAuthentication) (*ir.Authn, bool) {
	field := "spec.backend.mcp.authentication"
	an := &ir.Authn{Key: key(p.Namespace, p.Name), Issuer: a.Issuer, Audiences: nonNil(a.Audiences)}
	ok := t.common(p, field, an, a.Mode, a.Provider, a.ClientID, a.ResourceMetadata, a.MCPScopes)
	ok = t.remoteJWKS(p, field+".jwks", an, &a.JWKS) && ok
	return an, ok
}

func (t *translator) jwtAuthn(p *v1alpha1.AgentgatewayPolicy, a *v1alpha1.JWTAuthentication) (*ir.Authn, bool) {
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	field := "spec.traffic.jwtAuthentication"
	if len(a.Providers) != 1 {
		t.fail(kind, ns, name, field+".providers", "exactly one provider is supported, got %d", len(a.Providers))
		return nil, false
	}
	pr := a.Providers[0]
	an := &ir.Authn{Key: key(ns, name), Issuer: pr.Issuer, Audiences: nonNil(pr.Audiences)}
	var provider, clientID *string
	var meta map[string]v1alpha1.JSON
	var scopes v1alpha1.MCPScopes
	if a.MCP != nil {
		provider, clientID, meta, scopes = a.MCP.Provider, a.MCP.ClientID, a.MCP.ResourceMetadata, a.MCP.MCPScopes
	}
	ok := t.common(p, field, an, a.Mode, provider, clientID, meta, scopes)
	jf := field + ".providers[0].jwks"
	switch {
	case pr.JWKS.Remote != nil && pr.JWKS.Inline != nil:
		t.fail(kind, ns, name, jf, "set exactly one of remote and inline")
		ok = false
	case pr.JWKS.Remote != nil:
		ok = t.remoteJWKS(p, jf+".remote", an, pr.JWKS.Remote) && ok
	case pr.JWKS.Inline != nil:
		var js struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal([]byte(*pr.JWKS.Inline), &js); err != nil || len(js.Keys) == 0 {
			t.fail(kind, ns, name, jf+".inline", "must be a JSON Web Key Set with at least one key")
			ok = false
		}
		an.JWKSInline = *pr.JWKS.Inline
		an.CacheSeconds = int(defaultJWKSCache / time.Second)
	default:
		t.fail(kind, ns, name, jf, "set exactly one of remote and inline")
		ok = false
	}
	return an, ok
}

// common fills mode, provider, client id, scopes and resource metadata,
// shared by both forms.
func (t *translator) common(p *v1alpha1.AgentgatewayPolicy, field string, an *ir.Authn, mode v1alpha1.JWTAuthenticationMode, provider, clientID *string, meta map[string]v1alpha1.JSON, scopes v1alpha1.MCPScopes) bool {
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	ok := true
	an.Mode = string(orDefault(mode, v1alpha1.ModeStrict))
	ok = t.enum(kind, ns, name, field+".mode", an.Mode, "Strict", "Optional", "Permissive") && ok
	if provider != nil {
		an.Provider = *provider
		ok = t.enum(kind, ns, name, field+".provider", an.Provider, "Keycloak", "Auth0", "Okta", "Descope", "Authentik", "Entra") && ok
	}
	if an.Issuer != "" {
		if u, err := url.Parse(an.Issuer); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			t.fail(kind, ns, name, field+".issuer", "%q is not an http(s) URL", an.Issuer)
			ok = false
		}
	}
	if len(meta) > 0 {
		an.ResourceMetadata = map[string]any{}
		for k, v := range meta {
			var val any
			if err := json.Unmarshal(v.Raw, &val); err != nil {
				t.fail(kind, ns, name, field+".resourceMetadata."+k, "not valid JSON: %v", err)
				ok = false
				continue
			}
			an.ResourceMetadata[snake(k)] = val
		}
	}
	// The authorization_servers the metadata advertises by default (the
	// issuer, or the gateway itself when a provider is set) depend on the
	// request's host and are filled in by the gateway when it serves them.
	if clientID != nil {
		if *clientID == "" || hasControl(*clientID) {
			t.fail(kind, ns, name, mcpField(field)+".clientId", "must be a non-empty client id without control characters")
			ok = false
		}
		an.ClientID = *clientID
	}
	ok = t.resourceAudience(p, field, an) && ok
	ok = t.scopes(p, mcpField(field), an, scopes) && ok
	return ok
}

// mcpField is where the MCP fields of an authentication form live.
func mcpField(field string) string {
	if strings.HasPrefix(field, "spec.traffic.jwtAuthentication") {
		return field + ".mcp"
	}
	return field
}

// resourceAudience adds the RFC 8707 resource indicator to the accepted
// audiences. A client asks its authorization server for a token for the
// resource named in the protected resource metadata, so a token whose aud
// is that resource is meant for this gateway: it is accepted as well as the
// configured audiences. With no audiences configured, an explicit resource
// becomes the only accepted audience (tokens minted for another resource
// are refused); with neither, any audience passes, as in agentgateway.
func (t *translator) resourceAudience(p *v1alpha1.AgentgatewayPolicy, field string, an *ir.Authn) bool {
	raw, has := an.ResourceMetadata["resource"]
	if !has {
		return true
	}
	res, isString := raw.(string)
	u, err := url.Parse(res)
	if !isString || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Fragment != "" {
		t.fail("AgentgatewayPolicy", p.Namespace, p.Name, mcpField(field)+".resourceMetadata.resource", "must be an absolute http(s) URL without a fragment (RFC 8707), got %v", raw)
		return false
	}
	for _, a := range an.Audiences {
		if a == res {
			return true
		}
	}
	an.Audiences = append(an.Audiences, res)
	return true
}

// scopes validates the mcpgate scope extension.
func (t *translator) scopes(p *v1alpha1.AgentgatewayPolicy, field string, an *ir.Authn, s v1alpha1.MCPScopes) bool {
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	ok := true
	an.RequiredScopes = []string{}
	an.ToolScopes = map[string][]string{}
	check := func(f string, list []string) []string {
		out := []string{}
		for i, sc := range list {
			if !validScope(sc) {
				t.fail(kind, ns, name, fmt.Sprintf("%s[%d]", f, i), "%q is not an OAuth scope token (RFC 6749 3.3: printable ASCII except space, \" and \\)", sc)
				ok = false
				continue
			}
			out = append(out, sc)
		}
		return out
	}
	an.RequiredScopes = check(field+".requiredScopes", s.RequiredScopes)
	tools := make([]string, 0, len(s.ToolScopes))
	for tool := range s.ToolScopes {
		tools = append(tools, tool)
	}
	sort.Strings(tools)
	for _, tool := range tools {
		if tool == "" || hasControl(tool) {
			t.fail(kind, ns, name, field+".toolScopes", "tool names must be non-empty, without control characters")
			ok = false
			continue
		}
		f := field + ".toolScopes." + tool
		if len(s.ToolScopes[tool]) == 0 {
			t.fail(kind, ns, name, f, "list at least one scope")
			ok = false
			continue
		}
		an.ToolScopes[tool] = check(f, s.ToolScopes[tool])
	}
	an.Scoped = len(an.RequiredScopes) > 0 || len(an.ToolScopes) > 0
	if an.Scoped && an.Mode == string(v1alpha1.ModePermissive) {
		t.fail(kind, ns, name, field, "requiredScopes and toolScopes are not enforced in Permissive mode (it never rejects): use Strict or Optional")
		ok = false
	}
	return ok
}

// validScope: RFC 6749 3.3 scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

func (t *translator) remoteJWKS(p *v1alpha1.AgentgatewayPolicy, field string, an *ir.Authn, j *v1alpha1.RemoteJWKS) bool {
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	an.CacheSeconds = int(defaultJWKSCache / time.Second)
	if j.CacheDuration != nil {
		if j.CacheDuration.Duration < time.Second {
			t.fail(kind, ns, name, field+".cacheDuration", "must be at least 1s, got %s", j.CacheDuration.Duration)
			return false
		}
		an.CacheSeconds = int(j.CacheDuration.Duration / time.Second)
	}
	switch {
	case j.URL != nil && j.BackendRef != nil:
		t.fail(kind, ns, name, field, "set exactly one of backendRef and url")
		return false
	case j.URL != nil:
		if j.JwksPath != nil {
			t.fail(kind, ns, name, field+".jwksPath", "may not be set together with url")
			return false
		}
		u, err := url.Parse(*j.URL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			t.fail(kind, ns, name, field+".url", "%q is not an http(s) URL", *j.URL)
			return false
		}
		an.JWKSURL = *j.URL
		return true
	case j.BackendRef != nil:
		br := j.BackendRef
		if (br.Group != nil && *br.Group != "") || (br.Kind != nil && *br.Kind != "Service") {
			t.fail(kind, ns, name, field+".backendRef", "must reference a core Service")
			return false
		}
		if br.Port == nil {
			t.fail(kind, ns, name, field+".backendRef.port", "required")
			return false
		}
		if j.JwksPath == nil || *j.JwksPath == "" {
			t.fail(kind, ns, name, field+".jwksPath", "required when backendRef is set")
			return false
		}
		sns := ns
		if br.Namespace != nil {
			sns = string(*br.Namespace)
		}
		hp, msg := t.resolveService(string(br.Name), sns, int(*br.Port))
		if msg != "" {
			t.failRef(ObjectID("Service", sns, string(br.Name)), false, kind, ns, name, field+".backendRef", "%s", msg)
			return false
		}
		path := *j.JwksPath
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		an.JWKSURL = (&url.URL{Scheme: "http", Host: hp, Path: path}).String()
		return true
	}
	t.fail(kind, ns, name, field, "set exactly one of backendRef and url")
	return false
}

// snake turns resourceMetadata's camelCase keys into RFC 9728's snake_case.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DryRunAnnotation marks a policy whose authorization rules are evaluated
// and reported ("would deny", in the decision, the logs and the metrics)
// but not enforced: how an operator sees what a policy does before it
// refuses anyone.
const DryRunAnnotation = "mcpgate.dev/dry-run"

func dryRun(annotations map[string]string) bool {
	return annotations[DryRunAnnotation] == "true"
}

// cors translates traffic.cors (Gateway API HTTPCORSFilter). set is false
// when the policy has none.
func (t *translator) cors(p *v1alpha1.AgentgatewayPolicy) (co *ir.CORS, set, ok bool) {
	if p.Spec.Traffic == nil || p.Spec.Traffic.Cors == nil {
		return nil, false, true
	}
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	field := "spec.traffic.cors"
	f := p.Spec.Traffic.Cors.HTTPCORSFilter
	co = &ir.CORS{Key: key(ns, name), AllowOrigins: []string{}, AllowMethods: []string{}, AllowHeaders: []string{}, ExposeHeaders: []string{}}
	if f == nil {
		t.fail(kind, ns, name, field, "set allowOrigins")
		return nil, true, false
	}
	ok = true
	if len(f.AllowOrigins) == 0 {
		t.fail(kind, ns, name, field+".allowOrigins", "at least one origin is required")
		ok = false
	}
	for i, o := range f.AllowOrigins {
		if msg := checkOrigin(string(o)); msg != "" {
			t.fail(kind, ns, name, fmt.Sprintf("%s.allowOrigins[%d]", field, i), "%q: %s", o, msg)
			ok = false
			continue
		}
		co.AllowOrigins = append(co.AllowOrigins, strings.ToLower(string(o)))
	}
	for i, m := range f.AllowMethods {
		if !validToken(string(m)) && m != "*" {
			t.fail(kind, ns, name, fmt.Sprintf("%s.allowMethods[%d]", field, i), "%q is not an HTTP method", m)
			ok = false
			continue
		}
		co.AllowMethods = append(co.AllowMethods, strings.ToUpper(string(m)))
	}
	for i, h := range f.AllowHeaders {
		if !validToken(string(h)) && h != "*" {
			t.fail(kind, ns, name, fmt.Sprintf("%s.allowHeaders[%d]", field, i), "%q is not a header name", h)
			ok = false
			continue
		}
		co.AllowHeaders = append(co.AllowHeaders, strings.ToLower(string(h)))
	}
	for i, h := range f.ExposeHeaders {
		if !validToken(string(h)) && h != "*" {
			t.fail(kind, ns, name, fmt.Sprintf("%s.exposeHeaders[%d]", field, i), "%q is not a header name", h)
			ok = false
			continue
		}
		co.ExposeHeaders = append(co.ExposeHeaders, strings.ToLower(string(h)))
	}
	if f.AllowCredentials != nil {
		co.AllowCredentials = *f.AllowCredentials
	}
	if f.MaxAge < 0 {
		t.fail(kind, ns, name, field+".maxAge", "must not be negative")
		ok = false
	}
	co.MaxAge = int(f.MaxAge)
	return co, true, ok
}

// checkOrigin accepts "*" and scheme://host[:port], where the host may
// start with one "*." wildcard label (Gateway API CORSOrigin).
func checkOrigin(o string) string {
	if o == "*" {
		return ""
	}
	scheme, rest, found := strings.Cut(o, "://")
	if !found || (scheme != "http" && scheme != "https") || rest == "" {
		return `want "*" or scheme://host[:port] with scheme http or https`
	}
	host := strings.TrimPrefix(rest, "*.")
	if strings.ContainsAny(host, "/?#@*\\ ") || host == "" || hasControl(host) {
		return "want scheme://host[:port], without path, query, user info or further wildcards"
	}
	return ""
}

// validToken: an RFC 9110 token (method and header names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
