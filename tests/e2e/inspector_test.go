package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// runInspector runs the MCP Inspector CLI (the package's mcp-inspector bin:
// its launcher with --cli) and returns its stdout.
func runInspector(t *testing.T, args ...string) []byte {
	t.Helper()
	node, err := harness.NodeBin()
	harness.Require(t, err)
	mods, err := harness.NodeModules()
	harness.Require(t, err)
	launcher := filepath.Join(mods, "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js")
	if _, err := os.Stat(launcher); err != nil {
		harness.Require(t, fmt.Errorf("%w: MCP Inspector not installed at %s (run scripts/install-tools.sh)", harness.ErrToolMissing, launcher))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{launcher, "--cli"}, args...)...)
	// The Inspector keeps a catalog and storage under $HOME; keep them out
	// of the real one.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "MCP_CATALOG_PATH="+filepath.Join(home, "mcp.json"), "NO_COLOR=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inspector %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(redact(args), " "), err, out, stderr.String())
	}
	return out
}

// redact keeps tokens out of failure messages.
func redact(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.HasPrefix(a, "Authorization: Bearer ") {
			out[i] = "Authorization: Bearer <token>"
		}
	}
	return out
}

// The MCP Inspector CLI lists and calls tools through the gateway with the
// walkthrough's token.
func TestInspectorCLI(t *testing.T) {
	d, g := dex(t), strictGateway(t)
	auth := "Authorization: Bearer " + agentToken(t, d)
	mcpURL := g.URL() + "/mcp"

	t.Run("tools/list", func(t *testing.T) {
		out := runInspector(t, mcpURL, "--transport", "http", "--method", "tools/list", "--header", auth)
		var res struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("inspector output is not the tools/list result (%v):\n%s", err, out)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		if !slices.Contains(names, "get-sum") || !slices.Contains(names, "echo") {
			t.Errorf("tools = %v, want get-sum and echo among them", names)
		}
	})
	t.Run("tools/call", func(t *testing.T) {
		out := runInspector(t, mcpURL, "--transport", "http", "--method", "tools/call",
			"--tool-name", "get-sum", "--tool-arg", "a=2", "b=3", "--header", auth)
		if !strings.Contains(string(out), "The sum of 2 and 3 is 5.") {
			t.Errorf("inspector tools/call get-sum a=2 b=3 printed:\n%s\nwant the sum 5", out)
		}
	})
}
