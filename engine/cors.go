package engine

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/ir"
)

// CORS lets browser-based MCP clients (the MCP Inspector, web agents) talk
// to the gateway from another origin. Without a traffic.cors policy the MCP
// endpoint stays same-origin (the Origin check in handler.go refuses other
// origins, the MCP transport spec's DNS-rebinding defence) and the
// discovery documents, which are public and carry no credentials, are open
// to every origin.

// Defaults when the policy leaves a list empty: what a browser MCP client
// needs to send, and the response headers it must be able to read
// (WWW-Authenticate to start OAuth discovery, Mcp-Session-Id to keep its
// session).
const (
	corsDefaultMethods = "GET, POST, DELETE, OPTIONS"
	corsDefaultHeaders = "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id"
	corsAlwaysExpose   = "www-authenticate, mcp-session-id, mcp-protocol-version"
	corsDefaultMaxAge  = 5
)

// corsAllows reports whether origin may call a route with policy co.
func corsAllows(co *ir.CORS, origin string) bool {
	if co == nil || origin == "" {
		return false
	}
	origin = strings.ToLower(origin)
	for _, o := range co.AllowOrigins {
		if o == "*" || o == origin {
			return true
		}
		// https://*.example.com matches https://a.example.com and
		// https://a.b.example.com, never https://example.com.
		if scheme, host, ok := strings.Cut(o, "://*."); ok {
			u, err := url.Parse(origin)
			if err == nil && u.Scheme == scheme && strings.HasSuffix(u.Host, "."+host) {
				return true
			}
		}
	}
	return false
}

// setCORS writes the headers of an actual (non-preflight) response for an
// allowed origin.
func setCORS(h http.Header, co *ir.CORS, origin string) {
	h.Add("Vary", "Origin")
	if co.AllowCredentials || !hasWildcardOrigin(co) {
		h.Set("Access-Control-Allow-Origin", origin)
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if co.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	expose := corsAlwaysExpose
	if len(co.ExposeHeaders) > 0 {
		expose += ", " + strings.Join(co.ExposeHeaders, ", ")
	}
	h.Set("Access-Control-Expose-Headers", expose)
}

func hasWildcardOrigin(co *ir.CORS) bool {
	for _, o := range co.AllowOrigins {
		if o == "*" {
			return true
		}
	}
	return false
}

// preflight answers an OPTIONS preflight for an allowed origin.
func preflight(w http.ResponseWriter, r *http.Request, co *ir.CORS, defaultMethods string) {
	h := w.Header()
	setCORS(h, co, r.Header.Get("Origin"))
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	methods := defaultMethods
	if len(co.AllowMethods) > 0 {
		methods = strings.Join(co.AllowMethods, ", ")
		if methods == "*" && co.AllowCredentials {
			// A literal "*" is not a wildcard for credentialed requests
			// (Fetch standard): name the method asked for.
			methods = r.Header.Get("Access-Control-Request-Method")
		}
	}
	h.Set("Access-Control-Allow-Methods", methods)
	headers := corsDefaultHeaders
	if len(co.AllowHeaders) > 0 {
		headers = strings.Join(co.AllowHeaders, ", ")
		if headers == "*" && co.AllowCredentials {
			headers = r.Header.Get("Access-Control-Request-Headers")
		}
	}
	if headers != "" && safeHeader("Access-Control-Allow-Headers", headers) {
		h.Set("Access-Control-Allow-Headers", headers)
	}
	maxAge := co.MaxAge
	if maxAge == 0 {
		maxAge = corsDefaultMaxAge
	}
	h.Set("Access-Control-Max-Age", strconv.Itoa(maxAge))
	w.WriteHeader(http.StatusNoContent)
}

func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// withCORS wraps the MCP endpoint of a route that has a CORS policy:
// preflights are answered here, actual responses of allowed origins get the
// CORS headers (set before the handler runs, so denials carry them too and a
// browser client can read a 401's WWW-Authenticate).
func withCORS(co *ir.CORS, next http.Handler) http.Handler {
	if co == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && !corsAllows(co, origin) {
			// Same-origin requests still pass: the handler's Origin check
			// decides them.
			next.ServeHTTP(w, r)
			return
		}
		if origin != "" && isPreflight(r) {
			preflight(w, r, co, corsDefaultMethods)
			return
		}
		if origin != "" {
			setCORS(w.Header(), co, origin)
		}
		next.ServeHTTP(w, r)
	})
}

// discoveryCORS writes the CORS headers of a discovery endpoint and answers
// preflights' headers (the caller ends an OPTIONS request). With a route
// policy the policy decides; without one the documents are open to any
// origin (they are public and no credentials are involved). It returns false
// when a policy refuses the origin.
func discoveryCORS(w http.ResponseWriter, r *http.Request, co *ir.CORS, methods string) bool {
	origin := r.Header.Get("Origin")
	h := w.Header()
	if co == nil {
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", "content-type, mcp-protocol-version")
			h.Set("Access-Control-Max-Age", "86400")
		}
		return true
	}
	if origin == "" {
		return true
	}
	if !corsAllows(co, origin) {
		return false
	}
	setCORS(h, co, origin)
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "content-type, mcp-protocol-version")
		maxAge := co.MaxAge
		if maxAge == 0 {
			maxAge = corsDefaultMaxAge
		}
		h.Set("Access-Control-Max-Age", strconv.Itoa(maxAge))
	}
	return true
}
