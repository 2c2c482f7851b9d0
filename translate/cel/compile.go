package cel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
	"github.com/open-policy-agent/opa/v1/ast"
)

// ErrExpression is matched (errors.Is) by every *Error.
var ErrExpression = errors.New("cel: invalid expression")

// Error describes why an expression cannot be compiled.
type Error struct {
	Line   int // 1-based; 1 for single-line expressions
	Column int // 1-based, in characters within the line
	Msg    string
}

func (e *Error) Error() string {
	if e.Line > 1 {
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
}

// Unwrap lets callers test for ErrExpression.
func (e *Error) Unwrap() error { return ErrExpression }

// Rule is one compiled CEL expression.
type Rule struct {
	// Body holds exactly when the expression evaluates to true. It calls functions of the
	// prelude (package mcpgate.cel) as cel.<name>, so it belongs in a module that imports
	// data.mcpgate.cel, as Module's output does.
	Body ast.Body
	// UsesArguments is true when the expression reads mcp.tool.arguments (or the whole mcp or
	// mcp.tool object): such a rule cannot be decided for list results, which have no arguments.
	UsesArguments bool
	// Refs lists the input paths read (sorted, unique), e.g. "input.jwt.claims.sub"; a path
	// indexed by a computed key is cut before that key.
	Refs []string
}

// Limits on what Compile accepts. The length is agentgateway's (the CRD's maxLength for a CEL
// expression); the nesting depth, below cel-go's default of 250, bounds the size of the Rego
// an attacker-controlled object can make us compile.
const (
	maxExpressionChars = 16384
	maxParseDepth      = 100
)

// maxNesting bounds how deeply the generated Rego nests comprehensions and every bodies: OPA's
// compiler takes time exponential in that depth. Captures are hoisted (see hoist), so only
// macros nested in macros in value context come close.
const maxNesting = 8

// nesting returns the maximum nesting depth of comprehensions and every bodies in x.
func nesting(x any) int {
	depth := 0
	var walk func(x any, d int)
	walk = func(x any, d int) {
		depth = max(depth, d)
		ast.NewGenericVisitor(func(y any) bool {
			switch y := y.(type) {
			case *ast.ArrayComprehension:
				walk(y.Term, d+1)
				walk(y.Body, d+1)
				return true
			case *ast.Every:
				walk(y.Domain, d)
				walk(y.Body, d+1)
				return true
			}
			return false
		}).Walk(x)
	}
	walk(x, 0)
	return depth
}

var celParser = func() *parser.Parser {
	p, err := parser.NewParser(
		parser.ExpressionSizeCodePointLimit(maxExpressionChars),
		parser.MaxRecursionDepth(maxParseDepth),
		// No macros: has(), exists() etc. stay plain calls, which translate more directly
		// than the comprehensions cel-go would expand them into.
		parser.Macros(),
	)
	if err != nil {
		panic(err) // constant options
	}
	return p
}()

// Compile parses one CEL expression and returns a Rego rule body that is satisfied exactly
// when the expression evaluates to true. Every error is an *Error.
func Compile(expr string) (*Rule, error) {
	tree, err := parseExpr(expr)
	if err != nil {
		return nil, err
	}
	c := &compiler{info: tree.SourceInfo(), src: []rune(expr), refs: map[string]bool{}}
	body, err := c.truth(tree.Expr())
	if err != nil {
		return nil, err
	}
	if d := nesting(ast.NewBody(body...)); d > maxNesting {
		return nil, &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("expression nests macros too deeply to translate (%d levels of Rego comprehension; the limit is %d)", d, maxNesting)}
	}
	rule := &Rule{Body: ast.NewBody(body...), UsesArguments: c.usesArguments}
	for r := range c.refs {
		rule.Refs = append(rule.Refs, r)
	}
	slices.Sort(rule.Refs)
	// The static checks above catch the type errors we know of with a precise column; this
	// catches any that remain (OPA's type checker sees literal types through variables), so
	// that a compiled rule always builds a module.
	if err := checkBody(rule.Body); err != nil {
		return nil, &Error{Line: 1, Column: 1, Msg: "cannot translate: " + strings.TrimPrefix(err.Error(), "cel: ")}
	}
	return rule, nil
}

// kind is what the translation knows statically about a value's type: literals and the
// results of some operators have a known kind, input values do not (kindAny).
type kind uint8

const (
	kindAny kind = iota
	kindBool
	kindNumber
	kindString
	kindNull
	kindList
	kindMap
)

func (k kind) String() string {
	return [...]string{"dyn", "bool", "number", "string", "null", "list", "map"}[k]
}

// value is the translation of a CEL sub-expression: term has the CEL value once the
// statements in pre hold; either failing (undefined) stands for a CEL evaluation error.
type value struct {
	pre  []*ast.Expr
	term *ast.Term
	kind kind
	// literal: term is a constant, always defined.
	literal bool
	// boolean: term is a call returning only true or false, so it can stand alone as a body
	// expression meaning "is true".
	boolean bool
	// schema of the input object this term refers to, when it refers to one whose fields are
	// fixed (mcp, mcp.tool); nil when any field may be selected.
	schema *schema
	// opaque: OPA's type checker sees the term as "any" (input data, dyn()), so comparing it
	// with anything type-checks.
	opaque bool
}

// schema lists the fields the gateway fills for a fixed part of the input.
type schema struct {
	name   string // in CEL
	fields map[string]*schema
}

var mcpSchema = &schema{name: "mcp", fields: map[string]*schema{
	"method": nil,
	"tool": {name: "mcp.tool", fields: map[string]*schema{
		"name":      nil,
		"target":    nil,
		"arguments": nil,
	}},
	"prompt":   nil,
	"resource": nil,
}}

// roots maps CEL's root variables to input paths.
var roots = map[string]struct {
	ref    ast.Ref
	schema *schema
}{
	"mcp":     {ast.MustParseRef("input.mcp"), mcpSchema},
	"jwt":     {ast.MustParseRef("input.jwt.claims"), nil},
	"request": {ast.MustParseRef("input.request"), nil},
	"source":  {ast.MustParseRef("input.source"), nil},
}

var argumentsRef = ast.MustParseRef("input.mcp.tool.arguments")

// preludeRef is how compiled bodies call prelude functions (import data.mcpgate.cel).
func preludeCall(name string, args ...*ast.Term) *ast.Term {
	return ast.CallTerm(append([]*ast.Term{ast.RefTerm(ast.VarTerm(preludeImportAlias), ast.StringTerm(name))}, args...)...)
}

const preludeImportAlias = "cel"

// scope is one macro's iteration variable.
type scope struct {
	name string
	term *ast.Term
	kind kind
	// opaque: OPA's type checker knows nothing about the variable's values either
	// (it iterates over input data, not over a literal).
	opaque bool
}

type compiler struct {
	info          *celast.SourceInfo
	src           []rune
	scopes        []scope // macro iteration variables, innermost last
	next          int     // counter for fresh Rego variable names
	refs          map[string]bool
	usesArguments bool
	total         map[*ast.Expr]bool // statements that always succeed (capture assignments)
}

// errorf reports an error at e's own position: an operator, a literal, the name of a
// variable, or for a field selection the field's name (cel-go places selections at the dot).
func (c *compiler) errorf(e celast.Expr, format string, args ...any) error {
	if r, ok := c.info.GetOffsetRange(e.ID()); ok && e.Kind() == celast.SelectKind {
		if i := int(r.Start); i >= 0 && i+1 < len(c.src) && c.src[i] == '.' {
			return c.errorAt(c.info.GetLocationByOffset(r.Start+1), format, args...)
		}
	}
	return c.errorAt(c.info.GetStartLocation(e.ID()), format, args...)
}

// errorStart reports an error about a whole operand at its first character.
func (c *compiler) errorStart(e celast.Expr, format string, args ...any) error {
	start := int32(-1)
	celast.PreOrderVisit(e, celast.NewExprVisitor(func(x celast.Expr) {
		if r, ok := c.info.GetOffsetRange(x.ID()); ok && (start < 0 || r.Start < start) {
			start = r.Start
		}
	}))
	if start < 0 {
		return c.errorf(e, format, args...)
	}
	return c.errorAt(c.info.GetLocationByOffset(start), format, args...)
}

func (c *compiler) errorAt(loc common.Location, format string, args ...any) error {
	line, col := position(loc)
	return &Error{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// position converts a cel-go location (1-based line, 0-based column) to Error's 1-based pair;
// an unknown location (cel-go has none for an empty expression) becomes 1, 1.
func position(loc common.Location) (line, col int) {
	line, col = loc.Line(), loc.Column()+1
	if line < 1 || col < 1 {
		return max(line, 1), 1
	}
	return line, col
}

// callError reports an error about a call at the function's name rather than at the
// parenthesis, where cel-go locates calls.
func (c *compiler) callError(e celast.Expr, format string, args ...any) error {
	name := e.AsCall().FunctionName()
	if r, ok := c.info.GetOffsetRange(e.ID()); ok {
		i := int(r.Start)
		for i > 0 && i <= len(c.src) && (c.src[i-1] == ' ' || c.src[i-1] == '\t') {
			i--
		}
		n := utf8.RuneCountInString(name)
		if i-n >= 0 && i <= len(c.src) && string(c.src[i-n:i]) == name {
			return c.errorAt(c.info.GetLocationByOffset(int32(i-n)), format, args...)
		}
	}
	return c.errorf(e, format, args...)
}

// fresh returns a new Rego variable; generated names end in a digit and never contain an
// underscore, so they cannot collide with the names given to CEL variables.
func (c *compiler) fresh(prefix string) *ast.Term {
	c.next++
	return ast.VarTerm(prefix + strconv.Itoa(c.next))
}

// str makes a string term, rejecting characters that do not belong in policy source.
func (c *compiler) str(e celast.Expr, s string) (*ast.Term, error) {
	if err := checkString(s); err != nil {
		return nil, c.errorf(e, "%v", err)
	}
	return ast.StringTerm(s), nil
}

// checkString rejects strings with non-printable characters (control characters, bidi
// overrides, line separators): OPA prints strings Go-quoted and parses them JSON-quoted, which
// agree only on printable text, and such characters hide what a policy says from its reader.
func checkString(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("string is not valid UTF-8")
	}
	for i, r := range s {
		if !strconv.IsPrint(r) {
			return fmt.Errorf("string contains the non-printable character %U at byte %d", r, i)
		}
	}
	return nil
}

func isBoolLiteral(e celast.Expr) (bool, bool) {
	if e.Kind() != celast.LiteralKind {
		return false, false
	}
	b, ok := e.AsLiteral().(types.Bool)
	return bool(b), ok
}

// ---------------------------------------------------------------------------------------
// Truth and falsity contexts: bodies that hold exactly when an expression is true (false).

// truth returns a body that holds exactly when e evaluates to true.
func (c *compiler) truth(e celast.Expr) ([]*ast.Expr, error) {
	if b, ok := isBoolLiteral(e); ok {
		return []*ast.Expr{ast.NewExpr(ast.BooleanTerm(b))}, nil
	}
	if e.Kind() == celast.CallKind {
		call := e.AsCall()
		args := call.Args()
		switch fn := call.FunctionName(); {
		case fn == operators.LogicalAnd:
			// a && b is true exactly when both are: conjunction, no error absorption needed.
			var out []*ast.Expr
			for _, a := range flatten(e, operators.LogicalAnd) {
				t, err := c.truth(a)
				if err != nil {
					return nil, err
				}
				out = append(out, t...)
			}
			return out, nil
		case fn == operators.LogicalNot:
			return c.falsity(args[0])
		case fn == operators.Equals || fn == operators.NotEquals:
			a, b, err := c.pair(args[0], args[1])
			if err != nil {
				return nil, err
			}
			return append(concat(a.pre, b.pre), c.equality(a, b, fn == operators.NotEquals)...), nil
		case fn == operators.In:
			x, coll, err := c.pair(args[0], args[1])
			if err != nil {
				return nil, err
			}
			if _, ok := coll.term.Value.(*ast.Array); ok {
				// Literal list: Rego's own membership test reads best.
				return append(concat(x.pre, coll.pre), c.lead(ast.Member.Expr(x.term, coll.term))...), nil
			}
			v, err := c.member(e, x, coll)
			if err != nil {
				return nil, err
			}
			return append(v.pre, c.isTrue(v)...), nil
		case call.IsMemberFunction() && (fn == operators.Exists || fn == operators.All) && len(args) == 2:
			return c.quantifier(e, fn == operators.Exists, true)
		}
	}
	v, err := c.value(e)
	if err != nil {
		return nil, err
	}
	return append(v.pre, c.isTrue(v)...), nil
}

// falsity returns a body that holds exactly when e evaluates to false.
func (c *compiler) falsity(e celast.Expr) ([]*ast.Expr, error) {
	if b, ok := isBoolLiteral(e); ok {
		return []*ast.Expr{ast.NewExpr(ast.BooleanTerm(!b))}, nil
	}
	if e.Kind() == celast.CallKind {
		call := e.AsCall()
		args := call.Args()
		switch fn := call.FunctionName(); {
		case fn == operators.LogicalOr:
			var out []*ast.Expr
			for _, a := range flatten(e, operators.LogicalOr) {
				f, err := c.falsity(a)
				if err != nil {
					return nil, err
				}
				out = append(out, f...)
			}
			return out, nil
		case fn == operators.LogicalNot:
			return c.truth(args[0])
		case fn == operators.Equals || fn == operators.NotEquals:
			a, b, err := c.pair(args[0], args[1])
			if err != nil {
				return nil, err
			}
			// != (==) is only evaluated when both sides are defined: a missing
			// claim makes the body fail, as the CEL error makes the rule not match.
			return append(concat(a.pre, b.pre), c.equality(a, b, fn == operators.Equals)...), nil
		case fn == operators.Less || fn == operators.LessEquals || fn == operators.Greater || fn == operators.GreaterEquals:
			// Within one comparable type the order is total: !(a < b) is a >= b.
			a, b, err := c.pair(args[0], args[1])
			if err != nil {
				return nil, err
			}
			v := c.compare(inverse[fn], a, b)
			return append(v.pre, c.isTrue(v)...), nil
		case call.IsMemberFunction() && (fn == operators.Exists || fn == operators.All) && len(args) == 2:
			return c.quantifier(e, fn == operators.Exists, false)
		}
	}
	v, err := c.value(e)
	if err != nil {
		return nil, err
	}
	return append(v.pre, c.isFalse(v)...), nil
}

// equality is the body expression a == b (or a != b). OPA's compiler turns a body-level ==
// into unification, which its type checker rejects when the two sides have different static
// types (`count(x) == "a"`), while CEL simply yields false. So unless a side is opaque or both
// are scalars of one kind, the comparison goes through a prelude function.
func (c *compiler) equality(a, b value, negate bool) []*ast.Expr {
	if negate {
		return c.lead(ast.NotEqual.Expr(a.term, b.term))
	}
	if a.opaque || b.opaque || (a.kind == b.kind && scalar(a.kind)) {
		return c.lead(ast.Equal.Expr(a.term, b.term))
	}
	return []*ast.Expr{ast.NewExpr([]*ast.Term(preludeCall("equals", a.term, b.term).Value.(ast.Call)))}
}

func scalar(k kind) bool {
	return k == kindBool || k == kindNumber || k == kindString || k == kindNull
}

// lead keeps a body expression from starting with a negative number: printed on its own line
// after another expression, "-7 % 2 == 1" would parse as a continuation of the line above
// ("x == 1 - 7 % 2 == 1"). The leading operand is bound to a variable first instead.
func (c *compiler) lead(e *ast.Expr) []*ast.Expr {
	terms, ok := e.Terms.([]*ast.Term)
	if !ok || len(terms) < 2 || !negativeLead(terms[1]) {
		return []*ast.Expr{e}
	}
	t := c.fresh("t")
	first := terms[1]
	terms[1] = t
	return []*ast.Expr{ast.Assign.Expr(t.Copy(), first), e}
}

// negativeLead reports whether t prints starting with a minus sign: a negative number, or an
// infix operation whose left operand does.
func negativeLead(t *ast.Term) bool {
	switch v := t.Value.(type) {
	case ast.Number:
		return strings.HasPrefix(string(v), "-")
	case ast.Call:
		if len(v) > 1 && infix[v[0].String()] {
			return negativeLead(v[1])
		}
	}
	return false
}

// infix lists the built-ins that OPA's formatter prints as operators.
var infix = func() map[string]bool {
	m := map[string]bool{}
	for _, b := range ast.DefaultBuiltins {
		if b.Infix != "" {
			m[b.Ref().String()] = true
		}
	}
	return m
}()

var inverse = map[string]string{
	operators.Less:          operators.GreaterEquals,
	operators.LessEquals:    operators.Greater,
	operators.Greater:       operators.LessEquals,
	operators.GreaterEquals: operators.Less,
}

// isTrue is the body expression "v is true".
func (c *compiler) isTrue(v value) []*ast.Expr {
	if call, ok := v.term.Value.(ast.Call); v.boolean && ok {
		// A call standing as an expression is written as its operator and operands.
		return c.lead(ast.NewExpr([]*ast.Term(call)))
	}
	return c.equality(v, value{term: ast.BooleanTerm(true), kind: kindBool}, false)
}

// isFalse is the body expression "v is false".
func (c *compiler) isFalse(v value) []*ast.Expr {
	return c.equality(v, value{term: ast.BooleanTerm(false), kind: kindBool}, false)
}

// quantifier translates l.exists(x, p) and l.all(x, p) in a truth (want=true) or falsity
// context. exists is true iff some element satisfies p, whatever errors others raise; it is
// false iff p is false for every element. all is the dual.
func (c *compiler) quantifier(e celast.Expr, exists, want bool) ([]*ast.Expr, error) {
	call := e.AsCall()
	rng, x, err := c.macroRange(e)
	if err != nil {
		return nil, err
	}
	defer c.pop()
	pred := call.Args()[1]
	if exists == want {
		// some x in l; <p is want>
		body, err := c.context(pred, want)
		if err != nil {
			return nil, err
		}
		some := ast.NewExpr(&ast.SomeDecl{Symbols: []*ast.Term{ast.Member.Call(x, c.iterable(rng))}})
		return append(append(rng.pre, some), body...), nil
	}
	// every x in l { <p is want> }. The range is bound first: `every` over an undefined
	// domain must not hold vacuously.
	body, err := c.context(pred, want)
	if err != nil {
		return nil, err
	}
	l := c.fresh("l")
	every := ast.NewExpr(&ast.Every{Value: x, Domain: l, Body: ast.NewBody(body...)})
	return append(rng.pre, ast.Assign.Expr(l.Copy(), c.iterable(rng)), every), nil
}

func (c *compiler) context(e celast.Expr, want bool) ([]*ast.Expr, error) {
	if want {
		return c.truth(e)
	}
	return c.falsity(e)
}

// flatten returns the operands of a chain of one associative operator (a || b || c).
func flatten(e celast.Expr, op string) []celast.Expr {
	if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == op {
		var out []celast.Expr
		for _, a := range e.AsCall().Args() {
			out = append(out, flatten(a, op)...)
		}
		return out
	}
	return []celast.Expr{e}
}

func concat(lists ...[]*ast.Expr) []*ast.Expr {
	var out []*ast.Expr
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// ---------------------------------------------------------------------------------------
// Value context.

// capture turns a value into an array of zero (CEL error) or one element, which is always
// defined: the way error-absorbing operators see their operands. The capture is bound to a
// variable by a statement returned for the caller's pre; see hoist for why.
func (c *compiler) capture(v value) ([]*ast.Expr, *ast.Term) {
	if v.literal && len(v.pre) == 0 {
		return nil, ast.ArrayTerm(v.term)
	}
	hoisted, kept := c.hoist(v.pre, nil)
	x := c.fresh("v")
	body := append(kept, ast.Assign.Expr(x.Copy(), v.term))
	cv := c.fresh("c")
	stmt := ast.Assign.Expr(cv.Copy(), ast.ArrayComprehensionTerm(x, ast.NewBody(body...)))
	if c.total == nil {
		c.total = map[*ast.Expr]bool{}
	}
	c.total[stmt] = true
	return append(hoisted, stmt), cv
}

// hoist splits statements about to be nested in a comprehension body into those that can stay
// outside (hoisted) and those that must go inside (kept). OPA's compiler takes time exponential
// in the nesting depth of comprehensions (a dozen levels take minutes), and nesting would
// otherwise grow with every level of ||, && and ?: in value context. A statement can be
// hoisted when it always succeeds (the assignment of a capture), so running it outside changes
// nothing, and reads no variable bound inside: the comprehension's own variables (bound) or
// those of kept statements.
func (c *compiler) hoist(stmts []*ast.Expr, bound []*ast.Term) (hoisted, kept []*ast.Expr) {
	inside := map[ast.Var]bool{}
	for _, t := range bound {
		inside[t.Value.(ast.Var)] = true
	}
	for _, stmt := range stmts {
		depends := false
		ast.WalkVars(stmt, func(v ast.Var) bool {
			depends = depends || inside[v]
			return depends
		})
		if c.total[stmt] && !depends {
			hoisted = append(hoisted, stmt)
			continue
		}
		kept = append(kept, stmt)
		ast.WalkVars(stmt, func(v ast.Var) bool {
			inside[v] = true // over-approximates the variables it binds: safe
			return false
		})
	}
	return hoisted, kept
}

func (c *compiler) pair(a, b celast.Expr) (value, value, error) {
	va, err := c.value(a)
	if err != nil {
		return value{}, value{}, err
	}
	vb, err := c.value(b)
	if err != nil {
		return value{}, value{}, err
	}
	return va, vb, nil
}

func (c *compiler) value(e celast.Expr) (value, error) {
	switch e.Kind() {
	case celast.LiteralKind:
		return c.literal(e)
	case celast.IdentKind, celast.SelectKind:
		return c.reference(e)
	case celast.ListKind:
		return c.list(e)
	case celast.MapKind:
		return c.mapLiteral(e)
	case celast.CallKind:
		return c.call(e)
	case celast.StructKind:
		return value{}, c.errorf(e, "message construction is not supported")
	case celast.ComprehensionKind:
		return value{}, c.errorf(e, "comprehensions are not supported")
	default:
		return value{}, c.errorf(e, "unsupported expression")
	}
}

func (c *compiler) literal(e celast.Expr) (value, error) {
	switch l := e.AsLiteral().(type) {
	case types.Bool:
		return value{term: ast.BooleanTerm(bool(l)), kind: kindBool, literal: true}, nil
	case types.Int:
		return value{term: ast.NumberTerm(json.Number(strconv.FormatInt(int64(l), 10))), kind: kindNumber, literal: true}, nil
	case types.Uint:
		return value{term: ast.NumberTerm(json.Number(strconv.FormatUint(uint64(l), 10))), kind: kindNumber, literal: true}, nil
	case types.Double:
		f := float64(l)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return value{}, c.errorf(e, "double literal out of range")
		}
		return value{term: ast.NumberTerm(json.Number(strconv.FormatFloat(f, 'g', -1, 64))), kind: kindNumber, literal: true}, nil
	case types.String:
		t, err := c.str(e, string(l))
		if err != nil {
			return value{}, err
		}
		return value{term: t, kind: kindString, literal: true}, nil
	case types.Null:
		return value{term: ast.NullTerm(), kind: kindNull, literal: true}, nil
	case types.Bytes:
		return value{}, c.errorf(e, "bytes literals are not supported")
	default:
		return value{}, c.errorf(e, "unsupported literal")
	}
}

func (c *compiler) list(e celast.Expr) (value, error) {
	l := e.AsList()
	if len(l.OptionalIndices()) > 0 {
		return value{}, c.errorf(e, "optional list elements are not supported")
	}
	out := value{kind: kindList, literal: true}
	var elems []*ast.Term
	for _, el := range l.Elements() {
		v, err := c.value(el)
		if err != nil {
			return value{}, err
		}
		out.pre = append(out.pre, v.pre...)
		out.literal = out.literal && v.literal
		elems = append(elems, v.term)
	}
	out.term = ast.ArrayTerm(elems...)
	return out, nil
}

// mapLiteral accepts constant keys only: that rules out duplicate keys appearing at run time,
// which CEL reports as an error and Rego would resolve silently.
func (c *compiler) mapLiteral(e celast.Expr) (value, error) {
	out := value{kind: kindMap, literal: true}
	obj := ast.NewObject()
	for _, entry := range e.AsMap().Entries() {
		me := entry.AsMapEntry()
		if me.IsOptional() {
			return value{}, c.errorf(me.Key(), "optional map entries are not supported")
		}
		if me.Key().Kind() != celast.LiteralKind {
			return value{}, c.errorStart(me.Key(), "map keys must be constants")
		}
		k, err := c.literal(me.Key())
		if err != nil {
			return value{}, err
		}
		if _, double := me.Key().AsLiteral().(types.Double); double || (k.kind != kindString && k.kind != kindNumber && k.kind != kindBool) {
			return value{}, c.errorf(me.Key(), "map keys must be strings, integers or booleans")
		}
		if obj.Get(k.term) != nil {
			return value{}, c.errorf(me.Key(), "duplicate map key %v", k.term)
		}
		v, err := c.value(me.Value())
		if err != nil {
			return value{}, err
		}
		out.pre = append(out.pre, v.pre...)
		out.literal = out.literal && v.literal
		obj.Insert(k.term, v.term)
	}
	out.term = ast.NewTerm(obj)
	return out, nil
}

// ---------------------------------------------------------------------------------------
// Variables, field selection and indexing.

// reference translates identifiers, field selections and indexing, and records the input
// path read.
func (c *compiler) reference(e celast.Expr) (value, error) {
	v, err := c.access(e)
	if err != nil {
		return value{}, err
	}
	c.record(v.term)
	return v, nil
}

func (c *compiler) record(t *ast.Term) {
	ref, ok := t.Value.(ast.Ref)
	if !ok || !ref.HasPrefix(ast.InputRootRef) {
		return
	}
	// Cut at the first computed key: the path read beyond it depends on the input.
	for i, elem := range ref[1:] {
		switch elem.Value.(type) {
		case ast.String, ast.Number, ast.Boolean, ast.Null:
			continue
		}
		ref = ref[:i+1]
		break
	}
	if ref.HasPrefix(argumentsRef) || argumentsRef.HasPrefix(ref) {
		c.usesArguments = true
	}
	c.refs[ref.String()] = true
}

func isAccess(e celast.Expr) bool {
	switch e.Kind() {
	case celast.IdentKind, celast.SelectKind:
		return true
	case celast.CallKind:
		return e.AsCall().FunctionName() == operators.Index
	}
	return false
}

// access is reference without recording, so that only whole paths are recorded.
func (c *compiler) access(e celast.Expr) (value, error) {
	switch e.Kind() {
	case celast.IdentKind:
		name := e.AsIdent()
		for i := len(c.scopes) - 1; i >= 0; i-- {
			if s := c.scopes[i]; s.name == name {
				return value{term: s.term.Copy(), kind: s.kind, opaque: s.opaque}, nil
			}
		}
		if r, ok := roots[name]; ok {
			return value{term: ast.NewTerm(r.ref.Copy()), schema: r.schema, opaque: true}, nil
		}
		return value{}, c.errorf(e, "unknown variable %q (want mcp, jwt, request or source)", name)
	case celast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return value{}, c.errorf(e, "unsupported field test")
		}
		base, err := c.operand(sel.Operand())
		if err != nil {
			return value{}, err
		}
		key, err := c.str(e, sel.FieldName())
		if err != nil {
			return value{}, err
		}
		return c.index(e, base, value{term: key, kind: kindString, literal: true}, "select field "+strconv.Quote(sel.FieldName()))
	default: // operators.Index
		args := e.AsCall().Args()
		base, err := c.operand(args[0])
		if err != nil {
			return value{}, err
		}
		key, err := c.value(args[1])
		if err != nil {
			return value{}, err
		}
		return c.index(e, base, key, "index")
	}
}

func (c *compiler) operand(e celast.Expr) (value, error) {
	if isAccess(e) {
		return c.access(e)
	}
	return c.value(e)
}

// index translates base.key and base[key].
func (c *compiler) index(e celast.Expr, base, key value, what string) (value, error) {
	switch base.kind {
	case kindAny, kindMap:
	case kindList:
		if key.kind != kindAny && key.kind != kindNumber {
			return value{}, c.errorf(e, "cannot %s of a list", what)
		}
	default:
		return value{}, c.errorf(e, "cannot %s of a %v", what, base.kind)
	}
	out := value{pre: concat(base.pre, key.pre), opaque: base.opaque}
	if base.schema != nil {
		// mcp and mcp.tool have fixed fields: reject typos instead of never matching.
		s, ok := key.term.Value.(ast.String)
		if !ok {
			return value{}, c.errorf(e, "fields of %s must be named", base.schema.name)
		}
		child, ok := base.schema.fields[string(s)]
		if !ok {
			return value{}, c.errorf(e, "unknown field %q of %s (known: %s)", string(s), base.schema.name, fieldNames(base.schema))
		}
		out.schema = child
	}
	switch {
	case key.literal && base.literal:
		// Indexing a literal with a constant: the element is known, and so is its kind
		// (which OPA's type checker will hold us to).
		elem, err := base.term.Value.Find(ast.Ref{key.term})
		if err != nil {
			return value{}, c.errorf(e, "no element %v in %v", key.term, base.term)
		}
		out.kind = termKind(ast.NewTerm(elem))
	case base.literal:
		out.kind = valueKind(base.term)
	}
	var ref ast.Ref
	switch v := base.term.Value.(type) {
	case ast.Ref:
		ref = v
	case ast.Var:
		ref = ast.Ref{base.term}
	default:
		t := c.fresh("t")
		out.pre = append(out.pre, ast.Assign.Expr(t, base.term))
		ref = ast.Ref{t.Copy()}
	}
	k := key.term
	switch k.Value.(type) {
	case ast.String, ast.Number, ast.Boolean, ast.Null, ast.Var, ast.Ref:
	default:
		t := c.fresh("t")
		out.pre = append(out.pre, ast.Assign.Expr(t, k))
		k = t.Copy()
	}
	out.term = ast.NewTerm(ref.Append(k))
	return out, nil
}

func fieldNames(s *schema) string {
	var names []string
	for n := range s.fields {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// ---------------------------------------------------------------------------------------
// Calls: operators, functions and macros.

func (c *compiler) call(e celast.Expr) (value, error) {
	call := e.AsCall()
	fn, args := call.FunctionName(), call.Args()
	member := call.IsMemberFunction()
	switch fn {
	case operators.LogicalAnd, operators.LogicalOr:
		var caps []*ast.Term
		var pre []*ast.Expr
		for _, a := range flatten(e, fn) {
			v, err := c.value(a)
			if err != nil {
				return value{}, err
			}
			stmts, cv := c.capture(v)
			pre = append(pre, stmts...)
			caps = append(caps, cv)
		}
		name := "logical_and"
		if fn == operators.LogicalOr {
			name = "logical_or"
		}
		return value{pre: pre, term: preludeCall(name, ast.ArrayTerm(caps...)), kind: kindBool, boolean: true}, nil
	case operators.LogicalNot:
		v, err := c.value(args[0])
		if err != nil {
			return value{}, err
		}
		return value{pre: v.pre, term: preludeCall("logical_not", v.term), kind: kindBool, boolean: true}, nil
	case operators.Conditional:
		cond, err := c.value(args[0])
		if err != nil {
			return value{}, err
		}
		a, b, err := c.pair(args[1], args[2])
		if err != nil {
			return value{}, err
		}
		k := kindAny
		if a.kind == b.kind {
			k = a.kind
		}
		preA, capA := c.capture(a)
		preB, capB := c.capture(b)
		return value{pre: concat(cond.pre, preA, preB), term: preludeCall("conditional", cond.term, capA, capB), kind: k}, nil
	case operators.Equals, operators.NotEquals:
		a, b, err := c.pair(args[0], args[1])
		if err != nil {
			return value{}, err
		}
		op := ast.Equal
		if fn == operators.NotEquals {
			op = ast.NotEqual
		}
		return value{pre: concat(a.pre, b.pre), term: op.Call(a.term, b.term), kind: kindBool, boolean: true}, nil
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		a, b, err := c.pair(args[0], args[1])
		if err != nil {
			return value{}, err
		}
		return c.compare(fn, a, b), nil
	case operators.In:
		x, coll, err := c.pair(args[0], args[1])
		if err != nil {
			return value{}, err
		}
		return c.member(e, x, coll)
	case operators.Index:
		return c.reference(e)
	case operators.Add, operators.Subtract, operators.Multiply, operators.Divide, operators.Modulo:
		a, b, err := c.pair(args[0], args[1])
		if err != nil {
			return value{}, err
		}
		return c.arithmetic(e, fn, a, b)
	case operators.Negate:
		v, err := c.value(args[0])
		if err != nil {
			return value{}, err
		}
		if v.kind != kindAny && v.kind != kindNumber {
			return value{}, c.errorf(e, "cannot negate a %v", v.kind)
		}
		return value{pre: v.pre, term: ast.Minus.Call(ast.IntNumberTerm(0), v.term), kind: kindNumber}, nil
	}
	if member {
		switch fn {
		case operators.Exists, operators.All, operators.ExistsOne, operators.Map, operators.Filter:
			return c.macro(e)
		}
	}
	return c.function(e)
}

// member translates x in coll: list membership or map key membership.
func (c *compiler) member(e celast.Expr, x, coll value) (value, error) {
	if coll.kind != kindAny && coll.kind != kindList && coll.kind != kindMap {
		return value{}, c.errorf(e, "'in' needs a list or map, not a %v", coll.kind)
	}
	return value{pre: concat(x.pre, coll.pre), term: preludeCall("member", x.term, coll.term), kind: kindBool, boolean: true}, nil
}

// compare translates <, <=, >, >=. Rego orders values of different types (null < false < 0 <
// "" ...) while CEL reports an error, so unless both kinds are known to agree the comparison
// goes through a prelude function that checks the types.
func (c *compiler) compare(fn string, a, b value) value {
	out := value{pre: concat(a.pre, b.pre), kind: kindBool, boolean: true}
	if a.kind == b.kind && (a.kind == kindNumber || a.kind == kindString) {
		op := map[string]*ast.Builtin{
			operators.Less: ast.LessThan, operators.LessEquals: ast.LessThanEq,
			operators.Greater: ast.GreaterThan, operators.GreaterEquals: ast.GreaterThanEq,
		}[fn]
		out.term = op.Call(a.term, b.term)
		return out
	}
	name := map[string]string{
		operators.Less: "less", operators.LessEquals: "less_or_equal",
		operators.Greater: "greater", operators.GreaterEquals: "greater_or_equal",
	}[fn]
	out.term = preludeCall(name, a.term, b.term)
	return out
}

func (c *compiler) arithmetic(e celast.Expr, fn string, a, b value) (value, error) {
	out := value{pre: concat(a.pre, b.pre), kind: kindNumber}
	known := func(k kind) bool { return k != kindAny }
	if fn == operators.Add {
		switch {
		case known(a.kind) && known(b.kind) && a.kind != b.kind,
			a.kind == kindBool || a.kind == kindNull || a.kind == kindMap,
			b.kind == kindBool || b.kind == kindNull || b.kind == kindMap:
			return value{}, c.errorf(e, "no '+' for %v and %v", a.kind, b.kind)
		case a.kind == kindNumber || b.kind == kindNumber:
			out.term = ast.Plus.Call(a.term, b.term)
		case a.kind == kindString || b.kind == kindString:
			out.kind = kindString
			out.term = ast.Concat.Call(ast.StringTerm(""), ast.ArrayTerm(a.term, b.term))
		case a.kind == kindList || b.kind == kindList:
			out.kind = kindList
			out.term = ast.ArrayConcat.Call(a.term, b.term)
		default:
			out.kind = kindAny
			out.term = preludeCall("add", a.term, b.term)
		}
		return out, nil
	}
	for _, k := range []kind{a.kind, b.kind} {
		if k != kindAny && k != kindNumber {
			return value{}, c.errorf(e, "no arithmetic on a %v", k)
		}
	}
	switch fn {
	case operators.Subtract:
		out.term = ast.Minus.Call(a.term, b.term)
	case operators.Multiply:
		out.term = ast.Multiply.Call(a.term, b.term)
	case operators.Divide:
		out.term = preludeCall("divide", a.term, b.term)
	default: // Modulo: Rego's % is defined on integers only, as CEL's is.
		out.term = ast.Rem.Call(a.term, b.term)
	}
	return out, nil
}

// function translates named functions, in global (size(x)) or member (x.size()) form.
func (c *compiler) function(e celast.Expr) (value, error) {
	call := e.AsCall()
	fn := call.FunctionName()
	args := call.Args()
	if call.IsMemberFunction() {
		// Receiver first, as in the global form.
		args = append([]celast.Expr{call.Target()}, args...)
	}
	arity := func(n int) error {
		if len(args) != n {
			return c.callError(e, "%s() takes %d argument(s), got %d", fn, n-btoi(call.IsMemberFunction()), len(args)-btoi(call.IsMemberFunction()))
		}
		return nil
	}
	var vs []value
	argValues := func() error {
		for _, a := range args {
			v, err := c.value(a)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return nil
	}
	pre := func() []*ast.Expr {
		var out []*ast.Expr
		for _, v := range vs {
			out = append(out, v.pre...)
		}
		return out
	}
	want := func(i int, kinds ...kind) error {
		if vs[i].kind == kindAny || slices.Contains(kinds, vs[i].kind) {
			return nil
		}
		return c.errorStart(args[i], "%s() does not apply to a %v", fn, vs[i].kind)
	}

	switch fn {
	case operators.Has:
		if call.IsMemberFunction() {
			break
		}
		if err := arity(1); err != nil {
			return value{}, err
		}
		return c.has(e, args[0])
	case "size":
		if err := arity(1); err != nil {
			return value{}, err
		}
		if err := argValues(); err != nil {
			return value{}, err
		}
		if err := want(0, kindString, kindList, kindMap); err != nil {
			return value{}, err
		}
		return value{pre: pre(), term: ast.Count.Call(vs[0].term), kind: kindNumber}, nil
	case "startsWith", "endsWith", "contains", "matches":
		if fn != "matches" && !call.IsMemberFunction() {
			break
		}
		if err := arity(2); err != nil {
			return value{}, err
		}
		if err := argValues(); err != nil {
			return value{}, err
		}
		if err := want(0, kindString); err != nil {
			return value{}, err
		}
		if err := want(1, kindString); err != nil {
			return value{}, err
		}
		s, x := vs[0].term, vs[1].term
		var t *ast.Term
		switch fn {
		case "startsWith":
			t = ast.StartsWith.Call(s, x)
		case "endsWith":
			t = ast.EndsWith.Call(s, x)
		case "contains":
			t = ast.Contains.Call(s, x)
		default:
			if p, ok := x.Value.(ast.String); ok {
				// CEL's regular expressions are RE2, as Go's and so OPA's are.
				if _, err := regexp.Compile(string(p)); err != nil {
					return value{}, c.errorf(args[1], "invalid regular expression: %v", err)
				}
			}
			t = ast.RegexMatch.Call(x, s)
		}
		return value{pre: pre(), term: t, kind: kindBool, boolean: true}, nil
	case "int", "uint", "double", "string", "bool", "dyn":
		if call.IsMemberFunction() {
			break
		}
		if err := arity(1); err != nil {
			return value{}, err
		}
		if err := argValues(); err != nil {
			return value{}, err
		}
		v := vs[0]
		switch fn {
		case "dyn":
			// Through a prelude function, so that OPA's type checker forgets the type too.
			return value{pre: v.pre, term: preludeCall("dyn", v.term), kind: kindAny, opaque: true}, nil
		case "bool":
			if err := want(0, kindBool, kindString); err != nil {
				return value{}, err
			}
			return value{pre: v.pre, term: preludeCall("to_bool", v.term), kind: kindBool, boolean: true}, nil
		case "string":
			if err := want(0, kindBool, kindString, kindNumber); err != nil {
				return value{}, err
			}
			return value{pre: v.pre, term: preludeCall("to_string", v.term), kind: kindString}, nil
		default:
			if err := want(0, kindString, kindNumber); err != nil {
				return value{}, err
			}
			return value{pre: v.pre, term: preludeCall("to_"+fn, v.term), kind: kindNumber}, nil
		}
	}
	return value{}, c.callError(e, "unsupported function %q", fn)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// has translates has(x.f): whether map x has key f. x itself must evaluate: has(a.b.c) with
// a.b missing is an error, not false.
func (c *compiler) has(e, arg celast.Expr) (value, error) {
	if arg.Kind() != celast.SelectKind {
		return value{}, c.errorStart(arg, "has() needs a field selection, like has(jwt.email)")
	}
	sel := arg.AsSelect()
	base, err := c.operand(sel.Operand())
	if err != nil {
		return value{}, err
	}
	if base.kind != kindAny && base.kind != kindMap {
		return value{}, c.errorStart(sel.Operand(), "has() needs a map, not a %v", base.kind)
	}
	key, err := c.str(arg, sel.FieldName())
	if err != nil {
		return value{}, err
	}
	if base.schema != nil {
		if _, ok := base.schema.fields[sel.FieldName()]; !ok {
			return value{}, c.errorf(arg, "unknown field %q of %s (known: %s)", sel.FieldName(), base.schema.name, fieldNames(base.schema))
		}
	}
	if ref, ok := base.term.Value.(ast.Ref); ok {
		c.record(ast.NewTerm(ref.Append(key)))
	} else {
		c.record(base.term)
	}
	return value{pre: base.pre, term: preludeCall("has_field", base.term, key), kind: kindBool, boolean: true}, nil
}

// macroRange checks a macro call's shape, translates its range and declares its iteration
// variable in a new scope (the caller pops it).
func (c *compiler) macroRange(e celast.Expr) (value, *ast.Term, error) {
	call := e.AsCall()
	fn, args := call.FunctionName(), call.Args()
	n := 2
	if fn == operators.Map && len(args) == 3 {
		n = 3
	}
	if len(args) != n {
		if len(args) == 3 && fn != operators.Map {
			return value{}, nil, c.callError(e, "%s() with two iteration variables is not supported", fn)
		}
		return value{}, nil, c.callError(e, "%s() takes %d arguments, got %d", fn, n, len(args))
	}
	if args[0].Kind() != celast.IdentKind {
		return value{}, nil, c.errorf(args[0], "%s() needs an iteration variable name", fn)
	}
	rng, err := c.value(call.Target())
	if err != nil {
		return value{}, nil, err
	}
	if rng.kind != kindAny && rng.kind != kindList && rng.kind != kindMap {
		return value{}, nil, c.errorStart(call.Target(), "%s() needs a list or map, not a %v", fn, rng.kind)
	}
	name := args[0].AsIdent()
	c.next++
	x := ast.VarTerm(name + "_" + strconv.Itoa(c.next))
	c.scopes = append(c.scopes, scope{name: name, term: x, kind: elementKind(rng.term), opaque: rng.opaque})
	return rng, x, nil
}

// elementKind is the kind of what iterating over a literal yields (list elements, map keys),
// when all agree; it lets type errors in a macro body be reported with their column.
func elementKind(t *ast.Term) kind {
	var elems []*ast.Term
	switch v := t.Value.(type) {
	case *ast.Array:
		for i := range v.Len() {
			elems = append(elems, v.Elem(i))
		}
	case ast.Object:
		elems = v.Keys()
	}
	return commonKind(elems)
}

// valueKind is the kind of a literal list's elements or a literal map's values, when all agree.
func valueKind(t *ast.Term) kind {
	var elems []*ast.Term
	switch v := t.Value.(type) {
	case *ast.Array:
		for i := range v.Len() {
			elems = append(elems, v.Elem(i))
		}
	case ast.Object:
		for _, k := range v.Keys() {
			elems = append(elems, v.Get(k))
		}
	}
	return commonKind(elems)
}

func commonKind(elems []*ast.Term) kind {
	k := kindAny
	for i, e := range elems {
		ek := termKind(e)
		if i > 0 && ek != k {
			return kindAny
		}
		k = ek
	}
	return k
}

func termKind(t *ast.Term) kind {
	switch t.Value.(type) {
	case ast.String:
		return kindString
	case ast.Number:
		return kindNumber
	case ast.Boolean:
		return kindBool
	case ast.Null:
		return kindNull
	case *ast.Array:
		return kindList
	case ast.Object:
		return kindMap
	}
	return kindAny
}

func (c *compiler) pop() { c.scopes = c.scopes[:len(c.scopes)-1] }

// iterable is the term to iterate over for a macro range: a list's elements or a map's keys.
func (c *compiler) iterable(rng value) *ast.Term {
	if rng.kind == kindList {
		return rng.term
	}
	return preludeCall("iterable", rng.term)
}

// macro translates the comprehension macros in value context. Each element's predicate or
// transform is captured, so that the prelude applies CEL's error rules over all of them.
func (c *compiler) macro(e celast.Expr) (value, error) {
	call := e.AsCall()
	fn, args := call.FunctionName(), call.Args()
	rng, x, err := c.macroRange(e)
	if err != nil {
		return value{}, err
	}
	defer c.pop()
	l := c.fresh("l")
	pre := append(slices.Clone(rng.pre), ast.Assign.Expr(l, c.iterable(rng)))
	// Each element's predicate or transform is captured inside the comprehension over the
	// range; what does not depend on the element is hoisted out of it.
	var inner []*ast.Expr
	captured := func(e celast.Expr) (*ast.Term, error) {
		v, err := c.value(e)
		if err != nil {
			return nil, err
		}
		stmts, cv := c.capture(v)
		hoisted, kept := c.hoist(stmts, []*ast.Term{x})
		pre = append(pre, hoisted...)
		inner = append(inner, kept...)
		return cv, nil
	}
	each := func(head *ast.Term) *ast.Term {
		some := ast.NewExpr(&ast.SomeDecl{Symbols: []*ast.Term{ast.Member.Call(x.Copy(), l.Copy())}})
		return ast.ArrayComprehensionTerm(head, ast.NewBody(append([]*ast.Expr{some}, inner...)...))
	}
	switch {
	case fn == operators.Map && len(args) == 3:
		p, err := captured(args[1])
		if err != nil {
			return value{}, err
		}
		f, err := captured(args[2])
		if err != nil {
			return value{}, err
		}
		return value{pre: pre, term: preludeCall("map_filter", each(ast.ArrayTerm(p, f))), kind: kindList}, nil
	case fn == operators.Filter:
		p, err := captured(args[1])
		if err != nil {
			return value{}, err
		}
		return value{pre: pre, term: preludeCall("filter", each(ast.ArrayTerm(x.Copy(), p))), kind: kindList}, nil
	}
	body, err := captured(args[1])
	if err != nil {
		return value{}, err
	}
	switch fn {
	case operators.Map:
		return value{pre: pre, term: preludeCall("collect", each(body)), kind: kindList}, nil
	case operators.Exists:
		return value{pre: pre, term: preludeCall("logical_or", each(body)), kind: kindBool, boolean: true}, nil
	case operators.All:
		return value{pre: pre, term: preludeCall("logical_and", each(body)), kind: kindBool, boolean: true}, nil
	default: // ExistsOne
		return value{pre: pre, term: preludeCall("exists_one", each(body)), kind: kindBool, boolean: true}, nil
	}
}
