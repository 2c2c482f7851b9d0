// Package policy evaluates the one decision per MCP message. A bundle is
// prepared once (store with AST reads, compiled query) off the request path;
// each request then costs one EvalParsedInput. Anything but a well-formed
// decision object fails closed.
package policy

import (
	"context"
	"encoding/json"
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
}

// New prepares the decision query for a bundle.
func New(ctx context.Context, b *bundle.Bundle) (*Evaluator, error) {
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
		// A built-in error (division by zero, a bad sprintf) would otherwise
		// make a rule undefined, which can turn a deny into an allow.
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: preparing %s: %w", mcprego.DecisionQuery, err)
	}
	return &Evaluator{query: pq, revision: b.Revision}, nil
}

// Revision is the bundle revision this evaluator decides with.
func (e *Evaluator) Revision() string { return e.revision }

// Decide evaluates the decision for one input document.
func (e *Evaluator) Decide(ctx context.Context, input ast.Value) (*Decision, error) {
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDecision, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("%w: undefined", ErrNoDecision)
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not an object", ErrNoDecision)
	}
	return parse(obj)
}

// parse reads the decision without a JSON round trip; unknown keys are
// ignored, wrong types fail closed.
func parse(m map[string]any) (*Decision, error) {
	d := &Decision{}
	allow, ok := m["allow"].(bool)
	if !ok {
		return nil, fmt.Errorf("%w: allow is not a boolean", ErrNoDecision)
	}
	d.Allow = allow
	status, err := intOf(m["http_status"])
	if err != nil {
		return nil, fmt.Errorf("%w: http_status: %v", ErrNoDecision, err)
	}
	d.HTTPStatus = status
	if s, ok := m["www_authenticate"].(string); ok {
		d.WWWAuthenticate = s
	}
	if rs, ok := m["reasons"].([]any); ok {
		for _, r := range rs {
			if s, ok := r.(string); ok {
				d.Reasons = append(d.Reasons, s)
			}
		}
	}
	if hs, ok := m["headers"].(map[string]any); ok && len(hs) > 0 {
		d.Headers = make(map[string]string, len(hs))
		for k, v := range hs {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%w: header %q is not a string", ErrNoDecision, k)
			}
			d.Headers[k] = s
		}
	}
	if je, ok := m["jsonrpc_error"].(map[string]any); ok {
		code, err := intOf(je["code"])
		if err != nil {
			return nil, fmt.Errorf("%w: jsonrpc_error.code: %v", ErrNoDecision, err)
		}
		msg, _ := je["message"].(string)
		d.JSONRPCError = &JSONRPCError{Code: code, Message: msg, Data: je["data"]}
	}
	// A denial is an HTTP error, or a JSON-RPC error in a 200 answer (how a
	// hidden tool is refused: "Unknown tool", as if it did not exist).
	if d.Allow && status >= 300 || !d.Allow && status < 400 && (status != 200 || d.JSONRPCError == nil) {
		return nil, fmt.Errorf("%w: allow=%v with http_status %d", ErrNoDecision, d.Allow, status)
	}
	if oe, ok := m["oauth_error"].(map[string]any); ok {
		e, _ := oe["error"].(string)
		desc, _ := oe["error_description"].(string)
		d.OAuthError = &OAuthError{Error: e, Description: desc}
	}
	if rl, ok := m["ratelimit"].([]any); ok {
		for i, x := range rl {
			o, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: ratelimit[%d] is not an object", ErrNoDecision, i)
			}
			r := RateLimit{}
			r.Key, _ = o["key"].(string)
			r.Message, _ = o["message"].(string)
			if r.Limit, err = intOf(o["limit"]); err == nil {
				r.Period, err = intOf(o["period"])
			}
			if err == nil && o["burst"] != nil {
				r.Burst, err = intOf(o["burst"])
			}
			if err != nil || r.Key == "" || r.Limit < 0 || r.Period <= 0 {
				return nil, fmt.Errorf("%w: ratelimit[%d] is malformed", ErrNoDecision, i)
			}
			d.RateLimit = append(d.RateLimit, r)
		}
	}
	return d, nil
}

func intOf(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("%v is not an integer", n)
		}
		return int(n), nil
	}
	return 0, fmt.Errorf("%v (%T) is not a number", v, v)
}
