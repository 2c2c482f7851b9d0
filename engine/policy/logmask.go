package policy

import (
	"context"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Queries of OPA's decision-log rules (package system.log), evaluated
// against the event {"input": ..., "result": ...} before it is written.
const (
	maskQuery = "data.system.log.mask"
	dropQuery = "data.system.log.drop"
)

// MaskOp is one masking instruction of data.system.log.mask: remove the
// value at Path, or (Upsert) set it to Value. Paths are JSON pointers into
// the event ("/input/jwt/claims/email").
type MaskOp struct {
	Path   []string
	Upsert bool
	Value  any
}

// logRules holds the prepared mask and drop queries; nil fields when the
// bundle has no such rules.
type logRules struct {
	mask, drop *rego.PreparedEvalQuery
}

func prepareLogRules(ctx context.Context, compiler *ast.Compiler, store storage.Store) (logRules, error) {
	var lr logRules
	for _, q := range []struct {
		query string
		dst   **rego.PreparedEvalQuery
	}{{maskQuery, &lr.mask}, {dropQuery, &lr.drop}} {
		if len(compiler.GetRulesForVirtualDocument(ast.MustParseRef(q.query))) == 0 {
			continue
		}
		pq, err := rego.New(rego.Query(q.query), rego.Compiler(compiler), rego.Store(store)).PrepareForEval(ctx)
		if err != nil {
			return lr, fmt.Errorf("policy: preparing %s: %w", q.query, err)
		}
		*q.dst = &pq
	}
	return lr, nil
}

// HasLogRules reports whether the bundle defines data.system.log.mask or
// data.system.log.drop.
func (e *Evaluator) HasLogRules() bool { return e.log.mask != nil || e.log.drop != nil }

// LogRules evaluates the bundle's decision-log rules for one event (an
// object with "input" and "result"): whether to drop it, and the masking
// operations to apply. A rule that errs drops nothing and masks everything
// it can: a failing mask must not leak what it was meant to hide, so the
// caller then masks the whole input (err != nil).
func (e *Evaluator) LogRules(ctx context.Context, event ast.Value) (drop bool, ops []MaskOp, err error) {
	if e.log.drop != nil {
		rs, err := e.log.drop.Eval(ctx, rego.EvalParsedInput(event))
		if err != nil {
			return false, nil, err
		}
		drop = len(rs) == 1 && rs[0].Expressions[0].Value == true
		if drop {
			return true, nil, nil
		}
	}
	if e.log.mask == nil {
		return false, nil, nil
	}
	rs, err := e.log.mask.Eval(ctx, rego.EvalParsedInput(event))
	if err != nil {
		return false, nil, err
	}
	if len(rs) != 1 {
		return false, nil, nil
	}
	items, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return false, nil, fmt.Errorf("%s is not a set", maskQuery)
	}
	for _, it := range items {
		switch v := it.(type) {
		case string:
			ops = append(ops, MaskOp{Path: pointer(v)})
		case map[string]any:
			op, _ := v["op"].(string)
			path, _ := v["path"].(string)
			switch op {
			case "upsert":
				ops = append(ops, MaskOp{Path: pointer(path), Upsert: true, Value: v["value"]})
			case "remove", "":
				ops = append(ops, MaskOp{Path: pointer(path)})
			default:
				return false, nil, fmt.Errorf("%s: unknown op %q", maskQuery, op)
			}
		default:
			return false, nil, fmt.Errorf("%s: entries are JSON pointers or {op, path, value} objects", maskQuery)
		}
	}
	return false, ops, nil
}

// pointer splits a JSON pointer (RFC 6901) into unescaped segments.
func pointer(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segs
}
