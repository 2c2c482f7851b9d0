// Package ir is the intermediate representation between the control path and
// the request path. translate produces it from Kubernetes-style objects; it is
// stored in the bundle's data.json under data.mcpgate.config, so the Rego
// library reads exactly what the Go request path uses to listen, route and
// verify tokens. It is a leaf package: plain data, JSON-tagged, no behaviour
// beyond small lookups.
package ir

import "encoding/json"

// Version of the IR and of the OPA input document (docs/input.md). Bump it on
// any incompatible change; the Rego library checks it.
const Version = "v1"

// Config is everything one gateway needs to serve traffic.
type Config struct {
	Version   string                      `json:"version"`
	Listeners []Listener                  `json:"listeners"`
	Routes    map[string]*Route           `json:"routes"`    // by route key "ns/name/ruleIndex"
	Backends  map[string]*Backend         `json:"backends"`  // by "ns/name"
	Authn     map[string]*Authn           `json:"authn"`     // by policy key "ns/name"
	Authz     map[string]*Authz           `json:"authz"`     // by policy key "ns/name"
	User      map[string]*User            `json:"user"`      // by package name (data.mcpgate.user.<name>)
	RateLimit map[string]*RateLimitPolicy `json:"ratelimit"` // by policy key "ns/name"
	CORS      map[string]*CORS            `json:"cors"`      // by policy key "ns/name"
}

// Listener is one port a Gateway listens on, with the path matches of the
// routes attached to it in Gateway API precedence order: the first match
// wins.
type Listener struct {
	Gateway string       `json:"gateway"` // "ns/name"
	Name    string       `json:"name"`
	Port    int          `json:"port"`
	Matches []RouteMatch `json:"matches"`
}

// RouteMatch is one path match of one route, as a listener tries them.
type RouteMatch struct {
	PathMatch
	Route string `json:"route"` // route key
}

// Route is one HTTPRoute rule: a set of path matches leading to one backend.
type Route struct {
	Key       string      `json:"key"`
	Gateway   string      `json:"gateway"`
	Route     string      `json:"route"` // HTTPRoute "ns/name"
	Rule      int         `json:"rule"`
	Matches   []PathMatch `json:"matches"`
	Backend   string      `json:"backend"`         // backend key
	Authz     []string    `json:"authz"`           // authz policy keys attached at any level
	User      []string    `json:"user"`            // user Rego packages that apply
	RateLimit []string    `json:"ratelimit"`       // rate-limit policy keys attached at any level
	Authn     string      `json:"authn,omitempty"` // authn key, "" when no authentication applies
	CORS      string      `json:"cors,omitempty"`  // CORS policy key, "" when none applies
	// DryRun holds when a dry-run authorization policy applies to the
	// route: decisions then report what it would have refused.
	DryRun bool `json:"dry_run,omitempty"`
	// Scoped holds when the route's authentication requires scopes
	// (Authn.Scoped): a valid token may still be refused (403).
	Scoped bool `json:"scoped,omitempty"`
}

// Governed reports whether authorization rules, user modules or rate limits
// apply to the route. It is written into the bundle data as "governed", so
// the library skips the authorization and rate-limit rules of routes that
// have none without counting lists on every request.
func (r *Route) Governed() bool {
	return len(r.Authz) > 0 || len(r.User) > 0 || len(r.RateLimit) > 0
}

// Limited reports whether requests on the route may carry rate-limit
// descriptors: rate-limit policies, or user modules (which may return a
// ratelimit set). Written into the bundle data as "limited".
func (r *Route) Limited() bool {
	return len(r.RateLimit) > 0 || len(r.User) > 0
}

// MarshalJSON writes the route with its derived "governed" and "limited"
// fields.
func (r *Route) MarshalJSON() ([]byte, error) {
	type fields Route // the same fields without this method
	return json.Marshal(struct {
		*fields
		Governed bool `json:"governed"`
		Limited  bool `json:"limited"`
	}{(*fields)(r), r.Governed(), r.Limited()})
}

// PathMatch is a Gateway API path match.
type PathMatch struct {
	Type  string `json:"type"` // Exact | PathPrefix
	Value string `json:"value"`
}

// Backend is an MCP backend with its resolved targets.
type Backend struct {
	Key            string   `json:"key"`
	Targets        []Target `json:"targets"`
	SessionRouting string   `json:"session_routing"` // Stateful | Stateless
	FailureMode    string   `json:"failure_mode"`    // FailClosed | FailOpen
	PrefixMode     string   `json:"prefix_mode"`     // Conditional | Always | Never
}

// Target is one upstream MCP server, its address resolved.
//
// The request path speaks Streamable HTTP to URL. A target of another
// transport (legacy SSE, stdio) is bridged: URL is then a bridge URL on the
// reserved domain BridgeDomain, which never reaches the network (the
// gateway's upstream client hands it to an in-process bridge, engine/bridge),
// and SSEURL or Stdio says what the bridge talks to.
type Target struct {
	Name     string `json:"name"`
	URL      string `json:"url"`      // e.g. http://127.0.0.1:3001/mcp
	Protocol string `json:"protocol"` // StreamableHTTP | SSE | Stdio
	// SSEURL is the legacy (2024-11-05) SSE endpoint of a Protocol SSE
	// target, e.g. http://127.0.0.1:3001/sse.
	SSEURL string `json:"sse_url,omitempty"`
	// Stdio is the command of a Protocol Stdio target (standalone only).
	Stdio *Stdio `json:"stdio,omitempty"`
}

// Stdio is a local MCP server the gateway starts and talks to over its
// standard input and output, one process per upstream session.
type Stdio struct {
	Cmd  string            `json:"cmd"`
	Args []string          `json:"args,omitempty"`
	Env  map[string]string `json:"env,omitempty"` // the child's whole environment, with PATH and HOME added when unset
}

// BridgeDomain is the reserved domain of bridge URLs: "http://<id>.stdio."+
// BridgeDomain+"/mcp" and "http://<id>.sse."+BridgeDomain+"/mcp". .invalid
// never resolves (RFC 6761), so a bridge URL cannot collide with a real
// upstream.
const BridgeDomain = "mcpgate.invalid"

// Authn is one authentication policy, resolved to the addresses Go needs to
// verify tokens and the metadata it serves.
type Authn struct {
	Key              string         `json:"key"`  // policy "ns/name"
	Mode             string         `json:"mode"` // Strict | Optional | Permissive
	Issuer           string         `json:"issuer"`
	Audiences        []string       `json:"audiences"` // empty: any audience
	JWKSURL          string         `json:"jwks_url,omitempty"`
	JWKSInline       string         `json:"jwks_inline,omitempty"`
	CacheSeconds     int            `json:"cache_seconds"`
	Provider         string         `json:"provider,omitempty"`
	ResourceMetadata map[string]any `json:"resource_metadata,omitempty"` // RFC 9728 keys (snake_case)
	// ClientID short-circuits dynamic client registration: the gateway's
	// registration endpoint answers with this pre-registered client.
	ClientID string `json:"client_id,omitempty"`
	// RequiredScopes must all be granted to a valid token for any request
	// of the route; ToolScopes adds scopes per tool name (tools/call).
	// Missing scopes get 403 insufficient_scope (step-up), decided in
	// rego/mcpgate/authn.rego.
	RequiredScopes []string            `json:"required_scopes"`
	ToolScopes     map[string][]string `json:"tool_scopes"`
	// Scoped is true when RequiredScopes or ToolScopes is non-empty: one
	// lookup lets the library skip the scope check on every other route.
	Scoped bool `json:"scoped"`
}

// CORS is a CORS policy (Gateway API HTTPCORSFilter semantics) for the MCP
// endpoint and the discovery documents of the routes it is attached to.
type CORS struct {
	Key              string   `json:"key"`
	AllowOrigins     []string `json:"allow_origins"` // "*", "https://a.example", "https://*.example.com"
	AllowCredentials bool     `json:"allow_credentials"`
	AllowMethods     []string `json:"allow_methods"`
	AllowHeaders     []string `json:"allow_headers"`
	ExposeHeaders    []string `json:"expose_headers"`
	MaxAge           int      `json:"max_age"` // seconds; 0: the default of 5s
}

// Authz is one policy's MCP authorization rules. Each rule's CEL expression
// is compiled to Rego: rule <Rule> of package
// data.mcpgate.generated.<Package> holds when the expression is true, and
// rule <ListRule> decides list results, which have no arguments.
type Authz struct {
	Key     string      `json:"key"`
	Package string      `json:"package"` // e.g. "p_0f3a…", under mcpgate.generated
	Rules   []AuthzRule `json:"rules"`
	// DryRun policies (annotation mcpgate.dev/dry-run: "true") are
	// evaluated and reported ("would deny") but never enforced.
	DryRun bool `json:"dry_run,omitempty"`
}

// AuthzRule is one compiled CEL expression.
type AuthzRule struct {
	Action        string `json:"action"` // Allow | Deny | Require
	Expression    string `json:"expression"`
	Rule          string `json:"rule"`
	ListRule      string `json:"list_rule"` // decides list results; == Rule unless the expression reads the arguments
	UsesArguments bool   `json:"uses_arguments"`
}

// User is one user-written Rego module, package mcpgate.user.<Name>, and
// which of the contract's rules it defines.
type User struct {
	Name      string `json:"name"`
	Source    string `json:"source"`
	Allow     bool   `json:"allow"`
	Deny      bool   `json:"deny"`
	RateLimit bool   `json:"ratelimit"`
	Status    bool   `json:"http_status"` // defines http_status for its denials
}

// RateLimitPolicy is one policy's rate limits: every rule must admit a
// request. A rule keeps one counter for all the requests it applies to.
type RateLimitPolicy struct {
	Key     string          `json:"key"`
	Package string          `json:"package,omitempty"` // generated package of keys (k<i>) and conditions (w<i>)
	Rules   []RateLimitRule `json:"rules"`
}

// RateLimitRule admits Requests+Burst requests per Seconds, per value of
// its key, for the requests its condition holds for.
type RateLimitRule struct {
	Requests int    `json:"requests"`
	Burst    int    `json:"burst"`
	Seconds  int    `json:"seconds"`
	Key      string `json:"key,omitempty"`  // CEL source; "" is one counter
	When     string `json:"when,omitempty"` // CEL source; "" is always
}
