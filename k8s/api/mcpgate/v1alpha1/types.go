// Package v1alpha1 holds mcpgate's own API (group mcpgate.dev): policies
// written directly in Rego, for what agentgateway's CEL rules cannot say.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
type MCPRegoPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MCPRegoPolicySpec `json:"spec"`
}

// MCPRegoPolicySpec is the policy's desired state.
type MCPRegoPolicySpec struct {
	TargetRefs []agw.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	Modules    []RegoModule                                    `json:"modules"`
}

// RegoModule is one Rego module (rego.v1 syntax).
type RegoModule struct {
	Name string `json:"name"`
	Rego string `json:"rego"`
}

// MCPRateLimitPolicy adds keyed rate limits to Gateways, HTTPRoutes or
// AgentgatewayBackends: agentgateway's local rate limit (requests + burst
// per unit) with a CEL key — one counter per value, e.g. per subject or per
// tool — and an optional CEL condition.
type MCPRateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MCPRateLimitPolicySpec `json:"spec"`
}

// MCPRateLimitPolicySpec is the policy's desired state.
type MCPRateLimitPolicySpec struct {
	TargetRefs []agw.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	Limits     []KeyedRateLimit                                `json:"limits"`
}

// KeyedRateLimit admits requests+burst requests per unit for each value of
// Key, among the requests for which When holds.
type KeyedRateLimit struct {
	Requests int32                  `json:"requests"`
	Unit     agw.LocalRateLimitUnit `json:"unit"`
	Burst    *int32                 `json:"burst,omitempty"`
	// Key is a CEL expression (jwt.sub, mcp.tool.name, ...); unset: one
	// counter for all. A key that cannot be evaluated (a missing claim)
	// counts in one shared "undefined" counter.
	Key string `json:"key,omitempty"`
	// When is a CEL condition; unset: every request.
	When string `json:"when,omitempty"`
}
