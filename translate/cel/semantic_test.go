package cel

import (
	"testing"
)

// Inputs shaped like the gateway's input document.
var inputs = map[string]string{
	"call": `{
		"mcp": {"method": "tools/call", "tool": {"name": "echo", "target": "everything",
			"arguments": {"a": 5, "msg": "hi", "tags": ["x", "y"]}}},
		"jwt": {"present": true, "valid": true, "claims": {
			"sub": "alice", "groups": ["mcp-users", "dev"], "role": "user",
			"nested": {"key": "value"}, "realm_access": {"roles": ["admin"]},
			"n": 7, "flag": true, "nothing": null, "email": "alice@example.com", "name": "héllo"}},
		"request": {"method": "POST", "path": "/mcp", "host": "gw.local", "headers": {"x-team": "a"}},
		"source": {"address": "127.0.0.1", "port": 5555}
	}`,
	// No token: input.jwt.claims is absent, so every jwt.* is an error.
	"anonymous": `{
		"mcp": {"method": "tools/call", "tool": {"name": "echo", "target": "everything", "arguments": {}}},
		"jwt": {"present": false, "valid": false},
		"request": {"method": "POST", "path": "/mcp", "headers": {}}
	}`,
	"resource": `{
		"mcp": {"method": "resources/read", "resource": {"uri": "demo://a/b", "name": "b"}},
		"jwt": {"present": true, "valid": true, "claims": {"sub": "bob"}}
	}`,
}

type semanticCase struct {
	expr  string
	input string
	want  bool
	// deviates marks a documented difference from CEL: the cel-go cross-check is skipped.
	deviates bool
}

var semanticCases = []semanticCase{
	// agentgateway documentation examples.
	{`mcp.tool.name == "echo"`, "call", true, false},
	{`mcp.tool.name == "add"`, "call", false, false},
	{`jwt.sub == "alice" && mcp.tool.name == "echo"`, "call", true, false},
	{`jwt.sub == "alice" && mcp.tool.name == "add"`, "call", false, false},
	{`mcp.tool.name in ["echo", "get-sum"]`, "call", true, false},
	{`"mcp-users" in jwt.groups`, "call", true, false},
	{`"admin" in jwt.groups`, "call", false, false},
	{`jwt.groups.exists(g, g == "mcp-users")`, "call", true, false},
	{`jwt.realm_access.roles.exists(r, r == "admin")`, "call", true, false},
	{`has(jwt.nested.key) && jwt.nested.key == "value"`, "call", true, false},
	{`mcp.tool.name.startsWith("ec")`, "call", true, false},
	{`request.headers["x-team"] == "a"`, "call", true, false},
	{`mcp.tool.arguments.a < 10`, "call", true, false},
	{`size(jwt.groups) > 0`, "call", true, false},
	{`!(mcp.tool.name == "printEnv")`, "call", true, false},
	{`jwt.role == "admin" ? true : mcp.tool.name != "delete"`, "call", true, false},
	{`mcp.tool.name.matches("^e.*o$")`, "call", true, false},
	{`mcp.resource.uri.startsWith("demo://")`, "resource", true, false},
	{`source.address == "127.0.0.1" && source.port == 5555`, "call", true, false},
	{`mcp.method == "tools/call" && request.method == "POST"`, "call", true, false},

	// Errors never match, not even negated.
	{`!(jwt.group == "admin")`, "call", false, false},
	{`!(jwt.sub == "admin")`, "anonymous", false, false},
	{`jwt.group != "admin"`, "call", false, false},
	{`!has(jwt.sub)`, "anonymous", false, false},
	{`!(mcp.tool.name == "echo")`, "resource", false, false},
	{`has(jwt.nested.other)`, "call", false, false},
	{`!has(jwt.nested.other)`, "call", true, false},
	{`has(jwt.missing.key)`, "call", false, false},
	{`!has(jwt.missing.key)`, "call", false, false},
	{`!has(jwt.n.key) && !has(jwt.sub.key) && !has(jwt.nothing.key)`, "call", true, false},
	{`!has(jwt.groups.key)`, "call", false, false},
	{`mcp.tool.arguments.msg < 10`, "call", false, false},
	{`!(mcp.tool.arguments.msg < 10)`, "call", false, false},
	{`1 < "a" || !(1 < "a")`, "call", false, false},
	{`jwt.missing ? true : false`, "call", false, false},
	{`!(jwt.missing ? false : true)`, "call", false, false},
	{`jwt.flag ? jwt.missing == 1 : true`, "call", false, false},
	{`jwt.flag ? true : jwt.missing == 1`, "call", true, false},
	{`jwt.sub ? true : true`, "call", false, false},
	{`jwt.flag`, "call", true, false},
	{`!jwt.flag`, "call", false, false},
	{`jwt.sub`, "call", false, false},
	{`!jwt.sub`, "call", false, false},

	// || and && absorb errors in either order, as CEL does.
	{`jwt.missing == "x" || mcp.tool.name == "echo"`, "call", true, false},
	{`mcp.tool.name == "echo" || jwt.missing == "x"`, "call", true, false},
	{`jwt.missing == "x" || mcp.tool.name == "nope"`, "call", false, false},
	{`!(jwt.missing == "x" || mcp.tool.name == "nope")`, "call", false, false},
	{`!(jwt.missing == "x" && mcp.tool.name == "nope")`, "call", true, false},
	{`!(mcp.tool.name == "nope" && jwt.missing == "x")`, "call", true, false},
	{`!(jwt.missing == "x" && mcp.tool.name == "echo")`, "call", false, false},
	{`(jwt.missing || true) && !(jwt.missing && false)`, "call", true, false},
	{`1 || true`, "call", true, false},
	{`!(1 && true)`, "call", false, false},

	// Macros.
	{`jwt.groups.all(g, g.size() > 2)`, "call", true, false},
	{`!jwt.groups.all(g, g == "dev")`, "call", true, false},
	{`!jwt.groups.exists(g, g == "admin")`, "call", true, false},
	{`jwt.groups.exists_one(g, g.startsWith("d"))`, "call", true, false},
	{`jwt.groups.map(g, g.size()).filter(n, n > 3).size() == 1`, "call", true, false},
	{`jwt.groups.map(g, g == "dev", g) == ["dev"]`, "call", true, false},
	{`jwt.groups.exists(g, g.missing == 1)`, "call", false, false},
	{`!jwt.groups.exists(g, g.missing == 1)`, "call", false, false},
	{`[1, "a"].exists(x, x > 0)`, "call", true, false},
	{`!["a", 0].all(x, x > 0)`, "call", true, false},
	{`["a"].all(x, x > 0)`, "call", false, false},
	{`!["a"].all(x, x > 0)`, "call", false, false},
	{`!jwt.sub.exists(x, x == "a")`, "call", false, false},
	{`!jwt.missing.all(x, x == "a")`, "call", false, false},
	{`jwt.groups.map(g, g.missing) == []`, "call", false, false},
	{`!(jwt.groups.map(g, g.missing) == [])`, "call", false, false},
	{`[1, 2].exists_one(x, x > 0 || dyn(x).missing)`, "call", false, false},
	{`jwt.nested.exists(k, k == "key")`, "call", true, false},
	{`jwt.groups.exists(g, jwt.groups.exists(h, h + "x" == g))`, "call", false, false},
	{`jwt.groups.exists(jwt, jwt == "dev")`, "call", true, false},

	// Membership, indexing, sizes, strings, arithmetic, conversions.
	{`"key" in jwt.nested`, "call", true, false},
	{`jwt.sub in jwt.nested`, "call", false, false},
	{`!("a" in jwt.sub)`, "call", false, false},
	{`jwt.groups[0] == "mcp-users"`, "call", true, false},
	{`!(jwt.groups[5] == "x")`, "call", false, false},
	{`{"a": 1}["a"] == 1 && {"a": {"b": [true]}}.a.b[0]`, "call", true, false},
	{`size(jwt.name) == 5 && jwt.name.size() == 5`, "call", true, false},
	{`jwt.email.endsWith("@example.com") && jwt.email.contains("alice")`, "call", true, false},
	{`jwt.n + 1 == 8 && jwt.n - 8 == -1 && jwt.n * 2 == 14 && -jwt.n == -7`, "call", true, false},
	{`jwt.n % 2 == 1 && jwt.n / 2 == 3 && -7 / 2 == -3 && -7 % 2 == -1`, "call", true, false},
	{`"pre-" + jwt.sub == "pre-alice" && [1, 2] + [3] == [1, 2, 3]`, "call", true, false},
	{`jwt.n / 0 == 1 || !(jwt.n / 0 == 1)`, "call", false, false},
	{`int("42") == 42 && string(42) == "42" && bool("true") && double("1.5") == 1.5`, "call", true, false},
	{`int(jwt.sub) == 1 || !(int(jwt.sub) == 1)`, "call", false, false},
	{`uint(-1) == 1 || !(uint(-1) == 1)`, "call", false, false},
	{`jwt.nothing == null && jwt.n != null`, "call", true, false},
	{`jwt.missing == null || !(jwt.missing == null)`, "call", false, false},
	{`mcp.tool.arguments.tags.size() == 2 && has(mcp.tool.arguments.msg)`, "call", true, false},
	{`1 == 1.0 && [1] == [1.0]`, "call", true, false},
	{`"b" > "a" && true > false && 2.5 > 2`, "call", true, false},
	{`dyn(jwt.n) == 7`, "call", true, false},

	// Documented differences: Rego numbers do not distinguish int from double.
	{`7.0 / 2.0 == 3`, "call", true, true},
	{`1 + 1.0 == 2`, "call", true, true},
}

func TestSemantics(t *testing.T) {
	for _, tc := range semanticCases {
		t.Run(tc.expr, func(t *testing.T) {
			_, pq := prepare(t, tc.expr)
			in, vars := parseInput(t, inputs[tc.input])
			if got := matches(t, pq, in); got != tc.want {
				t.Errorf("%s on %s: got %v, want %v", tc.expr, tc.input, got, tc.want)
			}
			ref, err := celMatches(tc.expr, vars)
			if err != nil {
				t.Fatalf("cel-go: %v", err)
			}
			if ref != tc.want && !tc.deviates {
				t.Errorf("%s on %s: cel-go says %v, the case says %v", tc.expr, tc.input, ref, tc.want)
			}
			if ref == tc.want && tc.deviates {
				t.Errorf("%s on %s: marked as a deviation but cel-go agrees", tc.expr, tc.input)
			}
		})
	}
}

func TestUsesArguments(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`mcp.tool.name == "echo"`, false},
		{`mcp.tool.arguments.a < 10`, true},
		{`has(mcp.tool.arguments)`, true},
		{`has(mcp.tool.name)`, false},
		{`size(mcp.tool) == 3`, true},
		{`mcp.tool.arguments.exists(k, k == "a")`, true},
		{`jwt.arguments == 1`, false},
	} {
		r, err := Compile(tc.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.expr, err)
		}
		if r.UsesArguments != tc.want {
			t.Errorf("Compile(%q).UsesArguments: got %v, want %v (refs %v)", tc.expr, r.UsesArguments, tc.want, r.Refs)
		}
	}
}
