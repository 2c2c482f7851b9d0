// Command gateway-controller is mcpgate's data plane configured from the
// Kubernetes API: every replica watches the Gateway API and mcpgate objects,
// translates them as `gateway run` translates files, serves the result and
// writes status (docs/kubernetes.md). It is a binary of its own so that
// `gateway run` does not pay for client-go.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/mcpgate/mcpgate/bundle"
	"github.com/mcpgate/mcpgate/internal/dataplane"
	"github.com/mcpgate/mcpgate/k8s/controller"
)

// BundlePath is where the admin listener (--admin-addr) serves the active
// bundle over OPA's bundle HTTP protocol.
const BundlePath = "/bundles/mcpgate.tar.gz"

var version = "dev"

func main() {
	if err := runController(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gateway-controller:", err)
		}
		os.Exit(1)
	}
}

// runController is the data plane of `gateway run`, configured from the
// Kubernetes API instead of files. Every replica watches and translates on
// its own (docs/kubernetes.md).
func runController(args []string) error {
	fs := flag.NewFlagSet("gateway-controller", flag.ContinueOnError)
	var dp dataplane.Flags
	dp.Register(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, the in-cluster service account, ~/.kube/config)")
	name := fs.String("controller-name", controller.DefaultControllerName, "serve the Gateways of GatewayClasses with this spec.controllerName")
	debounce := fs.Duration("debounce", 100*time.Millisecond, "translate once changes have been quiet for this long")
	maxDelay := fs.Duration("max-delay", time.Second, "translate at the latest this long after the first of a burst of changes")
	status := fs.Bool("status", true, "write status conditions on the objects")
	clusterDomain := fs.String("cluster-domain", "cluster.local", "cluster DNS domain, to dial ClusterIP Services")
	qps := fs.Float64("kube-qps", 50, "API server requests per second (status writes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println("mcpgate gateway-controller", version)
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := dp.Logger()
	if err != nil {
		return err
	}
	var cfg *rest.Config
	if *kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.QPS = float32(*qps)
	cfg.Burst = int(2 * *qps)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gw, closeGW, err := dp.Gateway(ctx, log, version)
	if err != nil {
		return err
	}
	defer closeGW()
	ls := dataplane.NewListeners(gw, *dp.Bind, log, *dp.HeaderTimeout, *dp.IdleTimeout)
	served := &bundleServer{}
	c, err := controller.New(controller.Options{
		Config: cfg, Data: gw, Log: log, ControllerName: *name,
		Debounce: *debounce, MaxDelay: *maxDelay, Status: *status, ClusterDomain: *clusterDomain,
		Activated: func(b *bundle.Bundle) error {
			served.set(b)
			return ls.Sync(*dp.Shutdown)
		},
	})
	if err != nil {
		return err
	}
	// The admin listener (--admin-addr) also serves the active bundle.
	admin, err := dp.Obs.StartAdmin(gw, log, ls.Errc, version, map[string]http.Handler{"GET " + BundlePath: served})
	if err != nil {
		return err
	}
	if admin != nil {
		defer admin.Close()
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Start(ctx) }()
	select {
	case err = <-errc:
		if err != nil {
			err = fmt.Errorf("controller: %w", err)
		}
	case err = <-ls.Errc:
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down", "timeout", dp.Shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), *dp.Shutdown)
	defer cancel()
	ls.Shutdown(sctx)
	return err
}

// bundleServer serves the active bundle with its revision as ETag, so that
// OPA (services + bundles configuration, polling) and other bundle
// consumers download it only when it changed.
type bundleServer struct {
	mu       sync.Mutex
	revision string
	data     []byte
}

func (s *bundleServer) set(b *bundle.Bundle) {
	var buf bytes.Buffer
	if err := b.Write(&buf); err != nil {
		return // the data plane already accepted it; keep serving the previous one
	}
	s.mu.Lock()
	s.revision, s.data = b.Revision, buf.Bytes()
	s.mu.Unlock()
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rev, data := s.revision, s.data
	s.mu.Unlock()
	if rev == "" {
		http.Error(w, "no bundle active yet", http.StatusServiceUnavailable)
		return
	}
	etag := `"` + rev + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}
