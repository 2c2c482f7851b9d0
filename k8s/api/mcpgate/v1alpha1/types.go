// Package v1alpha1 holds mcpgate's own API (group mcpgate.dev): policies
// written directly in Rego, for what agentgateway's CEL rules cannot say.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	agw "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
)

// GroupName is mcpgate's API group.
const GroupName = "mcpgate.dev"

// Version is the API version implemented here.
const Version = "v1alpha1"

// MCPRegoPolicy attaches Rego modules to Gateways, HTTPRoutes or
// AgentgatewayBackends. Each module declares `package mcpgate.user.<name>`
// and may define `deny` (a set of reasons), `allow` (a boolean) and
// `ratelimit` (a set of descriptors); see docs/policies.md.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=mcpgate,shortName=mcprego
// +kubebuilder:subresource:status
// +kubebuilder:metadata:labels="gateway.networking.k8s.io/policy=Direct"
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=".status.ancestors[*].conditions[?(@.type=='Accepted')].status"
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=".status.ancestors[*].conditions[?(@.type=='Programmed')].status"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MCPRegoPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MCPRegoPolicySpec `json:"spec"`
	// +optional
	Status gwv1.PolicyStatus `json:"status,omitzero"`
}

// MCPRegoPolicyList is a list of MCPRegoPolicy.
//
// +kubebuilder:object:root=true
type MCPRegoPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPRegoPolicy `json:"items"`
}

// MCPRegoPolicySpec is the policy's desired state.
type MCPRegoPolicySpec struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, (r.kind == 'AgentgatewayBackend' && r.group == 'agentgateway.dev') || (r.kind in ['Gateway', 'HTTPRoute'] && r.group == 'gateway.networking.k8s.io'))",message="targetRefs may only reference Gateway, HTTPRoute or AgentgatewayBackend resources"
	TargetRefs []agw.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Modules []RegoModule `json:"modules"`
}

// RegoModule is one Rego module (rego.v1 syntax).
type RegoModule struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9_]*$`
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Rego string `json:"rego"`
}

// MCPRateLimitPolicy adds keyed rate limits to Gateways, HTTPRoutes or
// AgentgatewayBackends: agentgateway's local rate limit (requests + burst
// per unit) with a CEL key — one counter per value, e.g. per subject or per
// tool — and an optional CEL condition.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=mcpgate,shortName=mcprl
// +kubebuilder:subresource:status
// +kubebuilder:metadata:labels="gateway.networking.k8s.io/policy=Direct"
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=".status.ancestors[*].conditions[?(@.type=='Accepted')].status"
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=".status.ancestors[*].conditions[?(@.type=='Programmed')].status"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MCPRateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MCPRateLimitPolicySpec `json:"spec"`
	// +optional
	Status gwv1.PolicyStatus `json:"status,omitzero"`
}

// MCPRateLimitPolicyList is a list of MCPRateLimitPolicy.
//
// +kubebuilder:object:root=true
type MCPRateLimitPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPRateLimitPolicy `json:"items"`
}

// MCPRateLimitPolicySpec is the policy's desired state.
type MCPRateLimitPolicySpec struct {
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, (r.kind == 'AgentgatewayBackend' && r.group == 'agentgateway.dev') || (r.kind in ['Gateway', 'HTTPRoute'] && r.group == 'gateway.networking.k8s.io'))",message="targetRefs may only reference Gateway, HTTPRoute or AgentgatewayBackend resources"
	TargetRefs []agw.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Limits []KeyedRateLimit `json:"limits"`
}

// KeyedRateLimit admits requests+burst requests per unit for each value of
// Key, among the requests for which When holds.
type KeyedRateLimit struct {
	// +kubebuilder:validation:Minimum=1
	Requests int32                  `json:"requests"`
	Unit     agw.LocalRateLimitUnit `json:"unit"`
	// +kubebuilder:validation:Minimum=0
	Burst *int32 `json:"burst,omitempty"`
	// Key is a CEL expression (jwt.sub, mcp.tool.name, ...); unset: one
	// counter for all. A key that cannot be evaluated (a missing claim)
	// counts in one shared "undefined" counter.
	// +kubebuilder:validation:MaxLength=4096
	Key string `json:"key,omitempty"`
	// When is a CEL condition; unset: every request.
	// +kubebuilder:validation:MaxLength=4096
	When string `json:"when,omitempty"`
}
