package cel

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

var benchExprs = map[string]string{
	"equality": `jwt.sub == "alice" && mcp.tool.name == "echo"`,
	"or":       `jwt.role == "admin" || mcp.tool.name in ["echo", "get-sum"]`,
	"exists":   `jwt.groups.exists(g, g == "dev") && !(mcp.tool.name == "printEnv")`,
}

// BenchmarkEval measures one prepared evaluation of a compiled rule with an ast.Value input,
// as on the request path. BenchmarkEvalBaseline is the same with a hand-written rule, for
// a ratio.
func BenchmarkEval(b *testing.B) {
	in, _ := parseInput(b, inputs["call"])
	for name, expr := range benchExprs {
		b.Run(name, func(b *testing.B) {
			_, pq := prepare(b, expr)
			if !matches(b, pq, in) {
				b.Fatalf("%s does not match", expr)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEvalBaseline(b *testing.B) {
	in, _ := parseInput(b, inputs["call"])
	pq, err := rego.New(
		rego.Query("data.baseline.r0"),
		rego.Module("baseline.rego", "package baseline\n\nr0 if {\n\tinput.jwt.claims.sub == \"alice\"\n\tinput.mcp.tool.name == \"echo\"\n}\n"),
	).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(in)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile measures translation (parse, translate, and the module check).
func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(benchExprs["exists"]); err != nil {
			b.Fatal(err)
		}
	}
}
