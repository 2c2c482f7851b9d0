// Package v1alpha1 holds the subset of agentgateway.dev/v1alpha1 that mcpgate
// implements: AgentgatewayBackend (MCP targets) and AgentgatewayPolicy (MCP
// authentication, with authorization and rate limits to follow). Field names
// and JSON tags follow agentgateway's CRDs so that its YAML loads unchanged;
// fields mcpgate does not implement are absent, so strict decoding reports
// them instead of silently ignoring them.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GroupName is the API group of the agentgateway objects.
const GroupName = "agentgateway.dev"

// Version is the API version implemented here.
const Version = "v1alpha1"

// AgentgatewayBackend describes where MCP traffic goes.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=agentgateway,shortName=agbe
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=".status.conditions[?(@.type=='Accepted')].status"
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=".status.conditions[?(@.type=='Programmed')].status"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgentgatewayBackend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AgentgatewayBackendSpec `json:"spec"`
	// +optional
	Status AgentgatewayBackendStatus `json:"status,omitzero"`
}

// AgentgatewayBackendStatus is written by the controller: Accepted,
// ResolvedRefs and Programmed conditions.
type AgentgatewayBackendStatus struct {
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentgatewayBackendList is a list of AgentgatewayBackend.
//
// +kubebuilder:object:root=true
type AgentgatewayBackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentgatewayBackend `json:"items"`
}

// AgentgatewayBackendSpec is the backend's desired state; mcpgate implements
// only MCP backends.
//
// +kubebuilder:validation:ExactlyOneOf=mcp
type AgentgatewayBackendSpec struct {
	MCP *MCPBackend `json:"mcp,omitempty"`
}

// MCPBackend lists the MCP servers behind one backend.
type MCPBackend struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t1, self.exists_one(t2, t1.name == t2.name))",message="target names must be unique"
	Targets        []McpTargetSelector `json:"targets"`
	SessionRouting SessionRouting      `json:"sessionRouting,omitempty"`
	FailureMode    FailureMode         `json:"failureMode,omitempty"`
	PrefixMode     PrefixMode          `json:"prefixMode,omitempty"`
}

// SessionRouting is Stateful (default) or Stateless.
//
// +kubebuilder:validation:Enum=Stateful;Stateless
type SessionRouting string

// FailureMode is FailClosed (default) or FailOpen.
//
// +kubebuilder:validation:Enum=FailClosed;FailOpen
type FailureMode string

// PrefixMode is Conditional (default), Always or Never.
//
// +kubebuilder:validation:Enum=Conditional;Always;Never
type PrefixMode string

// Enum values.
const (
	Stateful           SessionRouting = "Stateful"
	Stateless          SessionRouting = "Stateless"
	FailClosed         FailureMode    = "FailClosed"
	FailOpen           FailureMode    = "FailOpen"
	PrefixConditional  PrefixMode     = "Conditional"
	PrefixAlways       PrefixMode     = "Always"
	PrefixNever        PrefixMode     = "Never"
	ProtocolStreamable MCPProtocol    = "StreamableHTTP"
	ProtocolSSE        MCPProtocol    = "SSE"
)

// McpTargetSelector names one MCP target.
//
// +kubebuilder:validation:ExactlyOneOf=static;stdio
type McpTargetSelector struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	Name   string     `json:"name"`
	Static *McpTarget `json:"static,omitempty"`
	// Stdio is a local MCP server the gateway starts, as in agentgateway's
	// local configuration. An mcpgate extension for the standalone gateway
	// only: the Kubernetes controller refuses it (it never starts processes
	// from cluster objects).
	Stdio *StdioTarget `json:"stdio,omitempty"`
}

// StdioTarget is a command the standalone gateway runs, one process per
// upstream session, speaking MCP over its standard input and output.
type StdioTarget struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Cmd string `json:"cmd"`
	// +kubebuilder:validation:MaxItems=128
	// +optional
	Args []string `json:"args,omitempty"`
	// Env is the child's environment; the gateway adds only PATH and HOME
	// (from its own) when they are not set here.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Env map[string]string `json:"env,omitempty"`
}

// McpTarget is a static MCP destination: a host or a Service in the
// backend's namespace, plus port, path and protocol.
//
// +kubebuilder:validation:ExactlyOneOf=host;backendRef
type McpTarget struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Host       *string               `json:"host,omitempty"`
	BackendRef *LocalObjectReference `json:"backendRef,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must start with '/'"
	Path     *string      `json:"path,omitempty"`
	Protocol *MCPProtocol `json:"protocol,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// MCPProtocol is the upstream transport.
//
// +kubebuilder:validation:Enum=StreamableHTTP;SSE
type MCPProtocol string

// AgentgatewayPolicy attaches behaviour to Gateways, HTTPRoutes and backends.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=agentgateway,shortName=agpol
// +kubebuilder:subresource:status
// +kubebuilder:metadata:labels="gateway.networking.k8s.io/policy=Direct"
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=".status.ancestors[*].conditions[?(@.type=='Accepted')].status"
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=".status.ancestors[*].conditions[?(@.type=='Programmed')].status"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AgentgatewayPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AgentgatewayPolicySpec `json:"spec"`
	// Status has one ancestor entry per targetRef, each with Accepted,
	// ResolvedRefs and Programmed conditions.
	// +optional
	Status gwv1.PolicyStatus `json:"status,omitzero"`
}

// AgentgatewayPolicyList is a list of AgentgatewayPolicy.
//
// +kubebuilder:object:root=true
type AgentgatewayPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AgentgatewayPolicy `json:"items"`
}

// AgentgatewayPolicySpec is the policy's desired state.
//
// +kubebuilder:validation:AtLeastOneOf=traffic;backend
type AgentgatewayPolicySpec struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, (r.kind == 'AgentgatewayBackend' && r.group == 'agentgateway.dev') || (r.kind in ['Gateway', 'HTTPRoute'] && r.group == 'gateway.networking.k8s.io'))",message="targetRefs may only reference Gateway, HTTPRoute or AgentgatewayBackend resources"
	// +kubebuilder:validation:XValidation:rule="self.all(l1, !self.exists(l2, l1.kind != l2.kind))",message="Only one Kind of targetRef can be set on one policy"
	TargetRefs []LocalPolicyTargetReferenceWithSectionName `json:"targetRefs,omitempty"`
	Traffic    *Traffic                                    `json:"traffic,omitempty"`
	Backend    *BackendFull                                `json:"backend,omitempty"`
}

// LocalPolicyTargetReferenceWithSectionName selects one same-namespace object.
type LocalPolicyTargetReferenceWithSectionName struct {
	Group       gwv1.Group        `json:"group"`
	Kind        gwv1.Kind         `json:"kind"`
	Name        gwv1.ObjectName   `json:"name"`
	SectionName *gwv1.SectionName `json:"sectionName,omitempty"`
}

// Traffic holds route-level traffic policies.
type Traffic struct {
	JWTAuthentication *JWTAuthentication `json:"jwtAuthentication,omitempty"`
	RateLimit         *RateLimits        `json:"rateLimit,omitempty"`
	Cors              *CORS              `json:"cors,omitempty"`
}

// CORS is agentgateway's traffic.cors: Gateway API's HTTPCORSFilter inline.
type CORS struct {
	*gwv1.HTTPCORSFilter `json:",inline"`
}

// RateLimits holds rate limits; mcpgate implements the local form.
type RateLimits struct {
	Local []LocalRateLimit `json:"local,omitempty"`
}

// LocalRateLimit admits requests+burst requests per unit.
type LocalRateLimit struct {
	// +required
	// +kubebuilder:validation:Minimum=1
	Requests *int32             `json:"requests,omitempty"`
	Unit     LocalRateLimitUnit `json:"unit"`
	// +kubebuilder:validation:Minimum=0
	Burst *int32 `json:"burst,omitempty"`
}

// LocalRateLimitUnit is Seconds, Minutes or Hours.
//
// +kubebuilder:validation:Enum=Seconds;Minutes;Hours
type LocalRateLimitUnit string

// BackendFull holds backend-level policies.
type BackendFull struct {
	MCP *BackendMCP `json:"mcp,omitempty"`
}

// BackendMCP holds MCP-specific backend policies.
type BackendMCP struct {
	Authorization  *Authorization     `json:"authorization,omitempty"`
	Authentication *MCPAuthentication `json:"authentication,omitempty"`
}

// Authorization is one set of CEL rules with one action. Each expression is
// a rule of its own (as agentgateway's controller translates them).
type Authorization struct {
	Policy AuthorizationPolicy       `json:"policy"`
	Action AuthorizationPolicyAction `json:"action,omitempty"`
}

// AuthorizationPolicy lists the CEL expressions.
type AuthorizationPolicy struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=16384
	MatchExpressions []string `json:"matchExpressions"`
}

// AuthorizationPolicyAction is Allow (default), Deny or Require.
//
// +kubebuilder:validation:Enum=Allow;Deny;Require
type AuthorizationPolicyAction string

// Authorization actions.
const (
	ActionAllow   AuthorizationPolicyAction = "Allow"
	ActionDeny    AuthorizationPolicyAction = "Deny"
	ActionRequire AuthorizationPolicyAction = "Require"
)

// JWTAuthenticationMode is Strict (default), Optional or Permissive.
//
// +kubebuilder:validation:Enum=Strict;Optional;Permissive
type JWTAuthenticationMode string

// Authentication modes.
const (
	ModeStrict     JWTAuthenticationMode = "Strict"
	ModeOptional   JWTAuthenticationMode = "Optional"
	ModePermissive JWTAuthenticationMode = "Permissive"
)

// MCPAuthentication is the walkthrough's backend.mcp.authentication form.
type MCPAuthentication struct {
	ResourceMetadata map[string]JSON       `json:"resourceMetadata,omitempty"`
	Provider         *string               `json:"provider,omitempty"`
	Issuer           string                `json:"issuer,omitempty"`
	Audiences        []string              `json:"audiences,omitempty"`
	JWKS             RemoteJWKS            `json:"jwks"`
	Mode             JWTAuthenticationMode `json:"mode,omitempty"`
	ClientID         *string               `json:"clientId,omitempty"`
	MCPScopes        `json:",inline"`
}

// MCPScopes is an mcpgate extension (agentgateway has no such fields): the
// OAuth scopes a token must carry. A valid token that lacks them gets 403
// with WWW-Authenticate error="insufficient_scope" and the scopes to ask for
// (step-up authorization, MCP 2025-11-25); a 401 challenge names them in
// scope=.
type MCPScopes struct {
	// RequiredScopes apply to every request of the routes the policy covers.
	RequiredScopes []string `json:"requiredScopes,omitempty"`
	// ToolScopes adds scopes for calling particular tools (tools/call), by
	// tool name as the upstream server knows it (mcp.tool.name).
	ToolScopes map[string][]string `json:"toolScopes,omitempty"`
}

// JWTAuthentication is the newer route-level traffic.jwtAuthentication form.
//
// +kubebuilder:validation:XValidation:rule="!has(self.mcp) || size(self.providers) == 1",message="jwtAuthentication.mcp requires exactly one provider"
// +kubebuilder:validation:XValidation:rule="!has(self.mcp) || !has(self.mode) || self.mode == 'Strict'",message="jwtAuthentication.mcp requires mode Strict"
type JWTAuthentication struct {
	Mode JWTAuthenticationMode `json:"mode,omitempty"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Providers []JWTProvider `json:"providers"`
	MCP       *JWTMCPConfig `json:"mcp,omitempty"`
}

// JWTProvider is one token issuer.
type JWTProvider struct {
	Issuer    string   `json:"issuer"`
	Audiences []string `json:"audiences,omitempty"`
	JWKS      JWKS     `json:"jwks"`
}

// JWKS is a remote or inline key set.
//
// +kubebuilder:validation:ExactlyOneOf=remote;inline
type JWKS struct {
	Remote *RemoteJWKS `json:"remote,omitempty"`
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=65536
	Inline *string `json:"inline,omitempty"`
}

// JWTMCPConfig enables the MCP OAuth behaviour of jwtAuthentication.
type JWTMCPConfig struct {
	ResourceMetadata map[string]JSON `json:"resourceMetadata,omitempty"`
	Provider         *string         `json:"provider,omitempty"`
	ClientID         *string         `json:"clientId,omitempty"`
	MCPScopes        `json:",inline"`
}

// RemoteJWKS says where to fetch a key set: a Service (backendRef + jwksPath)
// or a URL.
//
// +kubebuilder:validation:ExactlyOneOf=backendRef;url
// +kubebuilder:validation:XValidation:rule="has(self.backendRef) ? has(self.jwksPath) : true",message="jwksPath is required when backendRef is set"
// +kubebuilder:validation:XValidation:rule="has(self.url) ? !has(self.jwksPath) : true",message="jwksPath may not be set when url is set"
type RemoteJWKS struct {
	JwksPath      *string                      `json:"jwksPath,omitempty"`
	CacheDuration *metav1.Duration             `json:"cacheDuration,omitempty"`
	BackendRef    *gwv1.BackendObjectReference `json:"backendRef,omitempty"`
	URL           *string                      `json:"url,omitempty"`
}

// JSON is an arbitrary JSON value kept as raw bytes (resourceMetadata values).
//
// +kubebuilder:validation:Schemaless
// +kubebuilder:pruning:PreserveUnknownFields
// +kubebuilder:validation:Type=""
type JSON struct {
	Raw []byte `json:"-"`
}

// MarshalJSON returns the raw value.
func (j JSON) MarshalJSON() ([]byte, error) {
	if len(j.Raw) == 0 {
		return []byte("null"), nil
	}
	return j.Raw, nil
}

// UnmarshalJSON keeps a copy of the raw value.
func (j *JSON) UnmarshalJSON(b []byte) error {
	j.Raw = append(j.Raw[:0], b...)
	return nil
}
