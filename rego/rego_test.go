package rego_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"

	mcprego "github.com/mcpgate/mcpgate/rego"
)

// minCoverage is the line coverage the library's own suites must reach.
const minCoverage = 90.0

// TestLibrary runs the library's _test.rego suites in-process through OPA's
// tester, so CI needs no opa binary for them, and checks their coverage of
// the library.
func TestLibrary(t *testing.T) {
	modules := map[string]*ast.Module{}
	library := map[string]*ast.Module{}
	for path, text := range mcprego.Modules() {
		modules[path] = parse(t, path, text)
		library[path] = modules[path]
	}
	for path, text := range mcprego.Tests() {
		modules[path] = parse(t, path, text)
	}
	cov := cover.New()
	ch, err := tester.NewRunner().SetModules(modules).SetCoverageQueryTracer(cov).RunTests(context.Background(), nil)
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
	report := cov.Report(library)
	var missed []string
	for file, fr := range report.Files {
		for _, r := range fr.NotCovered {
			missed = append(missed, file+":"+rangeString(r))
		}
	}
	t.Logf("%d rego tests; library coverage %.1f%% (not covered: %v)", n, report.Coverage, missed)
	if report.Coverage < minCoverage {
		t.Errorf("library coverage %.1f%%, want at least %.0f%%; not covered: %v", report.Coverage, minCoverage, missed)
	}
}

func rangeString(r cover.Range) string {
	if r.Start.Row == r.End.Row {
		return strconv.Itoa(r.Start.Row)
	}
	return strconv.Itoa(r.Start.Row) + "-" + strconv.Itoa(r.End.Row)
}

func parse(t *testing.T, path, text string) *ast.Module {
	t.Helper()
	m, err := ast.ParseModuleWithOpts(path, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return m
}
