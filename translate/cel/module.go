package cel

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// Prelude is the Rego module (package mcpgate.cel) that compiled bodies call into. A bundle that
// holds generated modules must hold it too, e.g. at PreludePath. Do not modify it.
//
//go:embed prelude.rego
var Prelude string

// PreludePath is a suggested bundle path for Prelude.
const PreludePath = "mcpgate/cel/prelude.rego"

// GeneratedPackage is the package prefix of the modules Module renders.
const GeneratedPackage = "mcpgate.generated"

var parsedPrelude = sync.OnceValues(func() (*ast.Module, error) {
	return ast.ParseModuleWithOpts(PreludePath, Prelude, ast.ParserOptions{RegoVersion: ast.RegoV1})
})

var ruleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Module renders a complete Rego v1 module, package mcpgate.generated.<pkg>, with one rule per
// entry of rules (`<name> if { <body> }`, in name order), printed with OPA's formatter. The text
// is parsed again and compiled together with Prelude before it is returned, so a module that
// comes back is known to load. pkg is one or more dot-separated segments; a segment that is not
// a Rego identifier is printed quoted (mcpgate.generated["my-policy"]).
func Module(pkg string, rules map[string]*Rule) (string, error) {
	path := ast.MustParseRef("data." + GeneratedPackage)
	for seg := range strings.SplitSeq(pkg, ".") {
		if seg == "" {
			return "", fmt.Errorf("cel: package %q has an empty segment", pkg)
		}
		if err := checkString(seg); err != nil {
			return "", fmt.Errorf("cel: package %q: %w", pkg, err)
		}
		path = append(path, ast.StringTerm(seg))
	}
	mod := &ast.Module{
		Package: &ast.Package{Path: path},
		Imports: []*ast.Import{celImport.Copy()},
	}
	names := make([]string, 0, len(rules))
	for name := range rules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := checkRuleName(name); err != nil {
			return "", err
		}
		r := rules[name]
		if r == nil || len(r.Body) == 0 {
			return "", fmt.Errorf("cel: rule %q has no body", name)
		}
		rule := &ast.Rule{
			Head:   ast.NewHead(ast.Var(name), nil, ast.BooleanTerm(true)),
			Body:   r.Body.Copy(),
			Module: mod,
		}
		mod.Rules = append(mod.Rules, rule)
	}
	text, err := format.AstWithOpts(mod, format.Opts{RegoVersion: ast.RegoV1, IgnoreLocations: true})
	if err != nil {
		return "", fmt.Errorf("cel: format: %w", err)
	}
	if err := check(mod, string(text)); err != nil {
		return "", err
	}
	return string(text), nil
}

func checkRuleName(name string) error {
	switch {
	case !ruleName.MatchString(name):
		return fmt.Errorf("cel: rule name %q is not a Rego identifier", name)
	case slices.Contains(ast.KeywordsForRegoVersion(ast.RegoV1), name),
		name == preludeImportAlias, name == "input", name == "data",
		ast.BuiltinMap[name] != nil:
		// A rule named like a built-in or the import alias would shadow it in the bodies.
		return fmt.Errorf("cel: rule name %q is reserved", name)
	}
	return nil
}

// preludeCompiler has the prelude compiled once, so that checkBody compiles a rule body as a
// query against it (a fraction of the cost of compiling a module with the prelude each time).
var preludeCompiler = sync.OnceValues(func() (*ast.Compiler, error) {
	prelude, err := parsedPrelude()
	if err != nil {
		return nil, fmt.Errorf("cel: prelude: %w", err)
	}
	c := ast.NewCompiler()
	c.Compile(map[string]*ast.Module{PreludePath: prelude.Copy()})
	if c.Failed() {
		return nil, fmt.Errorf("cel: prelude: %w", c.Errors)
	}
	return c, nil
})

// queryCompile serializes use of preludeCompiler: query compilation reads compiler state that
// OPA does not document as safe for concurrent use.
var queryCompile sync.Mutex

var celImport = &ast.Import{Path: ast.RefTerm(ast.DefaultRootDocument, ast.StringTerm("mcpgate"), ast.StringTerm("cel"))}

// checkBody does for one body what check does for a module: print it (inside a module, as
// Module will), parse it back, compare, and compile it as a query in a module that imports the
// prelude.
func checkBody(body ast.Body) error {
	mod := &ast.Module{
		Package: &ast.Package{Path: checkPackage},
		Imports: []*ast.Import{celImport.Copy()},
	}
	mod.Rules = []*ast.Rule{{Head: ast.NewHead(ast.Var("r"), nil, ast.BooleanTerm(true)), Body: body, Module: mod}}
	text, err := format.AstWithOpts(mod, format.Opts{RegoVersion: ast.RegoV1, IgnoreLocations: true})
	if err != nil {
		return fmt.Errorf("cel: format: %w", err)
	}
	parsed, err := roundTrip(mod, string(text))
	if err != nil {
		return err
	}
	return compileBody(parsed, parsed.Rules[0].Body)
}

// compileBody compiles a parsed rule body of mod as a query against the
// compiled prelude, in mod's package and with its imports: the type and
// safety checks module compilation would run on it, without compiling the
// prelude again.
func compileBody(mod *ast.Module, body ast.Body) error {
	comp, err := preludeCompiler()
	if err != nil {
		return err
	}
	// Module compilation turns body-level == into unification before type checking, query
	// compilation does not; do it here so the type checker judges the body as in a module.
	ast.WalkExprs(body, func(e *ast.Expr) bool {
		if e.IsCall() && e.Operator().Equal(ast.Equal.Ref()) && len(e.Operands()) == 2 {
			e.SetOperator(ast.NewTerm(ast.Equality.Ref()))
		}
		return false
	})
	qctx := ast.NewQueryContext().WithPackage(mod.Package).WithImports(mod.Imports)
	queryCompile.Lock()
	defer queryCompile.Unlock()
	if _, err := comp.QueryCompiler().WithContext(qctx).Compile(body); err != nil {
		return fmt.Errorf("cel: generated body does not compile: %w", err)
	}
	return nil
}

var checkPackage = ast.MustParseRef("data." + GeneratedPackage + ".check")

// roundTrip parses the printed module and verifies that it is the module that was printed:
// that strings and structure survived printing.
func roundTrip(mod *ast.Module, text string) (*ast.Module, error) {
	parsed, err := ast.ParseModuleWithOpts("generated.rego", text, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("cel: generated module does not parse: %w", err)
	}
	if !parsed.Package.Path.Equal(mod.Package.Path) || len(parsed.Rules) != len(mod.Rules) {
		return nil, fmt.Errorf("cel: generated module does not parse back to itself")
	}
	for i, r := range parsed.Rules {
		if !r.Body.Equal(mod.Rules[i].Body) {
			return nil, fmt.Errorf("cel: rule %v does not parse back to itself", r.Head.Name)
		}
	}
	return parsed, nil
}

// check parses the printed module back (roundTrip) and compiles each of its
// rule bodies against the compiled prelude (compileBody). The rest of the
// module is fixed by Module itself (package, the prelude import, heads
// `<name> := true`, names checked by checkRuleName), so this is what
// compiling the module with the prelude would find, at a fraction of the
// cost: translating 1,000 policies took seconds when each module was
// compiled with the prelude.
func check(mod *ast.Module, text string) error {
	parsed, err := roundTrip(mod, text)
	if err != nil {
		return err
	}
	for _, r := range parsed.Rules {
		if err := compileBody(parsed, r.Body.Copy()); err != nil {
			return fmt.Errorf("cel: rule %v: %w", r.Head.Name, err)
		}
	}
	return nil
}

// BodyText prints a rule body with OPA's formatter, one expression per line
// without indentation, for inlining into another rule of a module that
// imports data.mcpgate.cel (translate's routes module does, so OPA indexes
// the body's equality tests together with the route's).
func BodyText(r *Rule) (string, error) {
	if r == nil || len(r.Body) == 0 {
		return "", errors.New("cel: empty body")
	}
	text, err := format.AstWithOpts(r.Body.Copy(), format.Opts{RegoVersion: ast.RegoV1, IgnoreLocations: true})
	if err != nil {
		return "", fmt.Errorf("cel: format: %w", err)
	}
	return strings.TrimSpace(string(text)), nil
}
