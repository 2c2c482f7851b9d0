package bridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Backoff of a stdio target whose processes fail to start or die before
// answering initialize: 500ms, 1s, 2s ... up to 30s; reset by a successful
// initialize.
const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 30 * time.Second
	// stopGrace is how long a process has to exit after its stdin is
	// closed, and again after SIGTERM, before SIGKILL.
	stopGrace = 2 * time.Second
	// maxStderrLine bounds one logged stderr line.
	maxStderrLine = 4 << 10
)

// spawner starts the processes of one stdio target: one per session, with
// a warm spare so a session (or a sessionless client's per-request session)
// does not wait for a process to start, and exponential backoff when they
// keep failing.
type spawner struct {
	ep *Endpoint

	mu        sync.Mutex
	spare     *process
	refilling bool
	failures  int
	next      time.Time // no spawn before
	closed    bool
	stop      chan struct{}
}

func newSpawner(ep *Endpoint) *spawner { return &spawner{ep: ep, stop: make(chan struct{})} }

func (sp *spawner) start() { sp.refill() }

func (sp *spawner) close() {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return
	}
	sp.closed = true
	close(sp.stop)
	spare := sp.spare
	sp.spare = nil
	sp.mu.Unlock()
	if spare != nil {
		spare.discard()
	}
}

// failed records a spawn failure or an early death and pushes the next
// attempt back.
func (sp *spawner) failed(err error) {
	sp.mu.Lock()
	sp.failures++
	d := backoffMin << min(sp.failures-1, 10)
	if d > backoffMax {
		d = backoffMax
	}
	sp.next = time.Now().Add(d)
	n := sp.failures
	sp.mu.Unlock()
	sp.ep.log.Warn("bridge: stdio server failed", "error", err, "failures", n, "retry_in", d.String())
}

func (sp *spawner) succeeded() {
	sp.mu.Lock()
	sp.failures = 0
	sp.next = time.Time{}
	sp.mu.Unlock()
}

// take hands out the spare process, or starts one.
func (sp *spawner) take() (conn, error) {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return nil, errors.New("target removed from the configuration")
	}
	p := sp.spare
	sp.spare = nil
	wait := time.Until(sp.next)
	sp.mu.Unlock()
	if p != nil {
		select {
		case <-p.exited:
			p = nil // it died while waiting; its death was counted
		default:
		}
	}
	defer sp.refill()
	if p != nil {
		p.claim()
		return p, nil
	}
	if wait > 0 {
		return nil, fmt.Errorf("stdio server keeps failing; next start in %s", wait.Round(100*time.Millisecond))
	}
	p, err := sp.spawn()
	if err != nil {
		sp.failed(err)
		return nil, err
	}
	p.claim()
	return p, nil
}

// refill starts a new spare in the background once the backoff allows.
func (sp *spawner) refill() {
	if sp.ep.m.opts.NoSpare {
		return
	}
	sp.mu.Lock()
	if sp.closed || sp.refilling || sp.spare != nil {
		sp.mu.Unlock()
		return
	}
	sp.refilling = true
	sp.mu.Unlock()
	go func() {
		for {
			sp.mu.Lock()
			wait := time.Until(sp.next)
			sp.mu.Unlock()
			if wait > 0 {
				select {
				case <-time.After(wait):
				case <-sp.stop:
					sp.mu.Lock()
					sp.refilling = false
					sp.mu.Unlock()
					return
				}
			}
			p, err := sp.spawn()
			sp.mu.Lock()
			if err == nil && !sp.closed {
				sp.spare = p
				sp.refilling = false
				sp.mu.Unlock()
				go sp.watchSpare(p)
				return
			}
			closed := sp.closed
			if closed {
				sp.refilling = false
			}
			sp.mu.Unlock()
			if closed {
				if p != nil {
					p.discard()
				}
				return
			}
			sp.failed(err)
		}
	}()
}

// watchSpare notices a spare that dies before it is used: a crash,
// counted for the backoff, and replaced.
func (sp *spawner) watchSpare(p *process) {
	select {
	case <-p.exited:
	case <-p.claimed:
		return
	}
	sp.mu.Lock()
	was := sp.spare == p
	if was {
		sp.spare = nil
	}
	sp.mu.Unlock()
	if was {
		p.discard()
		sp.failed(fmt.Errorf("spare process exited: %v", p.reason()))
		sp.refill()
	}
}

// discard stops a process no session reads: what it still writes is
// drained so its reader can see the end of its output.
func (p *process) discard() {
	go func() {
		for range p.msgs {
		}
	}()
	p.close()
}

// spawn starts one process.
func (sp *spawner) spawn() (*process, error) {
	m := sp.ep.m
	if err := m.reserve(); err != nil {
		return nil, err
	}
	p, err := startProcess(sp.ep)
	if err != nil {
		m.release()
		return nil, err
	}
	return p, nil
}

// process is one stdio server process, the conn of one session.
type process struct {
	ep      *Endpoint
	cmd     *exec.Cmd
	stdin   *os.File
	msgs    chan []byte
	exited  chan struct{} // closed once the process was reaped
	claimed chan struct{} // closed when a session takes it
	claimO  sync.Once
	stopO   sync.Once
	wmu     sync.Mutex
	exitErr error
}

func startProcess(ep *Endpoint) (*process, error) {
	spec := ep.target.Stdio
	cmd := exec.Command(spec.Cmd, spec.Args...)
	cmd.Env = childEnv(spec.Env)
	setProcessGroup(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting %s: %w", filepath.Base(spec.Cmd), err)
	}
	p := &process{ep: ep, cmd: cmd, stdin: inW, msgs: make(chan []byte, 16), exited: make(chan struct{}), claimed: make(chan struct{})}
	log := ep.log.With("pid", cmd.Process.Pid)
	log.Info("bridge: stdio server started", "cmd", filepath.Base(spec.Cmd))
	ep.m.wg.Add(1)
	go func() {
		defer ep.m.wg.Done()
		p.exitErr = cmd.Wait()
		// Whatever the server left behind in its process group goes too.
		killGroup(cmd, true)
		ep.m.release()
		close(p.exited)
		reason := "exit status 0"
		if p.exitErr != nil {
			reason = p.exitErr.Error()
		}
		log.Info("bridge: stdio server exited", "status", reason)
	}()
	go p.readStderr(errR, log)
	go p.readStdout(outR)
	return p, nil
}

func (p *process) claim() { p.claimO.Do(func() { close(p.claimed) }) }

// readStdout splits the server's output into messages, one per line.
func (p *process) readStdout(r *os.File) {
	defer r.Close()
	defer close(p.msgs)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br, maxMessage)
		if len(bytes.TrimSpace(line)) > 0 {
			p.msgs <- line
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				p.ep.log.Warn("bridge: stdio server wrote a message over the size limit; stopping it", "limit", maxMessage)
				go p.close()
			}
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes, without its terminator.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > max {
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(out, "\r\n"), err
	}
}

// readStderr logs the server's stderr line by line.
func (p *process) readStderr(r *os.File, log interface{ Info(string, ...any) }) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		chunk, err := br.ReadSlice('\n')
		if line := bytes.TrimRight(chunk, "\r\n"); len(line) > 0 {
			log.Info("bridge: stdio server stderr", "line", string(line))
		}
		if err == bufio.ErrBufferFull {
			continue // a long line is logged in pieces
		}
		if err != nil {
			return
		}
	}
}

func (p *process) send(ctx context.Context, msg []byte) error {
	msg = bytes.TrimSpace(msg)
	if bytes.ContainsAny(msg, "\n\r") {
		// A stdio message is one line; JSON allows a line break only as
		// whitespace between tokens, which a server reads the same way
		// as a space.
		msg = bytes.ReplaceAll(bytes.ReplaceAll(msg, []byte("\r\n"), []byte(" ")), []byte("\n"), []byte(" "))
		msg = bytes.ReplaceAll(msg, []byte("\r"), []byte(" "))
	}
	select {
	case <-p.exited:
		return fmt.Errorf("stdio server exited: %v", p.reason())
	default:
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	buf := make([]byte, 0, len(msg)+1)
	buf = append(append(buf, msg...), '\n')
	_, err := p.stdin.Write(buf)
	if err != nil {
		return fmt.Errorf("writing to the stdio server: %w", err)
	}
	return nil
}

func (p *process) recv() <-chan []byte { return p.msgs }

func (p *process) reason() error {
	select {
	case <-p.exited:
		if p.exitErr != nil {
			return fmt.Errorf("stdio server exited: %w", p.exitErr)
		}
		return errors.New("stdio server exited")
	case <-time.After(stopGrace):
		return errors.New("stdio server closed its output")
	}
}

// close stops the process: stdin closed, then SIGTERM to its process
// group, then SIGKILL, each after a grace period. It returns at once.
func (p *process) close() {
	p.stopO.Do(func() {
		p.claim()
		p.ep.m.wg.Add(1)
		go func() {
			defer p.ep.m.wg.Done()
			p.wmu.Lock()
			_ = p.stdin.Close()
			p.wmu.Unlock()
			select {
			case <-p.exited:
				return
			case <-time.After(stopGrace):
			}
			killGroup(p.cmd, false)
			select {
			case <-p.exited:
				return
			case <-time.After(stopGrace):
			}
			killGroup(p.cmd, true)
			<-p.exited
		}()
	})
}
