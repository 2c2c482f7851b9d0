package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/k8s/load"
	"github.com/mcpgate/mcpgate/translate"
)

// thousandPolicies is one route with n Deny authorization policies, each
// naming its own tool: the scale DESIGN §7 sets a budget for (bundle
// activation for 1,000 policies < 1 s).
func thousandPolicies(n int) string {
	var b strings.Builder
	b.WriteString(fedYAML("3001", "3002", "FailClosed", "Conditional", ""))
	for i := range n {
		b.WriteString(routePolicy(fmt.Sprintf("deny-%04d", i), "Deny", fmt.Sprintf(`mcp.tool.name == "no-such-tool-%d"`, i)))
	}
	return b.String()
}

// BenchmarkActivate1000Policies is the whole control path for 1,000
// policies: YAML decoded, translated, bundled, compiled and activated (the
// activation includes preparing the query and scanning it for the decision
// cache). Sub-benchmarks split it.
func BenchmarkActivate1000Policies(b *testing.B) {
	yaml := []byte(thousandPolicies(1000))
	build := func(b *testing.B) *translate.Result {
		res := &translate.Resources{Sources: map[string]string{}}
		if errs := load.Decode("scale.yaml", yaml, res); len(errs) > 0 {
			b.Fatal(errs)
		}
		out, err := translate.Translate(res)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	b.Run("translate", func(b *testing.B) {
		for b.Loop() {
			build(b)
		}
	})
	out := build(b)
	bun, err := translate.Bundle(out, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("activate", func(b *testing.B) {
		g := New(Options{})
		for b.Loop() {
			bun.Revision += "x" // a new revision each time, as after a change
			if err := g.Activate(context.Background(), bun); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		g := New(Options{})
		for b.Loop() {
			bun, err := translate.Bundle(build(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := g.Activate(context.Background(), bun); err != nil {
				b.Fatal(err)
			}
		}
	})
}
