// +kubebuilder:object:generate=true
// +groupName=mcpgate.dev
// +versionName=v1alpha1

package v1alpha1
