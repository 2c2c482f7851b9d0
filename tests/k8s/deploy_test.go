package k8s

import (
	"context"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// TestDeployKustomization builds k8s/deploy as `kubectl apply -k` would
// (kustomize's Go API) and applies the result to the API server: the
// Namespace for real, every other object as a server-side dry run, so the
// API server validates each against its schema (RBAC, Deployment, Service,
// GatewayClass, CRDs). No Pod can run here (no kubelet).
func TestDeployKustomization(t *testing.T) {
	requireKube(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "k8s", "deploy"))
	if err != nil {
		t.Fatalf("kustomize build k8s/deploy: %v", err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, string(y))
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
	}
	for kind, n := range map[string]int{"Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Deployment": 1, "Service": 1, "GatewayClass": 1, "CustomResourceDefinition": 4} {
		if kinds[kind] != n {
			t.Errorf("kustomization has %d %s, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
	ctx := context.Background()
	for _, u := range objs {
		opts := []client.ApplyOption{client.FieldOwner("mcpgate-test"), client.ForceOwnership}
		if u.GetKind() != "Namespace" {
			opts = append(opts, client.DryRunAll)
		}
		if err := k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), opts...); err != nil {
			t.Errorf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}
