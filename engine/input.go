package engine

import (
	"net"
	"net/http"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
	"github.com/mcpgate/mcpgate/ir"
)

// Keys of the input document (docs/input.md), built once.
var (
	kVersion, kRequest, kSource, kRoute, kMCP, kJWT, kPhase = ast.StringTerm("version"), ast.StringTerm("request"), ast.StringTerm("source"), ast.StringTerm("route"), ast.StringTerm("mcp"), ast.StringTerm("jwt"), ast.StringTerm("phase")
	kMethod, kPath, kHost, kScheme, kHeaders, kRemote       = ast.StringTerm("method"), ast.StringTerm("path"), ast.StringTerm("host"), ast.StringTerm("scheme"), ast.StringTerm("headers"), ast.StringTerm("remote_addr")
	kAddress, kPort                                         = ast.StringTerm("address"), ast.StringTerm("port")
	kID, kKind, kProtoVersion, kSession, kParams            = ast.StringTerm("id"), ast.StringTerm("kind"), ast.StringTerm("protocol_version"), ast.StringTerm("session"), ast.StringTerm("params")
	kTool, kPrompt, kResource, kName, kTarget, kArguments   = ast.StringTerm("tool"), ast.StringTerm("prompt"), ast.StringTerm("resource"), ast.StringTerm("name"), ast.StringTerm("target"), ast.StringTerm("arguments")
	kURI, kURITemplate, kAnnotations                        = ast.StringTerm("uri"), ast.StringTerm("uriTemplate"), ast.StringTerm("annotations")
	kPresent, kValid, kError, kClaims, kHeader              = ast.StringTerm("present"), ast.StringTerm("valid"), ast.StringTerm("error"), ast.StringTerm("claims"), ast.StringTerm("header")
	vVersion                                                = ast.StringTerm(ir.Version)
	vPhaseRequest, vPhaseList, kList                        = ast.StringTerm("request"), ast.StringTerm("list"), ast.StringTerm("list")
	vHTTP, vHTTPS                                           = ast.StringTerm("http"), ast.StringTerm("https")
	vEmptyObject                                            = ast.ObjectTerm()
)

// headerNames holds the lower-case name terms of the headers MCP clients
// usually send, built once (other names are lower-cased per request; the
// table never grows with what clients send).
var headerNames = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Connection", "Content-Length", "Content-Type",
		"Host", "Last-Event-Id", "Mcp-Protocol-Version", "Mcp-Session-Id", "Origin", "Referer", "Sec-Fetch-Mode", "User-Agent",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id", "Traceparent", "Tracestate"} {
		m[h] = ast.StringTerm(strings.ToLower(h))
	}
	return m
}()

// hiddenHeaders never reach the policy: credentials are represented by the
// verified jwt section, not by raw values a rule could leak.
var hiddenHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true}

// buildInput assembles the input document for one message.
func buildInput(r *http.Request, route *ast.Term, target string, msg *mcp.Message, jwt authn.Result) ast.Value {
	return buildInputPhase(r, route, target, msg, jwt, nil, true)
}

// buildInputPhase builds the request document, or with list set the list
// document: the same document with mcp.list holding the items of a list
// result and phase "list".
//
// Without withHeaders, input.request.headers is an empty object: for
// policies that provably never read it (policy.Evaluator.ReadsHeaders).
func buildInputPhase(r *http.Request, route *ast.Term, target string, msg *mcp.Message, jwt authn.Result, list *ast.Term, withHeaders bool) ast.Value {
	return newInputParts(r, jwt, withHeaders).input(r, route, target, msg, list)
}

// inputParts are the parts of the input every decision of one request
// shares (a list filtered item by item takes several).
type inputParts struct {
	request, source, jwt *ast.Term
}

func newInputParts(r *http.Request, jwt authn.Result, withHeaders bool) inputParts {
	scheme := vHTTP
	if r.TLS != nil {
		scheme = vHTTPS
	}
	n := len(r.Header)
	if !withHeaders {
		n = 0
	}
	headers := make([][2]*ast.Term, 0, n)
	for k, vs := range r.Header {
		if !withHeaders {
			break
		}
		if hiddenHeaders[k] {
			continue
		}
		name, ok := headerNames[k]
		if !ok {
			name = ast.StringTerm(strings.ToLower(k))
		}
		value := ""
		if len(vs) == 1 {
			value = vs[0]
		} else {
			value = strings.Join(vs, ", ")
		}
		headers = append(headers, [2]*ast.Term{name, ast.StringTerm(value)})
	}
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host, port = r.RemoteAddr, ""
	}
	request := ast.ObjectTerm(
		ast.Item(kMethod, ast.StringTerm(r.Method)),
		ast.Item(kPath, ast.StringTerm(r.URL.Path)),
		ast.Item(kHost, ast.StringTerm(r.Host)),
		ast.Item(kScheme, scheme),
		ast.Item(kHeaders, ast.ObjectTerm(headers...)),
		ast.Item(kRemote, ast.StringTerm(r.RemoteAddr)),
	)
	source := ast.ObjectTerm(ast.Item(kAddress, ast.StringTerm(host)), ast.Item(kPort, ast.StringTerm(port)))
	return inputParts{request: request, source: source, jwt: jwtTerm(jwt)}
}

// input assembles one input document: the request phase, or the list phase
// when list is set.
func (p inputParts) input(r *http.Request, route *ast.Term, target string, msg *mcp.Message, list *ast.Term) ast.Value {
	mcpT, phase := mcpTerm(r, target, msg), vPhaseRequest
	if list != nil {
		mcpT.Value.(ast.Object).Insert(kList, list)
		phase = vPhaseList
	}
	return ast.NewObject(
		ast.Item(kVersion, vVersion),
		ast.Item(kRequest, p.request),
		ast.Item(kSource, p.source),
		ast.Item(kRoute, route),
		ast.Item(kMCP, mcpT),
		ast.Item(kJWT, p.jwt),
		ast.Item(kPhase, phase),
	)
}

func mcpTerm(r *http.Request, target string, msg *mcp.Message) *ast.Term {
	items := [][2]*ast.Term{
		ast.Item(kSession, ast.BooleanTerm(r.Header.Get("Mcp-Session-Id") != "")),
		ast.Item(kProtoVersion, ast.StringTerm(r.Header.Get("Mcp-Protocol-Version"))),
	}
	if msg == nil {
		items = append(items, ast.Item(kMethod, ast.StringTerm("")))
		return ast.ObjectTerm(items...)
	}
	items = append(items,
		ast.Item(kMethod, ast.StringTerm(msg.Method)),
		ast.Item(kKind, ast.StringTerm(msg.Kind.String())),
	)
	if msg.ID != nil {
		items = append(items, ast.Item(kID, ast.NewTerm(idValue(msg))))
	}
	if msg.ProtocolVersion != "" {
		items[1] = ast.Item(kProtoVersion, ast.StringTerm(msg.ProtocolVersion))
	}
	params := vEmptyObject
	if msg.Params != nil {
		params = msg.Params
	}
	items = append(items, ast.Item(kParams, params))
	tgt := ast.StringTerm(target)
	named := func(key *ast.Term) [2]*ast.Term { // a tool or a prompt
		args := msg.Arguments
		if args == nil {
			args = vEmptyObject
		}
		return ast.Item(key, ast.ObjectTerm(ast.Item(kName, ast.StringTerm(msg.Name)), ast.Item(kTarget, tgt), ast.Item(kArguments, args)))
	}
	resource := func() [2]*ast.Term {
		return ast.Item(kResource, ast.ObjectTerm(ast.Item(kURI, ast.StringTerm(msg.URI)), ast.Item(kTarget, tgt)))
	}
	switch msg.Method {
	case "tools/call":
		items = append(items, named(kTool))
	case "prompts/get":
		items = append(items, named(kPrompt))
	case "completion/complete":
		if msg.RefType == "ref/prompt" {
			items = append(items, named(kPrompt))
		} else {
			items = append(items, resource())
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		items = append(items, resource())
	}
	return ast.ObjectTerm(items...)
}

func idValue(msg *mcp.Message) ast.Value {
	// The parser accepted the id as a JSON string, number or null; numbers,
	// the usual case, need no decoding.
	if id := msg.ID; len(id) > 0 && (id[0] == '-' || id[0] >= '0' && id[0] <= '9') {
		return ast.Number(id)
	}
	v, err := ast.ValueFromReader(strings.NewReader(string(msg.ID)))
	if err != nil {
		return ast.Null{}
	}
	return v
}

func jwtTerm(j authn.Result) *ast.Term {
	items := [][2]*ast.Term{
		ast.Item(kPresent, ast.BooleanTerm(j.Present)),
		ast.Item(kValid, ast.BooleanTerm(j.Valid)),
		ast.Item(kError, ast.StringTerm(j.Error)),
	}
	if j.Valid && j.Claims != nil {
		items = append(items, ast.Item(kClaims, ast.NewTerm(j.Claims)))
	} else {
		items = append(items, ast.Item(kClaims, vEmptyObject))
	}
	if j.Header != nil {
		items = append(items, ast.Item(kHeader, ast.NewTerm(j.Header)))
	}
	return ast.ObjectTerm(items...)
}
