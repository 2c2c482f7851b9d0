package e2e

// The demo needs the fixed ports 5556, 3001 and 8080; every other test uses
// free ephemeral ports, so the two never collide. The demo runs as a parallel
// test, after all the serial ones.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// `scripts/demo.sh --check` (what make demo runs, non-interactively) starts
// Dex, server-everything and the gateway with examples/quickstart, and passes
// the walkthrough's two curls.
func TestDemoCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	t.Parallel() // parallel tests start after the serial ones; the rest use free ports
	root, err := harness.RepoRoot()
	harness.Require(t, err)
	for _, bin := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(bin); err != nil {
			harness.Require(t, fmt.Errorf("%w: %s not on PATH (the demo script needs it)", harness.ErrToolMissing, bin))
		}
	}
	for _, port := range []int{5556, 3001, 8080} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			msg := "127.0.0.1:" + strconv.Itoa(port) + " is in use (a demo already running?); the demo needs 5556, 3001 and 8080"
			if os.Getenv("CI") == "" {
				t.Skip(msg)
			}
			t.Fatal(msg)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "demo.sh"), "--check")
	cmd.Dir = root
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // let its trap stop the children
	cmd.WaitDelay = 20 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh --check: %v\n%s%s", err, out, demoLogs(root))
	}
	if !strings.Contains(string(out), "check: PASS") {
		t.Fatalf("scripts/demo.sh --check did not report PASS:\n%s", out)
	}
	// It stopped what it started.
	for _, port := range []int{5556, 3001, 8080} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			t.Errorf("127.0.0.1:%d still accepts connections after demo.sh --check exited", port)
		}
	}
}

// demoLogs returns the tail of each demo-run/*.log.
func demoLogs(root string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(root, "demo-run", "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		b.WriteString("\n--- " + filepath.Base(l) + " (tail) ---\n")
		b.WriteString(strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
	return b.String()
}
