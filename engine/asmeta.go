package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/ir"
)

// Authorization-server metadata proxy. A client that found the gateway in a
// protected resource document's authorization_servers (which the gateway
// advertises when the policy names a provider) reads the authorization
// server's metadata from the gateway: the gateway fetches the provider's own
// document (RFC 8414, or OpenID discovery for providers that only serve
// that), caches it, and applies the provider fix-ups agentgateway applies:
//
//   - issuer becomes the gateway URL the client asked about, so clients that
//     check the issuer against the URL they fetched accept the document;
//   - Keycloak, Okta, Descope: registration_endpoint points at the gateway,
//     which relays registrations (their endpoints send no CORS headers);
//   - Auth0, Okta: audience=<first audience> is added to the
//     authorization_endpoint (they ignore the RFC 8707 resource parameter);
//   - clientId set: registration_endpoint points at the gateway, which answers
//     with that pre-registered client instead of registering a new one.
//
// Token and authorization endpoints stay the provider's: clients talk to the
// provider directly for tokens.

const (
	asCacheTTL      = 5 * time.Minute
	asRetryInterval = 5 * time.Second // after a failed fetch, callers get the error (or a stale copy) until then
	asMaxDocument   = 1 << 20
	maxRegistration = 64 << 10
	oauthTimeout    = 10 * time.Second
)

// ErrAuthServer is wrapped by failures to reach the authorization server.
var ErrAuthServer = errors.New("authorization server")

// oauthProxy fetches and caches provider metadata. It lives as long as the
// Gateway: activations do not empty the cache.
type oauthProxy struct {
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*asEntry // by issuer + "\x00" + provider
}

type asEntry struct {
	mu       sync.Mutex // one fetch at a time per provider
	doc      []byte     // the provider's document, a JSON object
	fetched  time.Time
	failedAt time.Time
	err      error
}

func newOAuthProxy(client *http.Client, log *slog.Logger) *oauthProxy {
	if client == nil {
		client = &http.Client{Timeout: oauthTimeout, Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: oauthTimeout}}
	}
	return &oauthProxy{client: client, log: log, now: time.Now, entries: map[string]*asEntry{}}
}

// openIDOnly are the providers that serve OpenID discovery under the issuer
// and no RFC 8414 document.
var openIDOnly = map[string]bool{"Keycloak": true, "Okta": true, "Descope": true, "Authentik": true, "Entra": true}

// metadataURLs are the provider documents to try, in order.
func metadataURLs(an *ir.Authn) []string {
	issuer := strings.TrimSuffix(an.Issuer, "/")
	oidc := issuer + oidcPath
	rfc8414 := oidc
	if u, err := url.Parse(issuer); err == nil {
		p := u.Path
		u.Path, u.RawPath = asPath+p, ""
		rfc8414 = u.String()
	}
	if openIDOnly[an.Provider] {
		return []string{oidc, rfc8414}
	}
	return []string{rfc8414, oidc}
}

// document returns the provider's metadata, from the cache when fresh. When
// the provider cannot be reached a stale copy is served (and the failure
// logged); with no copy at all the error is returned.
func (p *oauthProxy) document(ctx context.Context, an *ir.Authn) ([]byte, error) {
	if an.Issuer == "" {
		return nil, fmt.Errorf("%w: the authentication policy names no issuer", ErrAuthServer)
	}
	k := an.Issuer + "\x00" + an.Provider
	p.mu.Lock()
	e := p.entries[k]
	if e == nil {
		e = &asEntry{}
		p.entries[k] = e
	}
	p.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := p.now()
	if e.doc != nil && now.Sub(e.fetched) < asCacheTTL {
		return e.doc, nil
	}
	if e.err != nil && now.Sub(e.failedAt) < asRetryInterval {
		if e.doc != nil {
			return e.doc, nil
		}
		return nil, e.err
	}
	doc, err := p.fetch(ctx, an)
	if err != nil {
		e.err, e.failedAt = err, now
		if e.doc != nil {
			p.log.Warn("authorization server metadata unavailable, serving the cached copy", "issuer", an.Issuer, "error", err)
			return e.doc, nil
		}
		p.log.Warn("authorization server metadata unavailable", "issuer", an.Issuer, "error", err)
		return nil, err
	}
	e.doc, e.fetched, e.err = doc, now, nil
	return doc, nil
}

func (p *oauthProxy) fetch(ctx context.Context, an *ir.Authn) ([]byte, error) {
	var errs []error
	for _, u := range metadataURLs(an) {
		doc, status, err := p.get(ctx, u)
		if err == nil {
			return doc, nil
		}
		errs = append(errs, err)
		if status < 400 || status > 499 {
			// Unreachable, 5xx or a bad document: another URL of the
			// same server will not do better.
			break
		}
	}
	return nil, fmt.Errorf("%w: fetching metadata of %s: %w", ErrAuthServer, an.Issuer, errors.Join(errs...))
}

func (p *oauthProxy) get(ctx context.Context, u string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, oauthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp.StatusCode, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, asMaxDocument+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > asMaxDocument {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: document larger than %d bytes", u, asMaxDocument)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: not a JSON object", u)
	}
	return b, resp.StatusCode, nil
}

// serveMetadata answers an authorization-server metadata request for the
// resource at resourcePath.
func (p *oauthProxy) serveMetadata(w http.ResponseWriter, r *http.Request, an *ir.Authn, origin, resourcePath string) {
	raw, err := p.document(r.Context(), an)
	if err != nil {
		writeOAuthError(w, http.StatusBadGateway, "temporarily_unavailable",
			"the authorization server's metadata could not be fetched from "+an.Issuer+"; try again later")
		return
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc) // validated when fetched
	if err := fixup(doc, an, origin, resourcePath); err != nil {
		p.log.Warn("authorization server metadata cannot be adapted", "issuer", an.Issuer, "provider", an.Provider, "error", err)
		writeOAuthError(w, http.StatusBadGateway, "server_error", err.Error())
		return
	}
	writeDiscoveryJSON(w, doc)
}

// fixup applies the provider fix-ups to a copy of the provider's document.
func fixup(doc map[string]any, an *ir.Authn, origin, resourcePath string) error {
	reg := origin + asPath + resourcePath + regSuffix
	if an.Provider != "" {
		doc["issuer"] = origin + resourcePath
	}
	switch an.Provider {
	case "Auth0", "Okta":
		if len(an.Audiences) > 0 {
			ae, ok := doc["authorization_endpoint"].(string)
			if !ok {
				return fmt.Errorf("%s metadata has no authorization_endpoint", an.Provider)
			}
			u, err := url.Parse(ae)
			if err != nil {
				return fmt.Errorf("%s authorization_endpoint: %w", an.Provider, err)
			}
			q := u.Query()
			q.Set("audience", an.Audiences[0])
			u.RawQuery = q.Encode()
			doc["authorization_endpoint"] = u.String()
		}
	}
	switch {
	case an.ClientID != "":
		doc["registration_endpoint"] = reg
	case an.Provider == "Keycloak" || an.Provider == "Okta" || an.Provider == "Descope":
		// Relay registrations only where the provider offers them.
		if _, ok := doc["registration_endpoint"].(string); ok {
			doc["registration_endpoint"] = reg
		}
	}
	return nil
}

// register answers a dynamic client registration (RFC 7591) sent to the
// gateway's registration endpoint.
func (p *oauthProxy) register(w http.ResponseWriter, r *http.Request, an *ir.Authn) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistration))
	if err != nil {
		writeOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_client_metadata", "registration request too large")
		return
	}
	if an.ClientID != "" {
		writeRegistration(w, an.ClientID, body)
		return
	}
	raw, err := p.document(r.Context(), an)
	if err != nil {
		writeOAuthError(w, http.StatusBadGateway, "temporarily_unavailable",
			"the authorization server's metadata could not be fetched from "+an.Issuer+"; try again later")
		return
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	target, _ := doc["registration_endpoint"].(string)
	if u, err := url.Parse(target); target == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		writeOAuthError(w, http.StatusNotImplemented, "invalid_request",
			"the authorization server offers no dynamic client registration; set clientId in the authentication policy")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), oauthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		writeOAuthError(w, http.StatusBadGateway, "server_error", "invalid registration endpoint")
		return
	}
	// Only the registration document is relayed: no client headers (an
	// Authorization header meant for the gateway never reaches the IdP).
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.log.Warn("client registration relay failed", "issuer", an.Issuer, "error", err)
		writeOAuthError(w, http.StatusBadGateway, "temporarily_unavailable", "the authorization server's registration endpoint could not be reached")
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, asMaxDocument+1))
	if err != nil || len(out) > asMaxDocument {
		writeOAuthError(w, http.StatusBadGateway, "server_error", "the authorization server's registration answer could not be read")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// writeRegistration answers a registration with the pre-registered client
// (agentgateway's clientId short-circuit): the requested redirect URIs are
// echoed, since strict clients check them, and nothing else is taken from
// the request.
func writeRegistration(w http.ResponseWriter, clientID string, body []byte) {
	var req struct {
		RedirectURIs []string `json:"redirect_uris"`
	}
	_ = json.Unmarshal(body, &req) // a malformed request gets no redirect URIs
	if req.RedirectURIs == nil {
		req.RedirectURIs = []string{}
	}
	b, _ := json.Marshal(map[string]any{
		"client_id":                  clientID,
		"client_id_issued_at":        0,
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code"},
		"response_types":             []string{"code"},
		"redirect_uris":              req.RedirectURIs,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(b)
}
