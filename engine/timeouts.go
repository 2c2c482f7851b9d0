package engine

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/mcpgate/mcpgate/engine/mcp"
)

// Defaults for the zero values of Options.
const (
	DefaultUpstreamTimeout = 60 * time.Second
	DefaultBodyTimeout     = 30 * time.Second
)

// errUpstreamTimeout is the cause of an upstream exchange cancelled by
// Options.UpstreamTimeout (as opposed to the client going away).
var errUpstreamTimeout = errors.New("upstream timeout")

// deadline bounds one upstream exchange. It is a timer rather than
// context.WithTimeout so that it can be stopped when the answer turns out to
// be an SSE stream relayed to the client: streams are not bounded, only the
// wait for them to start.
type deadline struct {
	ctx    context.Context
	timer  *time.Timer
	cancel context.CancelCauseFunc
	target string // the target of a multi-target backend being asked, for logs ("": the route's)
}

func (h *routeHandler) newDeadline(parent context.Context) *deadline {
	ctx, cancel := context.WithCancelCause(parent)
	d := &deadline{ctx: ctx, cancel: cancel}
	d.timer = time.AfterFunc(h.g.opts.UpstreamTimeout, func() { cancel(errUpstreamTimeout) })
	return d
}

// streaming lifts the bound: the answer is a stream relayed as it comes.
func (d *deadline) streaming() { d.timer.Stop() }

// expired reports whether the exchange was cut by the timeout.
func (d *deadline) expired() bool { return errors.Is(context.Cause(d.ctx), errUpstreamTimeout) }

// done releases the timer and the context.
func (d *deadline) done() {
	d.timer.Stop()
	d.cancel(context.Canceled)
}

// readBody reads a POST body within Options.MaxBodyBytes and
// Options.BodyTimeout. On failure it writes the error (413, 408 or 400) and
// returns false.
func (h *routeHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	rc := http.NewResponseController(w)
	// The deadline is on the connection and must not outlive the body, or
	// it would cut a long response stream. net/http clears it when it
	// starts watching the connection after the body's EOF; clearing it here
	// as well covers a body that was not read to its end.
	if rc.SetReadDeadline(time.Now().Add(h.g.opts.BodyTimeout)) == nil {
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.g.opts.MaxBodyBytes))
	if err == nil {
		return body, true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeJSONRPCError(w, http.StatusRequestEntityTooLarge, nil, mcp.CodeInvalidRequest, "request body too large", nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		writeJSONRPCError(w, http.StatusRequestTimeout, nil, mcp.CodeInvalidRequest, "request body not received in time", nil)
	default:
		writeJSONRPCError(w, http.StatusBadRequest, nil, mcp.CodeParseError, "could not read request body", nil)
	}
	return nil, false
}
