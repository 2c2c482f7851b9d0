// Package harness starts the real components the end-to-end tests and load
// benchmarks run against, all on 127.0.0.1: the Dex identity provider, the
// reference MCP server (server-everything, Node.js), the mcpgate binary, and a
// recording reverse proxy that observes what reaches the upstream.
//
// Every component has two constructors: NewXxx returns an error and leaves
// stopping to the caller (for TestMain, where components are shared by many
// tests), and StartXxx takes a testing.TB, stops the component on t.Cleanup,
// and turns a missing tool into t.Skip, or into t.Fatal when the CI
// environment variable is set, so CI can never skip silently.
//
// Tools are found through environment variables, with defaults relative to the
// repository root (the directory holding go.mod above this package):
//
//	DEX_BIN       bin/dex-v2.45.1          (scripts/install-tools.sh builds it)
//	HYDRA_BIN     bin/hydra-v2.3.0         (scripts/install-tools.sh builds it)
//	NODE_MODULES  tests/node/node_modules  (scripts/install-tools.sh installs it)
//	NODE          node on $PATH
//	CONFORMANCE_NODE  bin/node-v22.23.3/bin/node  (Node >= 22 for the conformance suite; install-tools.sh)
//	MCPGATE_BIN   built once per test binary from ./cmd/gateway when unset
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DexVersion is the Dex release scripts/install-tools.sh builds; the binary
// name carries it so a version bump never reuses a stale build.
const DexVersion = "v2.45.1"

// HydraVersion is the ORY Hydra release scripts/install-tools.sh builds.
const HydraVersion = "v2.3.0"

// ErrToolMissing reports that a binary or package the harness needs is not
// installed. Require turns it into a skip (locally) or a failure (in CI).
var ErrToolMissing = errors.New("harness: tool missing")

// startTimeout bounds how long a component may take to become ready.
const startTimeout = 60 * time.Second

// Require fails or skips t when err is non-nil: a missing tool skips unless
// the CI environment variable is set; every other error fails.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrToolMissing) && os.Getenv("CI") == "" {
		t.Skipf("%v (run scripts/install-tools.sh; set CI=1 to make this a failure)", err)
	}
	t.Fatal(err)
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the directory of the repository's go.mod, found by walking
// up from the working directory (go test runs in the package directory).
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = fmt.Errorf("harness: %w", err)
			return
		}
		for {
			if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				bytes.Contains(data, []byte("module github.com/mcpgate/mcpgate\n")) {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("harness: no go.mod of github.com/mcpgate/mcpgate above the working directory")
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

// toolPath returns $env when set, else def joined to the repository root, and
// checks that the path exists.
func toolPath(env, def, hint string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		p = filepath.Join(root, def)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s not found at %s (set %s, or %s)", ErrToolMissing, env, p, env, hint)
	}
	return p, nil
}

// DexBin locates the Dex binary ($DEX_BIN or bin/dex-<DexVersion>).
func DexBin() (string, error) {
	return toolPath("DEX_BIN", filepath.Join("bin", "dex-"+DexVersion), "run scripts/install-tools.sh")
}

// HydraBin locates the ORY Hydra binary ($HYDRA_BIN or bin/hydra-<HydraVersion>).
func HydraBin() (string, error) {
	return toolPath("HYDRA_BIN", filepath.Join("bin", "hydra-"+HydraVersion), "run scripts/install-tools.sh")
}

// NodeModules locates tests/node/node_modules ($NODE_MODULES).
func NodeModules() (string, error) {
	return toolPath("NODE_MODULES", filepath.Join("tests", "node", "node_modules"), "run scripts/install-tools.sh")
}

// NodeBin locates the node executable ($NODE or node on $PATH).
func NodeBin() (string, error) {
	if p := os.Getenv("NODE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: NODE=%s: %v", ErrToolMissing, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("%w: node (Node.js >= 20) not on PATH (set NODE)", ErrToolMissing)
	}
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a goroutine-safe output sink for a child process.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a child started in its own process group, so stopping it also
// stops whatever it spawned (npm, node workers).
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // set before done is closed

	stopOnce sync.Once
}

func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Output returns everything the process wrote to stdout and stderr so far.
func (p *process) Output() string { return p.out.String() }

// exited reports whether the process has ended, with its exit error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends sig to the process group, waits up to grace, then kills the
// group. It is safe to call more than once.
func (p *process) stop(sig syscall.Signal, grace time.Duration) {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, sig)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		// Children that ignored the signal may outlive the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// waitReady polls ready until it returns nil, the process exits, or the
// timeout passes; errors name the component and carry its output.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("harness: %s exited before it was ready (%v); output:\n%s", p.name, err, p.Output())
		}
		if last = ready(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("harness: %s not ready after %s: %v; output:\n%s", p.name, timeout, last, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialReady succeeds once addr accepts TCP connections.
func dialReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// httpReady succeeds once GET url answers with want.
func httpReady(url string, want int) func() error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("GET %s: status %d, want %d", url, resp.StatusCode, want)
		}
		return nil
	}
}

// logOnFailure prints a component's output through t when the test failed.
func logOnFailure(t testing.TB, name string, output func() string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, output())
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
