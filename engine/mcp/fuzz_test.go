package mcp

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
)

// FuzzParse checks Parse's invariants, and that whatever it accepts reads
// the same with encoding/json (the way most servers behind the gateway, in
// any language, read JSON: case-sensitive map keys, numbers as literals). A
// difference in method, tool name or params would be a parser differential:
// the policy deciding on one message while the upstream runs another.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"printEnv"}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if m != nil {
				t.Fatalf("got a message and an error %v", err)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("got error %T, want *Error", err)
			}
			return
		}
		if !jsontext.Value(m.Raw).IsValid() {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if !bytes.Equal(m.Raw, b) {
			t.Fatalf("Raw %q differs from the input %q", m.Raw, b)
		}
		switch m.Kind {
		case Request, Notification, Response:
		default:
			t.Fatalf("got kind %d, want request, notification or response", m.Kind)
		}
		if m.Kind == Request && m.Method == "" {
			t.Fatalf("request with an empty method: %q", b)
		}
		if (m.Kind == Notification) != (m.ID == nil) {
			t.Fatalf("kind %s with id %q", m.Kind, m.ID)
		}
		if m.Params != nil {
			if _, ok := m.Params.Value.(ast.Object); !ok {
				t.Fatalf("got params %T, want ast.Object", m.Params.Value)
			}
		}
		if m.Arguments != nil {
			if _, ok := m.Arguments.Value.(ast.Object); !ok {
				t.Fatalf("got arguments %T, want ast.Object", m.Arguments.Value)
			}
		}

		// Differential: encoding/json must read the same message.
		var doc map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("Parse accepted %q, encoding/json refused it: %v", b, err)
		}
		method, hasMethod := doc["method"]
		if m.Kind == Response {
			if hasMethod {
				t.Fatalf("response, but encoding/json sees method %v", method)
			}
		} else if method != m.Method {
			t.Fatalf("got method %q, encoding/json sees %#v", m.Method, method)
		}
		if m.Kind == Response {
			return
		}
		params, hasParams := doc["params"].(map[string]any)
		if hasParams != (m.Params != nil) {
			t.Fatalf("params present: Parse %v, encoding/json %v", m.Params != nil, hasParams)
		}
		if !hasParams {
			return
		}
		switch m.Method {
		case "tools/call", "prompts/get":
			if name, _ := params["name"].(string); name != m.Name {
				t.Fatalf("got name %q, encoding/json sees %#v", m.Name, params["name"])
			}
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
			if uri, _ := params["uri"].(string); uri != m.URI {
				t.Fatalf("got uri %q, encoding/json sees %#v", m.URI, params["uri"])
			}
		}
		// The whole params object, as the policy sees it.
		want, err := ast.InterfaceToValue(params)
		if err != nil {
			t.Fatalf("converting encoding/json params: %v", err)
		}
		if ast.Compare(want, m.Params.Value) != 0 {
			t.Fatalf("got params %v, encoding/json sees %v", m.Params, want)
		}
	})
}
