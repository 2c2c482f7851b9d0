package translate_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

const isoBase = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: mcpgate
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: be, namespace: ns}
spec:
  mcp:
    targets: [{name: t, static: {host: 127.0.0.1, port: 3001}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: be, group: agentgateway.dev, kind: AgentgatewayBackend}]
`

const isoPolicy = `
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: %NAME%, namespace: ns}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: route}]
  backend:
    mcp:
      authorization:
        policy:
          matchExpressions: ['%EXPR%']
`

func isoResources(t *testing.T, docs ...string) *translate.Resources {
	t.Helper()
	res := &translate.Resources{Sources: map[string]string{}}
	if errs := load.Decode("test.yaml", []byte(strings.Join(docs, "")), res); len(errs) > 0 {
		t.Fatal(errs)
	}
	return res
}

func policy(name, expr string) string {
	return strings.NewReplacer("%NAME%", name, "%EXPR%", expr).Replace(isoPolicy)
}

// An edit that breaks a policy keeps its last good version in force; a new
// broken policy is left out; both report their problems; the valid objects
// are unaffected.
func TestTranslateIsolatedKeepsLastGood(t *testing.T) {
	v1 := isoResources(t, isoBase, policy("allow-echo", `mcp.tool.name == "echo"`))
	out1, iso1, err := translate.TranslateIsolated(v1, nil)
	if err != nil || len(iso1.Errors) != 0 {
		t.Fatalf("v1: %v %v", err, iso1.Errors)
	}
	if _, ok := out1.Config.Authz["ns/allow-echo"]; !ok {
		t.Fatalf("v1: policy not translated: %v", out1.Config.Authz)
	}

	v2 := isoResources(t, isoBase,
		policy("allow-echo", `mcp.tool.name ==`),  // broken edit
		policy("brand-new", `nope(`),              // broken, never good
		policy("other", `mcp.tool.name == "add"`), // valid, unaffected
	)
	out2, iso2, err := translate.TranslateIsolated(v2, v1)
	if err != nil {
		t.Fatal(err)
	}
	if got := iso2.Served["AgentgatewayPolicy ns/allow-echo"]; got != translate.ServedLastGood {
		t.Errorf("allow-echo served %v, want last good", got)
	}
	if got := iso2.Served["AgentgatewayPolicy ns/brand-new"]; got != translate.ServedNone {
		t.Errorf("brand-new served %v, want none", got)
	}
	if len(iso2.Errors["AgentgatewayPolicy ns/allow-echo"]) == 0 || len(iso2.Errors["AgentgatewayPolicy ns/brand-new"]) == 0 {
		t.Errorf("errors not reported on the broken policies: %v", iso2.Errors)
	}
	if _, bad := iso2.Errors["AgentgatewayPolicy ns/other"]; bad {
		t.Errorf("valid policy reported: %v", iso2.Errors)
	}
	for _, k := range []string{"ns/allow-echo", "ns/other"} {
		if _, ok := out2.Config.Authz[k]; !ok {
			t.Errorf("%s not served: %v", k, out2.Config.Authz)
		}
	}
	if _, ok := out2.Config.Authz["ns/brand-new"]; ok {
		t.Error("broken new policy served")
	}
	// The served version of allow-echo is v1's: same generated module.
	p1 := translate.GeneratedPath(out1.Config.Authz["ns/allow-echo"].Package)
	p2 := translate.GeneratedPath(out2.Config.Authz["ns/allow-echo"].Package)
	if out1.Modules[p1] != out2.Modules[p2] {
		t.Errorf("allow-echo not served at its last good version:\n%s\n---\n%s", out1.Modules[p1], out2.Modules[p2])
	}
	if len(out2.Config.Routes) != 1 {
		t.Errorf("route lost: %v", out2.Config.Routes)
	}
}

// A route whose backend breaks is not blamed while the backend is served at
// its last good version; a route that references a missing backend reports
// the reference.
func TestTranslateIsolatedReferences(t *testing.T) {
	v1 := isoResources(t, isoBase)
	if _, iso, err := translate.TranslateIsolated(v1, nil); err != nil || len(iso.Errors) != 0 {
		t.Fatalf("v1: %v %v", err, iso.Errors)
	}
	broken := strings.Replace(isoBase, "port: 3001", "port: 0", 1)
	out, iso, err := translate.TranslateIsolated(isoResources(t, broken), v1)
	if err != nil {
		t.Fatal(err)
	}
	if iso.Served["AgentgatewayBackend ns/be"] != translate.ServedLastGood || len(iso.Errors) != 1 {
		t.Fatalf("want only the backend reported and served at last good: %v %v", iso.Served, iso.Errors)
	}
	if len(out.Config.Routes) != 1 || out.Config.Backends["ns/be"] == nil {
		t.Fatalf("route or backend lost: %v %v", out.Config.Routes, out.Config.Backends)
	}

	// Without a last good version the backend is left out and the route
	// reports the dangling reference.
	out, iso, err = translate.TranslateIsolated(isoResources(t, broken), nil)
	if err != nil {
		t.Fatal(err)
	}
	re := iso.Errors["HTTPRoute ns/route"]
	if len(re) != 1 || re[0].Ref != "AgentgatewayBackend ns/be" {
		t.Fatalf("route errors: %v", re)
	}
	if len(out.Config.Routes) != 0 || len(out.Config.Listeners) != 1 {
		t.Fatalf("want the gateway served without the route: %+v", out.Config)
	}
}

// Translating the same objects twice gives the same bundle: the memo of
// authorization policies must not change what is generated (replicas with
// warm and cold memos converge on one revision).
func TestTranslateMemoIsTransparent(t *testing.T) {
	src, err := os.ReadFile("testdata/authorization.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	build := func() string {
		res := &translate.Resources{Sources: map[string]string{}}
		load.Decode("authorization.in.yaml", src, res)
		out, _ := translate.Translate(res) // the file has invalid objects on purpose
		b, err := translate.Bundle(out, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b.Revision
	}
	translate.ForgetMemo()
	cold := build()
	if warm := build(); warm != cold {
		t.Fatalf("revision %s from a cold memo, %s from a warm one", cold, warm)
	}
}
