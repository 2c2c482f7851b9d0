// Package mcp decodes and encodes the JSON-RPC messages of the Model Context
// Protocol as a gateway must: strictly. Member names are case-sensitive,
// duplicate names and invalid UTF-8 are rejected, batches are rejected (MCP
// 2025-06-18 removed them), and unknown top-level members are rejected, so
// that no upstream parser can read a message differently from the one the
// policy decided on. The parameters are decoded once, straight into the OPA
// AST the policy evaluates, without a reflection round trip.
package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
)

// JSON-RPC error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	// CodeUnsupportedProtocolVersion answers a MCP-Protocol-Version the
	// gateway does not speak (MCP, SEP-2575).
	CodeUnsupportedProtocolVersion = -32022
)

// maxDepth bounds nesting so a hostile body cannot exhaust the stack.
const maxDepth = 64

// Kind tells requests, notifications and responses apart.
type Kind int

// Message kinds.
const (
	Request Kind = iota + 1
	Notification
	Response
)

func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Notification:
		return "notification"
	case Response:
		return "response"
	}
	return "unknown"
}

// Message is one decoded JSON-RPC message.
type Message struct {
	Raw    []byte // the validated bytes, forwarded as they are
	Kind   Kind
	ID     jsontext.Value // raw id (a string or an integer); nil for notifications
	Method string
	Params *ast.Term // the params object; nil when absent

	// Extracted for the policy: the tool, prompt or resource a message names.
	Name            string    // params.name (tools/call, prompts/get)
	URI             string    // params.uri (resources/read, subscribe, unsubscribe)
	RefType         string    // params.ref.type of completion/complete: "ref/prompt" (Name) or "ref/resource" (URI)
	Arguments       *ast.Term // params.arguments (tools/call, prompts/get); nil when absent
	ProtocolVersion string    // params.protocolVersion (initialize)
}

// Error is a JSON-RPC error to send back for a message that could not be
// decoded.
type Error struct {
	Code    int
	Message string
	ID      jsontext.Value // the request's id when it could be read, for the error response
}

func (e *Error) Error() string { return fmt.Sprintf("jsonrpc %d: %s", e.Code, e.Message) }

// ErrMessage is wrapped by every *Error, for errors.Is.
var ErrMessage = errors.New("invalid JSON-RPC message")

// Unwrap makes errors.Is(err, ErrMessage) true.
func (e *Error) Unwrap() error { return ErrMessage }

func parseErr(format string, args ...any) *Error {
	return &Error{Code: CodeParseError, Message: "parse error: " + fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid request: " + fmt.Sprintf(format, args...)}
}

// Parse decodes one message. The error is always an *Error.
func Parse(b []byte) (*Message, error) {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if !jsontext.Value(b).IsValid() {
			return nil, parseErr("invalid JSON")
		}
		return nil, invalid("batch requests are not supported")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, parseErr("%s", describe(err))
	}
	if tok.Kind() != '{' {
		return nil, invalid("a message must be a JSON object")
	}
	m := &Message{Raw: b}
	var version string
	var hasVersion, hasID, hasResult, hasError, hasMethod bool
	for dec.PeekKind() != '}' {
		nameTok, err := dec.ReadToken()
		if err != nil {
			return nil, parseErr("%s", describe(err))
		}
		name := nameTok.String()
		switch name {
		case "jsonrpc":
			v, err := readString(dec, "jsonrpc")
			if err != nil {
				return nil, err
			}
			version, hasVersion = v, true
		case "id":
			v, err := dec.ReadValue()
			if err != nil {
				return nil, parseErr("%s", describe(err))
			}
			switch v.Kind() {
			case '"':
			case '0':
				if bytes.ContainsAny(v, ".eE") {
					return nil, invalid("id must be a string or an integer")
				}
			default:
				return nil, invalid("id must be a string or an integer")
			}
			m.ID, hasID = v.Clone(), true
		case "method":
			v, err := readString(dec, "method")
			if err != nil {
				return nil, err
			}
			m.Method, hasMethod = v, true
		case "params":
			if dec.PeekKind() != '{' {
				if _, err := dec.ReadValue(); err != nil {
					return nil, parseErr("%s", describe(err))
				}
				return nil, invalid("params must be an object")
			}
			t, err := readTerm(dec, 1)
			if err != nil {
				return nil, err
			}
			m.Params = t
		case "result":
			if _, err := dec.ReadValue(); err != nil {
				return nil, parseErr("%s", describe(err))
			}
			hasResult = true
		case "error":
			if _, err := dec.ReadValue(); err != nil {
				return nil, parseErr("%s", describe(err))
			}
			hasError = true
		default:
			// Unknown members (including case variants such as "Method")
			// are refused rather than guessed at.
			if _, err := dec.ReadValue(); err != nil {
				return nil, parseErr("%s", describe(err))
			}
			return nil, invalid("unknown member %q", name)
		}
	}
	if _, err := dec.ReadToken(); err != nil { // the closing brace
		return nil, parseErr("%s", describe(err))
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, parseErr("unexpected data after the message")
	}
	if !hasVersion || version != "2.0" {
		return nil, invalid(`"jsonrpc" must be "2.0"`)
	}
	switch {
	case hasMethod && (hasResult || hasError):
		return nil, invalid("a message cannot have both a method and a result or error")
	case hasMethod && hasID:
		m.Kind = Request
	case hasMethod:
		m.Kind = Notification
	case hasResult && hasError:
		return nil, invalid("a response cannot have both a result and an error")
	case (hasResult || hasError) && hasID:
		m.Kind = Response
	case hasError:
		// An error response to a request whose id could not be read carries
		// no usable id; nothing to route it to.
		return nil, invalid("a response needs an id")
	default:
		return nil, invalid("a message needs a method, or a result or an error")
	}
	if m.Kind == Request && m.Method == "" {
		e := invalid("method must not be empty")
		e.ID = m.ID
		return nil, e
	}
	if m.Kind != Response {
		if err := m.extract(); err != nil {
			if m.Kind == Request {
				err.ID = m.ID
			}
			return nil, err
		}
	}
	return m, nil
}

// extract pulls out the names the policy decides on. A name of the wrong type
// is refused here: the upstream would refuse it too, and the policy must
// never see a different name than the upstream would.
func (m *Message) extract() *Error {
	obj := ast.NewObject()
	if m.Params != nil {
		o, ok := m.Params.Value.(ast.Object)
		if !ok {
			return invalid("params must be an object")
		}
		obj = o
	}
	str := func(key string) (string, *Error) {
		t := obj.Get(ast.InternedTerm(key))
		if t == nil {
			return "", nil
		}
		s, ok := t.Value.(ast.String)
		if !ok {
			return "", &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("invalid params: %s must be a string", key)}
		}
		return string(s), nil
	}
	var err *Error
	switch m.Method {
	case "tools/call", "prompts/get":
		if m.Name, err = str("name"); err != nil {
			return err
		}
		if m.Name == "" {
			return &Error{Code: CodeInvalidParams, Message: "invalid params: name is required"}
		}
		if a := obj.Get(ast.InternedTerm("arguments")); a != nil {
			if _, ok := a.Value.(ast.Object); !ok {
				return &Error{Code: CodeInvalidParams, Message: "invalid params: arguments must be an object"}
			}
			m.Arguments = a
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if m.URI, err = str("uri"); err != nil {
			return err
		}
		if m.URI == "" {
			return &Error{Code: CodeInvalidParams, Message: "invalid params: uri is required"}
		}
	case "initialize":
		if m.ProtocolVersion, err = str("protocolVersion"); err != nil {
			return err
		}
	case "completion/complete":
		// Completing a prompt's or a resource template's arguments reveals
		// that it exists: the policy judges it like prompts/get or
		// resources/read.
		ref, ok := valueOf(obj, "ref").(ast.Object)
		if !ok {
			return &Error{Code: CodeInvalidParams, Message: "invalid params: ref must be an object"}
		}
		typ, _ := valueOf(ref, "type").(ast.String)
		field := map[ast.String]string{"ref/prompt": "name", "ref/resource": "uri"}[typ]
		if field == "" {
			return &Error{Code: CodeInvalidParams, Message: `invalid params: ref.type must be "ref/prompt" or "ref/resource"`}
		}
		v, _ := valueOf(ref, field).(ast.String)
		if v == "" {
			return &Error{Code: CodeInvalidParams, Message: "invalid params: ref." + field + " is required"}
		}
		m.RefType = string(typ)
		if field == "name" {
			m.Name = string(v)
		} else {
			m.URI = string(v)
		}
	}
	return nil
}

// valueOf is o[key], nil when absent.
func valueOf(o ast.Object, key string) ast.Value {
	if t := o.Get(ast.InternedTerm(key)); t != nil {
		return t.Value
	}
	return nil
}

func readString(dec *jsontext.Decoder, member string) (string, error) {
	if k := dec.PeekKind(); k != '"' {
		if _, err := dec.ReadValue(); err != nil {
			return "", parseErr("%s", describe(err))
		}
		return "", invalid("%s must be a string", member)
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return "", parseErr("%s", describe(err))
	}
	return tok.String(), nil
}

// readTerm decodes the next value into an OPA term.
func readTerm(dec *jsontext.Decoder, depth int) (*ast.Term, error) {
	if depth > maxDepth {
		return nil, invalid("nesting deeper than %d", maxDepth)
	}
	switch dec.PeekKind() {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return nil, parseErr("%s", describe(err))
		}
		var kvs [][2]*ast.Term
		for dec.PeekKind() != '}' {
			k, err := dec.ReadToken()
			if err != nil {
				return nil, parseErr("%s", describe(err))
			}
			// The token is only valid until the next decoder call.
			key := ast.StringTerm(k.String())
			v, err := readTerm(dec, depth+1)
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, [2]*ast.Term{key, v})
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, parseErr("%s", describe(err))
		}
		return ast.ObjectTerm(kvs...), nil
	case '[':
		if _, err := dec.ReadToken(); err != nil {
			return nil, parseErr("%s", describe(err))
		}
		var elems []*ast.Term
		for dec.PeekKind() != ']' {
			v, err := readTerm(dec, depth+1)
			if err != nil {
				return nil, err
			}
			elems = append(elems, v)
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, parseErr("%s", describe(err))
		}
		return ast.ArrayTerm(elems...), nil
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, parseErr("%s", describe(err))
		}
		return ast.StringTerm(tok.String()), nil
	case '0':
		v, err := dec.ReadValue()
		if err != nil {
			return nil, parseErr("%s", describe(err))
		}
		// The policy engine refuses numbers whose exponent it cannot
		// evaluate in bounded time (1e40000); so does the gateway, before
		// any policy sees them.
		n, err := ast.NumberChecked(string(v))
		if err != nil {
			return nil, parseErr("%s", err)
		}
		return ast.NewTerm(n), nil
	case 't', 'f':
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, parseErr("%s", describe(err))
		}
		return ast.BooleanTerm(tok.Bool()), nil
	case 'n':
		if _, err := dec.ReadToken(); err != nil {
			return nil, parseErr("%s", describe(err))
		}
		return ast.NullTerm(), nil
	}
	_, err := dec.ReadToken()
	if err == nil {
		err = errors.New("unexpected token")
	}
	return nil, parseErr("%s", describe(err))
}

// describe shortens decoder errors to what a client can act on, without
// echoing large parts of its input.
func describe(err error) string {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		msg := se.Err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
		return fmt.Sprintf("%s at byte %d", msg, se.ByteOffset)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "invalid JSON"
}
