package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/tests/e2e/harness"
)

// Process is a child the harness started, in its own process group.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs cmd; when announce is true it waits for the child's first
// stdout line "listening on ADDR" and returns ADDR.
func start(name string, cmd *exec.Cmd, announce bool) (*Process, string, error) {
	p := &Process{Name: name, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if announce {
		var err error
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, "", err
		}
	} else {
		cmd.Stdout = p.out
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("load: start %s: %w", name, err)
	}
	addrc := make(chan string, 1)
	if announce {
		go func() {
			sc := bufio.NewScanner(stdout)
			first := true
			for sc.Scan() {
				if first {
					addrc <- strings.TrimPrefix(sc.Text(), "listening on ")
					first = false
				}
				_, _ = p.out.Write(append(sc.Bytes(), '\n'))
			}
			if first {
				close(addrc)
			}
		}()
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if !announce {
		return p, "", nil
	}
	select {
	case addr, ok := <-addrc:
		if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
			p.Stop()
			return nil, "", fmt.Errorf("load: %s did not announce its address (%q); output:\n%s", name, addr, p.out)
		}
		return p, addr, nil
	case <-time.After(30 * time.Second):
		p.Stop()
		return nil, "", fmt.Errorf("load: %s did not start in 30s; output:\n%s", name, p.out)
	}
}

// PID is the process id whose CPU and memory the report shows.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output is what the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the group, then SIGKILL after 5 s.
func (p *Process) Stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// build compiles the harness's own commands (./upstream, ./bareproxy) into
// dir and returns the paths by package name.
func build(ctx context.Context, dir string) (map[string]string, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("%w: go not on PATH to build the load harness's servers", harness.ErrToolMissing)
	}
	bins := map[string]string{}
	for _, name := range []string{"upstream", "bareproxy"} {
		out := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./tests/load/"+name)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("load: go build ./tests/load/%s: %v\n%s", name, err, b)
		}
		bins[name] = out
	}
	return bins, nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
var clockTicks = sync.OnceValue(func() float64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100 // Linux's USER_HZ on every common architecture
})

// CPUTime is the user+system CPU time pid has used so far.
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("load: malformed /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("load: short /proc stat")
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(float64(utime+stime) / clockTicks() * float64(time.Second)), nil
}

// Memory is a process's resident set size now and at its peak, in bytes.
type Memory struct{ RSS, Peak int64 }

// ReadMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range strings.Lines(string(data)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.Peak
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("load: /proc/%d/status %s: %w", pid, key, err)
		}
		*dst = kb << 10
	}
	return m, nil
}
