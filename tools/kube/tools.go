//go:build tools

// Package tools pins kube-apiserver, built from k8s.io/kubernetes for the
// Kubernetes end-to-end tests (envtest KUBEBUILDER_ASSETS).
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
