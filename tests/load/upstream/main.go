// Command upstream is the fast MCP server the load harness measures the
// gateway against: a go-sdk Streamable HTTP server with ten cheap tools and
// JSON (not SSE) responses, so that what the harness sees is the cost of what
// sits in front of it. It runs as its own process so its CPU is counted apart
// from the gateway's.
//
//	upstream --addr 127.0.0.1:9000     # serves /mcp
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type messageIn struct {
	Message string `json:"message" jsonschema:"the text to return"`
}

type pairIn struct {
	A int `json:"a" jsonschema:"first operand"`
	B int `json:"b" jsonschema:"second operand"`
}

type nameIn struct {
	Name string `json:"name" jsonschema:"what to act on"`
}

type emptyIn struct{}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// newServer registers the tools. Ten tools make tools/list a realistic
// amount of JSON for the gateway's list filtering; every handler is cheap.
func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpgate-load-upstream", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes the message back."},
		func(_ context.Context, _ *mcp.CallToolRequest, in messageIn) (*mcp.CallToolResult, any, error) {
			return text("Echo: " + in.Message), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "upper", Description: "Returns the message in upper case."},
		func(_ context.Context, _ *mcp.CallToolRequest, in messageIn) (*mcp.CallToolResult, any, error) {
			return text(strings.ToUpper(in.Message)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "length", Description: "Returns the length of the message."},
		func(_ context.Context, _ *mcp.CallToolRequest, in messageIn) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(len(in.Message))), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get-sum", Description: "Adds two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in pairIn) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(in.A + in.B)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get-product", Description: "Multiplies two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in pairIn) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(in.A * in.B)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get-time", Description: "Returns the server's time."},
		func(_ context.Context, _ *mcp.CallToolRequest, _ emptyIn) (*mcp.CallToolResult, any, error) {
			return text(time.Now().UTC().Format(time.RFC3339)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "greet", Description: "Greets someone."},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, any, error) {
			return text("Hello, " + in.Name), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "lookup", Description: "Looks a name up (always found)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, any, error) {
			return text(in.Name + ": found"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get-env", Description: "Would reveal the environment; the harness policy denies it."},
		func(_ context.Context, _ *mcp.CallToolRequest, _ emptyIn) (*mcp.CallToolResult, any, error) {
			return text("(nothing)"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "delete", Description: "Would delete something; the harness policy denies it."},
		func(_ context.Context, _ *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, any, error) {
			return text("not deleted: " + in.Name), nil, nil
		})
	return s
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	srv := newServer()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		JSONResponse:   true,
		SessionTimeout: 5 * time.Minute, // the harness opens sessions per run
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
