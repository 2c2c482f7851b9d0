package cel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	celgo "cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
	"github.com/open-policy-agent/opa/v1/rego"
)

// approxCase gives the expected approximations of expr (as printed by the unparser); an empty
// string means "expr itself", for expressions that do not read the arguments.
type approxCase struct {
	expr, over, under string
}

var approxCases = []approxCase{
	// The examples of the problem statement.
	{`mcp.tool.name == "get-sum" && mcp.tool.arguments.a < 100`, `mcp.tool.name == "get-sum"`, `false`},
	{`mcp.tool.name == "x" || mcp.tool.arguments.force == true`, `true`, `mcp.tool.name == "x"`},
	{`!(mcp.tool.arguments.dangerous == true)`, `true`, `false`},
	{`!(mcp.tool.name == "a" && mcp.tool.arguments.x > 1)`, `true`, `!(mcp.tool.name == "a")`},
	{`!(!(mcp.tool.arguments.force == true) || mcp.tool.name != "x")`, `!(mcp.tool.name != "x")`, `false`},
	{`mcp.tool.arguments.missing.deep == 1 || jwt.sub == "alice"`, `true`, `jwt.sub == "alice"`},
	{`"admin" in jwt.groups && !("secret" in mcp.tool.arguments)`, `"admin" in jwt.groups`, `false`},

	// Conditionals whose condition does not read the arguments keep it.
	{`jwt.role == "admin" ? true : mcp.tool.arguments.a < 10`, `(jwt.role == "admin") ? true : true`, `(jwt.role == "admin") ? true : false`},
	{`mcp.tool.name == "a" ? mcp.tool.arguments.x > 1 : jwt.role == "admin"`,
		`(mcp.tool.name == "a") ? true : (jwt.role == "admin")`, `(mcp.tool.name == "a") ? false : (jwt.role == "admin")`},
	{`!(mcp.tool.name == "a" ? mcp.tool.arguments.x > 1 : false)`,
		`!((mcp.tool.name == "a") ? false : false)`, `!((mcp.tool.name == "a") ? true : false)`},
	{`true ? mcp.tool.arguments.x > 1 : jwt.sub == "bob"`, `true`, `false`},

	// Conditionals whose condition reads the arguments.
	{`mcp.tool.arguments.y ? mcp.tool.name == "a" : mcp.tool.name == "b"`, `mcp.tool.name == "a" || mcp.tool.name == "b"`, `false`},
	{`has(mcp.tool.arguments.path) ? mcp.tool.arguments.path.startsWith("/tmp") : true`, `true`, `false`},
	{`!(mcp.tool.arguments.y ? mcp.tool.name == "a" : false)`, `true`, `false`},
	{`!(mcp.tool.arguments.y ? mcp.tool.name == "a" : mcp.tool.name == "b")`,
		`!(mcp.tool.name == "b" && mcp.tool.name == "a")`, `false`},
	// The condition errors when y is missing: then the rule does not match, so a Deny rule
	// must not be taken to hold for all arguments (a' && b' would say mcp.tool.name == "x").
	{`mcp.tool.name == "x" && (mcp.tool.arguments.y ? true : true)`, `mcp.tool.name == "x"`, `false`},
	{`!(mcp.tool.arguments.y ? false : false)`, `true`, `false`},
	// Part of the condition survives.
	{`(mcp.tool.name == "a" && mcp.tool.arguments.y) ? mcp.tool.arguments.x > 1 : true`, `true`, `!(mcp.tool.name == "a")`},
	{`(mcp.tool.name == "a" || mcp.tool.arguments.y) ? jwt.role == "admin" : jwt.role == "dev"`,
		`jwt.role == "admin" || !(mcp.tool.name == "a") && jwt.role == "dev"`, `mcp.tool.name == "a" && jwt.role == "admin"`},
	{`mcp.tool.name.startsWith("get") && (mcp.tool.arguments.y ? mcp.tool.name == "get-a" : jwt.role == "admin")`,
		`mcp.tool.name.startsWith("get") && (mcp.tool.name == "get-a" || jwt.role == "admin")`, `false`},

	// Atoms: macros, functions, membership, the whole mcp.tool object, non-booleans.
	{`mcp.tool.arguments.items.all(i, i < 10)`, `true`, `false`},
	{`size(mcp.tool.arguments) == 0`, `true`, `false`},
	{`jwt.groups.exists(g, g == mcp.tool.arguments.group)`, `true`, `false`},
	{`mcp.tool.name == "b" && jwt.groups.exists(g, g == mcp.tool.arguments.group)`, `mcp.tool.name == "b"`, `false`},
	{`size(mcp.tool) == 3 || mcp.tool.name == "a"`, `true`, `mcp.tool.name == "a"`},
	{`has(mcp.tool.arguments) && mcp.tool.name == "a"`, `mcp.tool.name == "a"`, `false`},
	{`mcp.tool.arguments.y`, `true`, `false`},
	{`!mcp.tool.arguments.y && jwt.sub == "alice"`, `jwt.sub == "alice"`, `false`},
	{`mcp.tool.arguments.a < 100 && mcp.tool.arguments.a > 200`, `true`, `false`}, // atoms are independent
	{`[1].exists(mcp, mcp == 1) && mcp.tool.arguments.a == 1`, `[1].exists(mcp, mcp == 1)`, `false`},
	{`jwt.n == 1.0 && jwt.m == 2u && jwt.s == "a\"b\\c" && mcp.tool.arguments.a == 1`,
		`jwt.n == 1.0 && jwt.m == 2u && jwt.s == "a\"b\\c"`, `false`},
	{`-(1) == jwt.n && -(1.5) == jwt.m && mcp.tool.arguments.a == 1`, `-1 == jwt.n && -1.5 == jwt.m`, `false`},
	{"jwt.`a-jwt`.b == 1 && jwt.`in` == 2 && mcp.tool.arguments.a == 1", "jwt.`a-jwt`.b == 1 && jwt.`in` == 2", `false`},
	{"jwt.sub == \"alice\"\n  && mcp.tool.arguments.a == 1\n  || mcp.tool.name == \"b\"",
		`jwt.sub == "alice" || mcp.tool.name == "b"`, `mcp.tool.name == "b"`},

	// Expressions that do not read the arguments are compiled as they are.
	{`jwt.sub == "alice" && mcp.tool.name == "echo"`, ``, ``},
	{`!(jwt.group == "admin") || (jwt.role == "x" ? true : mcp.method == "tools/call")`, ``, ``},
	{`true`, ``, ``},
}

// TestApproxText checks the rewritten expressions, and that CompileApprox compiles them.
func TestApproxText(t *testing.T) {
	for _, tc := range approxCases {
		for _, over := range []bool{true, false} {
			want := tc.under
			if over {
				want = tc.over
			}
			name := tc.expr + map[bool]string{true: " (over)", false: " (under)"}[over]
			t.Run(name, func(t *testing.T) {
				orig, err := Compile(tc.expr)
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				got, err := CompileApprox(tc.expr, over)
				if err != nil {
					t.Fatalf("CompileApprox: %v", err)
				}
				if got.UsesArguments {
					t.Errorf("CompileApprox(%q, %v) reads the arguments", tc.expr, over)
				}
				if want == "" {
					if orig.UsesArguments {
						t.Fatalf("the case says %q does not read the arguments", tc.expr)
					}
					if !got.Body.Equal(orig.Body) {
						t.Errorf("CompileApprox differs from Compile:\n%v\n%v", got.Body, orig.Body)
					}
					return
				}
				if !orig.UsesArguments {
					t.Fatalf("the case says %q reads the arguments", tc.expr)
				}
				text, err := approximate(tc.expr, over, true)
				if err != nil {
					t.Fatalf("approximate: %v", err)
				}
				if text != want {
					t.Errorf("approximate(%q, %v):\n got %s\nwant %s", tc.expr, over, text, want)
				}
				direct, err := Compile(text)
				if err != nil {
					t.Fatalf("Compile(%q): %v", text, err)
				}
				if !got.Body.Equal(direct.Body) {
					t.Errorf("CompileApprox differs from Compile(%q):\n%v\n%v", text, got.Body, direct.Body)
				}
			})
		}
	}
}

// TestApproxCoarse checks the rewriting used when the exact rewriting of conditionals exceeds
// Compile's limits.
func TestApproxCoarse(t *testing.T) {
	for _, tc := range []approxCase{
		{`mcp.tool.arguments.y ? mcp.tool.name == "a" : mcp.tool.name == "b"`, `mcp.tool.name == "a" || mcp.tool.name == "b"`, `false`},
		{`!(mcp.tool.arguments.y ? mcp.tool.name == "a" : mcp.tool.name == "b")`, `!(mcp.tool.name == "a" && mcp.tool.name == "b")`, `false`},
		{`(mcp.tool.name == "a" && mcp.tool.arguments.y) ? mcp.tool.arguments.x > 1 : true`, `true`, `false`},
		{`mcp.tool.name == "x" && (mcp.tool.arguments.y ? true : true)`, `mcp.tool.name == "x"`, `false`},
		{`mcp.tool.name == "a" ? mcp.tool.arguments.x > 1 : jwt.role == "admin"`,
			`(mcp.tool.name == "a") ? true : (jwt.role == "admin")`, `(mcp.tool.name == "a") ? false : (jwt.role == "admin")`},
	} {
		for _, over := range []bool{true, false} {
			want := tc.under
			if over {
				want = tc.over
			}
			got, err := approximate(tc.expr, over, false)
			if err != nil {
				t.Fatalf("approximate(%q, %v): %v", tc.expr, over, err)
			}
			if got != want {
				t.Errorf("approximate(%q, %v) without expansion:\n got %s\nwant %s", tc.expr, over, got, want)
			}
		}
	}
}

// TestApproxFallback: when the exact rewriting of conditionals grows too large, CompileApprox
// falls back to the coarse one instead of failing.
func TestApproxFallback(t *testing.T) {
	// The condition's disjunction survives twice (at both polarities): the rewritten text is
	// longer than Compile accepts.
	terms := make([]string, 600)
	for i := range terms {
		terms[i] = fmt.Sprintf("jwt.n == %d", i)
	}
	expr := "(" + strings.Join(terms, " || ") + ` || jwt.m == 1 && mcp.tool.arguments.y) ? mcp.tool.name == "a" : jwt.sub == "s"`
	if _, err := Compile(expr); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if _, err := approximate(expr, true, true); err == nil || !strings.Contains(err.Error(), "exceeds limit") {
		t.Fatalf("the exact rewriting was expected to exceed the parser's limit, got %v", err)
	}
	for _, over := range []bool{true, false} {
		rule, err := CompileApprox(expr, over)
		if err != nil {
			t.Fatalf("CompileApprox(over=%v): %v", over, err)
		}
		if rule.UsesArguments {
			t.Errorf("CompileApprox(over=%v) reads the arguments", over)
		}
		coarse, err := approximate(expr, over, false)
		if err != nil {
			t.Fatal(err)
		}
		want, err := Compile(coarse)
		if err != nil {
			t.Fatal(err)
		}
		if !rule.Body.Equal(want.Body) {
			t.Errorf("CompileApprox(over=%v) is not the coarse approximation %s", over, coarse)
		}
	}

	// Conditionals nested in conditions: the exact rewriting doubles the conditions at each
	// level. Compile would take seconds on the result (from 566 characters, 8650 at 5 levels);
	// the coarse rewriting is used instead.
	expr = `mcp.tool.name == "a"`
	for range 5 {
		expr = `((jwt.role == "r" || mcp.tool.arguments.y ? (` + expr + `) : jwt.sub == "s") ? jwt.n == 1 : jwt.n == 2)`
	}
	if _, err := approximate(expr, true, true); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("the exact rewriting was expected to be too long, got %v", err)
	}
	rule, err := CompileApprox(expr, true)
	if err != nil {
		t.Fatalf("CompileApprox: %v", err)
	}
	coarse, err := approximate(expr, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if want, err := Compile(coarse); err != nil || !rule.Body.Equal(want.Body) {
		t.Errorf("CompileApprox is not the coarse approximation %s (%v)", coarse, err)
	}

	// Deeper still, the exact rewriting gives up (it would take
	// exponential time), the coarse one does not.
	expr = `mcp.tool.name == "a"`
	for range 30 {
		expr = `((jwt.role == "r" || mcp.tool.arguments.y ? (` + expr + `) : jwt.sub == "s") ? jwt.n == 1 : jwt.n == 2)`
	}
	if _, err := approximate(expr, true, true); err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Errorf("the exact rewriting was expected to give up, got %v", err)
	}
	for _, over := range []bool{true, false} {
		text, err := approximate(expr, over, false)
		if err != nil {
			t.Fatalf("approximate(over=%v) without expansion: %v", over, err)
		}
		if len(text) > len(expr) {
			t.Errorf("the coarse approximation is longer than the expression: %s", text)
		}
	}
}

func TestApproxErrors(t *testing.T) {
	for _, expr := range []string{``, `mcp.tool.arguments.a <`, `mcp.tool.argument.a == 1`, `mcp.tool.arguments.a == b"x"`} {
		for _, over := range []bool{true, false} {
			_, want := Compile(expr)
			_, err := CompileApprox(expr, over)
			var e *Error
			if !errors.As(err, &e) || want == nil || err.Error() != want.Error() {
				t.Errorf("CompileApprox(%q, %v): got error %v, want Compile's %v", expr, over, err, want)
			}
		}
	}
}

// TestApproxUnparseRoundTrip: the unparser prints the atoms CompileApprox keeps faithfully, i.e.
// an expression printed back from its parse tree compiles to the same body.
func TestApproxUnparseRoundTrip(t *testing.T) {
	exprs := []string{}
	for _, tc := range approxCases {
		if !strings.Contains(tc.expr, "-(1") { // -(1) prints as the literal -1: same value, other Rego
			exprs = append(exprs, tc.expr)
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.cel"))
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exprs = append(exprs, strings.TrimSuffix(string(src), "\n"))
	}
	exprs = append(exprs,
		`jwt.groups.map(g, g == "dev", g) == ["dev"] && {"a": 1, 2: [1.5, -3, 4u]}["a"] == 1`,
		`!(!jwt.flag) && -(-jwt.n) == 7 && (jwt.n - (1 - 2)) * 3 == 24 && (1 < 2) == true`,
		`jwt["x-y"].z == "\u00e9\"" && jwt.namespace == null && size("héllo") == 5`,
		`jwt.a ? (jwt.b ? 1 : 2) : (jwt.c ? 3 : 4) == 3 || (jwt.a ? jwt.b : jwt.c) ? true : false`,
		"jwt.`a-jwt`.b == 1 && jwt.`in`.exists(x, x == jwt.` a`) && jwt.`a.b` == jwt.as",
		`1e100 == jwt.n && -0.0 == jwt.n && 18446744073709551615u == jwt.n && -9223372036854775808 == jwt.n`,
		`jwt.r == r'\d' && jwt.s == '''x"y''' && jwt.t == "\x41\u00e9\U0001F600"`,
		`-(-1) == jwt.n || -(-jwt.n) == 1 || !(!jwt.x) || - - jwt.n == 1 || !!jwt.x`,
		`(1 < 2) < (3 < 4) && (jwt.a || jwt.b) == (jwt.c && jwt.d) && (jwt.a ? jwt.b : jwt.c).d`,
	)
	for _, expr := range exprs {
		want, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		tree, errs := celParser.Parse(common.NewTextSource(expr))
		if errs != nil && len(errs.GetErrors()) > 0 {
			t.Fatalf("parse %q: %v", expr, errs.ToDisplayString())
		}
		text, err := unparse(tree.Expr(), tree.SourceInfo())
		if err != nil {
			t.Fatalf("unparse %q: %v", expr, err)
		}
		got, err := Compile(text)
		if err != nil {
			t.Fatalf("Compile(%q), printed from %q: %v", text, expr, err)
		}
		if !got.Body.Equal(want.Body) {
			t.Errorf("%q printed as %q compiles differently:\n%v\n%v", expr, text, want.Body, got.Body)
		}
	}
}

// TestApproxSameExpr: the guard against unfaithful printing compares trees up to ids and the
// grouping of && and || chains.
func TestApproxSameExpr(t *testing.T) {
	parse := func(expr string) celast.Expr {
		tree, errs := celParser.Parse(common.NewTextSource(expr))
		if errs != nil && len(errs.GetErrors()) > 0 {
			t.Fatalf("parse %q: %v", expr, errs.ToDisplayString())
		}
		return tree.Expr()
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{`a && b && c && d && e`, `(a && (b && c)) && (d && e)`, true},
		{`a || b && c`, `(a || b) && c`, false},
		{`a.b == 1`, `a.b == 1.0`, false},
		{`a.b == 1u`, `a.b == 1`, false},
		{"a.`b-c`", `a.b - c`, false},
		{`a.exists(x, x == "s")`, `a.exists(x, x == 's')`, true},
		{`f(a, b)`, `a.f(b)`, false},
		{`[1, 2][0]`, `[1, 2][0]`, true},
		{`{"a": 1}`, `{"a": 2}`, false},
		{`-(1) == a`, `-1 == a`, true},
		{`-(1.5) == a`, `-1.5 == a`, true},
		{`-(1) == a`, `-1.0 == a`, false},
		{`-(-1) == a`, `1 == a`, true},
		{`-(1u) == a`, `-1u == a`, true},
	} {
		if got := sameExpr(parse(tc.a), parse(tc.b)); got != tc.want {
			t.Errorf("sameExpr(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	// Without escaping, the unparser prints the field `a-jwt` as a subtraction.
	tree := parse("jwt.`a-jwt`.b == 1")
	text, err := parser.Unparse(tree, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sameExpr(tree, parse(text)) {
		t.Errorf("%s was expected to differ from jwt.`a-jwt`.b == 1", text)
	}
}

// Inputs for the semantic checks: the parts other than the arguments, and argument values.
var approxBases = []map[string]any{
	approxInput("get-sum", map[string]any{"sub": "alice", "role": "admin", "groups": []any{"admin", "dev"}, "n": 1, "m": 2, "s": `a"b\c`}),
	approxInput("x", map[string]any{"sub": "bob", "role": "dev", "groups": []any{"dev"}}),
	approxInput("a", map[string]any{"sub": "alice", "role": "dev", "groups": []any{"g1"}}),
	approxInput("b", map[string]any{"sub": "carol", "role": "admin", "groups": []any{"g1", "admin"}}),
	approxInput("get-a", map[string]any{"role": "r"}),
	approxInput("echo", nil), // no token
}

func approxInput(tool string, claims map[string]any) map[string]any {
	jwt := map[string]any{"present": claims != nil, "valid": claims != nil}
	if claims != nil {
		jwt["claims"] = claims
	}
	return map[string]any{
		"mcp":     map[string]any{"method": "tools/call", "tool": map[string]any{"name": tool, "target": "t"}},
		"jwt":     jwt,
		"request": map[string]any{"method": "POST", "path": "/mcp", "headers": map[string]any{}},
	}
}

// argsAbsent stands for a call without arguments.
var argsAbsent = &struct{}{}

var approxArguments = []any{
	argsAbsent, nil, "str", []any{1},
	map[string]any{},
	map[string]any{"a": 5}, map[string]any{"a": 500}, map[string]any{"a": "str"},
	map[string]any{"force": true}, map[string]any{"force": false},
	map[string]any{"dangerous": true}, map[string]any{"dangerous": false},
	map[string]any{"x": 0}, map[string]any{"x": 5},
	map[string]any{"y": true}, map[string]any{"y": false}, map[string]any{"y": "str"},
	map[string]any{"y": true, "x": 5}, map[string]any{"y": false, "x": 0},
	map[string]any{"path": "/tmp/a"}, map[string]any{"path": "/etc/passwd"}, map[string]any{"path": 3},
	map[string]any{"items": []any{}}, map[string]any{"items": []any{1, 2}}, map[string]any{"items": []any{1, 20}},
	map[string]any{"items": "no"},
	map[string]any{"group": "admin"}, map[string]any{"group": "nobody"}, map[string]any{"group": "g1"},
	map[string]any{"secret": 1},
	map[string]any{"missing": map[string]any{"deep": 1}}, map[string]any{"missing": map[string]any{"deep": 2}},
	map[string]any{
		"a": 5, "force": true, "dangerous": false, "x": 5, "y": true, "path": "/tmp/x",
		"items": []any{1}, "group": "admin",
	},
}

// withArguments returns a copy of base whose tool has the given arguments.
func withArguments(base map[string]any, args any) map[string]any {
	in := maps.Clone(base)
	m := maps.Clone(in["mcp"].(map[string]any))
	tool := maps.Clone(m["tool"].(map[string]any))
	if args != argsAbsent {
		tool["arguments"] = args
	}
	m["tool"] = tool
	in["mcp"] = m
	return in
}

// approxEvaluator evaluates a set of compiled rules with OPA.
type approxEvaluator struct {
	pq rego.PreparedEvalQuery
}

func newApproxEvaluator(tb testing.TB, rules map[string]*Rule) approxEvaluator {
	tb.Helper()
	mod, err := Module("approx", rules)
	if err != nil {
		tb.Fatalf("Module: %v", err)
	}
	pq, err := rego.New(
		rego.Query("data."+GeneratedPackage+".approx"),
		rego.Module(PreludePath, Prelude),
		rego.Module("approx.rego", mod),
	).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatalf("PrepareForEval: %v\n%s", err, mod)
	}
	return approxEvaluator{pq}
}

// eval returns whether rule name holds for input.
func (ev approxEvaluator) eval(tb testing.TB, name string, input map[string]any) bool {
	tb.Helper()
	rs, err := ev.pq.Eval(context.Background(), rego.EvalInput(input))
	if err != nil {
		tb.Fatalf("Eval: %v", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false
	}
	doc, _ := rs[0].Expressions[0].Value.(map[string]any)
	return doc[name] == true
}

var approxCelEnv = func() *celgo.Env {
	env, err := celgo.NewEnv(
		celgo.Variable("mcp", celgo.DynType),
		celgo.Variable("jwt", celgo.DynType),
		celgo.Variable("request", celgo.DynType),
		celgo.Variable("source", celgo.DynType),
	)
	if err != nil {
		panic(err)
	}
	return env
}()

// celProgram returns a function evaluating expr with cel-go (errors count as no match), or nil
// when cel-go does not accept the expression.
func celProgram(expr string) func(input map[string]any) bool {
	tree, iss := approxCelEnv.Parse(expr)
	if iss.Err() != nil {
		return nil
	}
	prg, err := approxCelEnv.Program(tree)
	if err != nil {
		return nil
	}
	return func(input map[string]any) bool {
		vars := map[string]any{}
		for _, k := range []string{"mcp", "request", "source"} {
			if v, ok := input[k]; ok {
				vars[k] = v
			}
		}
		if c, ok := input["jwt"].(map[string]any)["claims"]; ok {
			vars["jwt"] = c
		}
		out, _, err := prg.Eval(vars)
		return err == nil && out == types.True
	}
}

// checkApprox verifies the approximation property of approx (CEL text) for expr on the sample
// inputs, with OPA evaluating the compiled rules and, when it accepts both expressions, cel-go
// evaluating the CEL. It reports how often the original held for some and for all arguments.
func checkApprox(t *testing.T, expr, approx string, over bool) {
	t.Helper()
	orig, err := Compile(expr)
	if err != nil {
		t.Fatalf("Compile(%q): %v", expr, err)
	}
	rule, err := Compile(approx)
	if err != nil {
		t.Fatalf("Compile(%q): %v", approx, err)
	}
	ev := newApproxEvaluator(t, map[string]*Rule{"orig": orig, "approx": rule})
	celOrig, celApprox := celProgram(expr), celProgram(approx)
	for _, base := range approxBases {
		list := withArguments(base, argsAbsent)
		got := ev.eval(t, "approx", list)
		if celApprox != nil && celApprox(list) != got {
			t.Errorf("%q on %v: OPA says %v, cel-go %v", approx, list, got, !got)
		}
		for _, args := range approxArguments {
			in := withArguments(base, args)
			holds := ev.eval(t, "orig", in)
			if celOrig != nil && celOrig(in) != holds {
				t.Errorf("%q on %v: OPA says %v, cel-go %v", expr, in, holds, !holds)
			}
			if over && holds && !got {
				t.Errorf("over-approximation %q of %q is false on %v, but the original holds with arguments %v",
					approx, expr, list, args)
			}
			if !over && got && !holds {
				t.Errorf("under-approximation %q of %q is true on %v, but the original does not hold with arguments %v",
					approx, expr, list, args)
			}
		}
	}
}

// TestApproxSemantics checks the approximation property for each case, in both directions and
// with both rewritings of conditionals.
func TestApproxSemantics(t *testing.T) {
	for _, tc := range approxCases {
		for _, over := range []bool{true, false} {
			for _, expand := range []bool{true, false} {
				name := tc.expr + map[bool]string{true: " (over)", false: " (under)"}[over] +
					map[bool]string{true: "", false: " coarse"}[expand]
				t.Run(name, func(t *testing.T) {
					text, err := approximate(tc.expr, over, expand)
					if err != nil {
						t.Fatalf("approximate: %v", err)
					}
					checkApprox(t, tc.expr, text, over)
				})
			}
		}
	}
}

// TestApproxUnsoundCoarseConditional documents why the under-approximation of a conditional
// whose condition reads the arguments is not a' && b': the sample inputs catch it.
func TestApproxUnsoundCoarseConditional(t *testing.T) {
	expr := `mcp.tool.name == "x" && (mcp.tool.arguments.y ? true : true)`
	orig, err := Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	naive, err := Compile(`mcp.tool.name == "x" && (true && true)`)
	if err != nil {
		t.Fatal(err)
	}
	ev := newApproxEvaluator(t, map[string]*Rule{"orig": orig, "naive": naive})
	base := approxBases[1] // tool x
	if !ev.eval(t, "naive", withArguments(base, argsAbsent)) {
		t.Fatal("the naive under-approximation was expected to hold")
	}
	if ev.eval(t, "orig", withArguments(base, map[string]any{})) {
		t.Fatal("the original was expected not to hold without y")
	}
}

// FuzzCompileApprox: whenever Compile accepts an expression, CompileApprox does too (in both
// directions), its rule does not read the arguments, renders into a module, and keeps the
// approximation property on a few inputs; an expression that does not read the arguments
// compiles as with Compile.
func FuzzCompileApprox(f *testing.F) {
	for _, tc := range approxCases {
		f.Add(tc.expr)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.cel"))
	for _, name := range files {
		if src, err := os.ReadFile(name); err == nil {
			f.Add(strings.TrimSuffix(string(src), "\n"))
		}
	}
	f.Fuzz(func(t *testing.T, expr string) {
		orig, err := Compile(expr)
		if err != nil {
			return
		}
		for _, over := range []bool{true, false} {
			rule, err := CompileApprox(expr, over)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("CompileApprox(%q, %v): error %#v is not an *Error", expr, over, err)
				}
				if len(expr) < maxExpressionChars/2 {
					t.Fatalf("CompileApprox(%q, %v): %v", expr, over, err)
				}
				continue
			}
			if rule.UsesArguments {
				t.Fatalf("CompileApprox(%q, %v) reads the arguments", expr, over)
			}
			if !orig.UsesArguments {
				if !rule.Body.Equal(orig.Body) {
					t.Fatalf("CompileApprox(%q, %v) differs from Compile", expr, over)
				}
				continue
			}
			if _, err := Module("fuzz", map[string]*Rule{"r0": rule}); err != nil {
				t.Fatalf("CompileApprox(%q, %v): Module: %v", expr, over, err)
			}
			text, err := approximate(expr, over, true)
			if err != nil {
				if text, err = approximate(expr, over, false); err != nil {
					t.Fatalf("approximate(%q, %v): %v", expr, over, err)
				}
			}
			checkApproxQuick(t, expr, orig, rule, text, over)
		}
	})
}

// checkApproxQuick is checkApprox on fewer inputs, with OPA only.
func checkApproxQuick(t *testing.T, expr string, orig, rule *Rule, text string, over bool) {
	t.Helper()
	ev := newApproxEvaluator(t, map[string]*Rule{"orig": orig, "approx": rule})
	for _, base := range approxBases[:3] {
		got := ev.eval(t, "approx", withArguments(base, argsAbsent))
		for _, args := range approxArguments {
			holds := ev.eval(t, "orig", withArguments(base, args))
			if over && holds && !got || !over && got && !holds {
				t.Fatalf("approximation %q (over=%v) of %q fails with arguments %v on %v", text, over, expr, args, base)
			}
		}
	}
}
