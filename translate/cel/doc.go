// Package cel compiles the CEL expressions of agentgateway authorization rules into Rego.
//
// agentgateway's AgentgatewayPolicy objects carry authorization rules as CEL expressions
// (`jwt.sub == "alice" && mcp.tool.name == "echo"`). mcpgate makes every decision in one
// embedded OPA policy, so instead of shipping a CEL evaluator we translate each expression,
// once, into a Rego rule body. cel-go only parses (no macros are expanded, no type-check
// environment is used); this package walks the parse tree and emits OPA AST.
//
// # Variables
//
// The CEL variables map onto the policy input document:
//
//	mcp.method                         input.mcp.method
//	mcp.tool.name / .target / .arguments  input.mcp.tool.name / .target / .arguments
//	mcp.prompt.*, mcp.resource.*       input.mcp.prompt.*, input.mcp.resource.*
//	jwt.<claim>...                     input.jwt.claims.<claim>...
//	request.*                          input.request.*
//	source.*                           input.source.*
//
// Any other root identifier is an error, and so is a field of mcp or mcp.tool other than
// those above: a typo there would otherwise produce a rule that silently never matches.
//
// # Errors are "no match", also under negation
//
// In CEL a missing field or a type mismatch is an evaluation error, and agentgateway treats
// an erroring rule as not matching. In Rego the analogue is "undefined", which a body
// treats as unsatisfied. The danger is negation: `!(jwt.group == "admin")` must not match
// a token without a group claim, yet the naive Rego `not input.jwt.claims.group == "admin"`
// is true exactly then. The translation therefore never uses Rego's `not`. Instead:
//
//   - Every sub-expression compiles to a Rego term whose value is the CEL value, undefined
//     exactly when CEL would report an error (plus statements that bind temporaries; when
//     they fail the term is undefined too).
//   - At the top, an expression compiles to a body that holds exactly when the expression
//     is true ("truth context"); `!e` there compiles to the body that holds exactly when e
//     is false ("falsity context"), e.g. `input.jwt.claims.group != "admin"`, which fails
//     when the claim is missing. Both contexts are pushed through &&, ||, !, ==, !=, the
//     comparisons and the exists/all macros, so common rules read like hand-written Rego.
//   - Where CEL absorbs errors (a || b is true when either side is true even if the other
//     errors; a && b is false when either side is false; c ? a : b only needs the chosen
//     branch; exists/all over lists), each operand is "captured" as an array comprehension
//     `[v | v := <operand>]`: [value] when defined, [] when CEL would error. Functions of
//     the fixed prelude module (package mcpgate.cel, see Prelude) combine the captures
//     with CEL's truth tables and stay undefined whenever CEL's result is an error. Each
//     capture is bound to a variable by its own statement (c3 := [v2 | ...]) rather than
//     nested in the next one: OPA compiles nested comprehensions in time exponential in their
//     depth.
//   - Iterating macros bind the range to a variable before iterating, so that a range
//     that is not a list or map (an error in CEL) makes the whole macro undefined rather
//     than an empty, vacuously true or false, iteration.
//
// As a result a rule matches if and only if the CEL expression evaluates to true.
// has(x.f) follows cel-go: an error when x itself errors (so !has(jwt.a.b) does not match a
// token without an a claim), false when x is a scalar or null, an error when x is a list
// (where agentgateway's CEL answers false).
//
// # Supported CEL
//
// Literals (string, int, uint, double, bool, null; lists and maps with constant keys),
// field selection, indexing (a[0], m["k"]), == != < <= > >=, && || !, c ? a : b, in (list
// membership and map keys), has(x.f), size(x) and x.size() for strings, lists and maps,
// + - * / % and unary -, startsWith, endsWith, contains, matches (global and member
// forms), int(), uint(), double(), string(), bool(), dyn(), and the macros all, exists,
// exists_one, map (two and three arguments) and filter over lists and maps (maps iterate
// over their keys, in sorted order).
//
// Not supported (a translation error naming the column): bytes literals, message
// construction, the optional syntax (?. and [?]), timestamps and durations, two-variable
// comprehensions, and functions of CEL extension libraries.
//
// # Values and approximations
//
// Besides boolean rules, CompileValue compiles an expression for its value (rate-limit keys
// such as jwt.sub), rendered by ValueModule as `<name> := <term>`, undefined exactly when CEL
// would report an error. CompileApprox compiles an over- or under-approximation of a rule
// that reads mcp.tool.arguments, for list results, which have no arguments (see its doc).
//
// # Where Rego's values differ from CEL's
//
// Rego numbers are JSON numbers: CEL's int, uint and double are not distinguished.
// Consequences: 1 == 1.0 is true (as in CEL's heterogeneous equality); arithmetic mixing
// ints and doubles (1 + 1.5), which CEL rejects, is allowed; int and uint overflow is not
// detected; x / y truncates towards zero when both operands are integral numbers (an int
// division in CEL) and is a real division otherwise, so 7.0 / 2.0 yields 3 rather than 3.5;
// x % y needs integral operands; string(x) of a non-integral number uses Rego's formatting.
// Comparisons (<, <=, >, >=) are guarded so that, as in CEL, only numbers with numbers,
// strings with strings and bools with bools compare; any other pair is an error. Maps built
// from JSON have string keys only.
//
// # Static checks
//
// An expression that is ill-typed on its face (a literal of the wrong type, as in
// `1.startsWith("a")` or `size(true)`) is rejected at translation time, where CEL's type
// checker would reject it too; dyn(x) turns such checks off for x. Every compiled body is
// printed, parsed back, compared with what was printed and compiled against the prelude
// before Compile returns it, so a rule that compiles always loads into OPA. String literals
// must be printable text: control characters, bidi overrides and line separators are
// rejected, as they would hide what a policy says from its reader. Expressions are limited
// to 16384 characters (agentgateway's limit) and a nesting depth of 100; macros nested in
// macros in value context are limited to what makes at most 8 levels of Rego comprehension.
//
// # Using the output
//
// Module renders compiled rules as one module (package mcpgate.generated.<pkg>, one boolean
// rule per expression) that imports data.mcpgate.cel; a bundle holding it must also hold
// Prelude (at PreludePath, say). Errors carry the 1-based line and column of the offending
// construct within the expression.
package cel
