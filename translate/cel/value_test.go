package cel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Inputs shaped like the gateway's input document.
var valueInputs = map[string]string{
	"alice": `{
		"mcp": {"method": "tools/call", "tool": {"name": "echo", "target": "everything",
			"arguments": {"a": 5, "msg": "hi"}}},
		"jwt": {"present": true, "valid": true, "claims": {
			"sub": "alice", "groups": ["mcp-users", "dev"], "n": 7, "flag": true, "nothing": null,
			"nested": {"key": "value"}}},
		"request": {"method": "POST", "path": "/mcp", "headers": {"x-team": "a"}},
		"source": {"address": "127.0.0.1", "port": 5555}
	}`,
	"bob": `{
		"mcp": {"method": "tools/call", "tool": {"name": "add", "target": "math", "arguments": {}}},
		"jwt": {"present": true, "valid": true, "claims": {"sub": "bob", "org": "acme", "groups": [], "n": "7"}},
		"request": {"method": "POST", "path": "/mcp", "headers": {}}
	}`,
	// No token: input.jwt.claims is absent, so every jwt.* is an error.
	"anonymous": `{
		"mcp": {"method": "tools/list"},
		"jwt": {"present": false, "valid": false},
		"request": {"method": "POST", "path": "/mcp", "headers": {"x-team": "b"}}
	}`,
}

// undefined is the expected result where CEL reports an error.
var undefined = &struct{}{}

type valueCase struct {
	expr  string
	input string
	want  any // JSON-like (numbers as float64), or undefined
}

var valueCases = []valueCase{
	{`jwt.sub`, "alice", "alice"},
	{`jwt.sub`, "anonymous", undefined},
	{`mcp.tool.name`, "alice", "echo"},
	{`mcp.tool.name`, "anonymous", undefined},
	{`jwt.sub + "/" + mcp.tool.name`, "alice", "alice/echo"},
	{`jwt.sub + "/" + mcp.tool.name`, "bob", "bob/add"},
	{`jwt.sub + "/" + mcp.tool.name`, "anonymous", undefined},
	{`jwt.n + "/" + mcp.tool.name`, "alice", undefined}, // int + string
	{`jwt.nothing + "/"`, "alice", undefined},           // null + string
	{`request.headers["x-team"]`, "alice", "a"},
	{`request.headers["x-team"]`, "bob", undefined},
	{`request.headers["x-team"]`, "anonymous", "b"},
	{`has(jwt.org) ? jwt.org : "none"`, "alice", "none"},
	{`has(jwt.org) ? jwt.org : "none"`, "bob", "acme"},
	{`has(jwt.org) ? jwt.org : "none"`, "anonymous", undefined}, // jwt itself errors
	{`string(jwt.groups[0])`, "alice", "mcp-users"},
	{`string(jwt.groups[0])`, "bob", undefined}, // index out of range
	{`string(jwt.nested)`, "alice", undefined},  // no string() of a map
	{`string(jwt.n)`, "alice", "7"},
	{`string(jwt.n)`, "bob", "7"},
	{`jwt.n * 2`, "alice", 14.0},
	{`jwt.n * 2`, "bob", undefined},
	{`int(jwt.n) + 1`, "bob", 8.0},
	{`size(jwt.groups)`, "alice", 2.0},
	{`jwt.groups`, "alice", []any{"mcp-users", "dev"}},
	{`jwt.groups.map(g, g + "!")`, "alice", []any{"mcp-users!", "dev!"}},
	{`jwt.groups.filter(g, g.startsWith("d"))`, "alice", []any{"dev"}},
	{`jwt.groups.map(g, g + 1)`, "alice", undefined},
	{`[jwt.sub, mcp.tool.name]`, "alice", []any{"alice", "echo"}},
	{`[jwt.sub, jwt.missing]`, "alice", undefined},
	{`jwt.nested`, "alice", map[string]any{"key": "value"}},
	{`{"user": jwt.sub, "tool": mcp.tool.name}`, "bob", map[string]any{"user": "bob", "tool": "add"}},
	{`jwt.nothing`, "alice", nil},
	{`jwt.missing`, "alice", undefined},
	{`jwt.missing.key`, "alice", undefined},
	{`jwt.sub.key`, "alice", undefined},
	{`jwt.sub == "alice"`, "alice", true},
	{`jwt.sub == "alice"`, "bob", false},
	{`jwt.missing == "alice"`, "alice", undefined},
	{`jwt.flag ? jwt.sub : jwt.missing`, "alice", "alice"}, // only the chosen branch matters
	{`jwt.sub ? "a" : "b"`, "alice", undefined},            // condition is not a bool
	{`jwt.sub.startsWith("a") ? "a-team" : "other"`, "alice", "a-team"},
	{`jwt.sub.startsWith("a") ? "a-team" : "other"`, "bob", "other"},
	{`jwt.missing || true`, "alice", true},
	{`request.headers["x-team"] + ":" + string(jwt.n)`, "alice", "a:7"},
	{`mcp.tool.arguments.msg`, "alice", "hi"},
	{`"fixed"`, "anonymous", "fixed"},
	{`-1`, "anonymous", -1.0},
}

// prepareValue compiles expr, renders it with ValueModule and prepares a query for its rule.
func prepareValue(tb testing.TB, expr string) rego.PreparedEvalQuery {
	tb.Helper()
	v, err := CompileValue(expr)
	if err != nil {
		tb.Fatalf("CompileValue(%q): %v", expr, err)
	}
	mod, err := ValueModule(testPackage, map[string]*Value{"key": v})
	if err != nil {
		tb.Fatalf("ValueModule(%q): %v", expr, err)
	}
	pq, err := rego.New(
		rego.Query("data."+GeneratedPackage+"."+testPackage+".key"),
		rego.Module(PreludePath, Prelude),
		rego.Module("generated.rego", mod),
	).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatalf("PrepareForEval(%q): %v\n%s", expr, err, mod)
	}
	return pq
}

// evalValue evaluates a prepared value rule on input; ok is false when the rule is undefined.
func evalValue(tb testing.TB, pq rego.PreparedEvalQuery, input ast.Value) (got any, ok bool) {
	tb.Helper()
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input))
	if err != nil {
		tb.Fatalf("Eval: %v", err)
	}
	if len(rs) == 0 {
		return nil, false
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		tb.Fatalf("Eval: unexpected result set %v", rs)
	}
	return normalize(tb, rs[0].Expressions[0].Value), true
}

// normalize round-trips a JSON-like value through encoding/json, so that numbers are float64.
func normalize(tb testing.TB, x any) any {
	tb.Helper()
	b, err := json.Marshal(x)
	if err != nil {
		tb.Fatalf("marshal %v: %v", x, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatalf("unmarshal %s: %v", b, err)
	}
	return out
}

// celValue is the reference: cel-go's value of expr (unchecked, every variable dyn), as a
// JSON-like value; ok is false when cel-go reports an error. convertible is false for values
// JSON cannot hold (maps with non-string keys, types, ...).
func celValue(expr string, vars map[string]any) (val any, ok, convertible bool, err error) {
	tree, iss := celEnv.Parse(expr)
	if iss.Err() != nil {
		return nil, false, false, fmt.Errorf("parse: %w", iss.Err())
	}
	prg, err := celEnv.Program(tree)
	if err != nil {
		return nil, false, false, fmt.Errorf("program: %w", err)
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return nil, false, true, nil
	}
	val, convertible = celJSON(out)
	return val, true, convertible, nil
}

func celJSON(v ref.Val) (any, bool) {
	switch x := v.(type) {
	case types.String:
		return string(x), true
	case types.Bool:
		return bool(x), true
	case types.Int:
		return float64(x), true
	case types.Uint:
		return float64(x), true
	case types.Double:
		return float64(x), true
	case types.Null:
		return nil, true
	case traits.Mapper:
		out := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, false
			}
			e, ok := celJSON(x.Get(k))
			if !ok {
				return nil, false
			}
			out[string(ks)] = e
		}
		return out, true
	case traits.Lister:
		out := []any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			e, ok := celJSON(it.Next())
			if !ok {
				return nil, false
			}
			out = append(out, e)
		}
		return out, true
	}
	return nil, false
}

func show(x any) string {
	if x == undefined {
		return "undefined"
	}
	b, _ := json.Marshal(x)
	return string(b)
}

// TestValueEval evaluates compiled values with OPA and checks them against the expected value
// and against cel-go's.
func TestValueEval(t *testing.T) {
	for _, tc := range valueCases {
		t.Run(tc.expr+"/"+tc.input, func(t *testing.T) {
			in, vars := parseInput(t, valueInputs[tc.input])
			got, ok := evalValue(t, prepareValue(t, tc.expr), in)
			gotShown := "undefined"
			if ok {
				gotShown = show(got)
			}
			if ok != (tc.want != undefined) || (ok && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("got %s, want %s", gotShown, show(tc.want))
			}
			// The expectation itself must be CEL's.
			want, celOK, convertible, err := celValue(tc.expr, vars)
			if err != nil {
				t.Fatalf("cel-go: %v", err)
			}
			if !convertible {
				t.Fatalf("cel-go's value is not JSON")
			}
			celShown := "undefined"
			if celOK {
				celShown = show(want)
			}
			if celShown != show(tc.want) {
				t.Errorf("cel-go says %s, the test expects %s", celShown, show(tc.want))
			}
		})
	}
}

func TestValueFields(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		refs      []string
		arguments bool
		emptyBody bool
	}{
		{`jwt.sub`, []string{"input.jwt.claims.sub"}, false, true},
		{`"constant"`, nil, false, true},
		{`jwt.sub + "/" + mcp.tool.name`, []string{"input.jwt.claims.sub", "input.mcp.tool.name"}, false, true},
		{`request.headers["x-team"]`, []string{`input.request.headers["x-team"]`}, false, true},
		{`has(jwt.org) ? jwt.org : "none"`, []string{"input.jwt.claims.org"}, false, false},
		{`mcp.tool.arguments.user`, []string{"input.mcp.tool.arguments.user"}, true, true},
		{`request.headers[jwt.header]`, []string{"input.jwt.claims.header", "input.request.headers"}, false, true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			v, err := CompileValue(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Refs, tc.refs) {
				t.Errorf("Refs = %q, want %q", v.Refs, tc.refs)
			}
			if v.UsesArguments != tc.arguments {
				t.Errorf("UsesArguments = %v, want %v", v.UsesArguments, tc.arguments)
			}
			if (len(v.Body) == 0) != tc.emptyBody {
				t.Errorf("Body = %v, want empty: %v", v.Body, tc.emptyBody)
			}
		})
	}
}

var valueErrorCases = []struct {
	expr       string
	line, col  int
	msgContain string
}{
	{`foo`, 1, 1, `unknown variable "foo"`},
	{`jwt.sub + "/" + user.name`, 1, 17, `unknown variable "user"`},
	{`jwt.sub.upperAscii()`, 1, 9, `unsupported function "upperAscii"`},
	{`lowerAscii(jwt.sub)`, 1, 1, `unsupported function "lowerAscii"`},
	{`jwt.sub + "/" + mcp.tool.nmae`, 1, 26, `unknown field "nmae"`},
	{`"k-" + 1`, 1, 6, `no '+' for string and number`},
	{`jwt.sub +`, 1, 10, `mismatched input`},
	{`b"key"`, 1, 1, `bytes literals are not supported`},
	{`timestamp(jwt.iat)`, 1, 1, `unsupported function "timestamp"`},
	{`jwt.?sub`, 1, 4, `unsupported syntax`},
	{"", 1, 1, `empty expression`},
}

func TestValueErrors(t *testing.T) {
	check := func(t *testing.T, expr string, line, col int, msg string) {
		t.Helper()
		v, err := CompileValue(expr)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("CompileValue(%q) = %v, %v; want an *Error", expr, v, err)
		}
		if !errors.Is(err, ErrExpression) {
			t.Errorf("error does not match ErrExpression")
		}
		if line > 0 && (e.Line != line || e.Column != col) {
			t.Errorf("error at %d:%d, want %d:%d (%v)", e.Line, e.Column, line, col, e)
		}
		if !strings.Contains(e.Msg, msg) {
			t.Errorf("error %q does not mention %q", e.Msg, msg)
		}
	}
	for _, tc := range valueErrorCases {
		t.Run(tc.expr, func(t *testing.T) { check(t, tc.expr, tc.line, tc.col, tc.msgContain) })
	}
	// Compile's error cases fail in value context too, at the same place.
	for _, tc := range errorCases {
		t.Run("compile/"+tc.expr, func(t *testing.T) { check(t, tc.expr, tc.line, tc.col, tc.msgContain) })
	}
}

func TestValueModule(t *testing.T) {
	values := map[string]*Value{}
	for name, expr := range map[string]string{
		"user":     `jwt.sub`,
		"per_tool": `jwt.sub + "/" + mcp.tool.name`,
		"org":      `has(jwt.org) ? jwt.org : "none"`,
		"fixed":    `"global"`,
	} {
		v, err := CompileValue(expr)
		if err != nil {
			t.Fatal(err)
		}
		values[name] = v
	}
	mod, err := ValueModule("default.my-policy", values)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"package mcpgate.generated[\"default\"][\"my-policy\"]\n",
		"import data.mcpgate.cel\n",
		"\nuser := input.jwt.claims.sub\n",
		"\nfixed := \"global\"\n",
		"\nper_tool := concat(",
		"\norg := cel.conditional(",
	} {
		if !strings.Contains(mod, want) {
			t.Errorf("module lacks %q:\n%s", want, mod)
		}
	}
	if i, j, k, l := strings.Index(mod, "fixed :="), strings.Index(mod, "org :="), strings.Index(mod, "per_tool :="), strings.Index(mod, "user :="); i >= j || j >= k || k >= l {
		t.Errorf("rules are not in name order:\n%s", mod)
	}
	for range 3 {
		again, err := ValueModule("default.my-policy", values)
		if err != nil || again != mod {
			t.Fatalf("ValueModule is not deterministic: %v\n%s\n%s", err, mod, again)
		}
	}

	// The module evaluates as a whole; undefined values are absent.
	pq, err := rego.New(
		rego.Query(`data.mcpgate.generated["default"]["my-policy"]`),
		rego.Module(PreludePath, Prelude),
		rego.Module("generated.rego", mod),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for input, want := range map[string]map[string]any{
		"alice":     {"user": "alice", "per_tool": "alice/echo", "org": "none", "fixed": "global"},
		"bob":       {"user": "bob", "per_tool": "bob/add", "org": "acme", "fixed": "global"},
		"anonymous": {"fixed": "global"},
	} {
		in, _ := parseInput(t, valueInputs[input])
		rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(in))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: %v %v", input, rs, err)
		}
		if got := normalize(t, rs[0].Expressions[0].Value); !reflect.DeepEqual(got, normalize(t, want)) {
			t.Errorf("%s: got %s, want %s", input, show(got), show(want))
		}
	}

	// Bad names and values are refused.
	v := values["user"]
	for _, tc := range []struct {
		pkg    string
		values map[string]*Value
	}{
		{"a..b", map[string]*Value{"k": v}},
		{"p", map[string]*Value{"not-a-name": v}},
		{"p", map[string]*Value{"count": v}},
		{"p", map[string]*Value{"cel": v}},
		{"p", map[string]*Value{"k": nil}},
		{"p", map[string]*Value{"k": {}}},
	} {
		if _, err := ValueModule(tc.pkg, tc.values); err == nil {
			t.Errorf("ValueModule(%q, %v) succeeded", tc.pkg, tc.values)
		}
	}
	// The values passed in are not modified.
	if again, _ := CompileValue(`jwt.sub`); !again.Term.Equal(v.Term) || len(v.Body) != 0 {
		t.Errorf("ValueModule modified its input: %v", v)
	}
}

func addValueSeeds(f *testing.F) {
	addSeeds(f)
	for _, tc := range valueCases {
		f.Add(tc.expr)
	}
	for _, tc := range valueErrorCases {
		f.Add(tc.expr)
	}
}

// FuzzCompileValue: CompileValue never panics, fails only with a positioned *Error, and every
// value it returns renders (deterministically) into a module that OPA compiles.
func FuzzCompileValue(f *testing.F) {
	addValueSeeds(f)
	f.Fuzz(func(t *testing.T, expr string) {
		v, err := CompileValue(expr)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Column < 1 || e.Msg == "" {
				t.Fatalf("CompileValue(%q): error %#v is not a positioned *Error", expr, err)
			}
			return
		}
		if v.Term == nil {
			t.Fatalf("CompileValue(%q): no term", expr)
		}
		mod, err := ValueModule("fuzz", map[string]*Value{"key": v})
		if err != nil {
			t.Fatalf("CompileValue(%q) succeeded but ValueModule failed: %v", expr, err)
		}
		if _, err := ast.CompileModules(map[string]string{PreludePath: Prelude, "fuzz.rego": mod}); err != nil {
			t.Fatalf("CompileValue(%q): module does not compile: %v\n%s", expr, err, mod)
		}
		again, err := CompileValue(expr)
		if err != nil {
			t.Fatalf("CompileValue(%q) is not deterministic: %v", expr, err)
		}
		if mod2, _ := ValueModule("fuzz", map[string]*Value{"key": again}); mod2 != mod {
			t.Fatalf("CompileValue(%q) is not deterministic:\n%s\n%s", expr, mod, mod2)
		}
	})
}

// FuzzValueEquivalence compares compiled values with cel-go's on the test inputs, for
// expressions free of the documented differences (arithmetic and conversions).
func FuzzValueEquivalence(f *testing.F) {
	addValueSeeds(f)
	f.Fuzz(func(t *testing.T, expr string) {
		if _, err := CompileValue(expr); err != nil || deviates(expr) {
			return
		}
		pq := prepareValue(t, expr)
		for name, text := range valueInputs {
			in, vars := parseInput(t, text)
			want, celOK, convertible, err := celValue(expr, vars)
			if err != nil || !convertible {
				return // cel-go's macros reject what our parser accepted, or no JSON value
			}
			got, ok := evalValue(t, pq, in)
			if ok != celOK || (ok && !reflect.DeepEqual(got, normalize(t, want))) {
				gotShown, wantShown := "undefined", "undefined"
				if ok {
					gotShown = show(got)
				}
				if celOK {
					wantShown = show(want)
				}
				t.Fatalf("%s on %s: got %s, cel-go says %s", expr, name, gotShown, wantShown)
			}
		}
	})
}
