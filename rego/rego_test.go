package rego_test

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	mcprego "github.com/mcpgate/mcpgate/rego"
)

// TestLibrary runs the library's _test.rego suites in-process through OPA's
// tester, so CI needs no opa binary for them.
func TestLibrary(t *testing.T) {
	modules := map[string]*ast.Module{}
	for path, text := range mcprego.Modules() {
		modules[path] = parse(t, path, text)
	}
	for path, text := range mcprego.Tests() {
		modules[path] = parse(t, path, text)
	}
	ch, err := tester.NewRunner().SetModules(modules).EnableTracing(false).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("running rego tests: %v", err)
	}
	n := 0
	for r := range ch {
		n++
		if r.Fail || r.Error != nil {
			t.Errorf("%s.%s: failed (error: %v)", r.Package, r.Name, r.Error)
		}
	}
	if n == 0 {
		t.Fatal("no rego tests ran")
	}
	t.Logf("%d rego tests", n)
}

func parse(t *testing.T, path, text string) *ast.Module {
	t.Helper()
	m, err := ast.ParseModuleWithOpts(path, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return m
}
