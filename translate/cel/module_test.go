package cel

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

func mustCompile(t *testing.T, expr string) *Rule {
	t.Helper()
	r, err := Compile(expr)
	if err != nil {
		t.Fatalf("Compile(%q): %v", expr, err)
	}
	return r
}

func TestModule(t *testing.T) {
	rules := map[string]*Rule{
		"r1":    mustCompile(t, `jwt.sub == "alice"`),
		"r0":    mustCompile(t, `mcp.tool.name == "echo" || jwt.role == "admin"`),
		"deny2": mustCompile(t, `!jwt.groups.exists(g, g == "dev")`),
	}
	mod, err := Module("default.my-policy", rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"package mcpgate.generated[\"default\"][\"my-policy\"]\n",
		"import data.mcpgate.cel\n",
	} {
		if !strings.Contains(mod, want) {
			t.Errorf("module lacks %q:\n%s", want, mod)
		}
	}
	// Rules appear in name order.
	if i, j, k := strings.Index(mod, "deny2 if"), strings.Index(mod, "r0 if"), strings.Index(mod, "r1 if"); i >= j || j >= k {
		t.Errorf("rules are not in name order:\n%s", mod)
	}
	// Deterministic, and the input rules are not modified.
	for range 3 {
		again, err := Module("default.my-policy", rules)
		if err != nil || again != mod {
			t.Fatalf("Module is not deterministic: %v\n%s\n%s", err, mod, again)
		}
	}

	// The module evaluates as a whole.
	pq, err := rego.New(
		rego.Query(`data.mcpgate.generated["default"]["my-policy"]`),
		rego.Module(PreludePath, Prelude),
		rego.Module("generated.rego", mod),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	in, _ := parseInput(t, inputs["call"])
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(in))
	if err != nil {
		t.Fatal(err)
	}
	got := rs[0].Expressions[0].Value.(map[string]any)
	if got["r0"] != true || got["r1"] != true || got["deny2"] != nil {
		t.Errorf("got %v, want r0 and r1 true, deny2 undefined", got)
	}
}

func TestPreludeCompiles(t *testing.T) {
	if _, err := ast.CompileModules(map[string]string{PreludePath: Prelude}); err != nil {
		t.Fatal(err)
	}
}

func TestCompileConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for _, tc := range semanticCases[i*5 : i*5+5] {
				if _, err := Compile(tc.expr); err != nil {
					t.Errorf("Compile(%q): %v", tc.expr, err)
				}
			}
		})
	}
	wg.Wait()
}
