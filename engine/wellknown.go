package engine

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/ir"
)

// metadataPath is where RFC 9728 protected resource metadata lives; a
// resource at /mcp has its metadata at metadataPath + "/mcp".
const metadataPath = "/.well-known/oauth-protected-resource"

// wellKnown serves protected resource metadata for the routes of one
// listener that have an authentication policy.
type wellKnown struct {
	s        *snapshot
	listener ir.Listener
}

func (wk *wellKnown) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Discovery documents are public and read by browser-based clients.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "mcp-protocol-version")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	resourcePath := strings.TrimPrefix(r.URL.Path, metadataPath)
	an := wk.lookup(resourcePath)
	if an == nil {
		writeJSONRPCError(w, http.StatusNotFound, nil, -32601, "no protected resource at "+resourcePath, nil)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	doc := map[string]any{}
	for k, v := range an.ResourceMetadata {
		doc[k] = v
	}
	if _, ok := doc["resource"]; !ok {
		doc["resource"] = scheme + "://" + r.Host + resourcePath
	}
	if _, ok := doc["authorization_servers"]; !ok && an.Issuer != "" {
		doc["authorization_servers"] = []string{an.Issuer}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		writeJSONRPCError(w, http.StatusInternalServerError, nil, -32603, "internal error", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(b)
}

// lookup finds the authentication policy of the route that serves
// resourcePath; the bare path (no suffix) answers when exactly one
// authenticated route exists on the listener.
func (wk *wellKnown) lookup(resourcePath string) *ir.Authn {
	if resourcePath == "" || resourcePath == "/" {
		var found *ir.Authn
		for _, m := range wk.listener.Matches {
			rt := wk.s.cfg.Routes[m.Route]
			an := wk.s.cfg.Authn[rt.Authn]
			if an == nil {
				continue
			}
			if found != nil && found != an {
				return nil
			}
			found = an
		}
		return found
	}
	for _, m := range wk.listener.Matches {
		if matchPath(m.PathMatch, resourcePath) {
			rt := wk.s.cfg.Routes[m.Route]
			return wk.s.cfg.Authn[rt.Authn]
		}
	}
	return nil
}
