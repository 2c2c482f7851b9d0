package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mcpgate/mcpgate/bundle"
	mcpv1 "github.com/mcpgate/mcpgate/k8s/api/mcpgate/v1alpha1"
	agwv1 "github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate"
)

func logrFrom(l *slog.Logger) logr.Logger { return logr.FromSlogHandler(l.Handler()) }

// snapshot is what one reconciliation read from the cache.
type snapshot struct {
	classes   []gwv1.GatewayClass // ours
	res       *translate.Resources
	ignored   int // Gateways and routes of other controllers
	listedAt  time.Time
	endpoints int
}

// read lists the watched objects from the cache and keeps those this
// controller is responsible for.
func (c *Controller) read(ctx context.Context) (*snapshot, error) {
	s := &snapshot{res: &translate.Resources{Sources: map[string]string{}, Resolve: map[string]string{}}, listedAt: time.Now()}
	var classes gwv1.GatewayClassList
	if err := c.client.List(ctx, &classes); err != nil {
		return nil, err
	}
	ours := map[string]bool{}
	for _, gc := range classes.Items {
		if string(gc.Spec.ControllerName) == c.opts.ControllerName {
			ours[gc.Name] = true
			s.classes = append(s.classes, gc)
		}
	}
	var gws gwv1.GatewayList
	if err := c.client.List(ctx, &gws); err != nil {
		return nil, err
	}
	allGateways := map[string]bool{}
	ourGateways := map[string]bool{}
	for i := range gws.Items {
		g := &gws.Items[i]
		allGateways[g.Namespace+"/"+g.Name] = true
		if !ours[string(g.Spec.GatewayClassName)] {
			s.ignored++
			continue
		}
		ourGateways[g.Namespace+"/"+g.Name] = true
		s.res.Gateways = append(s.res.Gateways, g)
	}
	var routes gwv1.HTTPRouteList
	if err := c.client.List(ctx, &routes); err != nil {
		return nil, err
	}
	for i := range routes.Items {
		r := &routes.Items[i]
		// A route is ours when a parentRef names one of our Gateways or a
		// Gateway that does not exist (so that its dangling reference is
		// reported); routes of other controllers' Gateways are left alone.
		mine := false
		for _, pr := range r.Spec.ParentRefs {
			ns := r.Namespace
			if pr.Namespace != nil {
				ns = string(*pr.Namespace)
			}
			k := ns + "/" + string(pr.Name)
			if ourGateways[k] || !allGateways[k] {
				mine = true
			}
		}
		if !mine {
			s.ignored++
			continue
		}
		s.res.HTTPRoutes = append(s.res.HTTPRoutes, r)
	}
	var backends agwv1.AgentgatewayBackendList
	if err := c.client.List(ctx, &backends); err != nil {
		return nil, err
	}
	for i := range backends.Items {
		s.res.Backends = append(s.res.Backends, &backends.Items[i])
	}
	var pols agwv1.AgentgatewayPolicyList
	if err := c.client.List(ctx, &pols); err != nil {
		return nil, err
	}
	for i := range pols.Items {
		s.res.Policies = append(s.res.Policies, &pols.Items[i])
	}
	var rego mcpv1.MCPRegoPolicyList
	if err := c.client.List(ctx, &rego); err != nil {
		return nil, err
	}
	for i := range rego.Items {
		s.res.RegoPolicies = append(s.res.RegoPolicies, &rego.Items[i])
	}
	var rl mcpv1.MCPRateLimitPolicyList
	if err := c.client.List(ctx, &rl); err != nil {
		return nil, err
	}
	for i := range rl.Items {
		s.res.RateLimitPolicies = append(s.res.RateLimitPolicies, &rl.Items[i])
	}
	if err := c.services(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// services makes every Service dialable by translate: ExternalName Services
// are passed as they are (translate dials externalName:targetPort); a
// ClusterIP Service is dialled at its cluster DNS name (kube-proxy balances);
// a headless Service at its first ready endpoint (EndpointSlices, sorted, so
// every replica picks the same one).
func (c *Controller) services(ctx context.Context, s *snapshot) error {
	var svcs corev1.ServiceList
	if err := c.client.List(ctx, &svcs); err != nil {
		return err
	}
	var slices discoveryv1.EndpointSliceList
	if err := c.client.List(ctx, &slices); err != nil {
		return err
	}
	byService := map[string][]discoveryv1.EndpointSlice{}
	for _, sl := range slices.Items {
		name := sl.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		byService[sl.Namespace+"/"+name] = append(byService[sl.Namespace+"/"+name], sl)
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			s.res.Services = append(s.res.Services, svc)
			continue
		}
		for _, sp := range svc.Spec.Ports {
			from := net.JoinHostPort(svc.Name+"."+svc.Namespace, strconv.Itoa(int(sp.Port)))
			if svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != "" {
				s.res.Resolve[from] = net.JoinHostPort(svc.Name+"."+svc.Namespace+".svc."+c.opts.ClusterDomain, strconv.Itoa(int(sp.Port)))
				continue
			}
			if to := endpointFor(byService[svc.Namespace+"/"+svc.Name], sp); to != "" {
				s.res.Resolve[from] = to
				s.endpoints++
			}
		}
	}
	return nil
}

// endpointFor returns the first ready address serving the Service port sp.
func endpointFor(slices []discoveryv1.EndpointSlice, sp corev1.ServicePort) string {
	var cands []string
	for _, sl := range slices {
		port := int32(0)
		for _, p := range sl.Ports {
			if p.Port != nil && ptrOr(p.Name, "") == sp.Name {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				cands = append(cands, net.JoinHostPort(a, strconv.Itoa(int(port))))
			}
		}
	}
	if len(cands) == 0 {
		return ""
	}
	sort.Strings(cands)
	return cands[0]
}

func ptrOr[T any](p *T, d T) T {
	if p == nil {
		return d
	}
	return *p
}

// reconcile is one pass: read, translate (isolating invalid objects),
// activate when the bundle changed, write status.
func (c *Controller) reconcile(ctx context.Context) error {
	start := time.Now()
	snap, err := c.read(ctx)
	if err != nil {
		return fmt.Errorf("read cache: %w", err)
	}
	c.mu.Lock()
	last := c.lastGood
	c.mu.Unlock()
	tRead := time.Now()
	out, iso, err := translate.TranslateIsolated(snap.res, last)
	if iso == nil {
		iso = &translate.Isolation{}
	}
	tTranslate := time.Now()
	var b *bundle.Bundle
	if err == nil {
		b, err = translate.Bundle(out, nil)
	}
	var activateErr error
	switch {
	case err != nil:
		activateErr = err
	case b.Revision != c.opts.Data.Revision():
		t0 := time.Now()
		if err := c.opts.Data.Activate(ctx, b); err != nil {
			activateErr = err
		} else {
			c.opts.Log.Info("bundle activated", "revision", b.Revision, "objects", objects(snap.res),
				"invalid", len(iso.Errors), "read", tRead.Sub(start).String(), "translate", tTranslate.Sub(tRead).String(),
				"bundle", t0.Sub(tTranslate).String(), "activate", time.Since(t0).String())
			if c.opts.Activated != nil {
				if err := c.opts.Activated(b); err != nil {
					c.opts.Log.Error("opening listeners", "error", err.Error())
				}
			}
		}
	}
	if activateErr != nil {
		c.opts.Log.Error("new configuration not activated; the previous bundle keeps serving", "error", activateErr.Error())
	} else {
		c.mu.Lock()
		c.lastGood = iso.Used
		c.mu.Unlock()
	}
	if c.opts.Status {
		// Status is written by its own goroutine, so that writing a
		// thousand conditions never delays the next activation.
		c.status.post(statusJob{snap: snap, iso: iso, activateErr: activateErr})
	}
	if activateErr != nil && !errors.Is(activateErr, translate.ErrTranslate) {
		// Activation problems (e.g. a policy engine error) may be transient:
		// retry with backoff.
		return activateErr
	}
	return nil
}

func objects(r *translate.Resources) int {
	return len(r.Gateways) + len(r.HTTPRoutes) + len(r.Backends) + len(r.Policies) + len(r.RegoPolicies) + len(r.RateLimitPolicies)
}

type statusJob struct {
	snap        *snapshot
	iso         *translate.Isolation
	activateErr error
}

// statusWriter writes the most recent status job; jobs posted while it is
// writing replace each other (only the latest outcome matters).
type statusWriter struct {
	mu      sync.Mutex
	pending *statusJob
	wake    chan struct{}
}

func (w *statusWriter) post(j statusJob) {
	w.mu.Lock()
	w.pending = &j
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (c *Controller) statusLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.status.wake:
		}
		c.status.mu.Lock()
		j := c.status.pending
		c.status.pending = nil
		c.status.mu.Unlock()
		if j == nil {
			continue
		}
		if err := c.writeStatus(ctx, j.snap, j.iso, j.activateErr); err != nil && ctx.Err() == nil {
			// Reconcile again later: the next job recomputes every condition.
			c.opts.Log.Warn("writing status failed; retrying", "error", err.Error())
			time.AfterFunc(2*time.Second, c.trigger)
		}
	}
}
