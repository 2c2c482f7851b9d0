// +kubebuilder:object:generate=true
// +groupName=agentgateway.dev
// +versionName=v1alpha1

package v1alpha1
