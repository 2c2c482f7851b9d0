package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisBin locates redis-server ($REDIS_SERVER or redis-server on $PATH;
// scripts/install-tools.sh installs Debian's package when it is missing).
func RedisBin() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: REDIS_SERVER=%s: %v", ErrToolMissing, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("%w: redis-server not on PATH (set REDIS_SERVER, or run scripts/install-tools.sh)", ErrToolMissing)
	}
	return p, nil
}

// Redis is a redis-server on 127.0.0.1 without persistence (no snapshots,
// no append-only file): the shared rate-limit store of several gateways. Stop
// and Start take it down and bring it back on the same port, empty, the way
// a crashed and restarted Redis looks to its clients.
type Redis struct {
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	proc *process // nil while stopped
	logs []string // output of earlier runs
}

// StartRedis starts redis-server for the duration of the test.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r, err := NewRedis()
	Require(t, err)
	logOnFailure(t, "redis-server", r.Output)
	t.Cleanup(r.Close)
	return r
}

// NewRedis starts redis-server on a free port and waits until it answers
// PING. The caller must call Close.
func NewRedis() (*Redis, error) {
	bin, err := RedisBin()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcpgate-redis-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	r := &Redis{bin: bin, port: port, dir: dir}
	if err := r.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Start runs redis-server on the same port again after Stop (a no-op while
// it runs) and waits until it answers PING.
func (r *Redis) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		if done, _ := r.proc.exited(); !done {
			return nil
		}
		r.logs = append(r.logs, r.proc.Output())
		r.proc = nil
	}
	cmd := exec.Command(r.bin,
		"--port", itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	cmd.Dir = r.dir
	proc, err := startProcess("redis-server", cmd)
	if err != nil {
		return err
	}
	if err := proc.waitReady(startTimeout, pingReady(r.Addr())); err != nil {
		proc.stop(syscall.SIGKILL, time.Second)
		r.logs = append(r.logs, proc.Output())
		return err
	}
	r.proc = proc
	return nil
}

// Stop kills redis-server (SIGKILL: a crash, not a clean shutdown) and waits
// until it has exited, so its port refuses connections. Safe to call when it
// is stopped.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	r.proc.stop(syscall.SIGKILL, time.Second)
	r.logs = append(r.logs, r.proc.Output())
	r.proc = nil
}

// Close stops redis-server and removes its directory.
func (r *Redis) Close() {
	r.Stop()
	os.RemoveAll(r.dir)
}

// Output is what redis-server logged so far, across restarts.
func (r *Redis) Output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := strings.Join(r.logs, "--- restarted ---\n")
	if r.proc != nil {
		if out != "" {
			out += "--- restarted ---\n"
		}
		out += r.proc.Output()
	}
	return out
}

// Port is the loopback port redis-server listens on (the same across
// restarts).
func (r *Redis) Port() int { return r.port }

// Addr is host:port, as --ratelimit-redis takes it.
func (r *Redis) Addr() string { return "127.0.0.1:" + itoa(r.port) }

// pingReady succeeds once addr answers PING with +PONG (inline protocol).
func pingReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "+PONG\r\n" {
			return errors.New("PING answered " + strings.TrimSpace(line))
		}
		return nil
	}
}
