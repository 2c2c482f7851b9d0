//go:build tools

// Package tools pins etcd, the storage of the kube-apiserver the Kubernetes
// end-to-end tests start.
package tools

import _ "go.etcd.io/etcd/server/v3"
