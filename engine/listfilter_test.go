package engine

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// List filtering (listfilter.go and the relay in upstream.go): the answers
// to tools/list, prompts/list, resources/list and resources/templates/list
// keep only the items the route's authorization rules let the caller use.
// The upstream here answers each list with canned bytes, so the tests can
// hand it shapes a real server would not send.

// listAuthzYAML adds Allow rules to the fixture's /mcp route; the /open
// route keeps no authorization rules.
const listAuthzYAML = `---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: list-authz
  namespace: team
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp
  backend:
    mcp:
      authorization:
        action: Allow
        policy:
          matchExpressions:
          - 'mcp.tool.name == "echo"'
          - 'mcp.prompt.name == "greet"'
          - 'mcp.resource.uri.startsWith("file:///public/")'
          - 'mcp.resource.uriTemplate == "file:///public/{name}"'
          - '"mcp-admins" in jwt.groups'
`

// cannedUpstream is an MCP server whose every answer to a request is the
// bytes the test set, with the Content-Type it set.
type cannedUpstream struct {
	srv *httptest.Server

	mu          sync.Mutex
	contentType string
	body        string
}

func (u *cannedUpstream) answer(contentType, body string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.contentType, u.body = contentType, body
}

func (u *cannedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if r.Method != http.MethodPost || json.Unmarshal(raw, &msg) != nil || len(msg.ID) == 0 || msg.Method == "" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	u.mu.Lock()
	ct, body := u.contentType, u.body
	u.mu.Unlock()
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

// listEnv is a gateway (the fixture's configuration plus listAuthzYAML) in
// front of a cannedUpstream.
type listEnv struct {
	srv      *httptest.Server
	upstream *cannedUpstream
}

func newListEnv(t *testing.T) *listEnv {
	t.Helper()
	up := &cannedUpstream{}
	up.srv = httptest.NewServer(up)
	t.Cleanup(up.srv.Close)
	jwks := newJWKS(t)
	port := up.srv.URL[strings.LastIndex(up.srv.URL, ":")+1:]
	b := buildBundle(t, configYAML(port, jwks.URL+"/keys")+listAuthzYAML, nil)
	gw := New(Options{})
	require.NoError(t, gw.Activate(context.Background(), b))
	srv := httptest.NewServer(gw.Handler(testPort))
	t.Cleanup(srv.Close)
	return &listEnv{srv: srv, upstream: up}
}

const (
	sseAccept     = "application/json, text/event-stream"
	jsonCT        = "application/json"
	sseCT         = "text/event-stream"
	notification1 = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n"
	notification2 = "event: message\nid: ev-43\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n"
)

// list sends a list request (id 1, in a session the upstream knows) to
// path with the given Accept header and token claims override.
func (e *listEnv) list(t *testing.T, path, method, accept string, claims jwt.MapClaims) (status int, header http.Header, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+method+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+signToken(signingKey(), claims))
	req.Header.Set("Mcp-Session-Id", testSession)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// response wraps a result in a JSON-RPC response to id 1.
func response(result string) string {
	return `{"jsonrpc":"2.0","id":1,"result":` + result + `}`
}

// listCases are one list result per method, with what the list-authz
// rules keep of it. Every result carries other fields (nextCursor, _meta
// with a number a float64 round trip would damage) that must survive.
var listCases = []struct {
	method       string
	result, kept string
}{
	{
		method: "tools/list",
		result: `{"tools":[` +
			`{"name":"echo","description":"Echoes \u00e9","inputSchema":{"type":"object","properties":{"message":{"type":"string"}}}},` +
			`{"name":"printEnv","inputSchema":{"type":"object"}},` +
			`{"name":"get-sum","annotations":{"readOnlyHint":true},"inputSchema":{"type":"object"}}` +
			`],"nextCursor":"page-2","_meta":{"big":12345678901234567890}}`,
		kept: `{"tools":[` +
			`{"name":"echo","description":"Echoes \u00e9","inputSchema":{"type":"object","properties":{"message":{"type":"string"}}}}` +
			`],"nextCursor":"page-2","_meta":{"big":12345678901234567890}}`,
	},
	{
		method: "prompts/list",
		result: `{"prompts":[{"name":"secret"},{"name":"greet","arguments":[{"name":"who"}]}],"nextCursor":"p2","_meta":{"big":12345678901234567890}}`,
		kept:   `{"prompts":[{"name":"greet","arguments":[{"name":"who"}]}],"nextCursor":"p2","_meta":{"big":12345678901234567890}}`,
	},
	{
		// A name that looks public does not make a resource public: the
		// rule reads the URI.
		method: "resources/list",
		result: `{"resources":[{"uri":"file:///public/a.txt","name":"a.txt"},{"uri":"file:///private/b.txt","name":"file:///public/b.txt"}],"nextCursor":"r2","_meta":{"big":12345678901234567890}}`,
		kept:   `{"resources":[{"uri":"file:///public/a.txt","name":"a.txt"}],"nextCursor":"r2","_meta":{"big":12345678901234567890}}`,
	},
	{
		method: "resources/templates/list",
		result: `{"resourceTemplates":[{"uriTemplate":"file:///private/{name}","name":"private"},{"uriTemplate":"file:///public/{name}","name":"public"}],"nextCursor":"t2","_meta":{"big":12345678901234567890}}`,
		kept:   `{"resourceTemplates":[{"uriTemplate":"file:///public/{name}","name":"public"}],"nextCursor":"t2","_meta":{"big":12345678901234567890}}`,
	},
}

// A JSON answer is rewritten to the visible items; the id and every other
// field of the result survive.
func TestListFilterJSON(t *testing.T) {
	e := newListEnv(t)
	for _, tc := range listCases {
		for _, accept := range []string{sseAccept, "*/*"} {
			t.Run(tc.method+"/"+accept, func(t *testing.T) {
				e.upstream.answer(jsonCT, response(tc.result))
				status, hdr, body := e.list(t, "/mcp", tc.method, accept, nil)
				require.Equal(t, http.StatusOK, status, body)
				assert.Equal(t, jsonCT, hdr.Get("Content-Type"))
				assert.JSONEq(t, response(tc.kept), body)
				assert.Contains(t, body, "12345678901234567890", "a number outside the result's items must keep its digits")
			})
		}
	}
}

// The same rules read the token: an admin's list is the upstream's, byte
// for byte, as is any list in which every item is visible.
func TestListFilterNothingHiddenIsVerbatim(t *testing.T) {
	e := newListEnv(t)
	for _, tc := range listCases {
		t.Run(tc.method+"/admin", func(t *testing.T) {
			want := " " + response(tc.result) + "\n"
			e.upstream.answer(jsonCT, want)
			status, _, body := e.list(t, "/mcp", tc.method, sseAccept, jwt.MapClaims{"groups": []string{"mcp-admins"}})
			require.Equal(t, http.StatusOK, status, body)
			assert.Equal(t, want, body)
		})
	}
	t.Run("all visible", func(t *testing.T) {
		want := "{ \"jsonrpc\": \"2.0\", \"id\": 1,\n  \"result\": {\"tools\": [ {\"name\": \"echo\"} ], \"nextCursor\": \"n\"} }"
		e.upstream.answer(jsonCT, want)
		status, _, body := e.list(t, "/mcp", "tools/list", sseAccept, nil)
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, want, body)
	})
}

// sseEvents splits a text/event-stream body (LF line endings) into events,
// each with its terminating blank line.
func sseEvents(body string) []string {
	var out []string
	for body != "" {
		i := strings.Index(body, "\n\n")
		if i < 0 {
			out = append(out, body)
			break
		}
		out = append(out, body[:i+2])
		body = body[i+2:]
	}
	return out
}

// eventField returns the values of one field of an event.
func eventField(ev, field string) []string {
	var out []string
	for _, line := range strings.Split(ev, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			out = append(out, strings.TrimPrefix(v, " "))
		}
	}
	return out
}

// An SSE answer is relayed event by event: only the event carrying the
// response is rewritten, and it keeps its event name and id; the others
// pass byte for byte. A client that does not accept SSE gets the filtered
// response as JSON.
func TestListFilterSSE(t *testing.T) {
	e := newListEnv(t)
	for _, tc := range listCases {
		for name, data := range map[string]string{
			"one data line": "data: " + response(tc.result) + "\n",
			// JSON may be split over several data lines (joined with LF).
			"several data lines": "data: {\"jsonrpc\":\"2.0\",\n" + "data:  \"id\":1,\n" + "data: \"result\":" + tc.result + "\n" + "data: }\n",
		} {
			t.Run(tc.method+"/"+name, func(t *testing.T) {
				e.upstream.answer(sseCT, notification1+"event: message\nid: ev-42\n"+data+"\n"+notification2)

				status, hdr, body := e.list(t, "/mcp", tc.method, sseAccept, nil)
				require.Equal(t, http.StatusOK, status, body)
				assert.Equal(t, sseCT, hdr.Get("Content-Type"))
				events := sseEvents(body)
				require.Len(t, events, 3, "body:\n%s", body)
				assert.Equal(t, notification1, events[0], "an event before the response must pass unchanged")
				assert.Equal(t, notification2, events[2], "an event after the response must pass unchanged")
				assert.Equal(t, []string{"message"}, eventField(events[1], "event"), "event:\n%s", events[1])
				assert.Equal(t, []string{"ev-42"}, eventField(events[1], "id"), "the rewritten event must keep its id: (clients resume with Last-Event-ID)\n%s", events[1])
				assert.JSONEq(t, response(tc.kept), strings.Join(eventField(events[1], "data"), "\n"))

				status, hdr, body = e.list(t, "/mcp", tc.method, "*/*", nil)
				require.Equal(t, http.StatusOK, status, body)
				assert.Equal(t, jsonCT, hdr.Get("Content-Type"))
				assert.JSONEq(t, response(tc.kept), body)
			})
		}
	}
}

// An item is judged by its "name" member, case-sensitively, as MCP clients
// read it: a case variant of the key neither hides nor reveals it.
func TestListFilterCaseVariantKeys(t *testing.T) {
	e := newListEnv(t)
	result := `{"tools":[` +
		`{"name":"echo","Name":"printEnv","inputSchema":{"type":"object"}},` +
		`{"Name":"echo","name":"printEnv","inputSchema":{"type":"object"}},` +
		`{"NAME":"echo","inputSchema":{"type":"object"}}` +
		`]}`
	kept := `{"tools":[{"name":"echo","Name":"printEnv","inputSchema":{"type":"object"}}]}`
	for _, up := range []struct{ ct, body string }{
		{jsonCT, response(result)},
		{sseCT, "event: message\nid: 7\ndata: " + response(result) + "\n\n"},
	} {
		t.Run(up.ct, func(t *testing.T) {
			e.upstream.answer(up.ct, up.body)
			for _, accept := range []string{sseAccept, "*/*"} {
				status, _, body := e.list(t, "/mcp", "tools/list", accept, nil)
				require.Equal(t, http.StatusOK, status, body)
				if up.ct == sseCT && accept == sseAccept {
					body = strings.Join(eventField(body, "data"), "\n")
				}
				assert.JSONEq(t, response(kept), body, "Accept %s", accept)
			}
		})
	}
}

// A list result the gateway cannot read is refused with a JSON-RPC error
// for the request: it is never passed on unfiltered.
func TestListFilterMalformedResultRefused(t *testing.T) {
	e := newListEnv(t)
	for name, body := range map[string]string{
		"tools is an object":    response(`{"tools":{"name":"printEnv"}}`),
		"tools is a string":     response(`{"tools":"printEnv"}`),
		"item is a string":      response(`{"tools":["printEnv"]}`),
		"name is a number":      response(`{"tools":[{"name":"echo"},{"name":7,"title":"printEnv"}]}`),
		"duplicate name":        response(`{"tools":[{"name":"echo","name":"printEnv"}]}`),
		"duplicate tools":       response(`{"tools":[{"name":"echo"}],"tools":[{"name":"printEnv"}]}`),
		"result is an array":    response(`[{"tools":[{"name":"printEnv"}]}]`),
		"duplicate result":      `{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":[{"name":"printEnv"}]}}`,
		"invalid UTF-8 in item": response("{\"tools\":[{\"name\":\"printEnv\",\"description\":\"\xff\"}]}"),
	} {
		t.Run(name, func(t *testing.T) {
			refused := func(t *testing.T, body string) {
				t.Helper()
				er := decodeRPCError(t, body)
				assert.Equal(t, "1", string(er.ID), "body %s", body)
				assert.Equal(t, -32603, er.Error.Code, "body %s", body)
				assert.NotContains(t, body, "printEnv")
			}
			t.Run("json", func(t *testing.T) {
				e.upstream.answer(jsonCT, body)
				status, _, got := e.list(t, "/mcp", "tools/list", sseAccept, nil)
				assert.Equal(t, http.StatusBadGateway, status, got)
				refused(t, got)
			})
			t.Run("sse to json", func(t *testing.T) {
				e.upstream.answer(sseCT, "event: message\ndata: "+body+"\n\n")
				status, _, got := e.list(t, "/mcp", "tools/list", "*/*", nil)
				assert.Equal(t, http.StatusBadGateway, status, got)
				refused(t, got)
			})
			t.Run("sse", func(t *testing.T) {
				e.upstream.answer(sseCT, notification1+"event: message\nid: ev-9\ndata: "+body+"\n\n")
				status, _, got := e.list(t, "/mcp", "tools/list", sseAccept, nil)
				require.Equal(t, http.StatusOK, status, got) // the stream had started
				events := sseEvents(got)
				require.Len(t, events, 2, "body:\n%s", got)
				assert.Equal(t, notification1, events[0])
				refused(t, strings.Join(eventField(events[1], "data"), "\n"))
			})
		})
	}
}

// An error response to a list request passes unchanged.
func TestListFilterErrorResponsePasses(t *testing.T) {
	e := newListEnv(t)
	errBody := `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found","data":{"tools":[{"name":"printEnv"}]}}}`
	t.Run("json", func(t *testing.T) {
		e.upstream.answer(jsonCT, errBody)
		status, _, body := e.list(t, "/mcp", "tools/list", sseAccept, nil)
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, errBody, body)
	})
	t.Run("sse", func(t *testing.T) {
		stream := notification1 + "event: message\nid: ev-5\ndata: " + errBody + "\n\n"
		e.upstream.answer(sseCT, stream)
		status, _, body := e.list(t, "/mcp", "tools/list", sseAccept, nil)
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, stream, body)
	})
	t.Run("sse to json", func(t *testing.T) {
		e.upstream.answer(sseCT, notification1+"event: message\nid: ev-5\ndata: "+errBody+"\n\n")
		status, _, body := e.list(t, "/mcp", "tools/list", "*/*", nil)
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, errBody, body)
	})
}

// A route without authorization rules passes list answers through
// untouched, byte for byte, whatever their shape.
func TestListFilterNoRulesPassesThrough(t *testing.T) {
	e := newListEnv(t)
	bodies := map[string]string{
		"list":               response(listCases[0].result),
		"malformed":          response(`{"tools":{"name":"printEnv"}}`),
		"case variants":      response(`{"tools":[{"Name":"echo","name":"printEnv"}]}`),
		"odd spacing":        "{ \"jsonrpc\" : \"2.0\", \"id\" : 1,\n\t\"result\" : { \"tools\" : [ { \"name\" : \"printEnv\" } ] } }\n",
		"duplicate tools":    response(`{"tools":[{"name":"echo"}],"tools":[{"name":"printEnv"}]}`),
		"prompts, resources": response(`{"prompts":[{"name":"secret"}],"resources":[{"uri":"file:///private/x"}]}`),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			e.upstream.answer(jsonCT, body)
			status, _, got := e.list(t, "/open", "tools/list", sseAccept, nil)
			require.Equal(t, http.StatusOK, status, got)
			assert.Equal(t, body, got)

			// One data line per JSON line, CRLF endings, id before event,
			// no space after "data:": nothing is normalised.
			data := strings.ReplaceAll(strings.TrimSuffix(body, "\n"), "\n", "\r\ndata:")
			stream := notification1 + "id: 1\r\nevent: message\r\ndata:" + data + "\r\n\r\n" + notification2
			e.upstream.answer(sseCT, stream)
			status, _, got = e.list(t, "/open", "tools/list", sseAccept, nil)
			require.Equal(t, http.StatusOK, status, got)
			assert.Equal(t, stream, got)
		})
	}
	// Control: the same answers are filtered on the route with rules.
	e.upstream.answer(jsonCT, bodies["list"])
	_, _, got := e.list(t, "/mcp", "tools/list", sseAccept, nil)
	assert.NotContains(t, got, "printEnv")
}

// A list too long to be one cache key is decided item by item (each item
// remembered); the result is the same as one decision over the whole list
// without the cache, the first time and when the list comes again.
func TestLongListItemwise(t *testing.T) {
	srv := benchTools(t, 400)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	yaml := strings.Replace(fedYAML(port, port, "FailClosed", "Conditional", routePolicy("hide-some", "Deny", `mcp.tool.name.endsWith("7") || mcp.tool.name == "tool-100"`)), "    - {name: b, static: {host: 127.0.0.1, port: "+port+", path: /mcp}}\n", "", 1)
	lists := map[bool][]string{}
	for _, cached := range []bool{true, false} {
		e := &env{gw: New(Options{NoDecisionCache: !cached})}
		e.bundle = buildBundle(t, yaml, nil)
		require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
		e.srv = httptest.NewServer(e.gw.Handler(testPort))
		t.Cleanup(e.srv.Close)
		for range 2 {
			resp := e.post(t, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Accept": "application/json"})
			names := toolNames(t, readBody(t, resp))
			require.Len(t, names, 400-40-1, "cached=%v", cached)
			require.NotContains(t, names, "tool-100")
			require.NotContains(t, names, "tool-017")
			require.Contains(t, names, "tool-399")
			lists[cached] = names
		}
	}
	require.Equal(t, lists[false], lists[true])
}
