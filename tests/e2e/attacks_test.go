package e2e

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// The attack suite: hostile requests sent end to end through the gateway
// binary, with Dex issuing the valid tokens and server-everything behind a
// recording proxy. Every case is refused with the right status and a clear
// error, and the upstream sees nothing. docs/security.md maps each case to
// the defence it proves.

// send issues one request with exactly the given headers.
func send(t *testing.T, method, url string, hdr map[string]string, body string) curlResult {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := curlClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return curlResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// mcpHeaders are a well-behaved client's headers, with a bearer token.
func mcpHeaders(token string, extra ...string) map[string]string {
	h := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

// requireRPCError asserts an HTTP status and a JSON-RPC error body with the
// given code and a message containing msg.
func requireRPCError(t *testing.T, r curlResult, status, code int, msg string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %s\nwant HTTP %d", r, status)
	}
	var m rpcMessage
	if err := json.Unmarshal(r.Body, &m); err != nil || m.JSONRPC != "2.0" || m.Error == nil {
		t.Fatalf("got %s\nwant a JSON-RPC error", r)
	}
	if m.Error.Code != code || !strings.Contains(m.Error.Message, msg) {
		t.Fatalf("got error %d %q, want %d containing %q", m.Error.Code, m.Error.Message, code, msg)
	}
}

// requireInvalidToken asserts the 401 of a refused token and its reason.
func requireInvalidToken(t *testing.T, g *harness.Gateway, r curlResult, reason string) {
	t.Helper()
	requireUnauthorized(t, g, r)
	var body struct {
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(r.Body, &body)
	if !strings.Contains(body.Description, reason) {
		t.Errorf("error_description = %q, want it to say %q", body.Description, reason)
	}
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\"", r.Header.Get("WWW-Authenticate"))
	}
}

// unseen runs an attack and fails if anything reached the upstream meanwhile.
func unseen(t *testing.T, rec *harness.Recorder, attack func()) {
	t.Helper()
	before := len(rec.Requests())
	attack()
	if after := rec.Requests(); len(after) != before {
		var seen []string
		for _, r := range after[before:] {
			seen = append(seen, r.Method+" "+r.Path)
		}
		t.Fatalf("the upstream received %v", seen)
	}
}

// quiesce waits until the recorder has seen nothing new for 300 ms (the
// gateway closes the upstream sessions it opened after it has answered).
func quiesce(rec *harness.Recorder) {
	n := len(rec.Requests())
	for range 20 {
		time.Sleep(300 * time.Millisecond)
		m := len(rec.Requests())
		if m == n {
			return
		}
		n = m
	}
}

// requireReached asserts that the recorder saw traffic since before: the
// positive control that makes "the upstream sees nothing" meaningful.
func requireReached(t *testing.T, rec *harness.Recorder, before int) {
	t.Helper()
	if len(rec.Requests()) == before {
		t.Fatal("control: the allowed request did not reach the upstream through the recorder")
	}
}

// dexPublicKeyPEM is the PEM (PKIX) of Dex's first signing key: the HMAC
// "secret" of the classic RS256 → HS256 confusion.
func dexPublicKeyPEM(t *testing.T, d *harness.Dex) (kid string, pemBytes []byte) {
	t.Helper()
	resp, err := http.Get(d.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, N, E string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("Dex JWKS: %v (%d keys)", err, len(set.Keys))
	}
	k := set.Keys[0]
	n, err1 := b64.DecodeString(k.N)
	e, err2 := b64.DecodeString(k.E)
	if err1 != nil || err2 != nil {
		t.Fatalf("Dex JWKS key: %v %v", err1, err2)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k.Kid, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func signHS256(t *testing.T, secret []byte, header, payload map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// Forged and doctored tokens, against Dex (for what a real IdP's keys
// allow) and against a JWKS the test controls (for valid signatures over
// claims Dex would never issue).
func TestAttackTokens(t *testing.T) {
	d, u := dex(t), upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	gDex := gatewayFor(t, harness.Config{UpstreamPort: rec.Port(), Auth: harness.ForDex(d, "Strict")})
	idp := startOwnIdP(t)
	gOwn := gatewayFor(t, harness.Config{UpstreamPort: rec.Port(), Auth: idp.Auth()})
	dexURL, ownURL := gDex.URL()+"/mcp", gOwn.URL()+"/mcp"

	good := agentToken(t, d)
	_, payload, _ := jwtParts(t, good)
	kid, pubPEM := dexPublicKeyPEM(t, d)
	with := func(change map[string]any) map[string]any {
		c := idp.Claims()
		for k, v := range change {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	now := time.Now()

	for _, tc := range []struct {
		name   string
		g      *harness.Gateway
		token  string
		reason string
	}{
		{"alg none", gDex, b64JSON(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64JSON(t, payload) + ".", "unsupported algorithm"},
		{"alg None", gDex, b64JSON(t, map[string]any{"alg": "None", "typ": "JWT"}) + "." + b64JSON(t, payload) + ".", "unsupported algorithm"},
		{"HS256 keyed with the RSA public key PEM", gDex, signHS256(t, pubPEM, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, payload), "unsupported algorithm"},
		{"HS256 keyed with the PEM, no kid", gDex, signHS256(t, pubPEM, map[string]any{"alg": "HS256", "typ": "JWT"}, payload), "unsupported algorithm"},
		{"wrong audience (another Dex client)", gDex, d.PasswordToken(t, harness.OtherClient, harness.OtherSecret, harness.AgentUser, harness.AgentPass), "invalid audience"},
		{"oversized token (> 16 KiB)", gDex, good + strings.Repeat("A", 16<<10), "malformed token"},
		{"expired", gOwn, idp.Sign(with(map[string]any{"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()})), "token is expired"},
		{"nbf in the future", gOwn, idp.Sign(with(map[string]any{"nbf": now.Add(time.Hour).Unix()})), "token is not valid yet"},
		{"iat in the future", gOwn, idp.Sign(with(map[string]any{"iat": now.Add(time.Hour).Unix()})), "token used before issued"},
		{"no exp", gOwn, idp.Sign(with(map[string]any{"exp": nil})), "token has no expiry"},
		{"wrong iss", gOwn, idp.Sign(with(map[string]any{"iss": "http://evil.example/realms/own"})), "invalid issuer"},
		{"no iss", gOwn, idp.Sign(with(map[string]any{"iss": nil})), "invalid issuer"},
		{"wrong aud", gOwn, idp.Sign(with(map[string]any{"aud": "someone-else"})), "invalid audience"},
		{"no aud", gOwn, idp.Sign(with(map[string]any{"aud": nil})), "invalid audience"},
		{"empty aud list", gOwn, idp.Sign(with(map[string]any{"aud": []string{}})), "invalid audience"},
		{"unknown kid", gOwn, idp.SignKID(idp.Claims(), randomHex(8)), "unknown signing key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unseen(t, rec, func() {
				requireInvalidToken(t, tc.g, walkthroughCurl(t, tc.g.URL()+"/mcp", tc.token), tc.reason)
			})
		})
	}

	t.Run("token in the query string", func(t *testing.T) {
		unseen(t, rec, func() {
			requireUnauthorized(t, gDex, walkthroughCurl(t, dexURL+"?access_token="+good, ""))
		})
	})
	t.Run("token larger than the header limit", func(t *testing.T) {
		unseen(t, rec, func() {
			r := walkthroughCurl(t, dexURL, strings.Repeat("A", 1<<20))
			if r.Status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("got %s\nwant 431", r)
			}
		})
	})

	// A flood of tokens naming random kids costs the JWKS endpoint at
	// most one fetch per refresh interval (10 s), not one per token.
	t.Run("unknown kid flood", func(t *testing.T) {
		before := idp.hits.Load()
		unseen(t, rec, func() {
			for range 200 {
				r := walkthroughCurl(t, ownURL, idp.SignKID(idp.Claims(), randomHex(8)))
				if r.Status != http.StatusUnauthorized {
					t.Fatalf("got %s\nwant 401", r)
				}
			}
		})
		if n := idp.hits.Load() - before; n > 2 {
			t.Errorf("200 unknown kids made %d JWKS fetches, want at most 2", n)
		} else {
			t.Logf("200 unknown kids made %d JWKS fetches", n)
		}
	})

	// Controls: valid tokens pass both gateways and reach the upstream.
	before := len(rec.Requests())
	requireToolList(t, walkthroughCurl(t, dexURL, good))
	requireToolList(t, walkthroughCurl(t, ownURL, idp.Sign(idp.Claims())))
	requireReached(t, rec, before)
}

// Requests whose shape is refused before any token or policy is consulted.
// Parser-differential tricks try to get a tool past authorization (only
// echo is allowed) under another name: either they are refused outright,
// or the gateway decides on exactly the name server-everything would run.
func TestAttackMessages(t *testing.T) {
	u := upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	g := authzGateway(t, "127.0.0.1", rec.Port(), authzPolicy{"only-echo", "HTTPRoute", "Allow", []string{`mcp.tool.name == "echo"`}})
	url := g.URL() + "/mcp"
	tok := userToken(t, harness.AgentUser)

	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + params + `}`
	}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   string
		status int
		code   int
		msg    string
	}{
		{"batch array", nil, `[` + call(`{"name":"echo","arguments":{"message":"a"}}`) + `]`, 400, -32600, "batch"},
		{"batch smuggling a denied call", nil, `[` + call(`{"name":"echo"}`) + `,` + call(`{"name":"get-env"}`) + `]`, 400, -32600, "batch"},
		{"duplicate name", nil, call(`{"name":"echo","name":"get-env"}`), 400, -32700, ""},
		{"duplicate name through an escape", nil, call(`{"name":"echo","n\u0061me":"get-env"}`), 400, -32700, ""},
		{"duplicate method", nil, `{"jsonrpc":"2.0","id":7,"method":"tools/list","method":"tools/call","params":{"name":"get-env"}}`, 400, -32700, ""},
		{"duplicate params", nil, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"},"params":{"name":"get-env"}}`, 400, -32700, ""},
		{"Method instead of method", nil, `{"jsonrpc":"2.0","id":7,"Method":"tools/call","params":{"name":"get-env"}}`, 400, -32600, ""},
		{"method and Method", nil, `{"jsonrpc":"2.0","id":7,"method":"tools/list","Method":"tools/call","params":{"name":"get-env"}}`, 400, -32600, ""},
		{"Params instead of params", nil, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"},"Params":{"name":"get-env"}}`, 400, -32600, ""},
		{"only Name", nil, call(`{"Name":"echo"}`), 400, -32602, ""},
		{"trailing second message", nil, call(`{"name":"echo"}`) + call(`{"name":"get-env"}`), 400, -32700, ""},
		{"invalid UTF-8 in the name", nil, call("{\"name\":\"ec\xffho\"}"), 400, -32700, ""},
		{"lone surrogate in the name", nil, call(`{"name":"echo\ud800"}`), 400, -32700, ""},
		{"body over 4 MiB", nil, call(`{"name":"echo","arguments":{"message":"` + strings.Repeat("a", 4<<20) + `"}}`), 413, -32600, "too large"},
		{"invalid MCP-Protocol-Version", map[string]string{"Mcp-Protocol-Version": "2099-01-01"}, call(`{"name":"echo"}`), 400, -32022, "MCP-Protocol-Version"},
		{"MCP-Protocol-Version with CRLF-looking junk", map[string]string{"Mcp-Protocol-Version": "2025-06-18, 1.0"}, call(`{"name":"echo"}`), 400, -32022, "MCP-Protocol-Version"},
		{"foreign Origin (DNS rebinding)", map[string]string{"Origin": "http://evil.example"}, call(`{"name":"echo"}`), 403, -32600, "origin"},
		{"foreign Origin on the same port", map[string]string{"Origin": "http://evil.example:" + fmt.Sprint(g.Port())}, call(`{"name":"echo"}`), 403, -32600, "origin"},
		{"Origin null", map[string]string{"Origin": "null"}, call(`{"name":"echo"}`), 403, -32600, "origin"},
		{"text/plain body (CSRF without preflight)", map[string]string{"Content-Type": "text/plain"}, call(`{"name":"echo"}`), 415, -32600, "Content-Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := mcpHeaders(tok)
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			unseen(t, rec, func() {
				requireRPCError(t, send(t, http.MethodPost, url, hdr, tc.body), tc.status, tc.code, tc.msg)
			})
		})
	}

	// Accepted by the parser, but the name the policy sees is the name the
	// server runs: every variant of "echo" is an unknown tool.
	for _, tc := range []struct{ name, params string }{
		{"name get-env, Name echo", `{"name":"get-env","Name":"echo"}`},
		{"Name echo first", `{"Name":"echo","name":"get-env"}`},
		{"NAME echo", `{"NAME":"echo","name":"get-env"}`},
		{"Cyrillic e", `{"name":"еcho"}`},
		{"fullwidth", `{"name":"ｅｃｈｏ"}`},
		{"zero-width space", `{"name":"echo\u200b"}`},
		{"combining accent", `{"name":"e\u0301cho"}`},
		{"trailing NUL", `{"name":"echo\u0000"}`},
		{"trailing space", `{"name":"echo "}`},
		{"upper case", `{"name":"ECHO"}`},
		{"prefixed with the target", `{"name":"everything_get-env"}`},
	} {
		t.Run("look-alike: "+tc.name, func(t *testing.T) {
			unseen(t, rec, func() {
				requireRPCError(t, send(t, http.MethodPost, url, mcpHeaders(tok), call(tc.params)), http.StatusOK, -32602, "Unknown tool")
			})
		})
	}

	// Controls: the allowed call passes and reaches the upstream; a same-host
	// Origin is accepted.
	before := len(rec.Requests())
	r := send(t, http.MethodPost, url, mcpHeaders(tok, "Origin", g.URL(), "Accept", "application/json"), call(`{"name":"echo","arguments":{"message":"hi"}}`))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Echo: hi") {
		t.Fatalf("control: got %s\nwant the echo result", r)
	}
	requireReached(t, rec, before)
}

// The body limit is configurable.
func TestAttackBodyLimitConfigurable(t *testing.T) {
	d, u := dex(t), upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	g := gatewayFor(t, harness.Config{UpstreamPort: rec.Port(), Auth: harness.ForDex(d, "Strict")}, "--max-body-bytes", "1024")
	tok := agentToken(t, d)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"` + strings.Repeat("a", 1100) + `"}}}`
	unseen(t, rec, func() {
		requireRPCError(t, send(t, http.MethodPost, g.URL()+"/mcp", mcpHeaders(tok), body), 413, -32600, "too large")
	})
	// Without a token the answer is the same: the body is bounded first.
	unseen(t, rec, func() {
		requireRPCError(t, send(t, http.MethodPost, g.URL()+"/mcp", mcpHeaders(""), body), 413, -32600, "too large")
	})
}

// rawRequest writes a request line and headers verbatim (no client-side
// path cleaning) and returns the status and the Location header.
func rawRequest(t *testing.T, addr, target, token string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: */*\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		target, addr, auth, len(toolsListBody), toolsListBody)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// Paths that try to leave, or sneak into, the protected route: none of them
// reaches the upstream without a token. The gateway forwards to the
// target's configured URL, never the client's path, so a path only selects
// a route (and with it the policy). Dot segments and doubled slashes are
// answered with a redirect to the clean path on this host (never to
// another host), percent-encoded letters decode to the route they name,
// and anything else matches no route.
func TestAttackPaths(t *testing.T) {
	d, u := dex(t), upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	g := gatewayFor(t, harness.Config{UpstreamPort: rec.Port(), Auth: harness.ForDex(d, "Strict")})
	tok := agentToken(t, d)
	for _, tc := range []struct {
		path     string
		status   int
		location string // for redirects
	}{
		{"/mcp/../mcp", 301, "/mcp"},
		{"/x/../mcp", 301, "/mcp"},
		{"/%2e%2e/mcp", 301, "/mcp"},
		{"/./mcp", 301, "/mcp"},
		{"//mcp", 301, "/mcp"},
		{"/mcp/%2e%2e/%2e%2e/etc/passwd", 301, "/etc/passwd"},
		{"/mcp%2f..%2f..%2fadmin", 301, "/admin"},
		{"/mcp/..%2f..%2fadmin", 301, "/admin"},
		{"/.well-known/oauth-protected-resource/../../mcp", 301, "/mcp"},
		{"//evil.example/mcp", 301, "/evil.example/mcp"},
		{"/%6dcp", 401, ""},
		{"/mcp/x", 401, ""},
		{"/MCP", 404, ""},
		{"/mcp%00", 404, ""},
		{"/mcp;x=1", 404, ""},
		{"/mcpx", 404, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			check := func(token string, want int) {
				st, loc := rawRequest(t, g.Addr(), tc.path, token)
				if st != want || loc != tc.location {
					t.Fatalf("%s (token: %v) → %d Location %q, want %d %q", tc.path, token != "", st, loc, want, tc.location)
				}
			}
			unseen(t, rec, func() { check("", tc.status) })
			if tc.status == http.StatusUnauthorized {
				check(tok, http.StatusOK) // the route it names, with its policy
				quiesce(rec)              // the gateway closes its upstream session after answering
			} else {
				unseen(t, rec, func() { check(tok, tc.status) })
			}
		})
	}
	// Control: the plain path with a token reaches the upstream.
	before := len(rec.Requests())
	if st, _ := rawRequest(t, g.Addr(), "/mcp", tok); st != http.StatusOK {
		t.Fatalf("control: /mcp with a token → %d", st)
	}
	requireReached(t, rec, before)
}

// Slowloris: a client that trickles its headers or its body is cut off
// after the configured timeouts, and many of them do not stop others.
func TestAttackSlowClients(t *testing.T) {
	d, u := dex(t), upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	g := gatewayFor(t, harness.Config{UpstreamPort: rec.Port(), Auth: harness.ForDex(d, "Strict")},
		"--read-header-timeout", "1s", "--body-timeout", "1s")
	tok := agentToken(t, d)

	// closedWithin dials, runs trickle, and reports how long the gateway
	// took to close the connection (or answer).
	trickleHeaders := func() (net.Conn, error) {
		c, err := net.Dial("tcp", g.Addr())
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\n", g.Addr())
		go func() {
			for range 100 {
				if _, err := c.Write([]byte("X-Slow: a\r\n")); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		return c, nil
	}

	t.Run("trickled headers", func(t *testing.T) {
		unseen(t, rec, func() {
			c, err := trickleHeaders()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			start := time.Now()
			_, err = io.ReadAll(c) // returns when the gateway closes the connection
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the connection was still open after %v of trickled headers", time.Since(start).Round(time.Millisecond))
			}
			t.Logf("connection closed after %v", time.Since(start).Round(time.Millisecond))
		})
	})

	t.Run("trickled body", func(t *testing.T) {
		unseen(t, rec, func() {
			c, err := net.Dial("tcp", g.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{", g.Addr(), tok)
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to a withheld body: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			requireRPCError(t, curlResult{Status: resp.StatusCode, Header: resp.Header, Body: body}, http.StatusRequestTimeout, -32600, "not received in time")
		})
	})

	t.Run("many slow clients do not starve others", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 200 {
			c, err := trickleHeaders()
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		requireToolList(t, walkthroughCurl(t, g.URL()+"/mcp", tok))
	})
}

// Claim values never become headers: a valid token whose claims carry CR,
// LF and header-looking text passes, and neither the client's response, nor
// what the upstream receives, nor the gateway's log lines are split by it.
func TestAttackHeaderInjectionThroughClaims(t *testing.T) {
	u := upstream(t)
	rec := harness.StartRecorder(t, u.URL())
	idp := startOwnIdP(t)
	g := gatewayFor(t, harness.Config{UpstreamPort: rec.Port(), Auth: idp.Auth()})
	evil := "x\r\nX-Injected: 1\r\nSet-Cookie: a=b\r\n\r\n{\"level\":\"ERROR\"}"
	claims := idp.Claims()
	claims["sub"] = evil
	claims["email"] = evil
	claims["name"] = evil
	before := len(rec.Requests())
	r := walkthroughCurl(t, g.URL()+"/mcp", idp.Sign(claims))
	requireToolList(t, r)
	requireReached(t, rec, before)
	for k := range r.Header {
		if strings.EqualFold(k, "X-Injected") || strings.EqualFold(k, "Set-Cookie") {
			t.Errorf("response carries injected header %s", k)
		}
	}
	for _, req := range rec.Requests()[before:] {
		for k, vs := range req.Header {
			if strings.EqualFold(k, "X-Injected") || strings.EqualFold(k, "Authorization") {
				t.Errorf("upstream received header %s", k)
			}
			for _, v := range vs {
				if strings.Contains(v, "X-Injected") {
					t.Errorf("upstream header %s carries the claim: %q", k, v)
				}
			}
		}
	}
	// A bad token's kid is echoed nowhere either.
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	bad := signRS256(t, foreign, map[string]any{"alg": "RS256", "kid": evil}, claims)
	requireUnauthorized(t, g, walkthroughCurl(t, g.URL()+"/mcp", bad))

	// Every log line is one JSON object: the claim did not split a line.
	time.Sleep(200 * time.Millisecond) // the access log is written after the response
	lines := strings.Split(strings.TrimSpace(g.Output()), "\n")
	sawSubject := false
	for _, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Errorf("log line is not one JSON object (%v): %q", err, line)
		}
		if strings.Contains(line, `X-Injected: 1`) {
			sawSubject = true
		}
	}
	if !sawSubject {
		t.Error("no log line carries the subject: the check above proved nothing")
	}
}
