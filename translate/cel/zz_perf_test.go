package cel

import (
	"fmt"
	"testing"
	"time"

	"cel.dev/cel-go/common"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

func TestPerfNested(t *testing.T) {
	for _, n := range []int{3, 8, 10, 12} {
		expr := "jwt.a"
		for i := 0; i < n; i++ {
			expr = fmt.Sprintf("(%s || jwt.x%d) == true", expr, i)
		}
		tree, _ := celParser.Parse(common.NewTextSource(expr))
		c := &compiler{info: tree.SourceInfo(), src: []rune(expr), refs: map[string]bool{}}
		start := time.Now()
		body, _ := c.truth(tree.Expr())
		d1 := time.Since(start)
		b := ast.NewBody(body...)
		out, _ := format.Ast(b)
		start = time.Now()
		err := checkBody(b)
		fmt.Println(n, d1, len(out), time.Since(start), err)
		if n == 3 {
			fmt.Println(string(out))
		}
	}
}
