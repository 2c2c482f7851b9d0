package cel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	celgo "cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

const testPackage = "test"

// prepare compiles expr and prepares a query for its rule, as the gateway would.
func prepare(tb testing.TB, expr string) (*Rule, rego.PreparedEvalQuery) {
	tb.Helper()
	rule, err := Compile(expr)
	if err != nil {
		tb.Fatalf("Compile(%q): %v", expr, err)
	}
	mod, err := Module(testPackage, map[string]*Rule{"r0": rule})
	if err != nil {
		tb.Fatalf("Module(%q): %v", expr, err)
	}
	pq, err := rego.New(
		rego.Query("data."+GeneratedPackage+"."+testPackage+".r0"),
		rego.Module(PreludePath, Prelude),
		rego.Module("generated.rego", mod),
	).PrepareForEval(context.Background())
	if err != nil {
		tb.Fatalf("PrepareForEval(%q): %v\n%s", expr, err, mod)
	}
	return rule, pq
}

// matches evaluates a prepared rule: true only when the rule is defined and true.
func matches(tb testing.TB, pq rego.PreparedEvalQuery, input ast.Value) bool {
	tb.Helper()
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(input))
	if err != nil {
		tb.Fatalf("Eval: %v", err)
	}
	return len(rs) == 1 && len(rs[0].Expressions) == 1 && rs[0].Expressions[0].Value == true
}

// parseInput decodes a JSON input document twice: as an OPA value, and as the activation
// that cel-go evaluates against (integral numbers as int64, as agentgateway's JSON
// conversion makes them ints).
func parseInput(tb testing.TB, text string) (ast.Value, map[string]any) {
	tb.Helper()
	v, err := ast.ValueFromReader(bytes.NewBufferString(text))
	if err != nil {
		tb.Fatalf("input %s: %v", text, err)
	}
	dec := json.NewDecoder(bytes.NewBufferString(text))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		tb.Fatalf("input %s: %v", text, err)
	}
	vars := map[string]any{}
	for name, path := range map[string][]string{
		"mcp": {"mcp"}, "jwt": {"jwt", "claims"}, "request": {"request"}, "source": {"source"},
	} {
		var cur any = doc
		for _, k := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur, ok = m[k]
			if !ok {
				cur = nil
				break
			}
		}
		if cur != nil {
			vars[name] = celNumbers(cur)
		}
	}
	return v, vars
}

func celNumbers(x any) any {
	switch v := x.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = celNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = celNumbers(e)
		}
		return out
	}
	return x
}

var celEnv = func() *celgo.Env {
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

// celMatches is the reference: cel-go evaluates expr, unchecked (every variable is dyn, as the
// claims of a token are), and an error counts as no match, as in agentgateway.
func celMatches(expr string, vars map[string]any) (bool, error) {
	tree, iss := celEnv.Parse(expr)
	if iss.Err() != nil {
		return false, fmt.Errorf("parse: %w", iss.Err())
	}
	prg, err := celEnv.Program(tree)
	if err != nil {
		return false, fmt.Errorf("program: %w", err)
	}
	out, _, err := prg.Eval(vars)
	if err != nil {
		return false, nil
	}
	return out == types.True, nil
}
