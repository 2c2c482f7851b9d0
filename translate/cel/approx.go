package cel

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/parser"
)

// CompileApprox compiles the over-approximation (over = true) or under-approximation (over =
// false) of expr with respect to mcp.tool.arguments: arguments-dependent boolean
// sub-expressions are replaced by true or false according to their polarity. The returned Rule
// never reads the arguments (UsesArguments == false). When expr does not read the arguments,
// the result is Compile(expr); when expr does not compile, neither does its approximation.
//
// It serves list results (tools/list), which have no arguments but are filtered by the rules
// written for calls. For an input without arguments, and writing e(A) for the value of expr
// with arguments A:
//
//   - over: if e(A) is true for some A, the approximation is true (Allow and Require rules:
//     a tool that some call may use stays listed);
//   - under: if the approximation is true, e(A) is true for every A (Deny rules: a rule that
//     denies only some calls does not hide the tool).
//
// # Method
//
// The expression is parsed as Compile parses it and walked from the root in boolean context,
// with a polarity that starts positive. At a positive node the approximation has to preserve
// truth (over: e(A) true for some A ⇒ result true; under: result true ⇒ e(A) true for all
// A); at a negative node it has to preserve falsity in the same way (over: e(A) false for
// some A ⇒ result false; under: result false ⇒ e(A) false for all A).
//
//   - a && b and a || b: both operands keep the node's polarity.
//   - !a: a gets the opposite polarity.
//   - c ? a : b where c does not read the arguments: c is kept, a and b keep the polarity
//     (c has one value for all A, so it picks the same branch for all A).
//   - c ? a : b where c reads the arguments: at a positive node it is first rewritten to
//     (c && a) || (!c && b), at a negative node to (c || b) && (!c || a), and that is
//     approximated. The first is true exactly when the conditional is, the second false
//     exactly when it is, error absorption included (when c errors or is not a boolean the
//     conditional errors, and so the first is never true and the second never false), so
//     nothing is lost. Should the rewritten text grow to more than twice the length of expr
//     (c is duplicated), or exceed Compile's limits, the coarser rewriting is used instead, with a' and b' the approximated branches: over,
//     a' || b' at a positive node and a' && b' at a negative one; under, the constant false
//     at a positive node and true at a negative one. (Under, a' && b' and a' || b' would be
//     unsound: for arguments that make c error, the conditional is neither true nor false,
//     whatever its branches.)
//   - Anything else (a comparison, a function call, in, has(), a macro such as exists or all,
//     a field selection, a literal...) is an atom. An atom that does not read the arguments
//     is kept unchanged. One that does (directly, or through the whole mcp or mcp.tool object,
//     as Rule.UsesArguments counts) is replaced by true when over and the polarity is
//     positive or when under and it is negative, and by false otherwise.
//
// Constants are then folded: false && x and x && false become false, true && x becomes x, and
// dually for ||; !true is false, !false is true; true ? a : b is a, false ? a : b is b. All of
// these are exact in CEL (false && x is false even when x errors), and in boolean context a
// value that is not a boolean behaves as an error does, so true && x and x agree there too.
//
// # Why it is sound
//
// Order CEL's possible results false < error < true (a non-boolean counts as an error).
// As the arguments vary, a replaced atom takes values among these three; true is above all of
// them and false below. In this order a && b is the minimum of a and b (false if either is
// false, even if the other errors; true only if both are true) and a || b the maximum, so both
// are monotone in each operand: raising an operand can only raise the result. !x maps false to
// true, true to false and error to error, so it reverses the order, which is why it flips the
// polarity. A conditional with a condition that does not read the arguments is monotone in
// each branch. By induction, at a positive node over (negative under) the rewritten
// expression is at least e(A), and at a positive node under (negative over) at most e(A),
// for every A — for every node that has these two rules only. At the root (positive) this
// gives: over, e(A) = true ⇒ result = true; under, result = true ⇒ e(A) = true. Conditionals
// with an argument-dependent condition are not monotone in this sense (their value may be an
// error where both branches are false), which is why they are rewritten first into forms that
// only &&, || and ! combine and that keep exactly the property the node needs (truth at a
// positive node, falsity at a negative one).
//
// The approximation is exact for the atoms it keeps, since they do not read the arguments and
// so evaluate the same in a list request. It is not the best possible approximation: atoms are
// replaced independently, so mcp.tool.arguments.a < 0 && mcp.tool.arguments.a > 0 (never
// true) over-approximates to true.
//
// # Output
//
// The rewritten expression is printed with cel-go's unparser and compiled with Compile, so
// error positions (rare: the input compiled) refer to the rewritten text, not to expr.
func CompileApprox(expr string, over bool) (*Rule, error) {
	rule, err := Compile(expr)
	if err != nil || !rule.UsesArguments {
		return rule, err
	}
	var firstErr error
	for _, expand := range []bool{true, false} {
		text, err := approximate(expr, over, expand)
		if err == nil {
			rule, err = Compile(text)
		}
		if err == nil && rule.UsesArguments {
			// Cannot happen: every atom that reads the arguments was replaced.
			err = &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("cannot approximate: %q still reads mcp.tool.arguments", text)}
		}
		if err == nil {
			return rule, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// approximate returns the text of the over- or under-approximation of expr (see
// CompileApprox). expand selects the exact rewriting of conditionals whose condition reads the
// arguments; without it they are approximated coarsely, which duplicates nothing, so the text
// stays about as long and as deeply nested as expr.
func approximate(expr string, over, expand bool) (string, error) {
	tree, errs := celParser.Parse(common.NewTextSource(expr))
	if errs != nil && len(errs.GetErrors()) > 0 {
		first := errs.GetErrors()[0]
		line, col := position(first.Location)
		return "", &Error{Line: line, Column: col, Msg: strings.TrimPrefix(first.Message, "Syntax error: ")}
	}
	a := &approximator{
		info:   tree.SourceInfo(),
		src:    []rune(expr),
		fac:    celast.NewExprFactory(),
		over:   over,
		expand: expand,
		deps:   map[int64]bool{},
	}
	celast.PostOrderVisit(tree.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		a.nextID = max(a.nextID, e.ID())
	}))
	out := a.rewrite(tree.Expr(), true)
	if a.steps > maxApproxSteps {
		return "", &Error{Line: 1, Column: 1, Msg: "cannot approximate: the expression is too complex"}
	}
	text, err := unparse(out, a.info)
	if err != nil {
		return "", &Error{Line: 1, Column: 1, Msg: "cannot approximate: " + err.Error()}
	}
	if n := utf8.RuneCountInString(text); expand && n > maxExpandedGrowth*len(a.src)+maxExpandedSlack {
		return "", &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("cannot approximate: the exact rewriting of conditionals is too long (%d characters)", n)}
	}
	// Guard against the unparser: the text must parse back to the rewritten tree.
	// (The rewritten text may exceed the parser's limits when conditionals were expanded.)
	back, errs := celParser.Parse(common.NewTextSource(text))
	if errs != nil && len(errs.GetErrors()) > 0 {
		first := errs.GetErrors()[0]
		return "", &Error{Line: 1, Column: 1, Msg: "cannot approximate: rewritten expression: " + strings.TrimPrefix(first.Message, "Syntax error: ")}
	}
	if !sameExpr(out, back.Expr()) {
		return "", &Error{Line: 1, Column: 1, Msg: fmt.Sprintf("cannot approximate: the rewritten expression does not print faithfully (%.200q)", text)}
	}
	return text, nil
}

// sameExpr reports whether two parse trees are the same expression, ids aside and chains of
// && and || compared as flat lists (the parser balances them, Unparse prints them flat).
func sameExpr(x, y celast.Expr) bool {
	if x.Kind() != y.Kind() {
		// -(1) prints as -1, which parses as a literal: the same value.
		if v, ok := negatedLiteral(x); ok && y.Kind() == celast.LiteralKind {
			return v.Type() == y.AsLiteral().Type() && v.Equal(y.AsLiteral()) == types.True
		}
		if v, ok := negatedLiteral(y); ok && x.Kind() == celast.LiteralKind {
			return v.Type() == x.AsLiteral().Type() && v.Equal(x.AsLiteral()) == types.True
		}
		return false
	}
	switch x.Kind() {
	case celast.LiteralKind:
		lx, ly := x.AsLiteral(), y.AsLiteral()
		return lx.Type() == ly.Type() && lx.Equal(ly) == types.True
	case celast.IdentKind:
		return x.AsIdent() == y.AsIdent()
	case celast.SelectKind:
		sx, sy := x.AsSelect(), y.AsSelect()
		return sx.FieldName() == sy.FieldName() && sx.IsTestOnly() == sy.IsTestOnly() && sameExpr(sx.Operand(), sy.Operand())
	case celast.CallKind:
		cx, cy := x.AsCall(), y.AsCall()
		fn := cx.FunctionName()
		if fn != cy.FunctionName() || cx.IsMemberFunction() != cy.IsMemberFunction() ||
			(cx.IsMemberFunction() && !sameExpr(cx.Target(), cy.Target())) {
			return false
		}
		ax, ay := cx.Args(), cy.Args()
		if fn == operators.LogicalAnd || fn == operators.LogicalOr {
			ax, ay = flatten(x, fn), flatten(y, fn)
		}
		return sameExprs(ax, ay)
	case celast.ListKind:
		lx, ly := x.AsList(), y.AsList()
		return slices.Equal(lx.OptionalIndices(), ly.OptionalIndices()) && sameExprs(lx.Elements(), ly.Elements())
	case celast.MapKind:
		ex, ey := x.AsMap().Entries(), y.AsMap().Entries()
		if len(ex) != len(ey) {
			return false
		}
		for i := range ex {
			mx, my := ex[i].AsMapEntry(), ey[i].AsMapEntry()
			if mx.IsOptional() != my.IsOptional() || !sameExpr(mx.Key(), my.Key()) || !sameExpr(mx.Value(), my.Value()) {
				return false
			}
		}
		return true
	}
	return false // structs and comprehensions: Compile rejects them
}

// negatedLiteral returns the value of -n for e = -(n), n an int or double literal.
func negatedLiteral(e celast.Expr) (ref.Val, bool) {
	if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != operators.Negate || len(e.AsCall().Args()) != 1 {
		return nil, false
	}
	arg := e.AsCall().Args()[0]
	if arg.Kind() != celast.LiteralKind {
		return nil, false
	}
	switch v := arg.AsLiteral().(type) {
	case types.Int:
		if v == math.MinInt64 {
			return nil, false
		}
		return -v, true
	case types.Double:
		return -v, true
	}
	return nil, false
}

func sameExprs(xs, ys []celast.Expr) bool {
	return slices.EqualFunc(xs, ys, sameExpr)
}

// unparse prints an expression as CEL text on one line (Unparse wraps at column 80 by
// default).
func unparse(e celast.Expr, info *celast.SourceInfo) (string, error) {
	return parser.Unparse(e, info, parser.WrapOnColumn(math.MaxInt32), parser.EscapeIdentifiers(true))
}

type approximator struct {
	info   *celast.SourceInfo
	src    []rune
	fac    celast.ExprFactory
	over   bool
	expand bool
	nextID int64
	deps   map[int64]bool // readsArguments, by expression id (of the parsed tree)
	steps  int            // calls of rewrite, bounded by maxApproxSteps
}

// The exact rewriting of conditionals is used only while the text stays within
// maxExpandedGrowth times expr's length plus maxExpandedSlack characters: it duplicates
// conditions, and Compile's time grows faster than linearly with the length of an expression.
const (
	maxExpandedGrowth = 2
	maxExpandedSlack  = 64
)

// maxApproxSteps bounds the work of the exact rewriting of conditionals, which approximates
// each condition twice: conditionals nested in conditions would otherwise take exponential
// time. Without expansion, rewrite visits each node of the tree at most once.
const maxApproxSteps = 4 * maxExpressionChars

// rewrite approximates e, a node in boolean context, at the given polarity.
func (a *approximator) rewrite(e celast.Expr, positive bool) celast.Expr {
	if a.steps++; a.steps > maxApproxSteps {
		return a.lit(true) // abandoned: approximate reports an error
	}
	if e.Kind() == celast.CallKind {
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.LogicalAnd:
			return a.and(a.rewrite(args[0], positive), a.rewrite(args[1], positive))
		case operators.LogicalOr:
			return a.or(a.rewrite(args[0], positive), a.rewrite(args[1], positive))
		case operators.LogicalNot:
			return a.not(a.rewrite(args[0], !positive))
		case operators.Conditional:
			c, x, y := args[0], args[1], args[2]
			if !a.readsArguments(c) {
				return a.cond(c, a.rewrite(x, positive), a.rewrite(y, positive))
			}
			if a.expand {
				// Exact for truth (positive) or falsity (negative); c is approximated twice,
				// at both polarities.
				if positive {
					return a.rewrite(a.raw(operators.LogicalOr,
						a.raw(operators.LogicalAnd, c, x),
						a.raw(operators.LogicalAnd, a.raw(operators.LogicalNot, c), y)), true)
				}
				return a.rewrite(a.raw(operators.LogicalAnd,
					a.raw(operators.LogicalOr, c, y),
					a.raw(operators.LogicalOr, a.raw(operators.LogicalNot, c), x)), false)
			}
			switch {
			case a.over && positive:
				return a.or(a.rewrite(x, positive), a.rewrite(y, positive))
			case a.over:
				return a.and(a.rewrite(x, positive), a.rewrite(y, positive))
			default:
				// Under: the conditional may error (c does, for some arguments), so neither
				// truth nor falsity holds for all arguments.
				return a.lit(!positive)
			}
		}
	}
	if !a.readsArguments(e) {
		return e
	}
	return a.lit(a.over == positive)
}

// readsArguments reports whether e, a node of the parsed tree outside any macro, reads
// mcp.tool.arguments, by Compile's own account (Rule.UsesArguments). A node that does not
// translate on its own (it always does when the whole expression compiles) counts as reading
// them: replacing it is always sound.
func (a *approximator) readsArguments(e celast.Expr) bool {
	if d, ok := a.deps[e.ID()]; ok {
		return d
	}
	c := &compiler{info: a.info, src: a.src, refs: map[string]bool{}}
	_, err := c.value(e)
	d := err != nil || c.usesArguments
	a.deps[e.ID()] = d
	return d
}

func (a *approximator) id() int64 {
	a.nextID++
	return a.nextID
}

func (a *approximator) lit(b bool) celast.Expr {
	return a.fac.NewLiteral(a.id(), types.Bool(b))
}

// raw builds a call without folding (its operands are rewritten afterwards).
func (a *approximator) raw(fn string, args ...celast.Expr) celast.Expr {
	return a.fac.NewCall(a.id(), fn, args...)
}

func (a *approximator) and(x, y celast.Expr) celast.Expr {
	return a.junction(operators.LogicalAnd, false, x, y)
}

func (a *approximator) or(x, y celast.Expr) celast.Expr {
	return a.junction(operators.LogicalOr, true, x, y)
}

// junction builds x && y (absorbing = false) or x || y (absorbing = true), folding constants.
func (a *approximator) junction(fn string, absorbing bool, x, y celast.Expr) celast.Expr {
	if b, ok := isBoolLiteral(x); ok {
		if b == absorbing {
			return x
		}
		return y
	}
	if b, ok := isBoolLiteral(y); ok {
		if b == absorbing {
			return y
		}
		return x
	}
	return a.raw(fn, x, y)
}

func (a *approximator) not(x celast.Expr) celast.Expr {
	if b, ok := isBoolLiteral(x); ok {
		return a.lit(!b)
	}
	return a.raw(operators.LogicalNot, x)
}

func (a *approximator) cond(c, x, y celast.Expr) celast.Expr {
	if b, ok := isBoolLiteral(c); ok {
		if b {
			return x
		}
		return y
	}
	return a.raw(operators.Conditional, c, x, y)
}
