package mcp

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parse calls Parse and turns a panic into a test failure, so that one
// crashing input does not hide the results of every other case.
func parse(t *testing.T, b []byte) (m *Message, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Parse(%.200q) panicked: %v", b, r)
		}
	}()
	return Parse(b)
}

// summary describes a message in a failure message.
func summary(m *Message) string {
	if m == nil {
		return "no message"
	}
	return fmt.Sprintf("%s method=%q id=%s name=%q uri=%q", m.Kind, m.Method, m.ID, m.Name, m.URI)
}

// nested returns params whose innermost object sits depth levels below the
// params object itself (params is level 1, as Parse counts).
func nested(depth int) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":` +
		strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1) + `}`
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		kind      Kind
		id        string // raw id, "" for none
		method    string
		toolName  string
		uri       string
		version   string
		hasParams bool
	}{
		{name: "request with integer id", in: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, kind: Request, id: `1`, method: "tools/list"},
		{name: "request with negative integer id", in: `{"jsonrpc":"2.0","id":-7,"method":"ping"}`, kind: Request, id: `-7`, method: "ping"},
		{name: "request with huge integer id", in: `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}`, kind: Request, id: `123456789012345678901234567890`, method: "ping"},
		{name: "large but evaluable numbers in arguments", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":1e300,"b":-2.5E-300,"c":123456789012345678901234567890}}}`, kind: Request, id: `1`, method: "tools/call", toolName: "echo", hasParams: true},
		{name: "request with string id", in: `{"jsonrpc":"2.0","id":"abc-1","method":"tools/list"}`, kind: Request, id: `"abc-1"`, method: "tools/list"},
		{name: "member order does not matter", in: `{"method":"tools/list","id":"x","jsonrpc":"2.0"}`, kind: Request, id: `"x"`, method: "tools/list"},
		{name: "surrounding whitespace", in: " \n\t{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n ", kind: Request, id: `1`, method: "ping"},
		{name: "notification", in: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, kind: Notification, method: "notifications/initialized"},
		{name: "notification with params", in: `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`, kind: Notification, method: "notifications/progress", hasParams: true},
		{name: "response with result", in: `{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}`, kind: Response, id: `3`},
		{name: "response with error", in: `{"jsonrpc":"2.0","id":"r","error":{"code":-32601,"message":"nope"}}`, kind: Response, id: `"r"`},
		{name: "response with null result", in: `{"jsonrpc":"2.0","id":3,"result":null}`, kind: Response, id: `3`},
		{
			name: "tools/call extracts the name", in: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`,
			kind: Request, id: `2`, method: "tools/call", toolName: "echo", hasParams: true,
		},
		{
			name: "tools/call without arguments", in: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}`,
			kind: Request, id: `2`, method: "tools/call", toolName: "echo", hasParams: true,
		},
		{
			name: "escaped member names are the names they spell", in: `{"jsonrpc":"2.0","id":2,"\u006dethod":"tools/call","params":{"n\u0061me":"echo"}}`,
			kind: Request, id: `2`, method: "tools/call", toolName: "echo", hasParams: true,
		},
		{
			name: "prompts/get extracts the name", in: `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"greet","arguments":{"who":"x"}}}`,
			kind: Request, id: `2`, method: "prompts/get", toolName: "greet", hasParams: true,
		},
		{
			name: "resources/read extracts the uri", in: `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/motd"}}`,
			kind: Request, id: `2`, method: "resources/read", uri: "file:///etc/motd", hasParams: true,
		},
		{
			name: "initialize extracts the protocol version", in: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
			kind: Request, id: `0`, method: "initialize", version: "2025-06-18", hasParams: true,
		},
		{name: "nesting of exactly 64 levels", in: nested(64), kind: Request, id: `1`, method: "tools/list", hasParams: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(t, []byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.kind, m.Kind, "kind")
			assert.Equal(t, tt.in, string(m.Raw), "Raw must be the bytes as received")
			if tt.id == "" {
				assert.Nil(t, m.ID, "id")
			} else {
				assert.Equal(t, tt.id, string(m.ID), "id")
			}
			assert.Equal(t, tt.method, m.Method, "method")
			assert.Equal(t, tt.toolName, m.Name, "name")
			assert.Equal(t, tt.uri, m.URI, "uri")
			assert.Equal(t, tt.version, m.ProtocolVersion, "protocol version")
			if tt.hasParams {
				require.NotNil(t, m.Params, "params")
				_, ok := m.Params.Value.(ast.Object)
				assert.True(t, ok, "got params %T, want ast.Object", m.Params.Value)
			} else {
				assert.Nil(t, m.Params, "params")
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code int
	}{
		// Not JSON at all.
		{"empty body", ``, CodeParseError},
		{"whitespace only", " \n", CodeParseError},
		{"invalid JSON", `{"jsonrpc":"2.0",`, CodeParseError},
		{"not JSON", `hello`, CodeParseError},
		{"single quotes", `{'jsonrpc':'2.0'}`, CodeParseError},
		{"trailing comma", `{"jsonrpc":"2.0","id":1,"method":"ping",}`, CodeParseError},
		{"invalid batch", `[{"jsonrpc":"2.0",`, CodeParseError},

		// Shape.
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest},
		{"batch after whitespace", " \n[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", CodeInvalidRequest},
		{"empty batch", `[]`, CodeInvalidRequest},
		{"a string", `"ping"`, CodeInvalidRequest},
		{"a number", `1`, CodeInvalidRequest},
		{"null", `null`, CodeInvalidRequest},

		// Trailing data.
		{"two objects", `{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}`, CodeParseError},
		{"two objects separated by a newline", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n{}", CodeParseError},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"}x`, CodeParseError},
		{"trailing bracket", `{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeParseError},
		{"trailing NUL", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\x00", CodeParseError},

		// Version.
		{"missing jsonrpc", `{"id":1,"method":"ping"}`, CodeInvalidRequest},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest},
		{"jsonrpc as a number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, CodeInvalidRequest},

		// ids.
		{"float id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, CodeInvalidRequest},
		{"integral float id", `{"jsonrpc":"2.0","id":1.0,"method":"ping"}`, CodeInvalidRequest},
		{"exponent id", `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, CodeInvalidRequest},
		{"upper-case exponent id", `{"jsonrpc":"2.0","id":1E3,"method":"ping"}`, CodeInvalidRequest},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest},
		{"boolean id", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, CodeInvalidRequest},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest},
		{"array id", `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, CodeInvalidRequest},

		// Methods and kinds.
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":1}`, CodeInvalidRequest},
		{"empty method", `{"jsonrpc":"2.0","id":1,"method":""}`, CodeInvalidRequest},
		{"method and result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, CodeInvalidRequest},
		{"method and error", `{"jsonrpc":"2.0","id":1,"method":"ping","error":{}}`, CodeInvalidRequest},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{}}`, CodeInvalidRequest},
		{"result without id", `{"jsonrpc":"2.0","result":{}}`, CodeInvalidRequest},
		{"error without id", `{"jsonrpc":"2.0","error":{"code":1,"message":"x"}}`, CodeInvalidRequest},
		{"nothing but jsonrpc", `{"jsonrpc":"2.0"}`, CodeInvalidRequest},
		{"id only", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest},

		// Duplicate names, at every level.
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, CodeParseError},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeParseError},
		{"duplicate jsonrpc", `{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`, CodeParseError},
		{"duplicate params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}`, CodeParseError},
		{"duplicate method through an escape", `{"jsonrpc":"2.0","id":1,"method":"tools/list","\u006dethod":"tools/call"}`, CodeParseError},
		{"duplicate name in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"printEnv"}}`, CodeParseError},
		{"duplicate name in params through an escape", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","n\u0061me":"printEnv"}}`, CodeParseError},
		{"duplicate key in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"cmd":"ls","cmd":"rm -rf /"}}}`, CodeParseError},
		{"number too big for the policy engine", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e40000}}}`, CodeParseError},
		{"number too small for the policy engine", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":-1e-40000}}}`, CodeParseError},
		{"duplicate key deep in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[{"b":{"c":1,"c":2}}]}}}`, CodeParseError},
		{"duplicate key in a result", `{"jsonrpc":"2.0","id":1,"result":{"a":1,"a":2}}`, CodeParseError},

		// Case variants of the members we know are unknown members.
		{"Method", `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, CodeInvalidRequest},
		{"method and Method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, CodeInvalidRequest},
		{"ID", `{"jsonrpc":"2.0","ID":1,"method":"ping"}`, CodeInvalidRequest},
		{"Params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"printEnv"}}`, CodeInvalidRequest},
		{"JSONRPC", `{"JSONRPC":"2.0","id":1,"method":"ping"}`, CodeInvalidRequest},
		{"unknown member", `{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}`, CodeInvalidRequest},

		// Invalid UTF-8, anywhere.
		{"invalid UTF-8 in method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/\xff\"}", CodeParseError},
		{"invalid UTF-8 in a params key", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"\xc3\x28\":1}}", CodeParseError},
		{"invalid UTF-8 in the tool name", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"ec\xedho\"}}", CodeParseError},
		{"invalid UTF-8 in a string id", "{\"jsonrpc\":\"2.0\",\"id\":\"\xfe\",\"method\":\"ping\"}", CodeParseError},
		{"invalid UTF-8 in a result", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":\"\xff\"}}", CodeParseError},
		{"escaped lone surrogate", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}`, CodeParseError},
		{"UTF-8 encoded surrogate", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\xed\xa0\x80\"}}", CodeParseError},

		// params.
		{"params an array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["echo"]}`, CodeInvalidRequest},
		{"params a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"echo"}`, CodeInvalidRequest},
		{"params null", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`, CodeInvalidRequest},
		{"params a number", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":1}`, CodeInvalidRequest},
		{"tools/call without params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, CodeInvalidParams},
		{"prompts/get without params", `{"jsonrpc":"2.0","id":1,"method":"prompts/get"}`, CodeInvalidParams},
		{"resources/read without params", `{"jsonrpc":"2.0","id":1,"method":"resources/read"}`, CodeInvalidParams},
		{"tools/call without name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`, CodeInvalidParams},
		{"tools/call with only Name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"echo"}}`, CodeInvalidParams},
		{"tools/call with an empty name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}`, CodeInvalidParams},
		{"tools/call with a number name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, CodeInvalidParams},
		{"tools/call with a null name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}`, CodeInvalidParams},
		{"tools/call with an array name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["echo"]}}`, CodeInvalidParams},
		{"tools/call with array arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":["x"]}}`, CodeInvalidParams},
		{"tools/call with string arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":"x"}}`, CodeInvalidParams},
		{"tools/call with null arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":null}}`, CodeInvalidParams},
		{"prompts/get without name", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{}}`, CodeInvalidParams},
		{"resources/read without uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, CodeInvalidParams},
		{"resources/read with a number uri", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":1}}`, CodeInvalidParams},
		{"initialize with a number protocol version", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":20250618}}`, CodeInvalidParams},

		// Depth.
		{"nesting of 65 levels", nested(65), CodeInvalidRequest},
		{"nesting of 1000 levels", nested(1000), CodeInvalidRequest},
		{"deep arrays in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}}`, CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parse(t, []byte(tt.in))
			require.Error(t, err, "got %s, want an error", summary(m))
			assert.Nil(t, m)
			var e *Error
			require.True(t, errors.As(err, &e), "got %T, want *Error", err)
			assert.Equal(t, tt.code, e.Code, "got code %d (%s), want %d", e.Code, e.Message, tt.code)
			assert.ErrorIs(t, err, ErrMessage)
			assert.NotEmpty(t, e.Message)
		})
	}
}

// The differential the design warns about: a case variant of "name" must
// neither be taken for the name nor be dropped from what the policy sees.
func TestParseCaseVariantOfName(t *testing.T) {
	tests := []struct {
		in      string
		variant string // the case variant that must stay a distinct member
		members int
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"printEnv"}}`, "Name", 2},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"printEnv","name":"echo"}}`, "Name", 2},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"printEnv","name":"echo","nAme":"x"}}`, "NAME", 3},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := parse(t, []byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, "echo", m.Name, "got name %q, want the case-sensitive match", m.Name)
			obj := m.Params.Value.(ast.Object)
			assert.Equal(t, obj.Len(), tt.members, "every member kept as a distinct key")
			assert.Equal(t, ast.String("echo"), obj.Get(ast.StringTerm("name")).Value, "params.name")
			v := obj.Get(ast.StringTerm(tt.variant))
			if assert.NotNil(t, v, "params.%s dropped", tt.variant) {
				assert.Equal(t, ast.String("printEnv"), v.Value, "params.%s", tt.variant)
			}
		})
	}
}

func TestParseParamsTerm(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{` +
		`"big":12345678901234567890,"huge":1e400,"neg":-0.5,"tiny":1E-400,"zero":0,` +
		`"s":"h\u00e9llo \"q\"","t":true,"f":false,"n":null,"arr":[1,"two",[3],{"four":4}],"obj":{"k":"v"}}}}`
	m, err := parse(t, []byte(in))
	require.NoError(t, err)
	want := ast.MustParseTerm(`{"name":"echo","arguments":{` +
		`"big":12345678901234567890,"huge":1e400,"neg":-0.5,"tiny":1E-400,"zero":0,` +
		`"s":"héllo \"q\"","t":true,"f":false,"n":null,"arr":[1,"two",[3],{"four":4}],"obj":{"k":"v"}}}`)
	assert.Equal(t, 0, ast.Compare(want.Value, m.Params.Value), "got params %v, want %v", m.Params, want)

	args, ok := m.Arguments.Value.(ast.Object)
	require.True(t, ok, "got arguments %T, want ast.Object", m.Arguments.Value)
	// Numbers keep their literal: no float64 rounding, no overflow to Inf.
	for key, lit := range map[string]string{"big": "12345678901234567890", "huge": "1e400", "neg": "-0.5", "tiny": "1E-400", "zero": "0"} {
		n, ok := args.Get(ast.StringTerm(key)).Value.(ast.Number)
		if assert.True(t, ok, "%s: got %T, want ast.Number", key, args.Get(ast.StringTerm(key)).Value) {
			assert.Equal(t, lit, string(n), "%s: got literal %s, want %s", key, n, lit)
		}
	}
	assert.Equal(t, ast.String(`héllo "q"`), args.Get(ast.StringTerm("s")).Value)
	assert.Equal(t, ast.Boolean(true), args.Get(ast.StringTerm("t")).Value)
	assert.Equal(t, ast.Null{}, args.Get(ast.StringTerm("n")).Value)
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Request: "request", Notification: "notification", Response: "response", 0: "unknown", 99: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String(): got %q, want %q", int(k), got, want)
		}
	}
}

// Errors must not echo large parts of a hostile input.
func TestParseErrorIsShort(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("A", 10000) + "\xff" + `"}`
	_, err := parse(t, []byte(in))
	require.Error(t, err)
	if len(err.Error()) > 250 {
		t.Errorf("got an error of %d bytes, want at most 250: %.300s", len(err.Error()), err)
	}
}

func TestErrorResponse(t *testing.T) {
	tests := []struct {
		name string
		id   jsontext.Value
		code int
		msg  string
		data any
		want string
	}{
		{"null id", nil, CodeParseError, "parse error", nil, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`},
		{"empty id", jsontext.Value{}, CodeInvalidRequest, "bad", nil, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`},
		{"string id", jsontext.Value(`"abc"`), CodeInvalidParams, "Unknown tool: x", nil, `{"jsonrpc":"2.0","id":"abc","error":{"code":-32602,"message":"Unknown tool: x"}}`},
		{"integer id", jsontext.Value(`42`), CodeInternalError, "internal error", nil, `{"jsonrpc":"2.0","id":42,"error":{"code":-32603,"message":"internal error"}}`},
		{"with data", jsontext.Value(`1`), -32000, "rate limited", map[string]any{"retry_after": 3}, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"rate limited","data":{"retry_after":3}}}`},
		{"message is escaped", jsontext.Value(`1`), -32000, "a \"quoted\" <tag>\n", nil, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"a \"quoted\" \u003ctag\u003e\n"}}`},
		{"unencodable data is dropped", jsontext.Value(`1`), -32000, "x", func() {}, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(ErrorResponse(tt.id, tt.code, tt.msg, tt.data))
			assert.Equal(t, tt.want, got)
			// What we send must itself be a message our strict parser accepts
			// (with an id) or at least valid JSON.
			assert.True(t, jsontext.Value(got).IsValid(), "got invalid JSON %s", got)
		})
	}
}

// A response the gateway writes for a parsed request must carry that
// request's id byte for byte.
func TestErrorResponseEchoesParsedID(t *testing.T) {
	for _, id := range []string{`1`, `"x"`, `-3`, `"\u00e9"`, `123456789012345678901234567890`} {
		t.Run(id, func(t *testing.T) {
			m, err := parse(t, []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"ping"}`))
			require.NoError(t, err)
			resp, err := parse(t, ErrorResponse(m.ID, CodeInternalError, "x", nil))
			require.NoError(t, err)
			assert.Equal(t, Response, resp.Kind)
			assert.Equal(t, id, string(resp.ID))
		})
	}
}
