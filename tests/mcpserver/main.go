// Command mcpserver is a small MCP server built on the Go SDK, the second
// real server of the end-to-end tests (next to server-everything): tools
// add and greet, prompt haiku, resource second://info, over Streamable HTTP
// on 127.0.0.1.
//
//	mcpserver -addr 127.0.0.1:3002   # serves /mcp
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type addIn struct {
	A int `json:"a" jsonschema:"first addend"`
	B int `json:"b" jsonschema:"second addend"`
}

type greetIn struct {
	Name string `json:"name" jsonschema:"who to greet"`
}

func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "mcpgate-second", Version: "v1.0.0"},
		&mcp.ServerOptions{Instructions: "The second test server: add numbers, greet people."})
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Adds two integers"},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("second: %d", in.A+in.B)}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "greet", Description: "Greets someone"},
		func(_ context.Context, _ *mcp.CallToolRequest, in greetIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Hello, " + in.Name + ", from second"}}}, nil, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "haiku", Description: "Asks for a haiku"},
		func(_ context.Context, _ *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "Write a haiku about gateways."}}}}, nil
		})
	s.AddResource(&mcp.Resource{URI: "second://info", Name: "info", MIMEType: "text/plain"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "second server info"}}}, nil
		})
	return s
}

func main() {
	addr := flag.String("addr", "127.0.0.1:3002", "listen address")
	flag.Parse()
	s := newServer()
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	log.Printf("mcpserver listening on %s/mcp", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
