package k8s

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// A stdio target is a standalone-only extension: the API server accepts the
// object (the CRD knows the field), the controller refuses it on the object
// and never starts a process.
func TestStdioTargetRefusedOnKubernetes(t *testing.T) {
	requireKube(t)
	harness.StartController(t, kubeconfig, "--bind", "127.0.0.1", "--debounce", "50ms")
	objects := `apiVersion: v1
kind: Namespace
metadata: {name: ` + ns + `}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: stdio-backend, namespace: ` + ns + `}
spec:
  mcp:
    targets:
    - name: memory
      stdio: {cmd: sh, args: ["-c", "touch /tmp/mcpgate-must-not-exist"]}
`
	t.Cleanup(func() { remove(t, objects) })
	apply(t, objects)
	eventually(t, 30*time.Second, "stdio backend refused", func() error {
		b := &agwv1.AgentgatewayBackend{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "stdio-backend"}, b); err != nil {
			return err
		}
		return expectCond(b.Status.Conditions, "Accepted", "False", "Invalid", b.Generation)
	})
	b := &agwv1.AgentgatewayBackend{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "stdio-backend"}, b); err != nil {
		t.Fatal(err)
	}
	acc, _ := condition(b.Status.Conditions, "Accepted")
	if !strings.Contains(acc.Message, "spec.mcp.targets[0].stdio") || !strings.Contains(acc.Message, "standalone gateway") {
		t.Errorf("Accepted message %q does not say stdio is standalone only", acc.Message)
	}
	if _, err := os.Stat("/tmp/mcpgate-must-not-exist"); err == nil {
		t.Error("the controller ran the stdio command of a cluster object")
	}
}
