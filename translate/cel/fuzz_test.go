package cel

import (
	"errors"
	"testing"

	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"github.com/open-policy-agent/opa/v1/ast"
)

func addSeeds(f *testing.F) {
	for _, tc := range semanticCases {
		f.Add(tc.expr)
	}
	for _, tc := range errorCases {
		f.Add(tc.expr)
	}
}

// FuzzCompile: Compile never panics, fails only with an *Error that has a position, and every
// rule it returns renders (deterministically) into a module that OPA compiles.
func FuzzCompile(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, expr string) {
		rule, err := Compile(expr)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Column < 1 || e.Msg == "" {
				t.Fatalf("Compile(%q): error %#v is not a positioned *Error", expr, err)
			}
			return
		}
		mod, err := Module("fuzz", map[string]*Rule{"r0": rule})
		if err != nil {
			t.Fatalf("Compile(%q) succeeded but Module failed: %v", expr, err)
		}
		if _, err := ast.CompileModules(map[string]string{PreludePath: Prelude, "fuzz.rego": mod}); err != nil {
			t.Fatalf("Compile(%q): module does not compile: %v\n%s", expr, err, mod)
		}
		again, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%q) is not deterministic: %v", expr, err)
		}
		if mod2, _ := Module("fuzz", map[string]*Rule{"r0": again}); mod2 != mod {
			t.Fatalf("Compile(%q) is not deterministic:\n%s\n%s", expr, mod, mod2)
		}
	})
}

// FuzzEquivalence compares the compiled rule with cel-go's evaluation on the test inputs, for
// expressions free of the documented differences (arithmetic and conversions, where Rego's
// numbers do not tell int from double).
func FuzzEquivalence(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, expr string) {
		if _, err := Compile(expr); err != nil || deviates(expr) {
			return
		}
		_, pq := prepare(t, expr)
		for name, text := range inputs {
			in, vars := parseInput(t, text)
			want, err := celMatches(expr, vars)
			if err != nil {
				return // cel-go's macros reject what our parser accepted, e.g. has() forms
			}
			if got := matches(t, pq, in); got != want {
				t.Fatalf("%s on %s: got %v, cel-go says %v", expr, name, got, want)
			}
		}
	})
}

// deviates reports whether expr uses arithmetic or conversions.
func deviates(expr string) bool {
	tree, errs := celParser.Parse(common.NewTextSource(expr))
	if errs != nil && len(errs.GetErrors()) > 0 {
		return true
	}
	found := false
	celast.PreOrderVisit(tree.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		switch e.AsCall().FunctionName() {
		case operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo,
			operators.Negate, "int", "uint", "double", "string":
			found = true
		}
	}))
	return found
}
