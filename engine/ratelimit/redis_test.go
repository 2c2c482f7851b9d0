package ratelimit_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServer is a real redis-server on 127.0.0.1, without persistence, that
// a test can kill, pause and start again on the same port. The engine's tests
// do not import the end-to-end harness (engine depends on nothing under
// tests/), hence this small starter of its own.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer // guarded by mu
}

// startRedis starts redis-server on a free port for the duration of the
// test. Without redis-server on PATH it skips, or fails when CI is set.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("redis-server not on PATH (run scripts/install-tools.sh; set CI=1 to make this a failure)")
		}
		t.Fatal("redis-server not on PATH (scripts/install-tools.sh installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: port, out: &bytes.Buffer{}}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			r.mu.Lock()
			t.Logf("--- redis-server output ---\n%s", r.out)
			r.mu.Unlock()
		}
	})
	r.start()
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// start runs redis-server on r's port and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
	r.mu.Lock()
	if r.cmd != nil {
		r.mu.Unlock()
		r.t.Fatal("redis-server already running")
	}
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	cmd.Dir = r.dir
	w := &lockedWriter{mu: &r.mu, buf: r.out}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			r.mu.Lock()
			out := r.out.String()
			r.mu.Unlock()
			r.t.Fatalf("redis-server exited before it was ready; output:\n%s", out)
		default:
		}
		if err := ping(r.addr()); err == nil {
			return
		} else if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s not ready after 10s: %v", r.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills redis-server (SIGKILL: a crash, not a shutdown) and waits for
// it to exit. Safe to call when it is not running.
func (r *redisServer) stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd, r.done = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT) // in case it was paused
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// pause freezes redis-server (SIGSTOP): connections stay open and nothing
// answers, the way a wedged or partitioned Redis looks to a client.
func (r *redisServer) pause() { r.signal(syscall.SIGSTOP) }

// resume undoes pause.
func (r *redisServer) resume() { r.signal(syscall.SIGCONT) }

func (r *redisServer) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = syscall.Kill(r.cmd.Process.Pid, sig)
	}
}

// ping sends one PING in the inline protocol and wants +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING: got %q, want +PONG", line)
	}
	return nil
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
