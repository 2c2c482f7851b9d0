package main

import (
	"bytes"
	"context"
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
	"github.com/mcpgate/mcpgate/k8s/controller"
)

// BundlePath is where `gateway controller --admin-addr` serves the active
// bundle over OPA's bundle HTTP protocol.
const BundlePath = "/bundles/mcpgate.tar.gz"

// runController is `gateway controller`: the data plane of run, configured
// from the Kubernetes API instead of files. Every replica watches and
// translates on its own (docs/kubernetes.md).
func runController(args []string) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var dp dataPlaneFlags
	dp.register(fs)
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
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := dp.logger()
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
	gw, closeGW, err := dp.gateway(ctx, log)
	if err != nil {
		return err
	}
	defer closeGW()
	ls := newListeners(gw, *dp.bind, log, *dp.headerTimeout, *dp.idleTimeout)
	served := &bundleServer{}
	c, err := controller.New(controller.Options{
		Config: cfg, Data: gw, Log: log, ControllerName: *name,
		Debounce: *debounce, MaxDelay: *maxDelay, Status: *status, ClusterDomain: *clusterDomain,
		Activated: func(b *bundle.Bundle) error {
			served.set(b)
			return ls.sync(*dp.shutdown)
		},
	})
	if err != nil {
		return err
	}
	// The admin listener (--admin-addr) also serves the active bundle.
	admin, err := dp.obs.startAdmin(gw, log, ls.errc, map[string]http.Handler{"GET " + BundlePath: served})
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
	case err = <-ls.errc:
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down", "timeout", dp.shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), *dp.shutdown)
	defer cancel()
	ls.shutdown(sctx)
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
