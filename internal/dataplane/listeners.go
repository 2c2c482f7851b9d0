package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/engine"
)

// Listeners keeps one HTTP server per listener port of the active
// configuration: run opens them once; the controller calls Sync after each
// activation so that Gateways and listeners can come and go.
type Listeners struct {
	gw   *engine.Gateway
	bind string
	log  *slog.Logger
	Errc chan error // a server that failed after starting

	headerTimeout, idleTimeout time.Duration

	mu      sync.Mutex
	servers map[int]*http.Server
}

func NewListeners(gw *engine.Gateway, bind string, log *slog.Logger, headerTimeout, idleTimeout time.Duration) *Listeners {
	return &Listeners{gw: gw, bind: bind, log: log, Errc: make(chan error, 16), servers: map[int]*http.Server{},
		headerTimeout: headerTimeout, idleTimeout: idleTimeout}
}

// Sync opens the ports of the active configuration that are not open yet and
// shuts down (gracefully, within grace) those it no longer has. A port that
// cannot be opened is reported; the others are still opened.
func (l *Listeners) Sync(grace time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[int]bool{}
	var errs []error
	for _, p := range l.gw.Ports() {
		want[p] = true
		if _, ok := l.servers[p]; ok {
			continue
		}
		addr := net.JoinHostPort(l.bind, strconv.Itoa(p))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("listen %s: %w", addr, err))
			continue
		}
		srv := &http.Server{
			Handler:           l.gw.Handler(p),
			ReadHeaderTimeout: l.headerTimeout, // slowloris; the body is bounded by --body-timeout
			IdleTimeout:       l.idleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelWarn),
		}
		l.servers[p] = srv
		l.log.Info("listening", "addr", ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				select {
				case l.Errc <- err:
				default:
				}
			}
		}()
	}
	for p, srv := range l.servers {
		if want[p] {
			continue
		}
		delete(l.servers, p)
		l.log.Info("closing listener", "port", p)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	return errors.Join(errs...)
}

// Shutdown stops every server, letting in-flight requests finish until ctx
// ends.
func (l *Listeners) Shutdown(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, s := range l.servers {
		if err := s.Shutdown(ctx); err != nil {
			l.log.Warn("shutdown", "port", p, "error", err)
		}
		delete(l.servers, p)
	}
}
