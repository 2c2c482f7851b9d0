package harness

import (
	"bytes"
	"fmt"
	"text/template"
)

// JWKS source styles for Config.
const (
	// JWKSBackendRef is the walkthrough's form: jwks.backendRef to the
	// keycloak/keycloak:8080 Service plus jwksPath, with a Service of type
	// ExternalName in the config resolving it to Dex on 127.0.0.1.
	JWKSBackendRef = "backendRef"
	// JWKSBackendRefNoService is the walkthrough's form without the Service
	// object: pass ResolveArg() to the gateway instead.
	JWKSBackendRefNoService = "backendRefNoService"
	// JWKSURL is the jwks.url form.
	JWKSURL = "url"
)

// Config describes the walkthrough's objects (Gateway, AgentgatewayBackend,
// HTTPRoute, authentication policy, Service) with the parts the tests vary.
// Its YAML is what examples/quickstart holds, with ports made free.
type Config struct {
	// Upstream MCP server (static target).
	UpstreamHost string
	UpstreamPort int

	// Auth adds the mcp-oauth-auth policy when non-nil.
	Auth *AuthConfig
}

// AuthConfig is the policy's spec.backend.mcp.authentication.
type AuthConfig struct {
	Issuer    string   // iss the gateway accepts
	Audiences []string // nil: the walkthrough's [mcp-agent]; empty non-nil: field omitted
	Mode      string   // Strict | Optional | Permissive; "" omits the field (Strict by default)
	JWKS      string   // JWKSBackendRef (default) | JWKSBackendRefNoService | JWKSURL
	DexPort   int      // where keycloak/keycloak:8080 resolves to (backendRef styles)
	JWKSURL   string   // for JWKSURL
	JWKSPath  string   // for backendRef styles; default Realm+"/keys"
}

// ResolveArg is the --resolve flag mapping the walkthrough's keycloak Service
// to Dex, for JWKSBackendRefNoService.
func ResolveArg(dexPort int) []string {
	return []string{"--resolve", fmt.Sprintf("keycloak.keycloak:8080=127.0.0.1:%d", dexPort)}
}

// ForDex returns the walkthrough's authentication settings against d.
func ForDex(d *Dex, mode string) *AuthConfig {
	return &AuthConfig{Issuer: d.Issuer(), Mode: mode, DexPort: d.Port()}
}

var configTmpl = template.Must(template.New("config").Parse(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: agentgateway
  namespace: agentgateway-system
spec:
  gatewayClassName: agentgateway
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
    allowedRoutes:
      namespaces:
        from: All
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata:
  name: mcp-backend
  namespace: agentgateway-system
spec:
  mcp:
    targets:
    - name: everything
      static:
        host: {{.UpstreamHost}}
        port: {{.UpstreamPort}}
        path: /mcp
        protocol: StreamableHTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: mcp-route
  namespace: agentgateway-system
spec:
  parentRefs:
  - name: agentgateway
    namespace: agentgateway-system
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: /mcp
    backendRefs:
    - name: mcp-backend
      group: agentgateway.dev
      kind: AgentgatewayBackend
{{- with .Auth}}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: mcp-oauth-auth
  namespace: agentgateway-system
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp-route
  backend:
    mcp:
      authentication:
        issuer: {{printf "%q" .Issuer}}
{{- if .Audiences}}
        audiences:
{{- range .Audiences}}
          - {{printf "%q" .}}
{{- end}}
{{- end}}
        jwks:
{{- if eq .JWKS "url"}}
          url: {{printf "%q" .JWKSURL}}
{{- else}}
          backendRef:
            name: keycloak
            namespace: keycloak
            port: 8080
          jwksPath: {{printf "%q" .JWKSPath}}
{{- end}}
{{- if .Mode}}
        mode: {{.Mode}}
{{- end}}
        provider: Keycloak
        resourceMetadata:
          resource: "http://mcp-server.default.svc.cluster.local"
          scopesSupported:
            - "openid"
          bearerMethodsSupported:
            - "header"
{{- if eq .JWKS "backendRef"}}
---
apiVersion: v1
kind: Service
metadata:
  name: keycloak
  namespace: keycloak
spec:
  type: ExternalName
  externalName: 127.0.0.1
  ports:
  - name: http
    port: 8080
    targetPort: {{.DexPort}}
{{- end}}
{{- end}}
`))

// YAML renders the configuration as one multi-document YAML file.
func (c Config) YAML() string {
	if c.UpstreamHost == "" {
		c.UpstreamHost = "127.0.0.1"
	}
	if a := c.Auth; a != nil {
		cp := *a
		if cp.Audiences == nil {
			cp.Audiences = []string{ClientID}
		}
		if cp.JWKS == "" {
			cp.JWKS = JWKSBackendRef
		}
		if cp.JWKSPath == "" {
			cp.JWKSPath = Realm + "/keys"
		}
		c.Auth = &cp
	}
	var buf bytes.Buffer
	if err := configTmpl.Execute(&buf, c); err != nil {
		panic(fmt.Sprintf("harness: config template: %v", err)) // the template is static
	}
	return buf.String()
}
