package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	goServerOnce sync.Once
	goServerBin  string
	goServerErr  error
	goServerDir  string // removed by Cleanup
)

// goServerBinary builds tests/mcpserver once per test binary into the
// directory Cleanup removes.
func goServerBinary() (string, error) {
	goServerOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			goServerErr = err
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goServerErr = fmt.Errorf("%w: go not found on PATH to build tests/mcpserver", ErrToolMissing)
			return
		}
		dir, err := os.MkdirTemp("", "mcpgate-mcpserver-")
		if err != nil {
			goServerErr = fmt.Errorf("harness: %w", err)
			return
		}
		goServerDir = dir
		bin := filepath.Join(dir, "mcpserver")
		cmd := exec.Command(goBin, "build", "-o", bin, "./tests/mcpserver")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			goServerErr = fmt.Errorf("harness: go build ./tests/mcpserver: %v\n%s", err, out)
			return
		}
		goServerBin = bin
	})
	return goServerBin, goServerErr
}

// StartGoServer starts tests/mcpserver (a Go SDK MCP server: tools add and
// greet, prompt haiku, resource second://info) on a free loopback port for
// the duration of the test.
func StartGoServer(t testing.TB) *Upstream {
	t.Helper()
	return startUpstream(t, "mcpserver", NewGoServer)
}

// NewGoServer starts tests/mcpserver and waits until it answers HTTP. The
// caller must call Close.
func NewGoServer() (*Upstream, error) {
	bin, err := goServerBinary()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess("mcpserver", exec.Command(bin, "-addr", "127.0.0.1:"+itoa(port)))
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
