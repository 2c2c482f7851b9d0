package cel

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// Value is one CEL expression compiled for its value rather than its truth, as used by
// rate-limit keys (`jwt.sub + "/" + mcp.tool.name`).
type Value struct {
	// Body binds the temporaries Term needs; it holds exactly when the CEL expression
	// evaluates without error. It may be empty (Term is then defined exactly when CEL's value
	// is). Like Rule.Body it calls the prelude as cel.<name>, so it belongs in a module that
	// imports data.mcpgate.cel, as ValueModule's output does.
	Body ast.Body
	// Term is the CEL value once Body holds: an input reference (input.jwt.claims.sub), a
	// constant, or a variable bound by Body. Where CEL would report an error, Body fails or
	// Term is undefined.
	Term *ast.Term
	// UsesArguments and Refs are as in Rule.
	UsesArguments bool
	Refs          []string
}

// CompileValue parses one CEL expression and compiles it for its value: in a complete rule
// `<name> := <Term> if { <Body> }` (see ValueModule) the rule's value is the expression's
// value, and the rule is undefined exactly when CEL would report an evaluation error (a
// missing claim or field, a type mismatch, an index out of range, ...). The value may be of
// any type (string, number, bool, null, list, map); Rego's numbers do not distinguish CEL's
// int, uint and double (see the package documentation), and a map literal with integer or bool
// keys ({1: "a"}) is a Rego object whose keys become strings when the value is read as JSON.
//
// It accepts the variables, functions and macros Compile accepts, with the same static checks
// and limits, and every error is an *Error with a position.
func CompileValue(expr string) (*Value, error) {
	tree, err := parseExpr(expr)
	if err != nil {
		return nil, err
	}
	c := &compiler{info: tree.SourceInfo(), src: []rune(expr), refs: map[string]bool{}}
	v, err := c.value(tree.Expr())
	if err != nil {
		return nil, err
	}
	body := slices.Clone(v.pre)
	if d := nesting(ast.NewBody(append(slices.Clone(body), ast.NewExpr(v.term))...)); d > maxNesting {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("expression nests macros too deeply to translate (%d levels of Rego comprehension; the limit is %d)", d, maxNesting)}
	}
	out := &Value{Term: v.term, UsesArguments: c.usesArguments}
	if len(body) > 0 {
		out.Body = ast.NewBody(body...)
	}
	for r := range c.refs {
		out.Refs = append(out.Refs, r)
	}
	slices.Sort(out.Refs)
	// As in Compile: the rule is printed and parsed back, and whatever type error the static
	// checks missed is caught here (the head checked as the assignment it amounts to), so that
	// a compiled value always builds a module.
	if err := checkValue(out, c.fresh("x")); err != nil {
		return nil, &Error{Line: 1, Column: 1, Msg: "cannot translate: " + strings.TrimPrefix(err.Error(), "cel: ")}
	}
	return out, nil
}

func checkValue(v *Value, x *ast.Term) error {
	mod, text, err := renderValues(checkPackage, map[string]*Value{"value": v})
	if err != nil {
		return err
	}
	if _, err := roundTripValues(mod, text); err != nil {
		return err
	}
	return checkBody(ast.NewBody(append(v.Body.Copy(), ast.Assign.Expr(x, v.Term.Copy()))...))
}

// parseExpr applies Compile's limits and parses expr.
func parseExpr(expr string) (*celast.AST, error) {
	if !utf8.ValidString(expr) {
		return nil, &Error{Line: 1, Column: 1, Msg: "expression is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(expr); n > maxExpressionChars {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("expression is longer than %d characters", maxExpressionChars)}
	}
	if strings.TrimSpace(expr) == "" {
		return nil, &Error{Line: 1, Column: 1, Msg: "empty expression"}
	}
	tree, errs := celParser.Parse(common.NewTextSource(expr))
	if errs != nil && len(errs.GetErrors()) > 0 {
		first := errs.GetErrors()[0]
		line, col := position(first.Location)
		return nil, &Error{Line: line, Column: col, Msg: strings.TrimPrefix(first.Message, "Syntax error: ")}
	}
	return tree, nil
}

// ValueModule renders a complete Rego v1 module, package mcpgate.generated.<pkg>, with one
// complete rule per entry of values, in name order: `<name> := <term> if { <body> }`, or
// `<name> := <term>` when the body is empty. Each rule's value is its expression's value, and
// the rule is undefined where CEL would report an error. As with Module, the text is printed
// with OPA's formatter, parsed back, compared and compiled together with Prelude before it is
// returned; the package and rule names follow Module's rules.
func ValueModule(pkg string, values map[string]*Value) (string, error) {
	path, err := generatedPath(pkg)
	if err != nil {
		return "", err
	}
	mod, text, err := renderValues(path, values)
	if err != nil {
		return "", err
	}
	parsed, err := roundTripValues(mod, text)
	if err != nil {
		return "", err
	}
	prelude, err := parsedPrelude()
	if err != nil {
		return "", fmt.Errorf("cel: prelude: %w", err)
	}
	compiler := ast.NewCompiler()
	compiler.Compile(map[string]*ast.Module{PreludePath: prelude.Copy(), "generated.rego": parsed})
	if compiler.Failed() {
		return "", fmt.Errorf("cel: generated module does not compile: %w", compiler.Errors)
	}
	return text, nil
}

// renderValues builds and prints the module of value rules in package path.
func renderValues(path ast.Ref, values map[string]*Value) (*ast.Module, string, error) {
	mod := &ast.Module{
		Package: &ast.Package{Path: path},
		Imports: []*ast.Import{celImport.Copy()},
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := checkRuleName(name); err != nil {
			return nil, "", err
		}
		v := values[name]
		if v == nil || v.Term == nil {
			return nil, "", fmt.Errorf("cel: value %q has no term", name)
		}
		body := v.Body.Copy()
		if len(body) == 0 {
			// What the parser makes of `name := term`, and what the formatter prints as such.
			body = ast.NewBody(ast.NewExpr(ast.BooleanTerm(true)))
		}
		head := ast.NewHead(ast.Var(name), nil, v.Term.Copy())
		head.Assign = true
		mod.Rules = append(mod.Rules, &ast.Rule{Head: head, Body: body, Module: mod})
	}
	text, err := format.AstWithOpts(mod, format.Opts{RegoVersion: ast.RegoV1, IgnoreLocations: true})
	if err != nil {
		return nil, "", fmt.Errorf("cel: format: %w", err)
	}
	return mod, string(text), nil
}

// generatedPath is the package path data.mcpgate.generated.<pkg>, as Module builds it.
func generatedPath(pkg string) (ast.Ref, error) {
	path := ast.MustParseRef("data." + GeneratedPackage)
	for seg := range strings.SplitSeq(pkg, ".") {
		if seg == "" {
			return nil, fmt.Errorf("cel: package %q has an empty segment", pkg)
		}
		if err := checkString(seg); err != nil {
			return nil, fmt.Errorf("cel: package %q: %w", pkg, err)
		}
		path = append(path, ast.StringTerm(seg))
	}
	return path, nil
}

// roundTripValues is roundTrip for value rules: the heads (values) must parse back to
// themselves too.
func roundTripValues(mod *ast.Module, text string) (*ast.Module, error) {
	parsed, err := roundTrip(mod, text)
	if err != nil {
		return nil, err
	}
	for i, r := range parsed.Rules {
		want := mod.Rules[i].Head
		if !r.Head.Name.Equal(want.Name) || !r.Head.Assign || r.Head.Value == nil || !r.Head.Value.Equal(want.Value) {
			return nil, fmt.Errorf("cel: rule %v does not parse back to itself", want.Name)
		}
	}
	return parsed, nil
}
