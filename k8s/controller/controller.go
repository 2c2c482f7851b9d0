// Package controller is the Kubernetes control path: it watches the Gateway
// API and mcpgate objects through controller-runtime's cache, runs the same
// pure translation as standalone mode (translate.TranslateIsolated), hands
// each new bundle to the data plane and writes Accepted, ResolvedRefs and
// Programmed conditions on every object it translated.
//
// Every replica runs it: each watches, translates and activates on its own,
// and because translation is a pure function of the watched objects, replicas
// that see the same objects build byte-identical bundles (same revision).
// Status is written by every replica idempotently: a condition is written
// only when it differs from what is stored, so converged replicas write
// nothing. See docs/kubernetes.md.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mcpgate/mcpgate/bundle"
	mcpv1 "github.com/mcpgate/mcpgate/k8s/api/mcpgate/v1alpha1"
	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses;gateways;httproutes,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gatewayclasses/status;gateways/status;httproutes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=agentgateway.dev,resources=agentgatewaybackends;agentgatewaypolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=agentgateway.dev,resources=agentgatewaybackends/status;agentgatewaypolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=mcpgate.dev,resources=mcpregopolicies;mcpratelimitpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=mcpgate.dev,resources=mcpregopolicies/status;mcpratelimitpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch

// DefaultControllerName is the GatewayClass spec.controllerName handled.
const DefaultControllerName = "mcpgate.dev/gateway-controller"

// DataPlane is what the controller drives: engine.Gateway.
type DataPlane interface {
	Activate(ctx context.Context, b *bundle.Bundle) error
	Revision() string
}

// Options configure Run.
type Options struct {
	Config *rest.Config
	Data   DataPlane
	Log    *slog.Logger
	// ControllerName selects the GatewayClasses (and through them the
	// Gateways) this controller serves; default DefaultControllerName.
	ControllerName string
	// Debounce: after a change, wait until no change arrived for this long
	// (at most MaxDelay) before translating; default 100ms.
	Debounce time.Duration
	// MaxDelay bounds the debounce; default 1s.
	MaxDelay time.Duration
	// ClusterDomain forms the DNS names of ClusterIP Services; default
	// cluster.local.
	ClusterDomain string
	// Status: write status conditions (`gateway-controller --status`,
	// default true there).
	Status bool
	// Activated is called after each successful activation (to open the
	// listeners of the new configuration); its error is logged.
	Activated func(*bundle.Bundle) error
}

// Scheme returns a scheme with every type the controller reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(gwv1.Install(s))
	utilruntime.Must(agwv1.AddToScheme(s))
	utilruntime.Must(mcpv1.AddToScheme(s))
	return s
}

// Controller is a running controller.
type Controller struct {
	opts   Options
	mgr    manager.Manager
	client client.Client
	kick   chan struct{}
	status *statusWriter

	mu       sync.Mutex
	lastGood *translate.Resources // the objects of the active bundle
}

// New prepares a controller; Start runs it.
func New(opts Options) (*Controller, error) {
	if opts.Config == nil || opts.Data == nil {
		return nil, errors.New("controller: Config and Data are required")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ControllerName == "" {
		opts.ControllerName = DefaultControllerName
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.MaxDelay < opts.Debounce {
		opts.MaxDelay = max(time.Second, opts.Debounce)
	}
	if opts.ClusterDomain == "" {
		opts.ClusterDomain = "cluster.local"
	}
	ctrl.SetLogger(logrFrom(opts.Log))
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                 Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return &Controller{opts: opts, mgr: mgr, client: mgr.GetClient(), kick: make(chan struct{}, 1), status: &statusWriter{wake: make(chan struct{}, 1)}}, nil
}

// watched lists the kinds whose changes trigger a reconciliation.
func watched() []client.Object {
	return []client.Object{
		&gwv1.GatewayClass{}, &gwv1.Gateway{}, &gwv1.HTTPRoute{},
		&agwv1.AgentgatewayBackend{}, &agwv1.AgentgatewayPolicy{},
		&mcpv1.MCPRegoPolicy{}, &mcpv1.MCPRateLimitPolicy{},
		&corev1.Service{}, &discoveryv1.EndpointSlice{},
	}
}

// Start runs until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	for _, obj := range watched() {
		inf, err := c.mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("controller: informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { c.trigger() },
			UpdateFunc: func(o, n any) {
				if specChanged(o, n) {
					c.trigger()
				}
			},
			DeleteFunc: func(any) { c.trigger() },
		}); err != nil {
			return fmt.Errorf("controller: watch %T: %w", obj, err)
		}
	}
	if err := c.mgr.Add(manager.RunnableFunc(c.loop)); err != nil {
		return err
	}
	if err := c.mgr.Add(manager.RunnableFunc(c.statusLoop)); err != nil {
		return err
	}
	return c.mgr.Start(ctx)
}

// specChanged ignores updates that changed only the status of an object
// with a status subresource (our own status writes).
func specChanged(o, n any) bool {
	oo, ok1 := o.(client.Object)
	no, ok2 := n.(client.Object)
	if !ok1 || !ok2 {
		return true
	}
	switch no.(type) {
	case *corev1.Service, *discoveryv1.EndpointSlice:
		return oo.GetResourceVersion() != no.GetResourceVersion()
	}
	return oo.GetGeneration() != no.GetGeneration() || oo.GetDeletionTimestamp() != no.GetDeletionTimestamp()
}

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// loop debounces changes and reconciles; a failed reconciliation is retried
// with backoff.
func (c *Controller) loop(ctx context.Context) error {
	if !c.mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("controller: cache did not sync")
	}
	c.trigger()
	retry := time.Duration(0)
	var retryC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		case <-retryC:
		}
		retryC = nil
		// Debounce: collect the burst of changes that usually arrives
		// together (kubectl apply of a directory).
		quiet := time.NewTimer(c.opts.Debounce)
		deadline := time.NewTimer(c.opts.MaxDelay)
	collect:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				deadline.Stop()
				return nil
			case <-c.kick:
				quiet.Reset(c.opts.Debounce)
			case <-quiet.C:
				break collect
			case <-deadline.C:
				break collect
			}
		}
		quiet.Stop()
		deadline.Stop()
		if err := c.reconcile(ctx); err != nil {
			retry = min(max(2*retry, 500*time.Millisecond), 30*time.Second)
			c.opts.Log.Error("reconcile failed; retrying", "error", err.Error(), "in", retry.String())
			retryC = time.After(retry)
			continue
		}
		retry = 0
	}
}
