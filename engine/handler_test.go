package engine

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/ir"
	mcprego "github.com/mcpgate/mcpgate/rego"
)

const (
	toolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	toolsCall = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, Options{})
	metadata := `Bearer resource_metadata="` + e.srv.URL + `/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		name   string
		auth   string
		status int
		www    string
		body   string
	}{
		{
			name: "no token", auth: "", status: http.StatusUnauthorized, www: metadata,
			body: `{"error":"unauthorized","error_description":"missing bearer token"}`,
		},
		{
			name: "garbage token", auth: "Bearer not-a-jwt", status: http.StatusUnauthorized,
			www: metadata[:len(metadata)-1] + `", error="invalid_token"`,
		},
		{
			name: "token signed by another key", auth: "Bearer " + signToken(otherKey(), nil), status: http.StatusUnauthorized,
			www: metadata[:len(metadata)-1] + `", error="invalid_token"`,
		},
		{
			name: "expired token", auth: "Bearer " + signToken(signingKey(), jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), status: http.StatusUnauthorized,
			www: metadata[:len(metadata)-1] + `", error="invalid_token"`,
		},
		{
			name: "wrong audience", auth: "Bearer " + signToken(signingKey(), jwt.MapClaims{"aud": "someone-else"}), status: http.StatusUnauthorized,
			www: metadata[:len(metadata)-1] + `", error="invalid_token"`,
		},
		{
			name: "wrong issuer", auth: "Bearer " + signToken(signingKey(), jwt.MapClaims{"iss": "https://evil.test"}), status: http.StatusUnauthorized,
			www: metadata[:len(metadata)-1] + `", error="invalid_token"`,
		},
		{
			name: "basic credentials", auth: "Basic YWdlbnQ6c2VjcmV0", status: http.StatusUnauthorized,
			www: metadata[:len(metadata)-1] + `", error="invalid_token"`,
		},
		{name: "valid token", auth: "Bearer " + token(), status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.upstream.received()
			resp := e.post(t, toolsList, map[string]string{"Authorization": tt.auth, "Mcp-Session-Id": testSession})
			body := readBody(t, resp)
			require.Equal(t, tt.status, resp.StatusCode, "body %s", body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if tt.status == http.StatusOK {
				assert.JSONEq(t, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","description":"Echoes","inputSchema":{"type":"object"}}]}}`, body)
				assert.Empty(t, resp.Header.Get("WWW-Authenticate"))
				assert.Len(t, e.upstream.received(), 1)
				return
			}
			assert.Equal(t, tt.www, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			var oe struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &oe), "body %q", body)
			assert.Equal(t, "unauthorized", oe.Error)
			if tt.body != "" {
				assert.JSONEq(t, tt.body, body)
			} else {
				assert.True(t, strings.HasPrefix(oe.Description, "invalid bearer token"), "got description %q", oe.Description)
			}
			assert.Empty(t, e.upstream.received(), "a refused request must not reach the upstream")
		})
	}
}

// The unprotected route needs no token.
func TestOpenRoute(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do(t, http.MethodPost, "/open", toolsList, map[string]string{"Mcp-Session-Id": testSession})
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, `"tools"`)
}

func TestInitializeRelaysSession(t *testing.T) {
	e := newEnv(t, Options{})
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}`
	resp := e.post(t, init, authed())
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	sid := resp.Header.Get("Mcp-Session-Id")
	assert.True(t, strings.HasPrefix(sid, "sess-"), "got session %q, want the upstream's", sid)
	assert.Contains(t, body, `"protocolVersion":"2025-06-18"`)
	got := e.upstream.received()
	require.Len(t, got, 1, "initialize is forwarded as is, the gateway opens no session of its own")
	assert.Equal(t, init, string(got[0].Body))

	// The session works through the gateway.
	resp = e.post(t, toolsList, authed("Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-06-18"))
	require.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
	got = e.upstream.received()
	require.Len(t, got, 1)
	assert.Equal(t, sid, got[0].Header.Get("Mcp-Session-Id"))
	assert.Equal(t, "2025-06-18", got[0].Header.Get("Mcp-Protocol-Version"))
}

// Credentials are the gateway's business: the upstream never sees them.
func TestCredentialsNeverReachUpstream(t *testing.T) {
	e := newEnv(t, Options{})
	secrets := map[string]string{
		"Authorization":       "Bearer " + token(),
		"Cookie":              "session=secret-cookie",
		"Proxy-Authorization": "Basic c2VjcmV0OnNlY3JldA==",
	}
	for _, withSession := range []bool{true, false} {
		t.Run(fmt.Sprintf("session=%v", withSession), func(t *testing.T) {
			e.upstream.received()
			hdr := map[string]string{"X-Custom": "1"}
			for k, v := range secrets {
				hdr[k] = v
			}
			if withSession {
				hdr["Mcp-Session-Id"] = testSession
			}
			resp := e.post(t, toolsCall, hdr)
			require.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
			require.Eventually(t, func() bool {
				n := len(e.upstream.peek())
				return withSession && n == 1 || !withSession && n == 4
			}, 5*time.Second, 10*time.Millisecond)
			for _, r := range e.upstream.received() {
				for k := range secrets {
					assert.Empty(t, r.Header.Values(k), "%s %s: upstream received %s", r.Method, r.RPC, k)
				}
				for k, v := range r.Header {
					for _, s := range v {
						assert.NotContains(t, s, "secret", "%s %s: header %s", r.Method, r.RPC, k)
						assert.NotContains(t, s, token()[:40], "%s %s: header %s carries the token", r.Method, r.RPC, k)
					}
				}
			}
		})
	}
}

// The gateway forwards the bytes it decided on, not a re-encoding.
func TestBodyForwardedVerbatim(t *testing.T) {
	e := newEnv(t, Options{})
	bodies := []string{
		toolsCall,
		" {\n  \"params\" : {\"arguments\":{\"message\":\"h\\u00e9llo \\\"w\\\"\",\"n\":1.50e2,\"big\":12345678901234567890},\"name\":\"echo\"},\n  \"method\":\"tools/call\", \"id\":\"a-b\",\"jsonrpc\":\"2.0\"}\n",
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","Name":"printEnv"}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
	}
	for i, body := range bodies {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e.upstream.received()
			resp := e.post(t, body, authed("Mcp-Session-Id", testSession))
			require.Less(t, resp.StatusCode, 300, readBody(t, resp))
			got := e.upstream.received()
			require.Len(t, got, 1)
			assert.Equal(t, body, string(got[0].Body), "the upstream must receive the client's bytes")
			assert.Equal(t, "application/json", got[0].Header.Get("Content-Type"))
		})
	}
}

// A client without session and without initialize (the walkthrough's curl)
// gets an upstream session the gateway opens and closes for it.
func TestSessionlessRequest(t *testing.T) {
	for _, clientVersion := range []string{"", "2025-06-18"} {
		t.Run("version="+clientVersion, func(t *testing.T) {
			e := newEnv(t, Options{})
			resp := e.post(t, toolsList, authed("Mcp-Protocol-Version", clientVersion))
			body := readBody(t, resp)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.JSONEq(t, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","description":"Echoes","inputSchema":{"type":"object"}}]}}`, body)
			assert.Empty(t, resp.Header.Get("Mcp-Session-Id"), "the gateway's own session is not handed to the client")

			// The DELETE is sent after the response: wait for it.
			require.Eventually(t, func() bool { return len(e.upstream.peek()) >= 4 }, 5*time.Second, 10*time.Millisecond)
			got := e.upstream.received()
			var seq []string
			for _, r := range got {
				seq = append(seq, strings.TrimSpace(r.Method+" "+r.RPC))
			}
			require.Equal(t, []string{"POST initialize", "POST notifications/initialized", "POST tools/list", "DELETE"}, seq)

			var init struct {
				ID     json.RawMessage `json:"id"`
				Params struct {
					ProtocolVersion string `json:"protocolVersion"`
				} `json:"params"`
			}
			require.NoError(t, json.Unmarshal(got[0].Body, &init))
			wantOffer := clientVersion
			if wantOffer == "" {
				wantOffer = latestVersion
			}
			assert.Equal(t, wantOffer, init.Params.ProtocolVersion, "protocol version offered upstream")
			assert.Empty(t, got[0].Header.Get("Mcp-Session-Id"), "initialize carries no session")

			sid := got[2].Header.Get("Mcp-Session-Id")
			assert.True(t, strings.HasPrefix(sid, "sess-"), "got session %q on the forwarded request", sid)
			for i, r := range got[1:] {
				assert.Equal(t, sid, r.Header.Get("Mcp-Session-Id"), "request %d (%s %s)", i+1, r.Method, r.RPC)
				assert.Equal(t, "2025-06-18", r.Header.Get("Mcp-Protocol-Version"), "negotiated version on request %d (%s %s)", i+1, r.Method, r.RPC)
			}
			assert.Equal(t, toolsList, string(got[2].Body))
			assert.True(t, strings.Contains(got[0].Header.Get("Accept"), "text/event-stream") && strings.Contains(got[0].Header.Get("Accept"), "application/json"),
				"got Accept %q upstream, want both JSON and SSE", got[0].Header.Get("Accept"))
		})
	}
}

// Notifications are not given a session: they go through as they are.
func TestSessionlessNotification(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, authed())
	readBody(t, resp)
	got := e.upstream.received()
	require.Len(t, got, 1, "no upstream session is opened for a notification")
	assert.Equal(t, "notifications/initialized", got[0].RPC)
}

// A client that cannot read SSE (Accept: */*, as curl sends) gets the
// response to its request picked out of the upstream's stream as JSON.
func TestSSEToJSON(t *testing.T) {
	e := newEnv(t, Options{})
	e.upstream.sse.Store(true)
	for _, accept := range []string{"*/*", "application/json", ""} {
		for _, session := range []string{testSession, ""} {
			t.Run(fmt.Sprintf("accept=%q session=%q", accept, session), func(t *testing.T) {
				resp := e.post(t, `{"jsonrpc":"2.0","id":"req-9","method":"tools/list"}`, authed("Accept", accept, "Mcp-Session-Id", session))
				body := readBody(t, resp)
				require.Equal(t, http.StatusOK, resp.StatusCode, body)
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				assert.JSONEq(t, `{"jsonrpc":"2.0","id":"req-9","result":{"tools":[{"name":"echo","description":"Echoes","inputSchema":{"type":"object"}}]}}`, body)
			})
		}
	}
}

// A client that reads SSE gets the stream, event by event, as it arrives.
func TestSSERelayedUnbuffered(t *testing.T) {
	e := newEnv(t, Options{})
	for _, session := range []string{testSession, ""} {
		t.Run("session="+session, func(t *testing.T) {
			e.upstream.release = make(chan struct{})
			resp := e.post(t, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"stream"}}`, authed("Mcp-Session-Id", session))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			r := bufio.NewReader(resp.Body)

			type result struct {
				ev  string
				err error
			}
			first := make(chan result, 1)
			go func() {
				ev, err := readEvent(r)
				first <- result{ev, err}
			}()
			select {
			case got := <-first:
				require.NoError(t, got.err)
				assert.Equal(t, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`, dataOf(got.ev))
			case <-time.After(5 * time.Second):
				close(e.upstream.release)
				t.Fatal("the first event did not arrive while the upstream held the stream open: the gateway buffers")
			}
			close(e.upstream.release)
			ev, err := readEvent(r)
			require.NoError(t, err)
			assert.JSONEq(t, `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"done"}]}}`, dataOf(ev))
			rest, err := r.ReadString('\n')
			assert.Empty(t, rest)
			assert.Error(t, err, "the stream ends after the response")
		})
	}
}

// Ids are matched by value, not by bytes: an upstream that echoes the id
// re-encoded ("\u0061" as "a") still answers the request.
func TestSSEToJSONMatchesReencodedID(t *testing.T) {
	e := newEnv(t, Options{})
	e.upstream.sse.Store(true)
	for _, id := range []string{`"\u0061bc"`, `"a\/b"`, `"\u00e9"`} {
		t.Run(id, func(t *testing.T) {
			resp := e.post(t, `{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list"}`, authed("Accept", "*/*", "Mcp-Session-Id", testSession))
			body := readBody(t, resp)
			require.Equal(t, http.StatusOK, resp.StatusCode, "got %s", body)
			assert.Contains(t, body, `"tools"`)
		})
	}
}

// An upstream stream that ends without the response is a 502 for a JSON
// client, with the request's id.
func TestSSEWithoutResponse(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.post(t, `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"noresponse"}}`, authed("Accept", "*/*", "Mcp-Session-Id", testSession))
	body := readBody(t, resp)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
	er := decodeRPCError(t, body)
	assert.Equal(t, -32603, er.Error.Code)
	assert.Equal(t, "8", string(er.ID))
}

// A client that goes away ends the upstream request too.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	e := newEnv(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"stream"}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token())
	req.Header.Set("Mcp-Session-Id", testSession)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = readEvent(bufio.NewReader(resp.Body))
	require.NoError(t, err)
	cancel()
	select {
	case <-e.upstream.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled when the client went away")
	}
}

// The upstream refuses to initialize the session the gateway opens for a
// sessionless client: 502 with the client's id.
func TestSessionlessUpstreamRefusesInitialize(t *testing.T) {
	e := newEnv(t, Options{})
	e.upstream.refuseInit.Store(true)
	resp := e.post(t, `{"jsonrpc":"2.0","id":"q","method":"tools/list"}`, authed())
	body := readBody(t, resp)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
	er := decodeRPCError(t, body)
	assert.Equal(t, -32603, er.Error.Code)
	assert.Equal(t, `"q"`, string(er.ID))
	got := e.upstream.received()
	require.Len(t, got, 1, "nothing is forwarded after a failed initialize")
	assert.Equal(t, "initialize", got[0].RPC)
}

// Several events in one upstream write arrive intact and in order.
func TestSSERelayedVerbatim(t *testing.T) {
	e := newEnv(t, Options{})
	e.upstream.sse.Store(true)
	resp := e.post(t, toolsList, authed("Mcp-Session-Id", testSession))
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n"+
		"event: message\nid: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\",\"description\":\"Echoes\",\"inputSchema\":{\"type\":\"object\"}}]}}\n\n", body)
}

func TestNotificationsAndResponses(t *testing.T) {
	e := newEnv(t, Options{})
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"x"}}`,
		`{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}`,
		`{"jsonrpc":"2.0","id":"srv-2","error":{"code":-32601,"message":"no"}}`,
	} {
		t.Run(body, func(t *testing.T) {
			resp := e.post(t, body, authed("Mcp-Session-Id", testSession))
			assert.Equal(t, http.StatusAccepted, resp.StatusCode, readBody(t, resp))
		})
	}
}

// Malformed messages are refused before anything else happens, with the
// JSON-RPC error the spec asks for and id null (the request's id where the
// message itself is well formed).
func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, Options{MaxBodyBytes: 64 << 10})
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"m":"` + strings.Repeat("x", 70<<10) + `"}}}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		status int
		code   int    // 0: no JSON-RPC body check
		id     string // "": null
	}{
		{name: "invalid JSON", body: `{"jsonrpc":"2.0",`, status: 400, code: -32700},
		{name: "not JSON", body: `hello`, status: 400, code: -32700},
		{name: "duplicate key", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"printEnv"}}`, status: 400, code: -32700},
		{name: "case variant member", body: `{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, status: 400, code: -32600},
		{name: "batch", body: `[` + toolsList + `]`, status: 400, code: -32600},
		{name: "float id", body: `{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}`, status: 400, code: -32600},
		{name: "empty body", body: "", status: 400, code: -32700},
		{name: "body too large", body: big, status: 413, code: -32600},
		{name: "wrong content type", body: toolsList, hdr: map[string]string{"Content-Type": "text/plain"}, status: 415, code: -32600},
		{name: "no content type", body: toolsList, hdr: map[string]string{"Content-Type": ""}, status: 415, code: -32600},
		{name: "form content type", body: toolsList, hdr: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, code: -32600},
		{name: "unsupported protocol version", body: toolsList, hdr: map[string]string{"Mcp-Protocol-Version": "1999-01-01"}, status: 400, code: -32022, id: "1"},
		{name: "foreign origin", body: toolsList, hdr: map[string]string{"Origin": "http://evil.example"}, status: 403, code: -32600},
		{name: "foreign origin on the same host name", body: toolsList, hdr: map[string]string{"Origin": "http://127.0.0.1:1"}, status: 403, code: -32600},
		{name: "unparseable origin", body: toolsList, hdr: map[string]string{"Origin": "::not a url"}, status: 403, code: -32600},
		{name: "unknown path", path: "/nope", body: toolsList, status: 404, code: -32601},
		{name: "path that only shares a prefix", path: "/mcpx", body: toolsList, status: 404, code: -32601},
		{name: "unknown path, GET", method: http.MethodGet, path: "/", status: 404, code: -32601},
		{name: "PUT", method: http.MethodPut, body: toolsList, status: 405, code: -32600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.upstream.received()
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/mcp"
			}
			hdr := authed("Mcp-Session-Id", testSession)
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			resp := e.do(t, method, path, tt.body, hdr)
			body := readBody(t, resp)
			require.Equal(t, tt.status, resp.StatusCode, "body %s", body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			er := decodeRPCError(t, body)
			assert.Equal(t, tt.code, er.Error.Code, "message %q", er.Error.Message)
			wantID := tt.id
			if wantID == "" {
				wantID = "null"
			}
			assert.Equal(t, wantID, string(er.ID))
			assert.NotEmpty(t, er.Error.Message)
			assert.Empty(t, e.upstream.received(), "nothing reaches the upstream")
		})
	}
}

// JSON-RPC 2.0 §5: the id is null only when it could not be read. An
// invalid-params error for a request whose id was read must carry that id,
// or the client cannot match the error to its request.
func TestInvalidParamsCarriesTheID(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tt := range []struct{ body, id string }{
		{`{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{}}`, `41`},
		{`{"jsonrpc":"2.0","id":"x-1","method":"tools/call","params":{"name":"echo","arguments":[1]}}`, `"x-1"`},
		{`{"jsonrpc":"2.0","id":42,"method":"resources/read","params":{"uri":7}}`, `42`},
	} {
		t.Run(tt.body, func(t *testing.T) {
			resp := e.post(t, tt.body, authed("Mcp-Session-Id", testSession))
			body := readBody(t, resp)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
			er := decodeRPCError(t, body)
			assert.Equal(t, -32602, er.Error.Code)
			assert.Equal(t, tt.id, string(er.ID), "got id %s, want the request's id %s", er.ID, tt.id)
		})
	}
}

// Malformed requests are refused the same way without a token: parsing
// comes first, so no 401 hides them... and no upstream sees them either.
func TestMalformedBeforeAuthentication(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.post(t, `{"jsonrpc":"2.0",`, nil)
	body := readBody(t, resp)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.Equal(t, -32700, decodeRPCError(t, body).Error.Code)
}

func TestSameOrigin(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.post(t, toolsList, authed("Mcp-Session-Id", testSession, "Origin", e.srv.URL))
	assert.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
}

func TestGetStream(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do(t, http.MethodGet, "/mcp", "", authed("Mcp-Session-Id", testSession, "Mcp-Protocol-Version", "2025-06-18", "Last-Event-ID", "42", "Accept", "text/event-stream"))
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.Equal(t, "id: 43\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n", body)
	got := e.upstream.received()
	require.Len(t, got, 1)
	assert.Equal(t, http.MethodGet, got[0].Method)
	assert.Equal(t, testSession, got[0].Header.Get("Mcp-Session-Id"))
	assert.Equal(t, "2025-06-18", got[0].Header.Get("Mcp-Protocol-Version"))
	assert.Equal(t, "42", got[0].Header.Get("Last-Event-Id"))
	assert.Equal(t, "text/event-stream", got[0].Header.Get("Accept"))
	assert.Empty(t, got[0].Header.Get("Authorization"))

	// Without a token: 401, nothing upstream.
	resp = e.do(t, http.MethodGet, "/mcp", "", map[string]string{"Mcp-Session-Id": testSession})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Empty(t, e.upstream.received())
}

func TestGetStreamUpstreamError(t *testing.T) {
	e := newEnv(t, Options{})
	resp := e.do(t, http.MethodGet, "/mcp", "", authed("Mcp-Session-Id", "unknown-session"))
	readBody(t, resp)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "the upstream's status is relayed")
}

func TestDeleteSession(t *testing.T) {
	e := newEnv(t, Options{})
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	resp := e.post(t, init, authed())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sid := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	e.upstream.received()

	resp = e.do(t, http.MethodDelete, "/mcp", "", map[string]string{"Mcp-Session-Id": sid})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "DELETE needs a token too")
	assert.Empty(t, e.upstream.received())

	resp = e.do(t, http.MethodDelete, "/mcp", "", authed("Mcp-Session-Id", sid))
	readBody(t, resp)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	got := e.upstream.received()
	require.Len(t, got, 1)
	assert.Equal(t, http.MethodDelete, got[0].Method)
	assert.Equal(t, sid, got[0].Header.Get("Mcp-Session-Id"))
	assert.Empty(t, got[0].Header.Get("Authorization"))

	// The session is gone upstream: the upstream's 404 is relayed.
	resp = e.do(t, http.MethodDelete, "/mcp", "", authed("Mcp-Session-Id", sid))
	readBody(t, resp)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestUpstreamDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	port := dead.URL[strings.LastIndex(dead.URL, ":")+1:]
	dead.Close()
	jwks := newJWKS(t)
	gw := New(Options{})
	require.NoError(t, gw.Activate(context.Background(), buildBundle(t, configYAML(port, jwks.URL+"/keys"), nil)))
	srv := httptest.NewServer(gw.Handler(testPort))
	defer srv.Close()
	e := &env{gw: gw, srv: srv}

	tests := []struct {
		name    string
		method  string
		body    string
		session string
		id      string
	}{
		{"request with a session", http.MethodPost, `{"jsonrpc":"2.0","id":"abc","method":"tools/list"}`, testSession, `"abc"`},
		{"request without a session", http.MethodPost, `{"jsonrpc":"2.0","id":77,"method":"tools/list"}`, "", `77`},
		{"notification", http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, testSession, `null`},
		{"GET stream", http.MethodGet, "", testSession, `null`},
		{"DELETE", http.MethodDelete, "", testSession, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(t, tt.method, "/mcp", tt.body, authed("Mcp-Session-Id", tt.session))
			body := readBody(t, resp)
			require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			er := decodeRPCError(t, body)
			assert.Equal(t, -32603, er.Error.Code)
			assert.Equal(t, tt.id, string(er.ID))
			assert.NotContains(t, er.Error.Message, "127.0.0.1", "internal addresses are not disclosed")
		})
	}
}

func TestWellKnown(t *testing.T) {
	e := newEnv(t, Options{})
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource/mcp":     "/mcp",
		"/.well-known/oauth-protected-resource/mcp/sub": "/mcp/sub",
		"/.well-known/oauth-protected-resource":         "",
	} {
		t.Run(path, func(t *testing.T) {
			// provider: Keycloak: the gateway is the authorization server
			// clients see (it serves the provider's metadata, fixed up).
			want := map[string]any{
				"resource":                 "http://mcp.test/mcp",
				"authorization_servers":    []any{e.srv.URL + resource},
				"scopes_supported":         []any{"openid"},
				"bearer_methods_supported": []any{"header"},
			}
			resp := e.do(t, http.MethodGet, path, "", nil)
			body := readBody(t, resp)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &got))
			assert.Equal(t, want, got)
		})
	}
	t.Run("the 401 points at it", func(t *testing.T) {
		resp := e.post(t, toolsList, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		www := resp.Header.Get("WWW-Authenticate")
		u := strings.TrimSuffix(strings.TrimPrefix(www, `Bearer resource_metadata="`), `"`)
		require.True(t, strings.HasPrefix(u, e.srv.URL), "got %q", www)
		meta := e.do(t, http.MethodGet, strings.TrimPrefix(u, e.srv.URL), "", nil)
		assert.Equal(t, http.StatusOK, meta.StatusCode)
	})
	t.Run("CORS preflight", func(t *testing.T) {
		resp := e.do(t, http.MethodOptions, "/.well-known/oauth-protected-resource/mcp", "", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "GET"})
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
		assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "GET")
	})
	for _, path := range []string{"/.well-known/oauth-protected-resource/open", "/.well-known/oauth-protected-resource/nope"} {
		t.Run(path, func(t *testing.T) {
			resp := e.do(t, http.MethodGet, path, "", nil)
			body := readBody(t, resp)
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, body)
			assert.Equal(t, -32601, decodeRPCError(t, body).Error.Code)
		})
	}
}

// Without resourceMetadata the document is built from the request and the
// issuer.
func TestWellKnownDefaults(t *testing.T) {
	upstream := newMCPServer(t)
	jwks := newJWKS(t)
	port := upstream.srv.URL[strings.LastIndex(upstream.srv.URL, ":")+1:]
	yaml := configYAML(port, jwks.URL+"/keys")
	yaml = yaml[:strings.Index(yaml, "        provider:")]
	gw := New(Options{})
	require.NoError(t, gw.Activate(context.Background(), buildBundle(t, yaml, nil)))
	srv := httptest.NewServer(gw.Handler(testPort))
	defer srv.Close()
	e := &env{gw: gw, srv: srv}
	resp := e.do(t, http.MethodGet, "/.well-known/oauth-protected-resource/mcp", "", nil)
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	// No provider: the issuer is the authorization server; a bearer header
	// is the only way the gateway reads tokens.
	assert.JSONEq(t, `{"resource":"`+srv.URL+`/mcp","authorization_servers":["`+testIssuer+`"],"bearer_methods_supported":["header"]}`, body)
}

func TestNoConfiguration(t *testing.T) {
	gw := New(Options{})
	assert.Equal(t, "", gw.Revision())
	assert.Nil(t, gw.Config())
	assert.Nil(t, gw.Ports())
	rec := httptest.NewRecorder()
	gw.Handler(testPort).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(toolsList)))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, -32603, decodeRPCError(t, rec.Body.String()).Error.Code)
}

func TestUnknownPort(t *testing.T) {
	e := newEnv(t, Options{})
	assert.Equal(t, []int{testPort}, e.gw.Ports())
	rec := httptest.NewRecorder()
	e.gw.Handler(9999).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(toolsList)))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, -32601, decodeRPCError(t, rec.Body.String()).Error.Code)
}

// deepCopy copies an IR through JSON.
func deepCopy(t testing.TB, cfg *ir.Config) *ir.Config {
	t.Helper()
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	out := &ir.Config{}
	require.NoError(t, json.Unmarshal(b, out))
	return out
}

func TestActivateFailureKeepsServing(t *testing.T) {
	e := newEnv(t, Options{})
	rev := e.gw.Revision()
	require.Equal(t, e.bundle.Revision, rev)

	noJWKS := deepCopy(t, e.bundle.Config)
	for _, an := range noJWKS.Authn {
		an.JWKSURL = ""
	}
	badAuthn, err := bundle.New(noJWKS, mcprego.Modules())
	require.NoError(t, err)

	bad := []struct {
		name string
		b    *bundle.Bundle
	}{
		{"module does not compile", &bundle.Bundle{Revision: "bad-rego", Config: e.bundle.Config, Modules: map[string]string{"mcpgate/user/x.rego": "package x\n\np := \n"}}},
		{"authentication policy invalid", badAuthn},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := e.gw.Activate(context.Background(), tt.b)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrActivate), "got %v, want ErrActivate", err)
			assert.Equal(t, rev, e.gw.Revision(), "the previous revision keeps serving")
			assert.Same(t, e.bundle.Config, e.gw.Config())

			resp := e.post(t, toolsList, authed("Mcp-Session-Id", testSession))
			assert.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
			resp = e.post(t, toolsList, map[string]string{"Mcp-Session-Id": testSession})
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
}

// A new configuration takes effect for the next request.
func TestActivateSwitchesConfiguration(t *testing.T) {
	e := newEnv(t, Options{})
	open := deepCopy(t, e.bundle.Config)
	for _, rt := range open.Routes {
		rt.Authn = ""
	}
	open.Authn = map[string]*ir.Authn{}
	b, err := bundle.New(open, mcprego.Modules())
	require.NoError(t, err)
	require.NoError(t, e.gw.Activate(context.Background(), b))
	assert.Equal(t, b.Revision, e.gw.Revision())

	resp := e.post(t, toolsList, map[string]string{"Mcp-Session-Id": testSession})
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the route has no authentication any more: %s", readBody(t, resp))

	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	resp = e.post(t, toolsList, map[string]string{"Mcp-Session-Id": testSession})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// Requests in flight and arriving during activations never fail: each sees
// one whole snapshot. Run with -race.
func TestConcurrentActivate(t *testing.T) {
	e := newEnv(t, Options{})
	var bundles []*bundle.Bundle
	for i := 0; i < 2; i++ {
		b, err := bundle.New(e.bundle.Config, func() map[string]string {
			m := mcprego.Modules()
			m["mcpgate/user/gen.rego"] = fmt.Sprintf("package mcpgate.user.gen\n\ngeneration := %d\n", i)
			return m
		}())
		require.NoError(t, err)
		bundles = append(bundles, b)
	}
	require.NotEqual(t, bundles[0].Revision, bundles[1].Revision)

	// Warm the key set so that the first requests do not all wait for it.
	resp := e.post(t, toolsList, authed("Mcp-Session-Id", testSession))
	require.Equal(t, http.StatusOK, resp.StatusCode)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var count int
	tok := token()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/mcp", strings.NewReader(toolsCall))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Mcp-Session-Id", testSession)
				resp, err := http.DefaultClient.Do(req)
				mu.Lock()
				count++
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					if resp.StatusCode != http.StatusOK {
						failures = append(failures, fmt.Sprintf("status %d", resp.StatusCode))
					}
					resp.Body.Close()
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 8; i++ {
		b := bundles[i%2]
		require.NoError(t, e.gw.Activate(context.Background(), b))
		assert.Equal(t, b.Revision, e.gw.Revision())
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("got %d failed requests of %d, want none; first: %q", len(failures), count, failures[:min(5, len(failures))])
	}
	assert.Greater(t, count, 8, "requests ran during the activations")
	e.upstream.received()
}

// The route-level form with an inline key set works the same way.
func TestInlineJWKSPolicy(t *testing.T) {
	upstream := newMCPServer(t)
	port := upstream.srv.URL[strings.LastIndex(upstream.srv.URL, ":")+1:]
	jwk, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": testKID, "use": "sig", "alg": "RS256",
		"n": base64URL(signingKey().PublicKey.N.Bytes()), "e": base64URL(big2bytes(signingKey().PublicKey.E)),
	}}})
	require.NoError(t, err)
	yaml := configYAML(port, "http://unused.invalid/keys")
	yaml = yaml[:strings.Index(yaml, "  backend:\n    mcp:\n      authentication:")] + `  traffic:
    jwtAuthentication:
      mode: Strict
      providers:
      - issuer: ` + testIssuer + `
        audiences: [` + testAudience + `]
        jwks:
          inline: '` + string(jwk) + `'
`
	gw := New(Options{})
	require.NoError(t, gw.Activate(context.Background(), buildBundle(t, yaml, nil)))
	srv := httptest.NewServer(gw.Handler(testPort))
	defer srv.Close()
	e := &env{gw: gw, srv: srv, upstream: upstream}

	resp := e.post(t, toolsList, map[string]string{"Mcp-Session-Id": testSession})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `Bearer resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`, resp.Header.Get("WWW-Authenticate"))
	resp = e.post(t, toolsList, authed("Mcp-Session-Id", testSession))
	assert.Equal(t, http.StatusOK, resp.StatusCode, readBody(t, resp))
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func big2bytes(e int) []byte {
	var out []byte
	for ; e > 0; e >>= 8 {
		out = append([]byte{byte(e)}, out...)
	}
	return out
}

// A protocol version the gateway does not speak gets SEP-2575's answer: 400,
// -32022 with the versions it does speak and the request's id, so a client
// trying a newer revision falls back to initialize.
func TestUnsupportedProtocolVersion(t *testing.T) {
	require.Len(t, supportedVersionList, len(supportedVersions))
	for _, v := range supportedVersionList {
		require.True(t, supportedVersions[v], v)
	}
	e := newEnv(t, Options{})
	resp := e.post(t, `{"jsonrpc":"2.0","id":"d1","method":"server/discover"}`, map[string]string{"Mcp-Protocol-Version": "2026-07-28"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var got struct {
		ID    string `json:"id"`
		Error struct {
			Code int `json:"code"`
			Data struct {
				Supported []string `json:"supported"`
				Requested string   `json:"requested"`
			} `json:"data"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(readBody(t, resp)), &got))
	require.Equal(t, "d1", got.ID)
	require.Equal(t, -32022, got.Error.Code)
	require.Equal(t, supportedVersionList, got.Error.Data.Supported)
	require.Equal(t, "2026-07-28", got.Error.Data.Requested)
}
