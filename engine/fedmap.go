package engine

// Messages between the client and the targets of a multi-target backend,
// mapped both ways so that every message reaches the server it belongs to:
//
//   - A request a target sends the client (sampling, elicitation, roots) gets
//     an id naming its target, "mcpgate/<target>/<original id as JSON>"; the
//     client's response to it goes back to that target alone, with the
//     original id. So does a target's notifications/cancelled for such a
//     request.
//   - Resource URIs the client sees carry the target prefix
//     ("<target>+<uri>"): in resources/read results and in
//     notifications/resources/updated.
//   - SSE event ids carry the target ("<target>/<id>"), so a client resuming
//     a stream with Last-Event-ID resumes it at the right target.

import (
	"bytes"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/ir"
)

// serverRequestPrefix starts the id of a request a target sent the client.
const serverRequestPrefix = "mcpgate/"

// mapServerID returns the id the client sees for a target's request id.
func mapServerID(target string, id jsontext.Value) jsontext.Value {
	b, _ := jsonv2.Marshal(serverRequestPrefix + target + "/" + string(id))
	return b
}

// unmapServerID finds the target and original id behind an id the gateway
// gave the client; ok is false for ids the gateway did not map.
func (f *federation) unmapServerID(id jsontext.Value) (ir.Target, jsontext.Value, bool) {
	if id.Kind() != '"' {
		return ir.Target{}, nil, false
	}
	var s string
	if jsonv2.Unmarshal(id, &s) != nil || !strings.HasPrefix(s, serverRequestPrefix) {
		return ir.Target{}, nil, false
	}
	name, orig, found := strings.Cut(s[len(serverRequestPrefix):], "/")
	if !found {
		return ir.Target{}, nil, false
	}
	raw := jsontext.Value(orig)
	if !raw.IsValid() || (raw.Kind() != '"' && raw.Kind() != '0') {
		return ir.Target{}, nil, false
	}
	for _, t := range f.targets {
		if t.Name == name {
			return t, raw, true
		}
	}
	return ir.Target{}, nil, false
}

// eventIDFor is the id the client sees for a target's SSE event id.
func eventIDFor(target, id string) string {
	if id == "" {
		return ""
	}
	return target + "/" + id
}

// targetOfEventID splits an event id the gateway gave the client.
func (f *federation) targetOfEventID(id string) (ir.Target, string, bool) {
	name, orig, found := strings.Cut(id, "/")
	if !found || orig == "" {
		return ir.Target{}, "", false
	}
	for _, t := range f.targets {
		if t.Name == name {
			return t, orig, true
		}
	}
	return ir.Target{}, "", false
}

// fromTarget returns the rewrite for messages target t sends the client;
// method is the client request they answer ("" on a GET stream). Messages
// needing no change are returned as they came, byte for byte.
func (f *federation) fromTarget(t ir.Target, method string) rewriteFunc {
	readResult := method == "resources/read" && f.prefixed
	return func(data []byte) ([]byte, error) {
		hasMethod := bytes.Contains(data, []byte(`"method"`))
		if !hasMethod && !readResult {
			return data, nil
		}
		var env map[string]jsontext.Value
		if err := jsonv2.Unmarshal(data, &env); err != nil {
			return data, nil // not ours to judge: relayed as it came
		}
		changed := false
		var m string
		if raw, ok := env["method"]; ok && jsonv2.Unmarshal(raw, &m) == nil {
			if id, ok := env["id"]; ok {
				env["id"] = mapServerID(t.Name, id)
				changed = true
			}
			switch m {
			case "notifications/resources/updated":
				if f.prefixed {
					changed = setNested(env, []string{"params", "uri"}, func(v string) string { return t.Name + "+" + v }) || changed
				}
			case "notifications/cancelled":
				changed = mapNested(env, []string{"params", "requestId"}, func(v jsontext.Value) jsontext.Value { return mapServerID(t.Name, v) }) || changed
			}
		} else if readResult {
			changed = prefixContents(env, t.Name) || changed
		}
		if !changed {
			return data, nil
		}
		return jsonv2.Marshal(env, jsonv2.Deterministic(true))
	}
}

// prefixContents prefixes result.contents[].uri of a resources/read answer.
func prefixContents(env map[string]jsontext.Value, target string) bool {
	var res map[string]jsontext.Value
	if jsonv2.Unmarshal(env["result"], &res) != nil {
		return false
	}
	var contents []map[string]jsontext.Value
	if jsonv2.Unmarshal(res["contents"], &contents) != nil {
		return false
	}
	changed := false
	for _, c := range contents {
		var uri string
		if jsonv2.Unmarshal(c["uri"], &uri) == nil && uri != "" {
			c["uri"], _ = jsonv2.Marshal(target + "+" + uri)
			changed = true
		}
	}
	if !changed {
		return false
	}
	res["contents"], _ = jsonv2.Marshal(contents, jsonv2.Deterministic(true))
	env["result"], _ = jsonv2.Marshal(res, jsonv2.Deterministic(true))
	return true
}

// setNested replaces the string at path in env by fn(it).
func setNested(env map[string]jsontext.Value, path []string, fn func(string) string) bool {
	return mapNested(env, path, func(v jsontext.Value) jsontext.Value {
		var s string
		if jsonv2.Unmarshal(v, &s) != nil {
			return nil
		}
		b, _ := jsonv2.Marshal(fn(s))
		return b
	})
}

// mapNested replaces the value at path in env by fn(it); fn returning nil
// leaves it alone.
func mapNested(env map[string]jsontext.Value, path []string, fn func(jsontext.Value) jsontext.Value) bool {
	raw, ok := env[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		v := fn(raw)
		if v == nil {
			return false
		}
		env[path[0]] = v
		return true
	}
	var sub map[string]jsontext.Value
	if jsonv2.Unmarshal(raw, &sub) != nil || !mapNested(sub, path[1:], fn) {
		return false
	}
	b, err := jsonv2.Marshal(sub, jsonv2.Deterministic(true))
	if err != nil {
		return false
	}
	env[path[0]] = b
	return true
}

// toTarget rewrites a client's response to a request a target sent: the
// original id back in place. ok is false when the response answers nothing
// the gateway mapped.
func (f *federation) toTarget(raw []byte, id jsontext.Value) (ir.Target, []byte, bool) {
	t, orig, ok := f.unmapServerID(id)
	if !ok {
		return ir.Target{}, nil, false
	}
	var env map[string]jsontext.Value
	if jsonv2.Unmarshal(raw, &env) != nil {
		return ir.Target{}, nil, false
	}
	env["id"] = orig
	b, err := jsonv2.Marshal(env, jsonv2.Deterministic(true))
	if err != nil {
		return ir.Target{}, nil, false
	}
	return t, b, true
}
