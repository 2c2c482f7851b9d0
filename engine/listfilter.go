package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/engine/policy"
)

// listKind describes one kind of MCP list result: where its items are in
// the result, which field identifies an item, what the policy calls it, and
// the method that asks for it.
type listKind struct {
	resultKey string // key in the result object: "tools", "resourceTemplates"…
	idField   string // "name", "uri", "uriTemplate"
	policyKey string // key in input.mcp.list and decision.visible
	method    string
}

// listKinds are recognised by the shape of a result, not by the request
// that asked for it: a list result is filtered wherever it appears — in the
// answer to a POST, on the GET stream, or replayed after Last-Event-ID —
// and whatever id the upstream gave it.
var listKinds = []listKind{
	{"tools", "name", "tools", "tools/list"},
	{"prompts", "name", "prompts", "prompts/list"},
	{"resources", "uri", "resources", "resources/list"},
	{"resourceTemplates", "uriTemplate", "resource_templates", "resources/templates/list"},
}

// listItem is what the policy sees of one list item. It is decoded with
// case-sensitive JSON semantics, the way MCP clients read it, so the name the
// policy judges is the name the client will use.
type listItem struct {
	Name        string         `json:"name"`
	URI         string         `json:"uri"`
	URITemplate string         `json:"uriTemplate"`
	Title       string         `json:"title"`
	Annotations jsontext.Value `json:"annotations"`
}

// responseFilter returns the rewrite for the upstream's messages on a route
// with authorization rules (nil without): a successful result holding a list
// keeps only the items the caller may see, decided by one policy evaluation
// per list. Other messages pass unchanged; a list whose items cannot be read
// is refused rather than shown unfiltered.
func (h *routeHandler) responseFilter(r *http.Request, res authn.Result) rewriteFunc {
	if len(h.route.Authz) == 0 && len(h.route.User) == 0 {
		return nil
	}
	return func(data []byte) ([]byte, error) {
		if !bytes.Contains(data, []byte(`"result"`)) {
			return data, nil // not a result: notifications, requests, errors
		}
		var env map[string]json.RawMessage
		if err := jsonv2.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("upstream message is not a JSON object: %w", err)
		}
		rawResult, ok := env["result"]
		if !ok {
			return data, nil
		}
		var result map[string]json.RawMessage
		if err := jsonv2.Unmarshal(rawResult, &result); err != nil {
			// MCP results are objects; one that is not cannot be judged.
			return nil, fmt.Errorf("upstream result is not an object: %w", err)
		}
		for _, kind := range listKinds {
			rawItems, ok := result[kind.resultKey]
			if !ok {
				continue
			}
			filtered, err := h.filterItems(r, res, kind, rawItems, h.target.Name, h.term)
			if err != nil {
				return nil, err
			}
			if filtered == nil {
				return data, nil // everything visible: relay the bytes as they came
			}
			result[kind.resultKey] = filtered
			if env["result"], err = jsonv2.Marshal(result, jsonv2.Deterministic(true)); err != nil {
				return nil, err
			}
			return jsonv2.Marshal(env, jsonv2.Deterministic(true))
		}
		return data, nil
	}
}

// filterItems returns the visible items of one list, or nil when all are.
// tname is the target the items come from and term the input.route naming
// it (multi-target backends filter each target's items on their own).
func (h *routeHandler) filterItems(r *http.Request, res authn.Result, kind listKind, rawItems json.RawMessage, tname string, term *ast.Term) (json.RawMessage, error) {
	var items []jsontext.Value
	if err := jsonv2.Unmarshal(rawItems, &items); err != nil {
		return nil, fmt.Errorf("list result %s is not an array: %w", kind.resultKey, err)
	}
	ids := make([]string, len(items))
	terms := make([]*ast.Term, len(items))
	target := ast.StringTerm(tname)
	for i, raw := range items {
		var it listItem
		if err := jsonv2.Unmarshal(raw, &it, jsonv2.RejectUnknownMembers(false)); err != nil {
			return nil, fmt.Errorf("list item %d: %w", i, err)
		}
		kv := [][2]*ast.Term{ast.Item(kTarget, target)}
		switch kind.idField {
		case "name":
			ids[i] = it.Name
			kv = append(kv, ast.Item(kName, ast.StringTerm(it.Name)))
		case "uri":
			ids[i] = it.URI
			kv = append(kv, ast.Item(kURI, ast.StringTerm(it.URI)), ast.Item(kName, ast.StringTerm(it.Name)))
		case "uriTemplate":
			ids[i] = it.URITemplate
			kv = append(kv, ast.Item(kURITemplate, ast.StringTerm(it.URITemplate)), ast.Item(kName, ast.StringTerm(it.Name)))
		}
		if len(it.Annotations) > 0 {
			if v, err := ast.ValueFromReader(bytes.NewReader(it.Annotations)); err == nil {
				kv = append(kv, ast.Item(kAnnotations, ast.NewTerm(v)))
			}
		}
		terms[i] = ast.ObjectTerm(kv...)
	}
	asked := &mcp.Message{Kind: mcp.Request, Method: kind.method}
	list := ast.ObjectTerm(ast.Item(ast.StringTerm(kind.policyKey), ast.ArrayTerm(terms...)))
	parts := newInputParts(r, res, h.inputHeaders())
	in := parts.input(r, term, tname, asked, list)
	var visible map[string]bool
	if h.itemwise() {
		var err error
		if visible, err = h.decideList(r, in, parts, kind, ids, terms, tname, term, asked); err != nil {
			return nil, err
		}
	} else {
		d, err := h.decide(r, in, "list", nil)
		if err != nil {
			return nil, err
		}
		visible = d.Visible[kind.policyKey]
	}
	kept := make([]jsontext.Value, 0, len(items))
	for i, raw := range items {
		if visible[ids[i]] {
			kept = append(kept, raw)
		}
	}
	if len(kept) == len(items) {
		return nil, nil
	}
	return jsonv2.Marshal(kept)
}

// itemwise reports whether lists may be decided item by item: when decisions
// are memoised (a list too long to be a cache key is then decided item by
// item, each remembered under its item, so a list seen before costs a
// lookup per item instead of a whole evaluation every time), no decision
// log wants one event per list, and no user Rego on the route could look at
// the list as a whole.
func (h *routeHandler) itemwise() bool {
	return h.s.eval.Cached() && h.g.decisionLog == nil && len(h.route.User) == 0
}

// decideList decides a list with memoised decisions: one decision
// remembered under the whole list (in) when its key is short enough,
// otherwise one per item (the list-phase input with a list of that one
// item), each remembered under its item. Either way it is counted and timed
// as one list decision.
func (h *routeHandler) decideList(r *http.Request, in ast.Value, parts inputParts, kind listKind, ids []string, terms []*ast.Term, tname string, term *ast.Term, asked *mcp.Message) (map[string]bool, error) {
	start := time.Now()
	m := h.g.metrics
	d, keyed, err := h.s.eval.DecideMemoised(r.Context(), in)
	result, dryRun := decisionResult(d, err), 0
	var visible map[string]bool
	switch {
	case err != nil:
	case keyed:
		visible = d.Visible[kind.policyKey]
		if d.DryRun != nil && d.DryRun.WouldDeny {
			dryRun = 1
		}
	default:
		key := ast.StringTerm(kind.policyKey)
		visible = make(map[string]bool, len(terms))
		for i, it := range terms {
			var d *policy.Decision
			if d, err = h.s.eval.Decide(r.Context(), parts.input(r, term, tname, asked, ast.ObjectTerm(ast.Item(key, ast.ArrayTerm(it))))); err != nil {
				result = "error"
				break
			}
			if d.Visible[kind.policyKey][ids[i]] {
				visible[ids[i]] = true
			}
			if d.DryRun != nil && d.DryRun.WouldDeny {
				dryRun++
			}
		}
	}
	m.decisionSeconds.WithLabelValues("list").Observe(time.Since(start).Seconds())
	m.decisions.WithLabelValues(result).Inc()
	if err != nil {
		return nil, err
	}
	if dryRun > 0 {
		m.decisions.WithLabelValues("dry_run_deny").Inc()
		h.g.log.Warn("dry-run policy would deny", "route", h.route.Key, "mcp_method", kind.method, "decisions", dryRun)
	}
	return visible, nil
}
