package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// rateLimitYAML is the walkthrough's configuration (Strict authentication
// against Dex) plus traffic.rateLimit.local {requests, unit: Minutes} on the
// route.
func rateLimitYAML(d *harness.Dex, u *harness.Upstream, requests int) string {
	cfg := harness.Config{UpstreamPort: u.Port(), Auth: harness.ForDex(d, "Strict")}
	return cfg.YAML() + `
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayPolicy
metadata:
  name: mcp-rate-limit
  namespace: agentgateway-system
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: HTTPRoute
    name: mcp-route
  traffic:
    rateLimit:
      local:
      - requests: ` + strconv.Itoa(requests) + `
        unit: Minutes
`
}

// rlEcho calls the echo tool through g, sessionless, as curl would.
func rlEcho(t *testing.T, g *harness.Gateway, token string, id int) curlResult {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"limited %d"}}}`, id, id)
	return curlPost(t, g.URL()+"/mcp", token, body)
}

// rlRequireEchoed asserts a 200 carrying the echo and the x-ratelimit-*
// headers (FailOpen with Redis down admits without counting: no headers).
func rlRequireEchoed(t *testing.T, r curlResult, id int, counted bool) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("request %d: got %s\nwant HTTP 200", id, r)
	}
	if want := fmt.Sprintf("limited %d", id); !strings.Contains(string(r.Body), want) {
		t.Errorf("request %d: body %s does not echo %q", id, r.Body, want)
	}
	if counted && r.Header.Get("X-Ratelimit-Limit") == "" {
		t.Errorf("request %d: no x-ratelimit-limit on an admitted request: %v", id, r.Header)
	}
}

// rlRequireLimited asserts the 429: Retry-After and JSON-RPC -32029 with
// data.retry_after_seconds, for the request's id.
func rlRequireLimited(t *testing.T, r curlResult, id int) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("request %d: got %s\nwant HTTP 429", id, r)
	}
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Errorf("request %d: Retry-After = %q, want seconds in [1, 60]", id, r.Header.Get("Retry-After"))
	}
	if got := r.Header.Get("X-Ratelimit-Remaining"); got != "0" {
		t.Errorf("request %d: x-ratelimit-remaining = %q, want 0", id, got)
	}
	var msg struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    struct {
				RetryAfter int `json:"retry_after_seconds"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &msg); err != nil {
		t.Fatalf("request %d: 429 body is not JSON (%v): %s", id, err, r.Body)
	}
	if string(msg.ID) != strconv.Itoa(id) || msg.Error.Code != -32029 || msg.Error.Message != "rate limit exceeded" || msg.Error.Data.RetryAfter != retry {
		t.Errorf("request %d: 429 body %s, want id %d, code -32029, \"rate limit exceeded\", data.retry_after_seconds %d", id, r.Body, id, retry)
	}
}

// rlRequireUnavailable asserts FailClosed's 503 with a JSON-RPC error.
func rlRequireUnavailable(t *testing.T, r curlResult, id int) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("request %d: got %s\nwant HTTP 503 (Redis down, FailClosed)", id, r)
	}
	var msg struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &msg); err != nil || string(msg.ID) != strconv.Itoa(id) || msg.Error.Code != -32603 {
		t.Errorf("request %d: 503 body %s, want a JSON-RPC error -32603 for id %d", id, r.Body, id)
	}
}

// Two gateways (two replicas) sharing one Redis share one budget: 5 per
// minute across both, then 429 from both. With Redis killed they answer 503
// (FailClosed, the default); once Redis is back on the same port they serve
// again without a restart.
func TestRateLimitSharedRedis(t *testing.T) {
	t.Parallel() // mostly waiting on processes
	d, u := dex(t), upstream(t)
	r := harness.StartRedis(t)
	yaml := rateLimitYAML(d, u, 5)
	gws := []*harness.Gateway{
		harness.StartGateway(t, yaml, "--ratelimit-redis", r.Addr()),
		harness.StartGateway(t, yaml, "--ratelimit-redis", r.Addr()),
	}
	tok := agentToken(t, d)

	t.Run("one budget across replicas", func(t *testing.T) {
		admitted, limitedBy := 0, map[int]bool{}
		for id := 1; id <= 12; id++ {
			gi := id % 2
			res := rlEcho(t, gws[gi], tok, id)
			switch res.Status {
			case http.StatusOK:
				admitted++
				rlRequireEchoed(t, res, id, true)
				if got, want := res.Header.Get("X-Ratelimit-Remaining"), strconv.Itoa(5-admitted); got != want {
					t.Errorf("request %d (gateway %d): x-ratelimit-remaining = %q, want %q (counted across both gateways)", id, gi, got, want)
				}
				if admitted > 5 {
					t.Errorf("request %d (gateway %d) admitted: %d admitted, the budget is 5", id, gi, admitted)
				}
			case http.StatusTooManyRequests:
				if id <= 5 {
					t.Errorf("request %d (gateway %d) refused: the first 5 must pass", id, gi)
				}
				rlRequireLimited(t, res, id)
				limitedBy[gi] = true
			default:
				t.Fatalf("request %d (gateway %d): got %s\nwant 200 or 429", id, gi, res)
			}
		}
		if admitted != 5 {
			t.Errorf("admitted %d of 12 across two gateways, want exactly 5", admitted)
		}
		if !limitedBy[0] || !limitedBy[1] {
			t.Errorf("429 from gateways %v, want from both", limitedBy)
		}
	})

	t.Run("redis killed: 503", func(t *testing.T) {
		r.Stop()
		for id := 100; id < 104; id++ {
			start := time.Now()
			rlRequireUnavailable(t, rlEcho(t, gws[id%2], tok, id), id)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("request %d: 503 took %v", id, took)
			}
		}
		// Refused before the limiter is asked: still 401, not 503.
		requireUnauthorized(t, gws[0], walkthroughCurl(t, gws[0].URL()+"/mcp", ""))
	})

	t.Run("redis restarted: served again", func(t *testing.T) {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		// The gateways reconnect on their own (at most once a second);
		// Redis came back empty, so a new window starts.
		for gi, g := range gws {
			deadline := time.Now().Add(10 * time.Second)
			for id := 200 + 10*gi; ; id++ {
				res := rlEcho(t, g, tok, id)
				if res.Status == http.StatusServiceUnavailable && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond)
					continue
				}
				if res.Status == http.StatusServiceUnavailable {
					t.Fatalf("gateway %d still answers 503 10s after Redis came back: %s", gi, res)
				}
				rlRequireEchoed(t, res, id, true)
				break
			}
		}
	})
}

// FailOpen: with Redis down the gateway admits everything (uncounted);
// with Redis up it counts as usual.
func TestRateLimitFailOpen(t *testing.T) {
	t.Parallel()
	d, u := dex(t), upstream(t)
	r := harness.StartRedis(t)
	g := harness.StartGateway(t, rateLimitYAML(d, u, 2), "--ratelimit-redis", r.Addr(), "--ratelimit-failure-mode", "FailOpen")
	tok := agentToken(t, d)

	rlRequireEchoed(t, rlEcho(t, g, tok, 1), 1, true)
	rlRequireEchoed(t, rlEcho(t, g, tok, 2), 2, true)
	rlRequireLimited(t, rlEcho(t, g, tok, 3), 3)

	r.Stop()
	for id := 10; id < 15; id++ {
		rlRequireEchoed(t, rlEcho(t, g, tok, id), id, false)
	}
}
