package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// scalePolicies is how many AgentgatewayPolicies TestThousandPolicies
// creates.
const scalePolicies = 1000

// TestThousandPolicies measures what the issue asks for: how long it takes
// from creating 1,000 authorization policies to the gateway enforcing them,
// how long the controller spends translating and activating that bundle,
// and how long until every policy reports Programmed. Figures are logged
// (MEASURE lines), not asserted: timing thresholds belong to benchmarks.
// What is asserted is that the last policy is enforced and every policy is
// reported Programmed, then gone after deletion.
func TestThousandPolicies(t *testing.T) {
	requireKube(t)
	if testing.Short() {
		t.Skip("-short")
	}
	up := harness.StartEverything(t)
	gwPort, err := harness.FreePort()
	harness.Require(t, err)
	const sns = "scale"
	base := fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: agentgateway}
spec: {controllerName: mcpgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: %[1]s}
spec:
  gatewayClassName: agentgateway
  listeners: [{name: http, protocol: HTTP, port: %[2]d}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: be, namespace: %[1]s}
spec:
  mcp:
    targets: [{name: everything, static: {host: 127.0.0.1, port: %[3]d}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route, namespace: %[1]s}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mcp}}]
    backendRefs: [{name: be, group: agentgateway.dev, kind: AgentgatewayBackend}]
`, sns, gwPort, up.Port())
	t.Cleanup(func() { remove(t, base) })
	apply(t, base)
	c := harness.StartController(t, kubeconfig, "--bind", "127.0.0.1", "--kube-qps", "200")
	mcpURL := "http://127.0.0.1:" + strconv.Itoa(gwPort) + "/mcp"
	eventually(t, 30*time.Second, "route served", expectTools(mcpURL, "", http.StatusOK, many))

	ctx := context.Background()
	policy := func(i int, tool string) *agwv1.AgentgatewayPolicy {
		return &agwv1.AgentgatewayPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("deny-%04d", i), Namespace: sns},
			Spec: agwv1.AgentgatewayPolicySpec{
				TargetRefs: []agwv1.LocalPolicyTargetReferenceWithSectionName{{Group: gwv1.GroupName, Kind: "HTTPRoute", Name: "route"}},
				Backend: &agwv1.BackendFull{MCP: &agwv1.BackendMCP{Authorization: &agwv1.Authorization{
					Action: agwv1.ActionDeny,
					Policy: agwv1.AuthorizationPolicy{MatchExpressions: []string{fmt.Sprintf(`mcp.tool.name == %q`, tool)}},
				}}},
			},
		}
	}
	t.Cleanup(func() {
		_ = k8sClient.DeleteAllOf(ctx, &agwv1.AgentgatewayPolicy{}, client.InNamespace(sns))
	})
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, scalePolicies)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := k8sClient.Create(ctx, policy(i, fmt.Sprintf("no-such-tool-%d", i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < scalePolicies-1; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The last policy denies echo: once echo is gone from tools/list, the
	// bundle holding all 1,000 is active (the watch delivers in order).
	if err := k8sClient.Create(ctx, policy(scalePolicies-1, "echo")); err != nil {
		t.Fatal(err)
	}
	created := time.Since(start)
	noEcho := func(names []string) bool { return len(names) > 0 && !slices.Contains(names, "echo") }
	enforced := eventually(t, 120*time.Second, "1,000 policies enforced", expectTools(mcpURL, "", http.StatusOK, noEcho))
	t.Logf("MEASURE %d policies: created through the API in %s; the last one enforced %s after its creation (%s after the first)",
		scalePolicies, created.Round(time.Millisecond), enforced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	// The controller logs the activation once it is done, which may be
	// just after the policy is seen enforced.
	var activation string
	eventually(t, 10*time.Second, "activation logged", func() error {
		if activation = findActivation(c.Output(), scalePolicies); activation == "" {
			return fmt.Errorf("no 'bundle activated' line with %d objects in the controller log", scalePolicies)
		}
		return nil
	})
	t.Logf("MEASURE bundle with %d policies (controller log of its activation): %s", scalePolicies, activation)

	programmed := eventually(t, 180*time.Second, "every policy Programmed", func() error {
		var list agwv1.AgentgatewayPolicyList
		if err := k8sClient.List(ctx, &list, client.InNamespace(sns)); err != nil {
			return err
		}
		n := 0
		for _, p := range list.Items {
			for _, a := range p.Status.Ancestors {
				if c := meta.FindStatusCondition(a.Conditions, "Programmed"); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == p.Generation {
					n++
				}
			}
		}
		if n != scalePolicies {
			return fmt.Errorf("%d of %d programmed", n, scalePolicies)
		}
		return nil
	})
	t.Logf("MEASURE status: all %d policies Programmed %s after the last was enforced", scalePolicies, programmed.Round(time.Millisecond))

	start = time.Now()
	if err := k8sClient.DeleteAllOf(ctx, &agwv1.AgentgatewayPolicy{}, client.InNamespace(sns)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 120*time.Second, "policies gone", expectTools(mcpURL, "", http.StatusOK, many))
	t.Logf("MEASURE delete of %d policies enforced %s after the delete started", scalePolicies, time.Since(start).Round(time.Millisecond))
}

// lastActivation returns the durations logged with the last "bundle
// activated" line whose object count includes n policies.
func findActivation(log string, n int) string {
	found := ""
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Msg                               string `json:"msg"`
			Objects                           int    `json:"objects"`
			Read, Translate, Bundle, Activate string
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "bundle activated" || e.Objects < n {
			continue
		}
		found = fmt.Sprintf("read %s, translate %s, bundle %s, activate %s", e.Read, e.Translate, e.Bundle, e.Activate)
	}
	return found
}
