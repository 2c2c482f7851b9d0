package cel

import (
	"errors"
	"strings"
	"testing"
)

var errorCases = []struct {
	expr       string
	line, col  int
	msgContain string
}{
	{`foo.bar == 1`, 1, 1, `unknown variable "foo"`},
	{`jwt.sub == "a" && bar`, 1, 19, `unknown variable "bar"`},
	{`foo(1)`, 1, 1, `unsupported function "foo"`},
	{`jwt.sub.foo(1)`, 1, 9, `unsupported function "foo"`},
	{`math.greatest(1, 2) == 2`, 1, 6, `unsupported function "greatest"`},
	{`jwt.sub ==`, 1, 11, `mismatched input`},
	{`jwt.sub == "a" &&& true`, 1, 18, `token recognition error`},
	{"jwt.sub == \"a\" &&\n  jwt.x ==", 2, 11, `mismatched input`},
	{"jwt.sub == \"a\" &&\n  nope == 1", 2, 3, `unknown variable "nope"`},
	{`mcp.tool.nmae == "echo"`, 1, 10, `unknown field "nmae"`},
	{`mcp.tools.name == "echo"`, 1, 5, `unknown field "tools"`},
	{`has(mcp.tool.nmae)`, 1, 14, `unknown field "nmae"`},
	{`mcp[jwt.sub] == 1`, 1, 4, `must be named`},
	{`has(jwt)`, 1, 5, `has() needs a field selection`},
	{`jwt.groups.exists(1, true)`, 1, 19, `needs an iteration variable`},
	{`jwt.groups.all(x, y, x == y)`, 1, 12, `two iteration variables`},
	{`jwt.groups.exists(x)`, 1, 12, `takes 2 arguments`},
	{`jwt.sub.startsWith()`, 1, 9, `takes 1 argument`},
	{`b"abc" == jwt.sub`, 1, 1, `bytes literals are not supported`},
	{`google.protobuf.Value{} == jwt.sub`, 1, 22, `message construction`},
	{`jwt.?sub == "a"`, 1, 4, `unsupported syntax`},
	{`1.startsWith("a")`, 1, 1, `startsWith() does not apply to a number`},
	{`size(1) > 0`, 1, 6, `size() does not apply to a number`},
	{`"a" + 1 == "a1"`, 1, 5, `no '+' for string and number`},
	{`true - 1 == 0`, 1, 6, `no arithmetic on a bool`},
	{`"a".x == 1`, 1, 5, `cannot select field "x" of a string`},
	{`[1][0].x == 1`, 1, 8, `cannot select field "x" of a number`},
	{`1 in "abc"`, 1, 3, `'in' needs a list or map`},
	{`jwt.sub.matches("(")`, 1, 17, `invalid regular expression`},
	{`{jwt.sub: 1}[jwt.sub] == 1`, 1, 2, `map keys must be constants`},
	{`{"a": 1, "a": 2}.a == 1`, 1, 10, `duplicate map key`},
	{`{1.5: 1}[1.5] == 1`, 1, 2, `map keys must be strings, integers or booleans`},
	{"jwt.sub == \"a\u202eb\"", 1, 12, `non-printable character U+202E`},
	{"jwt.sub == \"a\\nb\"", 1, 12, `non-printable character U+000A`},
	{"jwt.sub == \"\xff\"", 1, 1, `not valid UTF-8`},
	{`1e999 == jwt.n`, 1, 1, ``},
	{`[1, 2][2] == 1`, 1, 7, `no element 2`},
	{`{"a": 1}["b"] == 1`, 1, 9, `no element "b"`},
	{`timestamp("2024-01-01T00:00:00Z") < now`, 1, 1, `unsupported function "timestamp"`},
	{`!(jwt.a.exists(a, jwt.b.exists(b, jwt.c.exists(c, jwt.d.exists(d, jwt.e.exists(e, jwt.f.exists(f, jwt.g.exists(g, jwt.h.exists(h, jwt.i.exists(i, a == i))))))))) == true)`, 1, 1, `nests macros too deeply`},
}

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := Compile(tc.expr)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q): got %v, want an *Error", tc.expr, err)
			}
			if !errors.Is(err, ErrExpression) {
				t.Errorf("Compile(%q): error does not match ErrExpression", tc.expr)
			}
			if e.Line != tc.line || e.Column != tc.col {
				t.Errorf("Compile(%q): got line %d column %d (%v), want line %d column %d", tc.expr, e.Line, e.Column, e, tc.line, tc.col)
			}
			if !strings.Contains(e.Msg, tc.msgContain) {
				t.Errorf("Compile(%q): got message %q, want it to contain %q", tc.expr, e.Msg, tc.msgContain)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Line: 1, Column: 12, Msg: `unsupported function "foo"`}, `column 12: unsupported function "foo"`},
		{&Error{Line: 3, Column: 2, Msg: "x"}, `line 3, column 2: x`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestModuleErrors(t *testing.T) {
	rule, err := Compile(`jwt.sub == "a"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pkg   string
		rules map[string]*Rule
	}{
		{"", map[string]*Rule{"r0": rule}},
		{"a..b", map[string]*Rule{"r0": rule}},
		{"a\nb", map[string]*Rule{"r0": rule}},
		{"p", map[string]*Rule{"not an identifier": rule}},
		{"p", map[string]*Rule{"count": rule}},
		{"p", map[string]*Rule{"cel": rule}},
		{"p", map[string]*Rule{"if": rule}},
		{"p", map[string]*Rule{"r0": nil}},
		{"p", map[string]*Rule{"r0": {}}},
	} {
		if _, err := Module(tc.pkg, tc.rules); err == nil {
			t.Errorf("Module(%q, %v): got no error", tc.pkg, tc.rules)
		}
	}
}
