// Package policy evaluates the one decision per MCP message. A bundle is
// prepared once (store with AST reads, compiled query) off the request path;
// each request then costs one EvalParsedInput. Anything but a well-formed
// decision object fails closed.
package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/mcpgate/mcpgate/bundle"
	mcprego "github.com/mcpgate/mcpgate/rego"
)

// ErrNoDecision is returned when evaluation errs or yields no decision
// object: the caller must deny.
var ErrNoDecision = errors.New("policy: no decision")

// Decision is what the library returns (docs/input.md). Go enforces it.
type Decision struct {
	Allow           bool              `json:"allow"`
	HTTPStatus      int               `json:"http_status"`
	JSONRPCError    *JSONRPCError     `json:"jsonrpc_error,omitempty"`
	OAuthError      *OAuthError       `json:"oauth_error,omitempty"`
	WWWAuthenticate string            `json:"www_authenticate,omitempty"`
	Reasons         []string          `json:"reasons"`
	Headers         map[string]string `json:"headers,omitempty"`
	RateLimit       []RateLimit       `json:"ratelimit,omitempty"`
	// Visible answers a list decision: for each list kind ("tools",
	// "prompts", "resources", "resource_templates"), the names (URIs) the
	// caller may see.
	Visible map[string]map[string]bool `json:"visible,omitempty"`
	// DryRun reports what the route's dry-run policies would have refused
	// (never enforced); nil on routes without any.
	DryRun *DryRun `json:"dry_run,omitempty"`
}

// DryRun is the dry-run part of a decision.
type DryRun struct {
	WouldDeny bool     `json:"would_deny"`
	Reasons   []string `json:"reasons"`
}

// JSONRPCError is the error object sent to the client in a JSON-RPC response.
type JSONRPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// OAuthError is the RFC 6750 style body of a 401.
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// RateLimit is one rate-limit descriptor the policy asks Go to count.
type RateLimit struct {
	Key     string `json:"key"`
	Limit   int    `json:"limit"`
	Period  int    `json:"period"` // seconds
	Burst   int    `json:"burst"`
	Message string `json:"message,omitempty"`
}

// Evaluator holds one prepared decision query for one bundle. It is
// immutable and safe for concurrent use.
type Evaluator struct {
	query    rego.PreparedEvalQuery
	revision string
	log      logRules
	cache    *decisionCache // nil: every decision is evaluated

	readsHeaders bool
}

// Option tunes an Evaluator.
type Option func(*Evaluator)

// WithoutCache evaluates every decision, even when the policy could be
// cached (cache.go).
func WithoutCache() Option { return func(e *Evaluator) { e.cache = nil } }

// New prepares the decision query for a bundle.
func New(ctx context.Context, b *bundle.Bundle, opts ...Option) (*Evaluator, error) {
	compiler, err := b.Compile()
	if err != nil {
		return nil, err
	}
	data, err := b.Data()
	if err != nil {
		return nil, err
	}
	// AST values on read: the library reads data.mcpgate.config on every
	// evaluation; converting it from Go values each time costs ~4x.
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.Query(mcprego.DecisionQuery),
		rego.Compiler(compiler),
		rego.Store(store),
		// Built-in errors stay non-strict (OPA's default): they make the rule
		// that hit them undefined, which is what CEL's evaluation errors mean
		// for agentgateway's rules (an erroring rule does not match), and
		// compiled CEL relies on it. Other evaluation errors fail closed.
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: preparing %s: %w", mcprego.DecisionQuery, err)
	}
	lr, err := prepareLogRules(ctx, compiler, store)
	if err != nil {
		return nil, err
	}
	library := map[string]bool{}
	for p := range mcprego.Modules() {
		library[p] = true
	}
	e := &Evaluator{query: pq, revision: b.Revision, log: lr, cache: newDecisionCache(compiler, library)}
	for _, o := range opts {
		o(e)
	}
	e.readsHeaders = readsHeaders(e.cache)
	return e, nil
}

// Cached reports whether decisions are memoised (cache.go): the policy
// reads the input only through fixed paths and calls no non-deterministic
// built-in.
func (e *Evaluator) Cached() bool { return e.cache != nil }

// Revision is the bundle revision this evaluator decides with.
func (e *Evaluator) Revision() string { return e.revision }

// Decide evaluates the decision for one input document.
//
// The decision returned may be shared with other callers (see cache.go):
// callers must not modify it.
func (e *Evaluator) Decide(ctx context.Context, input ast.Value) (*Decision, error) {
	if e.cache == nil {
		return e.eval(ctx, input)
	}
	k, ok := e.cache.key(input)
	if !ok {
		return e.eval(ctx, input)
	}
	if d, hit := e.cache.get(k); hit {
		return d, nil
	}
	d, err := e.eval(ctx, input)
	if err == nil {
		e.cache.put(k, d)
	}
	return d, err
}

// DecideMemoised is Decide for an input the cache can key: ok is false,
// and nothing is evaluated, when decisions are not memoised or the input's
// key would be too long (the caller may then split the question).
func (e *Evaluator) DecideMemoised(ctx context.Context, input ast.Value) (d *Decision, ok bool, err error) {
	if e.cache == nil {
		return nil, false, nil
	}
	k, ok := e.cache.key(input)
	if !ok {
		return nil, false, nil
	}
	if d, hit := e.cache.get(k); hit {
		return d, true, nil
	}
	if d, err = e.eval(ctx, input); err == nil {
		e.cache.put(k, d)
	}
	return d, true, err
}

func (e *Evaluator) eval(ctx context.Context, input ast.Value) (*Decision, error) {
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalGenerateJSON(keepAST))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDecision, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("%w: undefined", ErrNoDecision)
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected result type", ErrNoDecision)
	}
	return parse(t.Value)
}

// keepAST hands the result back as the AST it is, skipping OPA's conversion
// to Go maps: parse reads the few fields it needs straight from the AST.
func keepAST(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

var (
	kAllow, kStatus, kWWW, kReasons, kHeaders = ast.StringTerm("allow"), ast.StringTerm("http_status"), ast.StringTerm("www_authenticate"), ast.StringTerm("reasons"), ast.StringTerm("headers")
	kJSONRPC, kOAuth, kRateLimit, kCode       = ast.StringTerm("jsonrpc_error"), ast.StringTerm("oauth_error"), ast.StringTerm("ratelimit"), ast.StringTerm("code")
	kMessage, kData, kError, kDescription     = ast.StringTerm("message"), ast.StringTerm("data"), ast.StringTerm("error"), ast.StringTerm("error_description")
	kKey, kLimit, kPeriod, kBurst             = ast.StringTerm("key"), ast.StringTerm("limit"), ast.StringTerm("period"), ast.StringTerm("burst")
	kVisible, kDryRun, kWouldDeny             = ast.StringTerm("visible"), ast.StringTerm("dry_run"), ast.StringTerm("would_deny")
)

// parse reads the decision; unknown keys are ignored, wrong types fail
// closed.
func parse(v ast.Value) (*Decision, error) {
	m, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("%w: not an object", ErrNoDecision)
	}
	d := &Decision{}
	allow, ok := value(m, kAllow).(ast.Boolean)
	if !ok {
		return nil, fmt.Errorf("%w: allow is not a boolean", ErrNoDecision)
	}
	d.Allow = bool(allow)
	status, err := intOf(value(m, kStatus))
	if err != nil {
		return nil, fmt.Errorf("%w: http_status: %v", ErrNoDecision, err)
	}
	d.HTTPStatus = status
	if s, ok := value(m, kWWW).(ast.String); ok {
		d.WWWAuthenticate = string(s)
	}
	if rs, ok := value(m, kReasons).(*ast.Array); ok {
		rs.Foreach(func(t *ast.Term) {
			if s, ok := t.Value.(ast.String); ok {
				d.Reasons = append(d.Reasons, string(s))
			}
		})
	}
	if hs, ok := value(m, kHeaders).(ast.Object); ok && hs.Len() > 0 {
		d.Headers = make(map[string]string, hs.Len())
		var bad string
		hs.Foreach(func(k, v *ast.Term) {
			ks, kok := k.Value.(ast.String)
			vs, vok := v.Value.(ast.String)
			if !kok || !vok {
				bad = k.String()
				return
			}
			d.Headers[string(ks)] = string(vs)
		})
		if bad != "" {
			return nil, fmt.Errorf("%w: header %s is not a string", ErrNoDecision, bad)
		}
	}
	if je, ok := value(m, kJSONRPC).(ast.Object); ok {
		code, err := intOf(value(je, kCode))
		if err != nil {
			return nil, fmt.Errorf("%w: jsonrpc_error.code: %v", ErrNoDecision, err)
		}
		msg, _ := value(je, kMessage).(ast.String)
		e := &JSONRPCError{Code: code, Message: string(msg)}
		if data := je.Get(kData); data != nil {
			if e.Data, err = ast.JSON(data.Value); err != nil {
				return nil, fmt.Errorf("%w: jsonrpc_error.data: %v", ErrNoDecision, err)
			}
		}
		d.JSONRPCError = e
	}
	// A denial is an HTTP error, or a JSON-RPC error in a 200 answer (how a
	// hidden tool is refused: "Unknown tool", as if it did not exist).
	if d.Allow && status >= 300 || !d.Allow && status < 400 && (status != 200 || d.JSONRPCError == nil) {
		return nil, fmt.Errorf("%w: allow=%v with http_status %d", ErrNoDecision, d.Allow, status)
	}
	if oe, ok := value(m, kOAuth).(ast.Object); ok {
		e, _ := value(oe, kError).(ast.String)
		desc, _ := value(oe, kDescription).(ast.String)
		d.OAuthError = &OAuthError{Error: string(e), Description: string(desc)}
	}
	if vis, ok := value(m, kVisible).(ast.Object); ok {
		d.Visible = make(map[string]map[string]bool, vis.Len())
		vis.Foreach(func(k, v *ast.Term) {
			kind, ok := k.Value.(ast.String)
			arr, aok := v.Value.(*ast.Array)
			if !ok || !aok {
				return
			}
			names := make(map[string]bool, arr.Len())
			arr.Foreach(func(t *ast.Term) {
				if s, ok := t.Value.(ast.String); ok {
					names[string(s)] = true
				}
			})
			d.Visible[string(kind)] = names
		})
	}
	if dr, ok := value(m, kDryRun).(ast.Object); ok {
		would, _ := value(dr, kWouldDeny).(ast.Boolean)
		d.DryRun = &DryRun{WouldDeny: bool(would), Reasons: []string{}}
		if rs, ok := value(dr, kReasons).(*ast.Array); ok {
			rs.Foreach(func(t *ast.Term) {
				if s, ok := t.Value.(ast.String); ok {
					d.DryRun.Reasons = append(d.DryRun.Reasons, string(s))
				}
			})
		}
	}
	if rl, ok := value(m, kRateLimit).(*ast.Array); ok {
		for i := 0; i < rl.Len(); i++ {
			o, ok := rl.Elem(i).Value.(ast.Object)
			if !ok {
				return nil, fmt.Errorf("%w: ratelimit[%d] is not an object", ErrNoDecision, i)
			}
			r := RateLimit{}
			key, _ := value(o, kKey).(ast.String)
			msg, _ := value(o, kMessage).(ast.String)
			r.Key, r.Message = string(key), string(msg)
			var err error
			if r.Limit, err = intOf(value(o, kLimit)); err == nil {
				r.Period, err = intOf(value(o, kPeriod))
			}
			if b := value(o, kBurst); err == nil && b != nil {
				r.Burst, err = intOf(b)
			}
			if err != nil || r.Key == "" || r.Limit < 0 || r.Period <= 0 {
				return nil, fmt.Errorf("%w: ratelimit[%d] is malformed", ErrNoDecision, i)
			}
			d.RateLimit = append(d.RateLimit, r)
		}
	}
	return d, nil
}

func value(o ast.Object, k *ast.Term) ast.Value {
	if t := o.Get(k); t != nil {
		return t.Value
	}
	return nil
}

func intOf(v ast.Value) (int, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	i, ok := n.Int()
	if !ok {
		return 0, fmt.Errorf("%v is not an integer", v)
	}
	return i, nil
}
