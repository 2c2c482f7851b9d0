package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// GatewayBin returns $MCPGATE_BIN, or builds ./cmd/gateway once per test
// binary into a temporary directory that Cleanup removes.
func GatewayBin() (string, error) {
	if p := os.Getenv("MCPGATE_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("harness: MCPGATE_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	buildOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		// go test puts its own GOROOT/bin first on the PATH of tests.
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("%w: go not found on PATH to build the gateway (set MCPGATE_BIN)", ErrToolMissing)
			return
		}
		if buildDir, err = os.MkdirTemp("", "mcpgate-gateway-"); err != nil {
			buildErr = fmt.Errorf("harness: %w", err)
			return
		}
		bin := filepath.Join(buildDir, "gateway")
		cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/gateway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("harness: go build ./cmd/gateway: %v\n%s", err, out)
			return
		}
		buildBin = bin
	})
	return buildBin, buildErr
}

// Cleanup removes what the harness built for this test binary. Call it from
// TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	for _, d := range extraDirs {
		os.RemoveAll(d)
	}
	if goServerDir != "" {
		os.RemoveAll(goServerDir)
	}
}

// extraDirs are other build directories for Cleanup (ControllerBin).
var extraDirs []string

// Gateway is a running mcpgate (`gateway run`).
type Gateway struct {
	port      int
	adminPort int
	dir       string
	proc      *process
}

// StartGateway writes configYAML to a temporary directory and runs
// `gateway run -f <dir> --bind 127.0.0.1 --port <free port> extraArgs...` for
// the duration of the test. Its output is logged when the test fails.
func StartGateway(t testing.TB, configYAML string, extraArgs ...string) *Gateway {
	t.Helper()
	return StartGatewayFiles(t, map[string]string{"config.yaml": configYAML}, extraArgs...)
}

// StartGatewayFiles is StartGateway with several files (YAML, Rego) in the
// configuration directory, by file name.
func StartGatewayFiles(t testing.TB, files map[string]string, extraArgs ...string) *Gateway {
	t.Helper()
	g, err := NewGateway(files, extraArgs...)
	Require(t, err)
	logOnFailure(t, "gateway", g.Output)
	t.Cleanup(g.Close)
	return g
}

// StartGatewayOnPort is StartGatewayFiles on a port the caller chose (with
// FreePort), for configurations that must name the gateway's own URL (an
// RFC 8707 resource, for instance).
func StartGatewayOnPort(t testing.TB, port int, files map[string]string, extraArgs ...string) *Gateway {
	t.Helper()
	g, err := newGateway(files, port, extraArgs...)
	Require(t, err)
	logOnFailure(t, "gateway", g.Output)
	t.Cleanup(g.Close)
	return g
}

// NewGateway starts the gateway on a free loopback port and waits until the
// port accepts connections. The caller must call Close.
func NewGateway(files map[string]string, extraArgs ...string) (*Gateway, error) {
	return newGateway(files, 0, extraArgs...)
}

func newGateway(files map[string]string, port int, extraArgs ...string) (*Gateway, error) {
	bin, err := GatewayBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcpgate-config-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("harness: %w", err)
		}
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	adminPort, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := append([]string{"run", "-f", dir, "--bind", "127.0.0.1", "--port", itoa(port), "--admin-addr", "127.0.0.1:" + itoa(adminPort)}, extraArgs...)
	proc, err := startProcess("gateway", exec.Command(bin, args...))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	g := &Gateway{port: port, adminPort: adminPort, dir: dir, proc: proc}
	if err := proc.waitReady(startTimeout, dialReady(g.Addr())); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Close stops the gateway with SIGTERM (SIGKILL after 10s) and removes its
// configuration directory.
func (g *Gateway) Close() {
	g.proc.stop(syscall.SIGTERM, 10*time.Second)
	os.RemoveAll(g.dir)
}

// Output is what the gateway logged so far.
func (g *Gateway) Output() string { return g.proc.Output() }

// Port is the gateway's listener port.
func (g *Gateway) Port() int { return g.port }

// Addr is host:port of the listener.
func (g *Gateway) Addr() string { return "127.0.0.1:" + itoa(g.port) }

// URL is the gateway's base URL, http://127.0.0.1:<port>.
func (g *Gateway) URL() string { return "http://" + g.Addr() }

// AdminURL is the base URL of the admin listener (/metrics, /readyz...).
func (g *Gateway) AdminURL() string { return "http://127.0.0.1:" + itoa(g.adminPort) }

// Dir is the configuration directory passed with -f.
func (g *Gateway) Dir() string { return g.dir }

// Pid is the gateway's process id (for /proc figures and signals).
func (g *Gateway) Pid() int { return g.proc.cmd.Process.Pid }

// Signal sends sig to the gateway process alone.
func (g *Gateway) Signal(sig syscall.Signal) error { return syscall.Kill(g.Pid(), sig) }

// Wait waits up to timeout for the gateway to exit and returns its exit
// error; it fails if the gateway is still running then.
func (g *Gateway) Wait(timeout time.Duration) error {
	select {
	case <-g.proc.done:
		return g.proc.err
	case <-time.After(timeout):
		return fmt.Errorf("harness: gateway still running after %s", timeout)
	}
}
