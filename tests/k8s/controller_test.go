package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

const ns = "agentgateway-system"

// walkthrough returns the quickstart's objects (the walkthrough's Gateway,
// backend, route, its mcp-oauth-auth policy verbatim but for Dex's issuer
// and key path, and the keycloak Service) with the ports of this test's
// Dex, server-everything and gateway listener, plus their namespaces and
// the deploy GatewayClass.
func walkthrough(t *testing.T, dexPort, mcpPort, gwPort int) string {
	t.Helper()
	y := readFiles(t, "k8s/deploy/gatewayclass.yaml",
		"examples/quickstart/00-gateway.yaml", "examples/quickstart/10-backend.yaml",
		"examples/quickstart/20-route.yaml", "examples/quickstart/30-mcp-auth-policy.yaml",
		"examples/quickstart/40-services.yaml")
	r := strings.NewReplacer(
		"port: 8080\n    allowedRoutes", fmt.Sprintf("port: %d\n    allowedRoutes", gwPort),
		"port: 3001", fmt.Sprintf("port: %d", mcpPort),
		"127.0.0.1:5556", fmt.Sprintf("127.0.0.1:%d", dexPort),
		"targetPort: 5556", fmt.Sprintf("targetPort: %d", dexPort),
	)
	out := r.Replace(y)
	for _, want := range []string{fmt.Sprintf("port: %d", gwPort), fmt.Sprintf("port: %d", mcpPort), fmt.Sprintf("targetPort: %d", dexPort)} {
		if !strings.Contains(out, want) {
			t.Fatalf("the quickstart changed: could not set %q", want)
		}
	}
	return namespaces + out
}

const namespaces = `
apiVersion: v1
kind: Namespace
metadata: {name: agentgateway-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: keycloak}
`

// policyWith is the walkthrough's mcp-oauth-auth policy plus an
// authorization rule (the same object, edited).
func policyWith(t *testing.T, dexPort int, expr string) string {
	t.Helper()
	p := readFiles(t, "examples/quickstart/30-mcp-auth-policy.yaml")
	p = strings.ReplaceAll(p, "127.0.0.1:5556", fmt.Sprintf("127.0.0.1:%d", dexPort))
	const anchor = "    mcp:\n      authentication:\n"
	if !strings.Contains(p, anchor) {
		t.Fatal("the quickstart policy changed: no backend.mcp.authentication")
	}
	return strings.Replace(p, anchor, "    mcp:\n      authorization:\n        policy:\n          matchExpressions:\n          - '"+expr+"'\n      authentication:\n", 1)
}

// toolsList posts the walkthrough's tools/list and returns the status and
// the tool names.
func toolsList(url, token string) (int, []string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","method":"tools/list","id":1}`))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		for _, line := range strings.Split(string(body), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				body = []byte(d)
			}
		}
	}
	var msg struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("tools/list answer %q: %v", body, err)
	}
	var names []string
	for _, tl := range msg.Result.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return resp.StatusCode, names, nil
}

// expectTools is a check for eventually: the status and, for 200, the tools.
func expectTools(url, token string, status int, tools func([]string) bool) func() error {
	return func() error {
		st, names, err := toolsList(url, token)
		if err != nil {
			return err
		}
		if st != status {
			return fmt.Errorf("status %d, want %d", st, status)
		}
		if status == http.StatusOK && !tools(names) {
			return fmt.Errorf("tools %v", names)
		}
		return nil
	}
}

func onlyEcho(names []string) bool { return slices.Equal(names, []string{"echo"}) }
func many(names []string) bool     { return len(names) > 3 && slices.Contains(names, "echo") }

// condition returns the condition of type typ, or an error.
func condition(conds []metav1.Condition, typ string) (*metav1.Condition, error) {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return nil, fmt.Errorf("no %s condition in %+v", typ, conds)
	}
	return c, nil
}

// expectCond checks a condition's status, reason and observedGeneration.
func expectCond(conds []metav1.Condition, typ string, st metav1.ConditionStatus, reason string, gen int64) error {
	c, err := condition(conds, typ)
	if err != nil {
		return err
	}
	if c.Status != st || c.Reason != reason || c.ObservedGeneration != gen {
		return fmt.Errorf("%s = %s/%s (generation %d, message %q), want %s/%s at generation %d", typ, c.Status, c.Reason, c.ObservedGeneration, c.Message, st, reason, gen)
	}
	return nil
}

func getPolicy(name string) (*agwv1.AgentgatewayPolicy, error) {
	p := &agwv1.AgentgatewayPolicy{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p)
	return p, err
}

// policyConds checks every ancestor entry of a policy.
func policyConds(name string, checks ...func([]metav1.Condition, int64) error) func() error {
	return func() error {
		p, err := getPolicy(name)
		if err != nil {
			return err
		}
		if len(p.Status.Ancestors) == 0 {
			return fmt.Errorf("policy %s has no status yet", name)
		}
		for _, a := range p.Status.Ancestors {
			for _, c := range checks {
				if err := c(a.Conditions, p.Generation); err != nil {
					return fmt.Errorf("policy %s: %w", name, err)
				}
			}
		}
		return nil
	}
}

func is(typ string, st metav1.ConditionStatus, reason string) func([]metav1.Condition, int64) error {
	return func(c []metav1.Condition, gen int64) error { return expectCond(c, typ, st, reason, gen) }
}

func get(url string, hdr map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// revision reads the active bundle revision from the admin /readyz.
func revision(adminURL string) (string, error) {
	_, body, err := get(adminURL+"/readyz", nil)
	if err != nil {
		return "", err
	}
	var r struct {
		Revision string `json:"revision"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("/readyz: %v: %s", err, body)
	}
	return r.Revision, nil
}

// TestWalkthroughOnKubernetes applies the walkthrough to a real API server
// and follows one configuration through its life: enforced, changed, broken
// (status reports it, the last good version keeps serving), served by a
// second replica at the same revision, deleted.
func TestWalkthroughOnKubernetes(t *testing.T) {
	requireKube(t)
	d := harness.StartDex(t, harness.DexOptions{})
	up := harness.StartEverything(t)
	gwPort, err := harness.FreePort()
	harness.Require(t, err)
	token := d.PasswordToken(t, harness.ClientID, harness.ClientSecret, harness.AgentUser, harness.AgentPass)

	c1 := harness.StartController(t, kubeconfig, "--bind", "127.0.0.1", "--debounce", "50ms")
	mcpURL := "http://127.0.0.1:" + strconv.Itoa(gwPort) + "/mcp"

	objects := walkthrough(t, d.Port(), up.Port(), gwPort)
	t.Cleanup(func() { remove(t, objects) })
	start := time.Now()
	apply(t, objects)
	applied := time.Since(start)
	enforced := eventually(t, 30*time.Second, "walkthrough enforced (401 without a token)", expectTools(mcpURL, "", http.StatusUnauthorized, nil))
	t.Logf("MEASURE apply→enforced: kubectl-apply of %d objects took %s; the first 401 came %s after the apply started",
		len(decode(t, objects)), applied.Round(time.Millisecond), (enforced + applied).Round(time.Millisecond))
	eventually(t, 10*time.Second, "token admitted", expectTools(mcpURL, token, http.StatusOK, many))

	t.Run("status", func(t *testing.T) {
		eventually(t, 20*time.Second, "policy status", policyConds("mcp-oauth-auth",
			is("Accepted", "True", "Accepted"), is("ResolvedRefs", "True", "ResolvedRefs"), is("Programmed", "True", "Programmed")))
		eventually(t, 20*time.Second, "route status", func() error {
			r := &gwv1.HTTPRoute{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "mcp-route"}, r); err != nil {
				return err
			}
			if len(r.Status.Parents) != 1 {
				return fmt.Errorf("route parents %+v", r.Status.Parents)
			}
			for _, typ := range []string{"Accepted", "ResolvedRefs", "Programmed"} {
				if err := expectCond(r.Status.Parents[0].Conditions, typ, "True", typ, r.Generation); err != nil {
					return err
				}
			}
			return nil
		})
		eventually(t, 20*time.Second, "backend status", func() error {
			b := &agwv1.AgentgatewayBackend{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "mcp-backend"}, b); err != nil {
				return err
			}
			return expectCond(b.Status.Conditions, "Programmed", "True", "Programmed", b.Generation)
		})
		eventually(t, 20*time.Second, "gateway and class status", func() error {
			g := &gwv1.Gateway{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "agentgateway"}, g); err != nil {
				return err
			}
			if err := expectCond(g.Status.Conditions, "Programmed", "True", "Programmed", g.Generation); err != nil {
				return err
			}
			gc := &gwv1.GatewayClass{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Name: "agentgateway"}, gc); err != nil {
				return err
			}
			return expectCond(gc.Status.Conditions, "Accepted", "True", "Accepted", gc.Generation)
		})
	})

	t.Run("change takes effect", func(t *testing.T) {
		start := time.Now()
		apply(t, policyWith(t, d.Port(), `mcp.tool.name == "echo"`))
		eventually(t, 30*time.Second, "only echo allowed", expectTools(mcpURL, token, http.StatusOK, onlyEcho))
		t.Logf("MEASURE policy change→enforced: %s after the apply started", time.Since(start).Round(time.Millisecond))
		eventually(t, 20*time.Second, "edited policy programmed", policyConds("mcp-oauth-auth", is("Programmed", "True", "Programmed")))
	})

	t.Run("no request dropped while bundles swap", func(t *testing.T) {
		// Requests run back to back while the policy flips between two
		// valid versions; each must be answered by one of the two.
		stop := make(chan struct{})
		done := make(chan error, 1)
		var n int
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				st, names, err := toolsList(mcpURL, token)
				if err != nil || st != http.StatusOK || len(names) == 0 {
					done <- fmt.Errorf("request %d during the swaps: status %d, tools %v, error %v", n, st, names, err)
					return
				}
				n++
			}
		}()
		for i := 0; i < 6; i++ {
			expr := `mcp.tool.name != ""`
			check := many
			if i%2 == 1 {
				expr, check = `mcp.tool.name == "echo"`, onlyEcho
			}
			apply(t, policyWith(t, d.Port(), expr))
			eventually(t, 30*time.Second, "swap "+strconv.Itoa(i), expectTools(mcpURL, token, http.StatusOK, check))
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		t.Logf("%d requests during 6 activations, none failed", n)
	})

	t.Run("broken policy keeps the last good version", func(t *testing.T) {
		before, err := getPolicy("mcp-oauth-auth")
		if err != nil {
			t.Fatal(err)
		}
		apply(t, policyWith(t, d.Port(), `mcp.tool.name ==`))
		// A second, new policy with a dangling reference.
		apply(t, `
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: dangling, namespace: agentgateway-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: no-such-route}]
  backend:
    mcp:
      authorization:
        action: Deny
        policy: {matchExpressions: ['true']}
`)
		t.Cleanup(func() {
			remove(t, "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayPolicy\nmetadata: {name: dangling, namespace: agentgateway-system}\n")
		})
		eventually(t, 20*time.Second, "broken policy reported", policyConds("mcp-oauth-auth",
			is("Accepted", "False", "Invalid"), is("Programmed", "False", "LastGoodServed")))
		p, _ := getPolicy("mcp-oauth-auth")
		if p.Generation <= before.Generation {
			t.Fatalf("generation %d after the edit, was %d", p.Generation, before.Generation)
		}
		acc, _ := condition(p.Status.Ancestors[0].Conditions, "Accepted")
		if !strings.Contains(acc.Message, "matchExpressions") {
			t.Errorf("Accepted message %q does not name the bad expression", acc.Message)
		}
		eventually(t, 20*time.Second, "dangling policy reported", policyConds("dangling",
			is("Accepted", "True", "Accepted"), is("ResolvedRefs", "False", "RefNotFound"), is("Programmed", "False", "NotServed")))
		// The last good bundle keeps serving: authentication and the echo
		// rule still apply; the dangling Deny-all affects nothing.
		for i := 0; i < 5; i++ {
			if err := expectTools(mcpURL, token, http.StatusOK, onlyEcho)(); err != nil {
				t.Fatalf("with a token: %v", err)
			}
			if err := expectTools(mcpURL, "", http.StatusUnauthorized, nil)(); err != nil {
				t.Fatalf("without a token: %v", err)
			}
		}
		// The valid objects are unaffected.
		r := &gwv1.HTTPRoute{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "mcp-route"}, r); err != nil {
			t.Fatal(err)
		}
		if err := expectCond(r.Status.Parents[0].Conditions, "Programmed", "True", "Programmed", r.Generation); err != nil {
			t.Error(err)
		}
		// Repairing it is picked up.
		apply(t, policyWith(t, d.Port(), `mcp.tool.name == "echo"`))
		eventually(t, 20*time.Second, "repaired policy", policyConds("mcp-oauth-auth",
			is("Accepted", "True", "Accepted"), is("Programmed", "True", "Programmed")))
	})

	t.Run("bundle over HTTP", func(t *testing.T) {
		rev, err := revision(c1.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		resp, body, err := get(c1.AdminURL()+"/bundles/mcpgate.tar.gz", nil)
		if err != nil {
			t.Fatal(err)
		}
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || len(body) == 0 || rev == "" || etag != `"`+rev+`"` {
			t.Fatalf("bundle: status %d, %d bytes, ETag %q, active revision %q", resp.StatusCode, len(body), etag, rev)
		}
		resp, _, err = get(c1.AdminURL()+"/bundles/mcpgate.tar.gz", map[string]string{"If-None-Match": etag})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: status %d, want 304", resp.StatusCode)
		}
		// The OPA CLI evaluates the served bundle as the gateway does: the
		// walkthrough's tools/list without a token is refused with 401.
		root, err := harness.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "bundle.tar.gz")
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "tool", "opa", "eval", "--fail", "-b", file, "-f", "raw",
			"-i", filepath.Join(root, "tests", "testdata", "walkthrough-input.json"), "data.mcpgate.decision.http_status")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "401" {
			t.Fatalf("opa eval -b on the served bundle: %v\n%s", err, out)
		}
		// An OPA server polls the endpoint (bundle service, ETag) and
		// decides like the gateway.
		opaDecides(t, root, c1.AdminURL())
	})

	t.Run("second replica converges", func(t *testing.T) {
		c2 := harness.StartController(t, kubeconfig, "--bind", "127.0.0.2", "--debounce", "50ms")
		eventually(t, 30*time.Second, "same revision", func() error {
			r1, err1 := revision(c1.AdminURL())
			r2, err2 := revision(c2.AdminURL())
			if err1 != nil || err2 != nil {
				return fmt.Errorf("%v %v", err1, err2)
			}
			if r1 == "" || r1 != r2 {
				return fmt.Errorf("revisions %q and %q", r1, r2)
			}
			return nil
		})
		url2 := "http://127.0.0.2:" + strconv.Itoa(gwPort) + "/mcp"
		eventually(t, 10*time.Second, "replica 2 enforces", expectTools(url2, token, http.StatusOK, onlyEcho))
		if err := expectTools(url2, "", http.StatusUnauthorized, nil)(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("deleted policy is gone", func(t *testing.T) {
		start := time.Now()
		remove(t, policyWith(t, d.Port(), "x"))
		eventually(t, 30*time.Second, "no authentication, no authorization", expectTools(mcpURL, "", http.StatusOK, many))
		t.Logf("MEASURE policy delete→enforced: %s", time.Since(start).Round(time.Millisecond))
	})
}

// opaDecides runs `opa run --server` with the controller's bundle endpoint as
// its bundle service and waits until OPA, having downloaded the bundle,
// answers the walkthrough's unauthenticated tools/list with 401.
func opaDecides(t *testing.T, root, adminURL string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "opa")
	build := exec.Command("go", "build", "-o", bin, "github.com/open-policy-agent/opa")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the opa CLI: %v\n%s", err, out)
	}
	port, err := harness.FreePort()
	harness.Require(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	opa := exec.Command(bin, "run", "--server", "--addr", addr,
		"--set", "services.gw.url="+adminURL,
		"--set", "bundles.mcpgate.service=gw",
		"--set", "bundles.mcpgate.resource=/bundles/mcpgate.tar.gz",
		"--set", "bundles.mcpgate.polling.min_delay_seconds=1",
		"--set", "bundles.mcpgate.polling.max_delay_seconds=2")
	var out strings.Builder
	opa.Stdout, opa.Stderr = &out, &out
	if err := opa.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = opa.Process.Kill()
		_ = opa.Wait()
		if t.Failed() {
			t.Logf("--- opa output ---\n%s", out.String())
		}
	}()
	input, err := os.ReadFile(filepath.Join(root, "tests", "testdata", "walkthrough-input.json"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "OPA serving the controller's bundle", func() error {
		resp, err := http.Post("http://"+addr+"/v1/data/mcpgate/decision/http_status", "application/json",
			strings.NewReader(`{"input": `+string(input)+`}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct {
			Result *int `json:"result"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return err
		}
		if r.Result == nil || *r.Result != http.StatusUnauthorized {
			return fmt.Errorf("OPA answered %v", r.Result)
		}
		return nil
	})
}
