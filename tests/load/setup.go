package load

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// The identity the harness's token carries and the gateway's policy checks.
const (
	Issuer   = "https://issuer.load.mcpgate.invalid"
	Audience = "mcp-agent"
	keyID    = "load-1"
)

// Target is one way to reach an MCP server: directly or through a proxy.
type Target struct {
	Name     string   // direct, bare-proxy, gateway, everything, gateway→everything
	Upstream string   // "go-sdk" or "server-everything"
	URL      string   // MCP endpoint
	Token    string   // bearer token to send ("" for none)
	Proxy    *Process // the process in the middle (nil when direct)
	Server   *Process // the MCP server answering
	// MoreServers are the other servers behind a multi-target backend:
	// their CPU counts with Server's.
	MoreServers []*Process
	Tool        string // the tool tools/call names ("" is echo)
}

// Federation is the federation scenario's targets: a go-sdk server with
// 300 tools directly, through the bare proxy and through a gateway with it
// as the one target; and a gateway whose backend has three targets (a, b,
// c), go-sdk servers with 100 tools each. Both gateways carry the full
// policy (FederationConfig).
type Federation struct {
	Direct, Bare, Gateway1, Gateway3 Target
}

// Targets lists the federation targets in the order the runs interleave
// them.
func (f *Federation) Targets() []Target { return []Target{f.Direct, f.Bare, f.Gateway1, f.Gateway3} }

// The upstream column of the federation rows.
const (
	FedOne   = "go-sdk 1×300"
	FedThree = "go-sdk 3×100"
)

// Env is every process of one harness run.
type Env struct {
	Direct, Bare, Gateway         Target
	Everything, GatewayEverything *Target     // nil when server-everything is not measured
	Federation                    *Federation // nil when the federation scenario is not measured

	// GatewayIdle is the gateway's memory after start-up and one request
	// per method, before any load.
	GatewayIdle Memory

	procs []*Process
	jwks  *http.Server
	dirs  []string
}

// Options select what Setup starts.
type Options struct {
	GatewayBin string // "" uses harness.GatewayBin ($MCPGATE_BIN or a fresh build)
	Everything bool   // also start server-everything and a gateway in front of it
	Federation bool   // also start the federation scenario's servers and gateways
}

// Setup builds and starts everything on 127.0.0.1. On error it has
// stopped what it started; otherwise call Close when done.
func Setup(ctx context.Context, opts Options) (env *Env, err error) {
	e := &Env{}
	defer func() {
		if err != nil {
			e.Close()
			env = nil
		}
	}()
	gwBin := opts.GatewayBin
	if gwBin == "" {
		if gwBin, err = harness.GatewayBin(); err != nil {
			return e, err
		}
	}
	dir, err := os.MkdirTemp("", "mcpgate-load-")
	if err != nil {
		return e, err
	}
	e.dirs = append(e.dirs, dir)
	bins, err := build(ctx, dir)
	if err != nil {
		return e, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return e, err
	}
	jwksURL, err := e.serveJWKS(&key.PublicKey)
	if err != nil {
		return e, err
	}
	token, err := signToken(key)
	if err != nil {
		return e, err
	}

	upstream, upAddr, err := start("upstream", exec.Command(bins["upstream"], "--addr", "127.0.0.1:0"), true)
	if err != nil {
		return e, err
	}
	e.procs = append(e.procs, upstream)
	upURL := "http://" + upAddr + "/mcp"
	e.Direct = Target{Name: "direct", Upstream: "go-sdk", URL: upURL, Server: upstream}

	bare, bareAddr, err := start("bareproxy", exec.Command(bins["bareproxy"], "--addr", "127.0.0.1:0", "--upstream", "http://"+upAddr), true)
	if err != nil {
		return e, err
	}
	e.procs = append(e.procs, bare)
	e.Bare = Target{Name: "bare-proxy", Upstream: "go-sdk", URL: "http://" + bareAddr + "/mcp", Proxy: bare, Server: upstream}

	gw, gwURL, err := e.startGateway(ctx, gwBin, "gateway", GatewayConfig(upAddr, jwksURL), "echo", token)
	if err != nil {
		return e, err
	}
	e.Gateway = Target{Name: "gateway", Upstream: "go-sdk", URL: gwURL, Token: token, Proxy: gw, Server: upstream}
	if e.GatewayIdle, err = ReadMemory(gw.PID()); err != nil {
		return e, err
	}

	if opts.Everything {
		ev, evAddr, err := startEverything(ctx)
		if err != nil {
			return e, err
		}
		e.procs = append(e.procs, ev)
		e.Everything = &Target{Name: "direct", Upstream: "server-everything", URL: "http://" + evAddr + "/mcp", Server: ev}
		gwe, gweURL, err := e.startGateway(ctx, gwBin, "gateway-everything", GatewayConfig(evAddr, jwksURL), "echo", token)
		if err != nil {
			return e, err
		}
		e.GatewayEverything = &Target{Name: "gateway", Upstream: "server-everything", URL: gweURL, Token: token, Proxy: gwe, Server: ev}
	}
	if opts.Federation {
		if e.Federation, err = e.startFederation(ctx, bins, gwBin, jwksURL, token); err != nil {
			return e, err
		}
	}
	return e, nil
}

// startFederation starts the federation scenario: four go-sdk servers
// (one with 300 tools, three with 100), a bare proxy in front of the first,
// and two gateways.
func (e *Env) startFederation(ctx context.Context, bins map[string]string, gwBin, jwksURL, token string) (*Federation, error) {
	upstream := func(name string, tools int) (*Process, string, error) {
		p, addr, err := start(name, exec.Command(bins["upstream"], "--addr", "127.0.0.1:0", "--tools", strconv.Itoa(tools)), true)
		if err != nil {
			return nil, "", err
		}
		e.procs = append(e.procs, p)
		return p, addr, nil
	}
	f := &Federation{}
	big, bigAddr, err := upstream("upstream-300", 300)
	if err != nil {
		return nil, err
	}
	f.Direct = Target{Name: "direct", Upstream: FedOne, URL: "http://" + bigAddr + "/mcp", Server: big}
	bare, bareAddr, err := start("bareproxy-300", exec.Command(bins["bareproxy"], "--addr", "127.0.0.1:0", "--upstream", "http://"+bigAddr), true)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, bare)
	f.Bare = Target{Name: "bare-proxy", Upstream: FedOne, URL: "http://" + bareAddr + "/mcp", Proxy: bare, Server: big}
	gw1, gw1URL, err := e.startGateway(ctx, gwBin, "gateway-300", FederationConfig([]string{bigAddr}, jwksURL), "echo", token)
	if err != nil {
		return nil, err
	}
	f.Gateway1 = Target{Name: "gateway", Upstream: FedOne, URL: gw1URL, Token: token, Proxy: gw1, Server: big}

	var servers []*Process
	var addrs []string
	for _, name := range FederationTargets {
		p, addr, err := upstream("upstream-100-"+name, 100)
		if err != nil {
			return nil, err
		}
		servers, addrs = append(servers, p), append(addrs, addr)
	}
	gw3, gw3URL, err := e.startGateway(ctx, gwBin, "gateway-3x100", FederationConfig(addrs, jwksURL), FederatedTool, token)
	if err != nil {
		return nil, err
	}
	f.Gateway3 = Target{Name: "gateway", Upstream: FedThree, URL: gw3URL, Token: token, Proxy: gw3,
		Server: servers[1], MoreServers: []*Process{servers[0], servers[2]}, Tool: FederatedTool}
	return f, nil
}

// FederationTargets are the target names of the three-target backend.
var FederationTargets = []string{"a", "b", "c"}

// FederatedTool is the tool the load calls through the three-target
// backend: echo on target b.
const FederatedTool = "b_echo"

// Close stops every process and removes temporary files.
func (e *Env) Close() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].Stop()
	}
	if e.jwks != nil {
		_ = e.jwks.Close()
	}
	for _, d := range e.dirs {
		os.RemoveAll(d)
	}
}

// Targets lists the go-sdk targets in the order the runs interleave them.
func (e *Env) Targets() []Target { return []Target{e.Direct, e.Bare, e.Gateway} }

// Processes returns every child, for diagnostics.
func (e *Env) Processes() []*Process { return e.procs }

// serveJWKS serves the public key at http://127.0.0.1:<port>/keys.
func (e *Env) serveJWKS(pub *rsa.PublicKey) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": keyID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	e.jwks = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.jwks.Serve(l) }()
	return "http://" + l.Addr().String() + "/keys", nil
}

// signToken issues the load's access token: RS256, the policy's issuer and
// audience, group mcp-users, valid for a day (the gateway verifies it once
// and then serves it from its verified-token cache).
func signToken(key *rsa.PrivateKey) (string, error) {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": Issuer, "aud": Audience, "sub": "load-user", "azp": "mcp-agent",
		"iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		"email": "load-user@example.com", "groups": []string{"mcp-users"},
		"preferred_username": "load-user",
	})
	tok.Header["kid"] = keyID
	return tok.SignedString(key)
}

// GatewayConfig is the full-policy configuration the gateway is measured
// with, in front of the MCP server at upstream (host:port, path /mcp):
// Strict JWT authentication against the harness's JWKS, CEL authorization
// (an Allow rule on tool name and group, a Deny rule on the Gateway) and a
// local rate limit far above any rate the harness offers, so every request
// pays for the limiter without being limited.
func GatewayConfig(upstream, jwksURL string) string {
	return gatewayConfig([]string{upstream}, []string{"upstream"}, []string{allowTen}, jwksURL)
}

// allowTen is the Allow rule of GatewayConfig: eight of the upstream's ten
// tools for mcp-users (Deny hides delete and get-env anyway).
const allowTen = `mcp.tool.name in ["echo", "upper", "length", "get-sum", "get-product", "get-time", "greet", "lookup"] && "mcp-users" in jwt.groups`

// FederationConfig is GatewayConfig for the federation scenario: one
// backend whose targets are upstreams (host:port; one target "upstream",
// or a, b, c … for several) and an Allow rule that also admits the
// generated tools (tool-NNN), so a list shows every tool but delete and
// get-env of each server.
func FederationConfig(upstreams []string, jwksURL string) string {
	names := []string{"upstream"}
	if len(upstreams) > 1 {
		names = FederationTargets[:len(upstreams)]
	}
	return gatewayConfig(upstreams, names, []string{allowTen, `mcp.tool.name.startsWith("tool-") && "mcp-users" in jwt.groups`}, jwksURL)
}

func gatewayConfig(upstreams, names, allow []string, jwksURL string) string {
	var targets strings.Builder
	for i, u := range upstreams {
		host, port, _ := net.SplitHostPort(u)
		fmt.Fprintf(&targets, "    - name: %s\n      static: {host: %s, port: %s, path: /mcp, protocol: StreamableHTTP}\n", names[i], host, port)
	}
	var rules strings.Builder
	for _, a := range allow {
		fmt.Fprintf(&rules, "          - %s\n", strconv.Quote(a))
	}
	r := strings.NewReplacer("TARGETS\n", targets.String(), "ALLOW\n", rules.String(), "JWKSURL", strconv.Quote(jwksURL),
		"ISSUER", strconv.Quote(Issuer), "AUDIENCE", strconv.Quote(Audience))
	return r.Replace(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: agentgateway, namespace: agentgateway-system}
spec:
  gatewayClassName: agentgateway
  listeners:
  - {name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {name: mcp-backend, namespace: agentgateway-system}
spec:
  mcp:
    targets:
TARGETS
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mcp-route, namespace: agentgateway-system}
spec:
  parentRefs: [{name: agentgateway, namespace: agentgateway-system}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mcp}}]
    backendRefs: [{name: mcp-backend, group: agentgateway.dev, kind: AgentgatewayBackend}]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: mcp-auth, namespace: agentgateway-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp-route}]
  backend:
    mcp:
      authentication:
        issuer: ISSUER
        audiences: [AUDIENCE]
        jwks: {url: JWKSURL}
        mode: Strict
        provider: Keycloak
        resourceMetadata:
          resource: "http://mcp-server.default.svc.cluster.local"
          scopesSupported: ["openid"]
          bearerMethodsSupported: ["header"]
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: tools-for-users, namespace: agentgateway-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp-route}]
  backend:
    mcp:
      authorization:
        action: Allow
        policy:
          matchExpressions:
ALLOW
          - '"mcp-admins" in jwt.groups'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: no-destruction, namespace: agentgateway-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: agentgateway}]
  backend:
    mcp:
      authorization:
        action: Deny
        policy:
          matchExpressions:
          - 'mcp.tool.name == "delete"'
          - 'mcp.tool.name == "get-env"'
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata: {name: high-limit, namespace: agentgateway-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: mcp-route}]
  traffic:
    rateLimit:
      local:
      - {requests: 1000000, unit: Seconds}
`)
}

// startGateway runs `gateway run` with config and waits until an
// authenticated session opens through it and tool answers.
func (e *Env) startGateway(ctx context.Context, bin, name, config, tool, token string) (*Process, string, error) {
	dir, err := os.MkdirTemp("", "mcpgate-load-config-")
	if err != nil {
		return nil, "", err
	}
	e.dirs = append(e.dirs, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		return nil, "", err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, "", err
	}
	p, _, err := start(name, exec.Command(bin, "run", "-f", dir, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--admin-addr", "127.0.0.1:0"), false)
	if err != nil {
		return nil, "", err
	}
	e.procs = append(e.procs, p)
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/mcp"
	if err := waitSession(ctx, p, url, token, tool); err != nil {
		return nil, "", err
	}
	return p, url, nil
}

// waitSession polls until a session opens at url and answers both methods
// (tools/call naming tool).
func waitSession(ctx context.Context, p *Process, url, token, tool string) error {
	c := NewClient(url, token, 1)
	c.Tool = tool
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := c.Open(ctx)
		if err == nil {
			err = errors.Join(s.Do(ctx, ToolsCall), s.Do(ctx, ToolsList))
			s.Close()
			if err == nil {
				return nil
			}
		}
		if p.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("load: %s not ready: %v; output:\n%s", p.Name, err, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startEverything runs server-everything (Streamable HTTP) on a free
// loopback port, as tests/e2e/harness does, but keeps the node process's
// id for the CPU and memory figures.
func startEverything(ctx context.Context) (*Process, string, error) {
	node, err := harness.NodeBin()
	if err != nil {
		return nil, "", err
	}
	mods, err := harness.NodeModules()
	if err != nil {
		return nil, "", err
	}
	entry := filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(entry); err != nil {
		return nil, "", fmt.Errorf("%w: server-everything not installed at %s (run scripts/install-tools.sh)", harness.ErrToolMissing, entry)
	}
	preload := filepath.Join(filepath.Dir(mods), "loopback-only.cjs")
	port, err := harness.FreePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(node, "--require", preload, entry, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "MCPGATE_LISTEN_HOST=127.0.0.1")
	p, _, err := start("server-everything", cmd, false)
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitSession(ctx, p, "http://"+addr+"/mcp", "", "echo"); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, addr, nil
}
