package e2e

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connectSDK opens a Go SDK client session through the gateway with the token
// on every request (nil opts: the SDK's default negotiation).
func connectSDK(t *testing.T, ctx context.Context, mcpURL, token string, copts *mcp.ClientOptions, sopts *mcp.ClientSessionOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgate-e2e", Version: "v0.0.0"}, copts)
	transport := &mcp.StreamableClientTransport{
		Endpoint:   mcpURL,
		HTTPClient: bearerClient(token),
		MaxRetries: -1, // a broken stream is a failure here, not something to paper over
	}
	cs, err := client.Connect(ctx, transport, sopts)
	if err != nil {
		t.Fatalf("connect through the gateway: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func textOf(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// The Go SDK connects through the gateway (initialize, session id, SSE
// answers), lists the tools and calls get-sum.
func TestGoSDKClient(t *testing.T) {
	d, g := dex(t), strictGateway(t)
	mcpURL := g.URL() + "/mcp"

	for _, version := range []string{"", "2025-11-25", "2025-06-18", "2025-03-26"} {
		name := version
		if name == "" {
			// v1.8.0 first tries the stateless server/discover of revision
			// 2026-07-28, then falls back to initialize.
			name = "sdk default"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			cs := connectSDK(t, ctx, mcpURL, agentToken(t, d), nil, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if cs.InitializeResult() == nil || cs.InitializeResult().ServerInfo == nil {
				t.Fatalf("no initialize result")
			}
			if got := cs.InitializeResult().ServerInfo.Name; got != "mcp-servers/everything" {
				t.Errorf("server name = %q, want mcp-servers/everything", got)
			}

			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			if !slices.Contains(names, "get-sum") {
				t.Errorf("tools = %v, missing get-sum", names)
			}

			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 2, "b": 3}})
			if err != nil {
				t.Fatalf("tools/call get-sum: %v", err)
			}
			if res.IsError {
				t.Fatalf("get-sum failed: %s", textOf(res))
			}
			if got, want := textOf(res), "The sum of 2 and 3 is 5."; got != want {
				t.Errorf("get-sum {a:2,b:3} = %q, want %q", got, want)
			}

			// A second call on the same session: the session id maps to the
			// same upstream session.
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "through the gateway"}})
			if err != nil {
				t.Fatalf("tools/call echo: %v", err)
			}
			if got := textOf(res); !strings.Contains(got, "through the gateway") {
				t.Errorf("echo = %q, want the message back", got)
			}
		})
	}
}

// A tool that reports progress answers over SSE; the gateway must pass each
// event on as it arrives, not buffer the stream until the result.
func TestSSEStreamedProgress(t *testing.T) {
	t.Parallel() // mostly waiting: overlap it with the other slow tests
	d, g := dex(t), strictGateway(t)
	checkStreamedProgress(t, g.URL()+"/mcp", agentToken(t, d))
}

// checkStreamedProgress calls trigger-long-running-operation with a progress
// token and checks that the progress notifications arrive over time, well
// before the result.
func checkStreamedProgress(t *testing.T, mcpURL, token string) {
	t.Helper()
	const (
		steps    = 4
		duration = 4 * time.Second // one progress notification per second
	)
	var (
		mu       sync.Mutex
		progress []float64
		arrivals []time.Time
	)
	copts := &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, req.Params.Progress)
			arrivals = append(arrivals, now)
		},
	}
	ctx := testContext(t, 60*time.Second)
	cs := connectSDK(t, ctx, mcpURL, token, copts, nil)

	params := &mcp.CallToolParams{
		Name:      "trigger-long-running-operation",
		Arguments: map[string]any{"duration": duration.Seconds(), "steps": steps},
	}
	params.SetProgressToken("e2e-progress")
	start := time.Now()
	res, err := cs.CallTool(ctx, params)
	final := time.Now()
	if err != nil {
		t.Fatalf("tools/call trigger-long-running-operation: %v", err)
	}
	if res.IsError || !strings.Contains(textOf(res), "Long running operation completed") {
		t.Fatalf("result = %q, want the completion message", textOf(res))
	}
	// The SDK runs notification handlers concurrently with the call: the
	// last notification, sent just before the result, may still be in
	// flight inside the client when CallTool returns.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= steps {
			break
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(progress) != steps {
		t.Fatalf("got %d progress notifications %v, want %d", len(progress), progress, steps)
	}
	for i, p := range progress {
		if p != float64(i+1) {
			t.Errorf("progress[%d] = %v, want %d (in order)", i, p, i+1)
		}
	}
	// Relative, not absolute: buffered, the first notification would arrive
	// together with the result; streamed, it arrives about duration/steps
	// after the call and duration/steps*(steps-1) before the result.
	first := arrivals[0]
	t.Logf("first progress after %v, result after %v", first.Sub(start).Round(time.Millisecond), final.Sub(start).Round(time.Millisecond))
	if !first.Before(final.Add(-duration / 2)) {
		t.Errorf("first progress notification arrived %v before the result, want more than %v: the SSE stream is buffered",
			final.Sub(first), duration/2)
	}
}
