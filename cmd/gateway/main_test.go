package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The examples compile, and the authorization example's policy tests pass
// in-process (gateway test) — the same tests `opa test` runs on its bundle.
func TestExamplesPolicyTests(t *testing.T) {
	var out bytes.Buffer
	dir := filepath.Join("..", "..", "examples", "authorization")
	if err := testPolicies([]string{"-f", dir, "--coverage", filepath.Join(dir, "tests")}, &out); err != nil {
		t.Fatalf("gateway test: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "6 passed, 0 failed") {
		t.Errorf("got %q, want 6 passed, 0 failed", out.String())
	}
}

// A failing policy test makes the command fail and names the test.
func TestPolicyTestFailure(t *testing.T) {
	dir := t.TempDir()
	test := filepath.Join(dir, "x_test.rego")
	if err := os.WriteFile(test, []byte("package x_test\n\ntest_wrong if data.mcpgate.decision.http_status == 999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := testPolicies([]string{"-f", filepath.Join("..", "..", "examples", "quickstart"), dir}, &out)
	if err != errTestsFailed {
		t.Fatalf("got error %v, want errTestsFailed\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "test_wrong") || !strings.Contains(out.String(), "0 passed, 1 failed") {
		t.Errorf("output %q does not name the failing test and the counts", out.String())
	}
}

// `gateway bundle` refuses an invalid configuration with the object and field.
func TestBundleRefusesInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	bad := "apiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayPolicy\nmetadata: {name: p}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]\n  backend:\n    mcp:\n      authentication: {mode: Strictt, jwks: {url: 'http://idp/keys'}}\n"
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := buildBundle([]string{"-f", dir, "-o", filepath.Join(dir, "b.tar.gz")}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("got no error, want one")
	}
	for _, want := range []string{"p.yaml (document 1)", "AgentgatewayPolicy default/p", "spec.backend.mcp.authentication.mode", "HTTPRoute default/r not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
