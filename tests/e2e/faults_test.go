package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// Faults: the IdP's JWKS endpoint, the upstream, the configuration and the
// process itself misbehave while real traffic flows. (Redis going away is
// covered by TestRateLimitSharedRedis and TestRateLimitFailOpen.)

// delayProxy sits in front of a real MCP server and holds tools/call
// requests for a settable delay before passing them on: a slow upstream.
type delayProxy struct {
	srv   *httptest.Server
	delay atomic.Int64 // nanoseconds
	calls atomic.Int64
}

func startDelayProxy(t *testing.T, upstreamURL string) *delayProxy {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	target := &url.URL{Scheme: u.Scheme, Host: u.Host}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = target.Host },
		FlushInterval: -1,
	}
	p := &delayProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"tools/call"`)) {
			p.calls.Add(1)
			select {
			case <-time.After(time.Duration(p.delay.Load())):
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *delayProxy) port() int {
	u, _ := url.Parse(p.srv.URL)
	n, _ := strconv.Atoi(u.Port())
	return n
}

const echoCall = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`

// requireEcho asserts the JSON answer to echoCall.
func requireEcho(t *testing.T, r curlResult) {
	t.Helper()
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Echo: hi") {
		t.Fatalf("got %s\nwant the echo result", r)
	}
}

// procFDs counts the open file descriptors of a process (sockets included):
// connections or goroutines stuck on them would show up here.
func procFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
	}
	return len(ents)
}

// The JWKS endpoint goes down: tokens signed with known keys keep working
// (keys are cached), a token naming a new key fails with a clear reason,
// and once the endpoint is back the new key is picked up without a restart.
func TestFaultJWKSDown(t *testing.T) {
	u := upstream(t)
	idp := startOwnIdP(t)
	g := gatewayFor(t, harness.Config{UpstreamPort: u.Port(), Auth: idp.Auth()})
	url := g.URL() + "/mcp"

	requireToolList(t, walkthroughCurl(t, url, idp.Sign(idp.Claims())))
	idp.Stop()

	// Known key: a token seen before (verdict cached) and a new one (key cached).
	requireToolList(t, walkthroughCurl(t, url, idp.Sign(idp.Claims())))
	c := idp.Claims()
	c["sub"] = "another-user"
	requireToolList(t, walkthroughCurl(t, url, idp.Sign(c)))

	// A key rotated in while the endpoint is down cannot be known yet.
	rotated := idp.AddKey()
	idp.Use(rotated)
	fresh := idp.Sign(idp.Claims())
	requireInvalidToken(t, g, walkthroughCurl(t, url, fresh), "unknown signing key")
	if !strings.Contains(g.Output(), "jwks fetch failed") {
		t.Errorf("the gateway did not log the failed JWKS fetch")
	}

	// Back up: the rotated key is fetched on demand (at most one fetch per
	// 10 s refresh interval), with no restart.
	idp.Start()
	start := time.Now()
	for {
		r := walkthroughCurl(t, url, fresh)
		if r.Status == http.StatusOK {
			requireToolList(t, r)
			t.Logf("rotated key accepted %v after the JWKS endpoint came back", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("rotated key still refused 30s after the JWKS endpoint came back: %s", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// A slow upstream: a JSON answer that does not come within
// --upstream-timeout is a 504 with a JSON-RPC error, in about the timeout;
// a long operation streamed as SSE is not cut; no connection is leaked;
// when the upstream is fast again, calls succeed.
func TestFaultUpstreamSlow(t *testing.T) {
	d, u := dex(t), upstream(t)
	slow := startDelayProxy(t, u.URL())
	g := gatewayFor(t, harness.Config{UpstreamPort: slow.port(), Auth: harness.ForDex(d, "Strict")}, "--upstream-timeout", "1s")
	url := g.URL() + "/mcp"
	tok := agentToken(t, d)
	jsonOnly := mcpHeaders(tok, "Accept", "application/json")

	requireEcho(t, send(t, http.MethodPost, url, jsonOnly, echoCall))
	fds := procFDs(t, g.Pid())

	slow.delay.Store(int64(5 * time.Second))
	for i := range 10 {
		start := time.Now()
		r := send(t, http.MethodPost, url, jsonOnly, echoCall)
		took := time.Since(start)
		requireRPCError(t, r, http.StatusGatewayTimeout, -32603, "timed out")
		if took >= 4*time.Second {
			t.Fatalf("call %d: the timeout answer took %v, the upstream's delay is 5s and the timeout 1s", i, took)
		}
	}

	// A long-running operation answered as SSE outlives the timeout.
	slow.delay.Store(0)
	long := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":3,"steps":3},"_meta":{"progressToken":"p1"}}}`
	r := send(t, http.MethodPost, url, mcpHeaders(tok), long)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"id":9`) || !strings.Contains(string(r.Body), "completed") {
		t.Fatalf("long-running operation over SSE: got %s\nwant its result after 3s despite the 1s timeout", r)
	}

	// Recovery, and no descriptors left behind by the timed-out calls.
	requireEcho(t, send(t, http.MethodPost, url, jsonOnly, echoCall))
	curlClient.CloseIdleConnections()
	var now int
	for range 50 {
		if now = procFDs(t, g.Pid()); now <= fds+2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if now > fds+2 {
		t.Errorf("open descriptors: %d before the timeouts, %d after", fds, now)
	}
	t.Logf("open descriptors: %d before 10 timed-out calls, %d after", fds, now)
}

// An upstream that is down: 502 with a JSON-RPC error, at once.
func TestFaultUpstreamDown(t *testing.T) {
	d := dex(t)
	port, err := harness.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	g := gatewayFor(t, harness.Config{UpstreamPort: port, Auth: harness.ForDex(d, "Strict")})
	tok := agentToken(t, d)
	for _, body := range []string{toolsListBody, echoCall} {
		requireRPCError(t, send(t, http.MethodPost, g.URL()+"/mcp", mcpHeaders(tok), body), http.StatusBadGateway, -32603, "unavailable")
	}
	if strings.Contains(string(send(t, http.MethodPost, g.URL()+"/mcp", mcpHeaders(tok), echoCall).Body), strconv.Itoa(port)) {
		t.Error("the error discloses the upstream address")
	}
}

// Broken configuration changes while the gateway runs: each is rejected
// with a log line and the last good configuration keeps serving (its
// policy still enforced); a valid change is then taken without a restart.
func TestFaultBadReload(t *testing.T) {
	d, u := dex(t), upstream(t)
	cfg := harness.Config{UpstreamPort: u.Port(), Auth: harness.ForDex(d, "Strict")}
	base := strings.TrimRight(cfg.YAML(), "\n") + "\n"
	denyEcho := authzPolicy{"no-echo", "HTTPRoute", "Deny", []string{`mcp.tool.name == "echo"`}}
	g := harness.StartGatewayFiles(t, map[string]string{"config.yaml": base + denyEcho.yaml()}, "--watch", "100ms")
	url := g.URL() + "/mcp"
	tok := agentToken(t, d)
	denied := func() {
		t.Helper()
		requireRPCError(t, send(t, http.MethodPost, url, mcpHeaders(tok, "Accept", "application/json"), echoCall), http.StatusOK, -32602, "Unknown tool")
	}
	denied()

	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(g.Dir(), name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rejections := func() int { return strings.Count(g.Output(), "configuration change rejected") }
	waitRejected := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for rejections() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the broken change was not rejected in 10s; output:\n%s", g.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, broken := range []struct{ name, file, content string }{
		{"YAML syntax", "config.yaml", base + denyEcho.yaml() + "\n  : [unclosed\n"},
		{"unknown field", "config.yaml", strings.Replace(base, "gatewayClassName:", "gatewayClassNam:", 1) + denyEcho.yaml()},
		{"CEL that does not compile", "config.yaml", base + authzPolicy{"no-echo", "HTTPRoute", "Deny", []string{`mcp.tool.name ==`}}.yaml()},
		{"Rego that does not compile", "bad.rego", "package mcpgate.user.bad\n\ndeny contains x if {\n"},
	} {
		t.Run(broken.name, func(t *testing.T) {
			write(broken.file, broken.content)
			waitRejected(i + 1)
			denied() // the old policy still decides, for calls and lists
			if r := walkthroughCurl(t, url, tok); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"get-sum"`) || strings.Contains(string(r.Body), `"name":"echo"`) {
				t.Fatalf("got %s\nwant the tool list without echo", r)
			}
			if broken.file != "config.yaml" {
				if err := os.Remove(filepath.Join(g.Dir(), broken.file)); err != nil {
					t.Fatal(err)
				}
			}
		})
	}

	// A valid change without the Deny rule: echo is allowed again.
	write("config.yaml", base)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := send(t, http.MethodPost, url, mcpHeaders(tok, "Accept", "application/json"), echoCall)
		if r.Status == http.StatusOK && strings.Contains(string(r.Body), "Echo: hi") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the valid change was not taken in 10s: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SIGTERM while requests are in flight: every one of them gets its full
// answer, new connections are refused, and the gateway exits cleanly.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	d, u := dex(t), upstream(t)
	slow := startDelayProxy(t, u.URL())
	slow.delay.Store(int64(1500 * time.Millisecond))
	g := gatewayFor(t, harness.Config{UpstreamPort: slow.port(), Auth: harness.ForDex(d, "Strict")})
	url := g.URL() + "/mcp"
	tok := agentToken(t, d)

	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: n, DisableKeepAlives: true}}
	var wg sync.WaitGroup
	results := make([]curlResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Replace(echoCall, `"id":3`, `"id":`+strconv.Itoa(100+i), 1)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
			for k, v := range mcpHeaders(tok, "Accept", "application/json") {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			errs[i] = err
			results[i] = curlResult{Status: resp.StatusCode, Header: resp.Header, Body: b}
		}()
	}
	// Wait until every call is held at the upstream, then stop the gateway.
	deadline := time.Now().Add(20 * time.Second)
	for slow.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d calls reached the upstream", slow.calls.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := g.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := http.Post(url, "application/json", strings.NewReader(echoCall)); err == nil {
		t.Error("a new request was accepted after SIGTERM")
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("call %d: %v", i, errs[i])
			continue
		}
		var m rpcMessage
		if results[i].Status != http.StatusOK || json.Unmarshal(results[i].Body, &m) != nil || string(m.ID) != strconv.Itoa(100+i) || m.Error != nil {
			t.Errorf("call %d: got %s\nwant its echo result", i, results[i])
		}
	}
	if err := g.Wait(15 * time.Second); err != nil {
		t.Errorf("gateway exit: %v", err)
	}
}
