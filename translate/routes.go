package translate

import (
	"fmt"
	"sort"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
)

func (t *translator) route(cfg *ir.Config, r *gwv1.HTTPRoute, at *attachments) {
	kind, ns, name := "HTTPRoute", r.Namespace, r.Name
	if len(r.Spec.ParentRefs) != 1 {
		t.fail(kind, ns, name, "spec.parentRefs", "exactly one parentRef (a Gateway) is supported, got %d", len(r.Spec.ParentRefs))
		return
	}
	pr := r.Spec.ParentRefs[0]
	if (pr.Group != nil && *pr.Group != gwv1.GroupName) || (pr.Kind != nil && *pr.Kind != "Gateway") {
		t.fail(kind, ns, name, "spec.parentRefs[0]", "parent must be a gateway.networking.k8s.io Gateway")
		return
	}
	gns := ns
	if pr.Namespace != nil {
		gns = string(*pr.Namespace)
	}
	gkey := key(gns, string(pr.Name))
	if _, ok := t.gateways[gkey]; !ok {
		t.failRef(ObjectID("Gateway", gns, string(pr.Name)), false, kind, ns, name, "spec.parentRefs[0].name", "Gateway %s not found", gkey)
		return
	}
	var listeners []*ir.Listener
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Gateway != gkey {
			continue
		}
		if pr.SectionName != nil && string(*pr.SectionName) != l.Name {
			continue
		}
		if pr.Port != nil && int(*pr.Port) != l.Port {
			continue
		}
		listeners = append(listeners, l)
	}
	if len(listeners) == 0 {
		t.fail(kind, ns, name, "spec.parentRefs[0]", "no listener of Gateway %s matches", gkey)
		return
	}
	if len(r.Spec.Rules) == 0 {
		t.fail(kind, ns, name, "spec.rules", "at least one rule is required")
		return
	}
	for i, rule := range r.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		if len(rule.Filters) > 0 {
			t.fail(kind, ns, name, field+".filters", "filters are not supported")
			continue
		}
		if len(rule.BackendRefs) != 1 {
			t.fail(kind, ns, name, field+".backendRefs", "exactly one backendRef (an AgentgatewayBackend) is supported, got %d", len(rule.BackendRefs))
			continue
		}
		br := rule.BackendRefs[0]
		if br.Group == nil || string(*br.Group) != v1alpha1.GroupName || br.Kind == nil || *br.Kind != "AgentgatewayBackend" {
			t.fail(kind, ns, name, field+".backendRefs[0]", "must reference group agentgateway.dev, kind AgentgatewayBackend")
			continue
		}
		bns := ns
		if br.Namespace != nil {
			bns = string(*br.Namespace)
		}
		bkey := key(bns, string(br.Name))
		if _, ok := cfg.Backends[bkey]; !ok {
			if _, exists := t.backends[bkey]; !exists && !t.backendDeclared(bkey) {
				t.failRef(ObjectID("AgentgatewayBackend", bns, string(br.Name)), false, kind, ns, name, field+".backendRefs[0].name", "AgentgatewayBackend %s not found", bkey)
			} else {
				t.failRef(ObjectID("AgentgatewayBackend", bns, string(br.Name)), true, kind, ns, name, field+".backendRefs[0].name", "AgentgatewayBackend %s is invalid (see its error)", bkey)
			}
			continue
		}
		matches, ok := t.matches(kind, ns, name, field, rule.Matches)
		if !ok {
			continue
		}
		section := ""
		if rule.Name != nil {
			section = string(*rule.Name)
		}
		rt := &ir.Route{
			Key:       fmt.Sprintf("%s/%s/%d", ns, name, i),
			Gateway:   gkey,
			Route:     key(ns, name),
			Rule:      i,
			Matches:   matches,
			Backend:   bkey,
			Authn:     at.authnFor(key(ns, name), section, bkey, gkey),
			CORS:      at.corsFor(key(ns, name), section, bkey, gkey),
			Authz:     at.authzFor(key(ns, name), section, bkey, gkey),
			User:      at.userFor(key(ns, name), section, bkey, gkey),
			RateLimit: at.rateLimitFor(key(ns, name), section, bkey, gkey),
		}
		for _, p := range rt.Authz {
			if az := cfg.Authz[p]; az != nil && az.DryRun {
				rt.DryRun = true
			}
		}
		if an := cfg.Authn[rt.Authn]; an != nil && an.Scoped {
			rt.Scoped = true
		}
		cfg.Routes[rt.Key] = rt
		for _, l := range listeners {
			for _, m := range matches {
				l.Matches = append(l.Matches, ir.RouteMatch{PathMatch: m, Route: rt.Key})
			}
		}
	}
}

func (t *translator) backendDeclared(k string) bool {
	for _, b := range t.res.Backends {
		if key(b.Namespace, b.Name) == k {
			return true
		}
	}
	return false
}

func (t *translator) matches(kind, ns, name, field string, ms []gwv1.HTTPRouteMatch) ([]ir.PathMatch, bool) {
	if len(ms) == 0 {
		return []ir.PathMatch{{Type: "PathPrefix", Value: "/"}}, true
	}
	var out []ir.PathMatch
	for j, m := range ms {
		f := fmt.Sprintf("%s.matches[%d]", field, j)
		if len(m.Headers) > 0 || len(m.QueryParams) > 0 || m.Method != nil {
			t.fail(kind, ns, name, f, "only path matches are supported")
			return nil, false
		}
		pm := ir.PathMatch{Type: "PathPrefix", Value: "/"}
		if m.Path != nil {
			if m.Path.Type != nil {
				pm.Type = string(*m.Path.Type)
			}
			if m.Path.Value != nil {
				pm.Value = *m.Path.Value
			}
		}
		if !t.enum(kind, ns, name, f+".path.type", pm.Type, "PathPrefix", "Exact") {
			return nil, false
		}
		if !strings.HasPrefix(pm.Value, "/") || strings.Contains(pm.Value, "//") || strings.Contains(pm.Value, "/./") || strings.Contains(pm.Value, "/../") || strings.HasSuffix(pm.Value, "/..") || strings.ContainsAny(pm.Value, "%#?") {
			t.fail(kind, ns, name, f+".path.value", "%q must be an absolute, clean path without '%%', '#' or '?'", pm.Value)
			return nil, false
		}
		if pm.Type == "PathPrefix" && len(pm.Value) > 1 {
			pm.Value = strings.TrimSuffix(pm.Value, "/")
		}
		out = append(out, pm)
	}
	return out, true
}

// sortMatches orders a listener's matches by Gateway API precedence: Exact
// before PathPrefix, longer paths first, then by route key for stability.
func sortMatches(ms []ir.RouteMatch) {
	sort.SliceStable(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if (a.Type == "Exact") != (b.Type == "Exact") {
			return a.Type == "Exact"
		}
		if len(a.Value) != len(b.Value) {
			return len(a.Value) > len(b.Value)
		}
		return a.Route < b.Route
	})
}
