package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpgate/mcpgate/engine/authn"
	"github.com/mcpgate/mcpgate/engine/mcp"
)

// BenchmarkInputAndDecide is the per-message policy cost on the request
// path: the input document built from a real request, parsed message and
// verified claims (buildInput), then the one decision (DESIGN.md §7).
func BenchmarkInputAndDecide(b *testing.B) {
	upstream := newMCPServer(b)
	jwks := newJWKS(b)
	port := upstream.srv.URL[strings.LastIndex(upstream.srv.URL, ":")+1:]
	gw := New(Options{NoDecisionCache: true}) // the evaluation; BenchmarkRequestPath covers cache hits
	if err := gw.Activate(context.Background(), buildBundle(b, configYAML(port, jwks.URL+"/keys"), nil)); err != nil {
		b.Fatal(err)
	}
	s := gw.snap.Load()
	var h *routeHandler
	for _, rt := range s.cfg.Routes {
		if rt.Authn != "" {
			h = gw.newRouteHandler(s, s.cfg.Listeners[0], rt)
		}
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"progressToken":7}}}`
	msg := func() (m *mcp.Message) {
		defer func() {
			if r := recover(); r != nil {
				b.Fatalf("mcp.Parse panicked: %v", r)
			}
		}()
		m, err := mcp.Parse([]byte(body))
		if err != nil {
			b.Fatal(err)
		}
		return m
	}()
	r := httptest.NewRequest(http.MethodPost, "http://gw.example:8080/mcp", strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:53422"
	for k, v := range map[string]string{
		"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
		"Mcp-Protocol-Version": "2025-06-18", "Mcp-Session-Id": "6f1d6c2e-5b3a-4c1e-9f7a-0c2b1e8d4a55",
		"User-Agent": "node", "Authorization": "Bearer x",
	} {
		r.Header.Set(k, v)
	}
	res := authn.Result{
		Present: true, Valid: true, Subject: "agent-user",
		Claims: ast.MustParseTerm(`{"iss":"` + testIssuer + `","sub":"agent-user","aud":"mcp-agent","exp":1800003600,"iat":1800000000,
			"at_hash":"6hlbmmpjr2eIDQd4h1xVkQ","email":"agent-user@example.com","email_verified":true,
			"groups":["mcp-users","developers"],"name":"agent-user","preferred_username":"agent-user",
			"federated_claims":{"connector_id":"local","user_id":"08a8684b-db88-4b73-90a9-3cd1661f5466"}}`).Value,
		Header: ast.MustParseTerm(`{"alg":"RS256","kid":"k1","typ":"JWT"}`).Value,
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := s.eval.Decide(ctx, buildInput(r, h.term, h.target.Name, msg, res))
		if err != nil || !d.Allow {
			b.Fatalf("got %+v, %v; want allow", d, err)
		}
	}
}
