package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stallEnv is a gateway in front of an upstream that stalls on the tools
// named hang-*: before its headers, in the middle of a JSON body, or in an
// SSE stream that never carries the response. Other traffic goes to the
// usual test MCP server.
type stallEnv struct {
	*env
	unblock chan struct{}
}

func newStallEnv(t *testing.T, opts Options) *stallEnv {
	t.Helper()
	mcp := newMCPServer(t)
	se := &stallEnv{unblock: make(chan struct{})}
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		wait := func() {
			select {
			case <-se.unblock:
			case <-r.Context().Done():
			}
		}
		switch {
		case bytes.Contains(body, []byte(`"hang-headers"`)):
			wait()
			return
		case bytes.Contains(body, []byte(`"hang-body"`)):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,`)
			w.(http.Flusher).Flush()
			wait()
			return
		case bytes.Contains(body, []byte(`"hang-sse"`)):
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n")
			w.(http.Flusher).Flush()
			wait()
			return
		}
		mcp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(se.unblock)
		stall.Close()
	})
	jwks := newJWKS(t)
	port := stall.URL[strings.LastIndex(stall.URL, ":")+1:]
	e := &env{upstream: mcp, jwks: jwks, bundle: buildBundle(t, configYAML(port, jwks.URL+"/keys"), nil), gw: New(opts)}
	require.NoError(t, e.gw.Activate(context.Background(), e.bundle))
	e.srv = httptest.NewServer(e.gw.Handler(testPort))
	t.Cleanup(e.srv.Close)
	se.env = e
	return se
}

func idCall(id int, tool string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q}}`, id, tool)
}

// An upstream that does not answer in time gets the client a JSON-RPC error
// with its request id and 504, whether it stalls before its headers, in a
// JSON body, or in an SSE stream the gateway turns into JSON.
func TestUpstreamTimeout(t *testing.T) {
	e := newStallEnv(t, Options{UpstreamTimeout: 200 * time.Millisecond})
	for i, tc := range []struct {
		name, tool, accept, session string
	}{
		{"no headers", "hang-headers", "", testSession},
		{"no headers, sessionless", "hang-headers", "", ""},
		{"JSON body stalls", "hang-body", "", testSession},
		{"SSE without the response, JSON client", "hang-sse", "application/json", testSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := authed("Mcp-Session-Id", tc.session)
			if tc.accept != "" {
				hdr["Accept"] = tc.accept
			}
			resp := e.do(t, http.MethodPost, "/mcp", idCall(100+i, tc.tool), hdr)
			body := readBody(t, resp)
			require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			er := decodeRPCError(t, body)
			assert.Equal(t, -32603, er.Error.Code)
			assert.Equal(t, "upstream MCP server timed out", er.Error.Message)
			assert.Equal(t, fmt.Sprint(100+i), string(er.ID))
		})
	}
}

// The timeout bounds the wait for a stream, not the stream: an SSE answer
// relayed to a client that reads SSE keeps flowing after the timeout (long
// tool calls send progress, then their result).
func TestUpstreamTimeoutSparesStreams(t *testing.T) {
	timeout := 100 * time.Millisecond
	e := newEnv(t, Options{UpstreamTimeout: timeout})
	resp := e.do(t, http.MethodPost, "/mcp", idCall(5, "stream"), authed("Mcp-Session-Id", testSession))
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	first, err := readEvent(rd)
	require.NoError(t, err)
	assert.Contains(t, first, "notifications/progress")
	time.Sleep(3 * timeout) // well past the timeout
	e.upstream.release <- struct{}{}
	second, err := readEvent(rd)
	require.NoError(t, err, "the stream was cut")
	assert.Contains(t, second, `"text":"done"`)
}

// Timed-out exchanges leave no goroutine behind: the upstream request is
// cancelled and its connection released.
func TestUpstreamTimeoutNoGoroutineLeak(t *testing.T) {
	e := newStallEnv(t, Options{UpstreamTimeout: 50 * time.Millisecond})
	// Warm up connection pools, then take the baseline.
	resp := e.do(t, http.MethodPost, "/mcp", idCall(1, "echo"), authed("Mcp-Session-Id", testSession))
	readBody(t, resp)
	settle := func() int {
		http.DefaultClient.CloseIdleConnections()
		e.srv.CloseClientConnections()
		runtime.GC()
		return runtime.NumGoroutine()
	}
	before := settle()
	for i := range 30 {
		tool := [...]string{"hang-headers", "hang-body", "hang-sse"}[i%3]
		hdr := authed("Mcp-Session-Id", testSession, "Accept", "application/json")
		resp := e.do(t, http.MethodPost, "/mcp", idCall(i, tool), hdr)
		readBody(t, resp)
		require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	}
	// Goroutines end asynchronously (connection closers): wait for them,
	// and fail if they stay.
	var after int
	for range 100 {
		if after = settle(); after <= before+2 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Fatalf("goroutines: %d before, %d after 30 timed-out calls\n%s", before, after, buf[:n])
}

// A client that sends its headers and then trickles (or withholds) its body
// gets 408 once the body timeout passes, and the connection is closed.
func TestBodyTimeout(t *testing.T) {
	e := newEnv(t, Options{BodyTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":", token())
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, string(body))
	assert.Equal(t, -32600, decodeRPCError(t, string(body)).Error.Code)
	assert.Empty(t, e.upstream.peek(), "the upstream saw a request whose body never arrived")
}

// Reading the body does not leave a deadline on the connection: a response
// stream outlives the body timeout.
func TestBodyTimeoutSparesStreams(t *testing.T) {
	timeout := 100 * time.Millisecond
	e := newEnv(t, Options{BodyTimeout: timeout})
	resp := e.do(t, http.MethodPost, "/mcp", idCall(5, "stream"), authed("Mcp-Session-Id", testSession))
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	_, err := readEvent(rd)
	require.NoError(t, err)
	time.Sleep(3 * timeout)
	e.upstream.release <- struct{}{}
	second, err := readEvent(rd)
	require.NoError(t, err, "the stream was cut")
	assert.Contains(t, second, `"text":"done"`)
}
