package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Node22Version is the Node.js release scripts/install-tools.sh unpacks into
// bin/node-v<Node22Version>/bin/node for the conformance suite, which needs
// Node >= 22 (the rest of the tests run on the node on $PATH).
const Node22Version = "22.23.3"

// ConformanceNode locates the Node.js that runs the conformance suite
// ($CONFORMANCE_NODE or bin/node-v<Node22Version>/bin/node).
func ConformanceNode() (string, error) {
	return toolPath("CONFORMANCE_NODE", filepath.Join("bin", "node-v"+Node22Version, "bin", "node"), "run scripts/install-tools.sh")
}

// ConformanceCLI locates the entry point of @modelcontextprotocol/conformance
// in tests/node/node_modules.
func ConformanceCLI() (string, error) {
	mods, err := NodeModules()
	if err != nil {
		return "", err
	}
	entry := filepath.Join(mods, "@modelcontextprotocol", "conformance", "dist", "index.js")
	if _, err := os.Stat(entry); err != nil {
		return "", fmt.Errorf("%w: @modelcontextprotocol/conformance not installed at %s (run scripts/install-tools.sh)", ErrToolMissing, entry)
	}
	return entry, nil
}

// RunConformance runs the conformance suite's server scenarios (suite "all":
// active and pending) against url, writing one directory per scenario with
// its checks.json under outDir. The suite exits non-zero when a check fails,
// which is not an error here: the caller reads the results. The returned
// output is what the suite printed.
func RunConformance(ctx context.Context, url, outDir string) (string, error) {
	node, err := ConformanceNode()
	if err != nil {
		return "", err
	}
	cli, err := ConformanceCLI()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, node, cli, "server", "--suite", "all", "--url", url, "--output-dir", outDir)
	cmd.Dir = outDir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("harness: conformance suite against %s: %w; output:\n%s", url, ctx.Err(), out)
	}
	if _, ok := err.(*exec.ExitError); ok {
		err = nil // failed checks; the results say which
	}
	if err != nil {
		return string(out), fmt.Errorf("harness: conformance suite against %s: %w", url, err)
	}
	return string(out), nil
}

// ConformanceScenarios lists the suite's server scenarios (`conformance
// list --server`), active and pending.
func ConformanceScenarios(ctx context.Context) ([]string, error) {
	node, err := ConformanceNode()
	if err != nil {
		return nil, err
	}
	cli, err := ConformanceCLI()
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, node, cli, "list", "--server").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("harness: conformance list --server: %w; output:\n%s", err, out)
	}
	// Lines "  - <name> [<spec versions>]" under a heading.
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if !ok {
			continue
		}
		if name, _, _ := strings.Cut(rest, " "); name != "" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("harness: conformance list --server printed no scenarios:\n%s", out)
	}
	return names, nil
}

// StartConformanceServer starts tests/node/conformance-server.mjs (an MCP
// server with the tools, resources and prompts the conformance scenarios
// ask for) for the duration of the test.
func StartConformanceServer(t testing.TB) *Upstream {
	t.Helper()
	return startUpstream(t, "conformance-server", NewConformanceServer)
}

// NewConformanceServer starts `node tests/node/conformance-server.mjs
// <port>` on the node on $PATH and waits until it answers HTTP. The caller
// must call Close.
func NewConformanceServer() (*Upstream, error) {
	node, err := NodeBin()
	if err != nil {
		return nil, err
	}
	mods, err := NodeModules()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(filepath.Dir(mods), "conformance-server.mjs")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("harness: %s missing: %w", script, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess("conformance-server", exec.Command(node, script, itoa(port)))
	if err != nil {
		return nil, err
	}
	u := &Upstream{port: port, proc: proc}
	// A GET without a session is refused with 400 once the server listens.
	if err := proc.waitReady(startTimeout, httpReady(u.URL(), 400)); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}
