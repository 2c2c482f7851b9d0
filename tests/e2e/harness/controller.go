package harness

import (
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Controller is a running `gateway controller`.
type Controller struct {
	admin string
	proc  *process
}

// StartController runs `gateway controller --kubeconfig KUBECONFIG
// --admin-addr 127.0.0.1:<free port> args...` for the duration of the test
// and waits until its admin endpoint answers /healthz. Its output is logged
// when the test fails.
func StartController(t testing.TB, kubeconfig string, args ...string) *Controller {
	t.Helper()
	bin, err := GatewayBin()
	Require(t, err)
	port, err := FreePort()
	Require(t, err)
	c := &Controller{admin: "127.0.0.1:" + itoa(port)}
	args = append([]string{"controller", "--kubeconfig", kubeconfig, "--admin-addr", c.admin}, args...)
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
