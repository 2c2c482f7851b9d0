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
// method is the client request they answer ("" on a GET stream). Only the
// values mapped change; messages needing no change are returned as they
// came, byte for byte.
func (f *federation) fromTarget(t ir.Target, method string) rewriteFunc {
	readResult := method == "resources/read" && f.prefixed
	mapID := func(v jsontext.Value) (jsontext.Value, error) { return mapServerID(t.Name, v), nil }
	prefixURI := func(v string) string { return t.Name + "+" + v }
	return func(data []byte) ([]byte, error) {
		if !readResult && !bytes.Contains(data, []byte(`"method"`)) {
			return data, nil
		}
		var probe struct {
			Method *string        `json:"method"`
			ID     jsontext.Value `json:"id"`
		}
		if jsonv2.Unmarshal(data, &probe) != nil {
			return data, nil // not ours to judge: relayed as it came
		}
		// A member a message lacks is left alone: each step keeps the
		// message as it was when it fails.
		out := jsontext.Value(data)
		try := func(b jsontext.Value, err error) {
			if err == nil {
				out = b
			}
		}
		switch {
		case probe.Method != nil:
			if probe.ID != nil {
				try(replaceValue(out, []string{"id"}, mapID))
			}
			switch *probe.Method {
			case "notifications/resources/updated":
				if f.prefixed {
					try(replaceString(out, []string{"params", "uri"}, prefixURI))
				}
			case "notifications/cancelled":
				try(replaceValue(out, []string{"params", "requestId"}, mapID))
			}
		case readResult:
			try(replaceValue(out, []string{"result", "contents"}, func(v jsontext.Value) (jsontext.Value, error) {
				var contents []jsontext.Value
				if err := jsonv2.Unmarshal(v, &contents); err != nil {
					return nil, err
				}
				for i, c := range contents {
					if b, err := replaceString(c, []string{"uri"}, prefixURI); err == nil {
						contents[i] = b
					}
				}
				return jsonv2.Marshal(contents)
			}))
		}
		return out, nil
	}
}

// toTarget rewrites a client's response to a request a target sent: the
// original id back in place. ok is false when the response answers nothing
// the gateway mapped.
func (f *federation) toTarget(raw []byte, id jsontext.Value) (ir.Target, []byte, bool) {
	t, orig, ok := f.unmapServerID(id)
	if !ok {
		return ir.Target{}, nil, false
	}
	b, err := replaceValue(raw, []string{"id"}, func(jsontext.Value) (jsontext.Value, error) { return orig, nil })
	if err != nil {
		return ir.Target{}, nil, false
	}
	return t, b, true
}
