package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Controller is a running gateway-controller.
type Controller struct {
	admin string
	proc  *process
}

// StartController runs `gateway-controller --kubeconfig KUBECONFIG
// --admin-addr 127.0.0.1:<free port> args...` for the duration of the test
// and waits until its admin endpoint answers /healthz. Its output is logged
// when the test fails.
func StartController(t testing.TB, kubeconfig string, args ...string) *Controller {
	t.Helper()
	bin, err := ControllerBin()
	Require(t, err)
	port, err := FreePort()
	Require(t, err)
	c := &Controller{admin: "127.0.0.1:" + itoa(port)}
	args = append([]string{"--kubeconfig", kubeconfig, "--admin-addr", c.admin}, args...)
	c.proc, err = startProcess("controller", exec.Command(bin, args...))
	Require(t, err)
	logOnFailure(t, "controller "+c.admin, c.proc.Output)
	t.Cleanup(c.Close)
	Require(t, c.proc.waitReady(startTimeout, httpReady(c.AdminURL()+"/healthz", http.StatusOK)))
	return c
}

// AdminURL is the base URL of /healthz, /readyz and the bundle.
func (c *Controller) AdminURL() string { return "http://" + c.admin }

// Output returns what the controller logged so far.
func (c *Controller) Output() string { return c.proc.Output() }

// Close stops the controller with SIGTERM (SIGKILL after 10s).
func (c *Controller) Close() { c.proc.stop(syscall.SIGTERM, 10*time.Second) }

var (
	controllerOnce sync.Once
	controllerBin  string
	controllerErr  error
)

// ControllerBin returns $MCPGATE_CONTROLLER_BIN, or builds
// ./cmd/gateway-controller once per test binary next to the gateway
// GatewayBin builds (removed by Cleanup).
func ControllerBin() (string, error) {
	if p := os.Getenv("MCPGATE_CONTROLLER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("harness: MCPGATE_CONTROLLER_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	controllerOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			controllerErr = err
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			controllerErr = fmt.Errorf("%w: go not found on PATH to build the controller (set MCPGATE_CONTROLLER_BIN)", ErrToolMissing)
			return
		}
		dir, err := os.MkdirTemp("", "mcpgate-controller-")
		if err != nil {
			controllerErr = fmt.Errorf("harness: %w", err)
			return
		}
		extraDirs = append(extraDirs, dir)
		bin := filepath.Join(dir, "gateway-controller")
		cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/gateway-controller")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			controllerErr = fmt.Errorf("harness: go build ./cmd/gateway-controller: %v\n%s", err, out)
			return
		}
		controllerBin = bin
	})
	return controllerBin, controllerErr
}
