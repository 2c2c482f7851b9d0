package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Upstream is a running MCP server: the reference server-everything over
// Streamable HTTP.
type Upstream struct {
	port int
	proc *process
}

// StartEverything starts server-everything for the duration of the test.
func StartEverything(t testing.TB) *Upstream {
	t.Helper()
	return startUpstream(t, "server-everything", NewEverything)
}

// startUpstream starts an MCP server with start for the duration of the
// test; its output is logged when the test fails.
func startUpstream(t testing.TB, name string, start func() (*Upstream, error)) *Upstream {
	t.Helper()
	u, err := start()
	Require(t, err)
	logOnFailure(t, name, u.Output)
	t.Cleanup(u.Close)
	return u
}

// NewEverything starts `node server-everything/dist/index.js streamableHttp`
// with PORT set to a free port and waits until it answers HTTP. The server
// calls app.listen(PORT), which binds every interface; tests/node/loopback-only.cjs
// is preloaded to bind it to 127.0.0.1 instead. The caller must call Close.
func NewEverything() (*Upstream, error) {
	node, err := NodeBin()
	if err != nil {
		return nil, err
	}
	mods, err := NodeModules()
	if err != nil {
		return nil, err
	}
	entry := filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(entry); err != nil {
		return nil, fmt.Errorf("%w: server-everything not installed at %s (run scripts/install-tools.sh)", ErrToolMissing, entry)
	}
	preload := filepath.Join(filepath.Dir(mods), "loopback-only.cjs")
	if _, err := os.Stat(preload); err != nil {
		return nil, fmt.Errorf("harness: %s missing: %w", preload, err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, "--require", preload, entry, "streamableHttp")
	cmd.Env = append(os.Environ(), "PORT="+itoa(port), "MCPGATE_LISTEN_HOST=127.0.0.1")
	proc, err := startProcess("server-everything", cmd)
	if err != nil {
		return nil, err
	}
	u := &Upstream{port: port, proc: proc}
	// GET /mcp without a session is answered with 400 once Express listens.
	if err := proc.waitReady(startTimeout, httpReady(u.URL(), 400)); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// Close stops the server (and anything it spawned).
func (u *Upstream) Close() { u.proc.stop(syscall.SIGTERM, 5*time.Second) }

// Output is what the server logged so far.
func (u *Upstream) Output() string { return u.proc.Output() }

// Host is the address the server is reached at.
func (u *Upstream) Host() string { return "127.0.0.1" }

// Port is the server's port.
func (u *Upstream) Port() int { return u.port }

// URL is the server's MCP endpoint.
func (u *Upstream) URL() string { return "http://127.0.0.1:" + itoa(u.port) + "/mcp" }
