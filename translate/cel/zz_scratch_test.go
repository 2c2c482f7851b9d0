package cel

import (
	"fmt"
	"testing"
)

func TestZZScratch(t *testing.T) {
	vals := map[string]*Value{}
	for i, e := range []string{`jwt.sub`, `mcp.tool.name`, `jwt.sub + "/" + mcp.tool.name`, `request.headers["x-team"]`, `has(jwt.org) ? jwt.org : "none"`, `string(jwt.groups[0])`, `"x"`, `[1, jwt.a]`, `jwt.groups.map(g, g + "!")`, `-1`, `request.headers[jwt.h]`, `[1,2][jwt.i]`, `{"a": 1}`, `size([1,2])`, `-jwt.n`, `jwt.a == 1`, `jwt.a < 2`, `jwt.a && jwt.b`, `-1 * jwt.a`, `jwt.a % 2`, `"a" in jwt.g`, `jwt.s.matches("a")`} {
		v, err := CompileValue(e)
		if err != nil {
			t.Fatal(e, err)
		}
		vals[fmt.Sprintf("k%02d", i)] = v
	}
	m, err := ValueModule("test", vals)
	fmt.Println(m, err)
}
