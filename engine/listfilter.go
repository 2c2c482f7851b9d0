package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
)

// listKind describes one MCP list method: where its items are in the
// result, which field identifies an item, and what the policy calls it.
type listKind struct {
	resultKey string // key in the result object: "tools", "resourceTemplates"…
	idField   string // "name", "uri", "uriTemplate"
	policyKey string // key in input.mcp.list and decision.visible
}

var listKinds = map[string]listKind{
	"tools/list":               {"tools", "name", "tools"},
	"prompts/list":             {"prompts", "name", "prompts"},
	"resources/list":           {"resources", "uri", "resources"},
	"resources/templates/list": {"resourceTemplates", "uriTemplate", "resource_templates"},
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

// listFilter returns the rewrite for a list response: one policy decision
// for the whole list, then only the visible items are kept. Anything that is
// not a successful result of the expected shape passes unchanged, except
// that a result whose items cannot be read is refused rather than shown
// unfiltered.
func (h *routeHandler) listFilter(r *http.Request, msg *mcp.Message, res authn.Result) func([]byte) ([]byte, error) {
	kind, ok := listKinds[msg.Method]
	if !ok || len(h.route.Authz) == 0 {
		return nil
	}
	return func(data []byte) ([]byte, error) {
		var env map[string]json.RawMessage
		if err := jsonv2.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("list response is not a JSON object: %w", err)
		}
		rawResult, ok := env["result"]
		if !ok {
			return data, nil // an error response: nothing to filter
		}
		var result map[string]json.RawMessage
		if err := jsonv2.Unmarshal(rawResult, &result); err != nil {
			return nil, fmt.Errorf("list result is not an object: %w", err)
		}
		rawItems, ok := result[kind.resultKey]
		if !ok {
			return data, nil
		}
		var items []jsontext.Value
		if err := jsonv2.Unmarshal(rawItems, &items); err != nil {
			return nil, fmt.Errorf("list result %s is not an array: %w", kind.resultKey, err)
		}
		ids := make([]string, len(items))
		terms := make([]*ast.Term, len(items))
		target := ast.StringTerm(h.target.Name)
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
		list := ast.ObjectTerm(ast.Item(ast.StringTerm(kind.policyKey), ast.ArrayTerm(terms...)))
		d, err := h.s.eval.Decide(r.Context(), buildInputPhase(r, h.term, h.target.Name, msg, res, list))
		if err != nil {
			return nil, err
		}
		visible := d.Visible[kind.policyKey]
		kept := make([]jsontext.Value, 0, len(items))
		for i, raw := range items {
			if visible[ids[i]] {
				kept = append(kept, raw)
			}
		}
		if len(kept) == len(items) {
			return data, nil
		}
		if result[kind.resultKey], err = jsonv2.Marshal(kept); err != nil {
			return nil, err
		}
		if env["result"], err = jsonv2.Marshal(result, jsonv2.Deterministic(true)); err != nil {
			return nil, err
		}
		return jsonv2.Marshal(env, jsonv2.Deterministic(true))
	}
}
