package engine

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/mcpgate/mcpgate/ir"
)

// The OAuth discovery documents a client fetches after a 401:
//
//	/.well-known/oauth-protected-resource<path>           RFC 9728 (this file)
//	/.well-known/oauth-authorization-server<path>         RFC 8414, path inserted (asmeta.go)
//	/.well-known/openid-configuration<path>               OpenID discovery, path inserted
//	<path>/.well-known/oauth-authorization-server         the same, path appended (older clients)
//	<path>/.well-known/openid-configuration               OpenID discovery, path appended
//	/.well-known/oauth-authorization-server<path>/client-registration   RFC 7591 (asmeta.go)
//
// <path> is the MCP endpoint's path; with no path the listener's only
// authenticated route answers.
const (
	metadataPath = "/.well-known/oauth-protected-resource"
	asPath       = "/.well-known/oauth-authorization-server"
	oidcPath     = "/.well-known/openid-configuration"
	regSuffix    = "/client-registration"
)

// Kinds of discovery request.
const (
	wkNone = iota
	wkResource
	wkAuthServer
	wkRegister
)

// parseWellKnown says which discovery document p asks for and for which
// resource path.
func parseWellKnown(p string) (kind int, resource string) {
	if rest, ok := cutPrefixElem(p, metadataPath); ok {
		return wkResource, rest
	}
	if rest, ok := cutPrefixElem(p, asPath); ok {
		if r, isReg := strings.CutSuffix(rest, regSuffix); isReg {
			return wkRegister, r
		}
		return wkAuthServer, rest
	}
	if rest, ok := cutPrefixElem(p, oidcPath); ok {
		return wkAuthServer, rest
	}
	for _, suffix := range [...]string{asPath, oidcPath} {
		if r, ok := strings.CutSuffix(strings.TrimSuffix(p, "/"), suffix); ok && r != "" {
			return wkAuthServer, r
		}
	}
	return wkNone, ""
}

// cutPrefixElem cuts prefix from p when it is followed by nothing or "/".
func cutPrefixElem(p, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	if rest == "/" {
		rest = ""
	}
	return rest, true
}

// isWellKnown matches every discovery path, so the router sends them here
// before a route's path prefix could claim the path-appended forms.
func isWellKnown(p string) bool {
	k, _ := parseWellKnown(p)
	return k != wkNone
}

// wellKnown serves the discovery documents for the routes of one listener
// that have an authentication policy.
type wellKnown struct {
	g        *Gateway
	s        *snapshot
	listener ir.Listener
}

func (wk *wellKnown) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, resourcePath := parseWellKnown(r.URL.Path)
	an, rt := wk.lookup(resourcePath)
	var co *ir.CORS
	if rt != nil {
		co = wk.s.cfg.CORS[rt.CORS]
	}
	methods := "GET, HEAD, OPTIONS"
	if kind == wkRegister {
		methods = "POST, OPTIONS"
	}
	if !discoveryCORS(w, r, co, methods) {
		writeJSONRPCError(w, http.StatusForbidden, nil, -32600, "origin not allowed", nil)
		return
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if an == nil {
		writeJSONRPCError(w, http.StatusNotFound, nil, -32601, "no protected resource at "+strconvQuote(resourcePath), nil)
		return
	}
	if kind == wkRegister {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", methods)
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "client registration takes POST")
			return
		}
		wk.g.oauth.register(w, r, an)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", methods)
		writeJSONRPCError(w, http.StatusMethodNotAllowed, nil, -32600, "method not allowed", nil)
		return
	}
	origin := requestOrigin(r)
	if kind == wkAuthServer {
		wk.g.oauth.serveMetadata(w, r, an, origin, resourcePath)
		return
	}
	writeDiscoveryJSON(w, protectedResource(an, origin, resourcePath))
}

// protectedResource is the RFC 9728 document of one route: the policy's
// resourceMetadata (keys already snake_case) with defaults for what it
// leaves out.
func protectedResource(an *ir.Authn, origin, resourcePath string) map[string]any {
	doc := make(map[string]any, len(an.ResourceMetadata)+4)
	for k, v := range an.ResourceMetadata {
		doc[k] = v
	}
	if _, ok := doc["resource"]; !ok {
		doc["resource"] = origin + resourcePath
	}
	if _, ok := doc["authorization_servers"]; !ok {
		switch {
		case an.Provider != "":
			// With a provider the gateway presents itself as the
			// authorization server: clients read the provider's metadata,
			// fixed up, from the gateway (asmeta.go), as agentgateway does.
			doc["authorization_servers"] = []string{origin + resourcePath}
		case an.Issuer != "":
			doc["authorization_servers"] = []string{an.Issuer}
		}
	}
	if _, ok := doc["scopes_supported"]; !ok {
		if s := policyScopes(an); len(s) > 0 {
			doc["scopes_supported"] = s
		}
	}
	if _, ok := doc["bearer_methods_supported"]; !ok {
		doc["bearer_methods_supported"] = []string{"header"}
	}
	return doc
}

// policyScopes lists every scope the policy may require, sorted.
func policyScopes(an *ir.Authn) []string {
	set := map[string]bool{}
	for _, s := range an.RequiredScopes {
		set[s] = true
	}
	for _, ss := range an.ToolScopes {
		for _, s := range ss {
			set[s] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func writeDiscoveryJSON(w http.ResponseWriter, doc any) {
	b, err := json.Marshal(doc)
	if err != nil {
		writeJSONRPCError(w, http.StatusInternalServerError, nil, -32603, "internal error", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(b)
}

// requestOrigin is scheme://host as the client addressed the gateway. The
// host is the request's Host header, which Go's server has already checked
// for syntax; a value that does not parse as a host falls back to
// "localhost" rather than being echoed into documents.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if u, err := url.Parse("http://" + host); err != nil || u.Host != host || strings.ContainsAny(host, `"<>\ `) {
		host = "localhost"
	}
	return scheme + "://" + host
}

// lookup finds the authentication policy of the route that serves
// resourcePath; the bare path (no suffix) answers when exactly one
// authenticated route exists on the listener.
func (wk *wellKnown) lookup(resourcePath string) (*ir.Authn, *ir.Route) {
	if resourcePath == "" || resourcePath == "/" {
		var found *ir.Authn
		var route *ir.Route
		for _, m := range wk.listener.Matches {
			rt := wk.s.cfg.Routes[m.Route]
			an := wk.s.cfg.Authn[rt.Authn]
			if an == nil {
				continue
			}
			if found != nil && found != an {
				return nil, nil
			}
			found, route = an, rt
		}
		return found, route
	}
	for _, m := range wk.listener.Matches {
		if matchPath(m.PathMatch, resourcePath) {
			rt := wk.s.cfg.Routes[m.Route]
			return wk.s.cfg.Authn[rt.Authn], rt
		}
	}
	return nil, nil
}
