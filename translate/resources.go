package translate

import (
	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	mcpv1 "github.com/mcpgate/mcpgate/k8s/api/mcpgate/v1alpha1"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
)

// Resources is the input of Translate: the typed objects, from files or from
// Kubernetes informers.
type Resources struct {
	Gateways   []*gwv1.Gateway
	HTTPRoutes []*gwv1.HTTPRoute
	Backends   []*v1alpha1.AgentgatewayBackend
	Policies   []*v1alpha1.AgentgatewayPolicy
	Services   []*corev1.Service
	// RegoPolicies carry user Rego modules attached through targetRefs.
	RegoPolicies []*mcpv1.MCPRegoPolicy
	// RateLimitPolicies carry keyed rate limits.
	RateLimitPolicies []*mcpv1.MCPRateLimitPolicy
	// Modules are user Rego modules that apply to every route (standalone:
	// the .rego files next to the YAML).
	Modules []Module

	// Resolve maps "host:port" to the "host:port" to dial instead. Keys for
	// Services are "name.namespace:port"; standalone, this is how a backendRef
	// reaches an address outside Kubernetes (the --resolve flag).
	Resolve map[string]string

	// AllowStdio admits stdio targets (AgentgatewayBackend
	// spec.mcp.targets[].stdio), which make the gateway start processes.
	// The standalone gateway sets it; the Kubernetes controller never does.
	AllowStdio bool

	// Sources maps an object ("Kind ns/name") to where it came from (a file
	// and document), so errors can name it.
	Sources map[string]string
}

// Module is one user Rego module and where it came from.
type Module struct {
	Source string // file path (or "Kind ns/name modules[i]")
	Text   string
}

// ObjectID names an object in errors and in Sources: "Kind ns/name".
func ObjectID(kind, namespace, name string) string {
	return kind + " " + namespace + "/" + name
}
