// Command upstream is the fast MCP server the load harness measures the
// gateway against: a go-sdk Streamable HTTP server with ten cheap tools and
// JSON (not SSE) responses, so that what the harness sees is the cost of what
// sits in front of it. It runs as its own process so its CPU is counted apart
// from the gateway's.
//
//	upstream --addr 127.0.0.1:9000             # serves /mcp, ten tools
//	upstream --addr 127.0.0.1:9000 --tools 100 # the ten and tool-010 … tool-099
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

// baseTools is the number of tools newServer always registers.
const baseTools = 10

// newServer registers the tools. Ten tools make tools/list a realistic
// amount of JSON for the gateway's list filtering; every handler is cheap.
// With tools > 10, tool-010 … tool-<tools-1> are added (each echoes, with a
// description and an input schema like echo's): the federation scenario
// lists 100 or 300 tools per server.
func newServer(tools int) *mcp.Server {
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
	for i := baseTools; i < tools; i++ {
		name := fmt.Sprintf("tool-%03d", i)
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: fmt.Sprintf("Tool number %d: echoes the message back.", i)},
			func(_ context.Context, _ *mcp.CallToolRequest, in messageIn) (*mcp.CallToolResult, any, error) {
				return text(name + ": " + in.Message), nil, nil
			})
	}
	return s
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	tools := flag.Int("tools", baseTools, "number of tools (at least 10: the ten named ones, then tool-010 …)")
	flag.Parse()
	if *tools < baseTools || *tools > 10000 {
		log.Fatalf("upstream: -tools %d: want 10 to 10000", *tools)
	}
	srv := newServer(*tools)
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
