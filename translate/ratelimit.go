package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate/cel"
)

var unitSeconds = map[v1alpha1.LocalRateLimitUnit]int{"Seconds": 1, "Minutes": 60, "Hours": 3600}

// rateLimit translates traffic.rateLimit.local: requests+burst per unit, as
// agentgateway counts them.
func (t *translator) rateLimit(p *v1alpha1.AgentgatewayPolicy) (rl *ir.RateLimitPolicy, set, ok bool) {
	if p.Spec.Traffic == nil || p.Spec.Traffic.RateLimit == nil {
		return nil, false, true
	}
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	field := "spec.traffic.rateLimit"
	local := p.Spec.Traffic.RateLimit.Local
	if len(local) == 0 {
		t.fail(kind, ns, name, field+".local", "at least one rule is required (global rate limiting is not supported)")
		return nil, true, false
	}
	if len(local) > 16 {
		t.fail(kind, ns, name, field+".local", "at most 16 rules, got %d", len(local))
		return nil, true, false
	}
	rl, ok = &ir.RateLimitPolicy{Key: key(ns, name)}, true
	for i, r := range local {
		f := fmt.Sprintf("%s.local[%d]", field, i)
		secs, known := unitSeconds[r.Unit]
		if !known {
			t.enum(kind, ns, name, f+".unit", string(r.Unit), "Seconds", "Minutes", "Hours")
			ok = false
			continue
		}
		if r.Requests == nil || *r.Requests < 1 {
			t.fail(kind, ns, name, f+".requests", "required, at least 1 (token limits are not supported)")
			ok = false
			continue
		}
		burst := 0
		if r.Burst != nil {
			if *r.Burst < 0 {
				t.fail(kind, ns, name, f+".burst", "must not be negative, got %d", *r.Burst)
				ok = false
				continue
			}
			burst = int(*r.Burst)
		}
		rl.Rules = append(rl.Rules, ir.RateLimitRule{Requests: int(*r.Requests), Burst: burst, Seconds: secs})
	}
	return rl, true, ok
}

// keyedRateLimits translates MCPRateLimitPolicy objects: agentgateway's
// local limits with a CEL key (one counter per value) and a CEL condition,
// compiled into package mcpgate.generated.<p>: k<i> is rule i's key, w<i>
// its condition.
func (t *translator) keyedRateLimits(cfg *ir.Config, modules map[string]string, at *attachments) {
	pols := append(t.res.RateLimitPolicies[:0:0], t.res.RateLimitPolicies...)
	sort.Slice(pols, func(i, j int) bool {
		return key(pols[i].Namespace, pols[i].Name) < key(pols[j].Namespace, pols[j].Name)
	})
	for _, p := range pols {
		kind, ns, name := "MCPRateLimitPolicy", p.Namespace, p.Name
		targets, ok := t.targetRefs(kind, ns, name, p.Spec.TargetRefs)
		if len(p.Spec.Limits) == 0 {
			t.fail(kind, ns, name, "spec.limits", "at least one limit is required")
			ok = false
		}
		pkey := kind + ":" + key(ns, name)
		sum := sha256.Sum256([]byte(pkey))
		rl := &ir.RateLimitPolicy{Key: pkey, Package: "p_" + hex.EncodeToString(sum[:8])}
		conds, keys := map[string]*cel.Rule{}, map[string]*cel.Value{}
		for i, l := range p.Spec.Limits {
			f := fmt.Sprintf("spec.limits[%d]", i)
			secs, known := unitSeconds[l.Unit]
			if !known {
				t.enum(kind, ns, name, f+".unit", string(l.Unit), "Seconds", "Minutes", "Hours")
				ok = false
			}
			if l.Requests < 1 {
				t.fail(kind, ns, name, f+".requests", "must be at least 1, got %d", l.Requests)
				ok = false
			}
			burst := 0
			if l.Burst != nil {
				if *l.Burst < 0 {
					t.fail(kind, ns, name, f+".burst", "must not be negative, got %d", *l.Burst)
					ok = false
				}
				burst = int(*l.Burst)
			}
			if l.Key != "" {
				v, err := cel.CompileValue(l.Key)
				if err != nil {
					t.fail(kind, ns, name, f+".key", "%v (in %q)", err, clip(l.Key))
					ok = false
				} else {
					keys[fmt.Sprintf("k%d", i)] = v
				}
			}
			if l.When != "" {
				w, err := cel.Compile(l.When)
				if err != nil {
					t.fail(kind, ns, name, f+".when", "%v (in %q)", err, clip(l.When))
					ok = false
				} else {
					conds[fmt.Sprintf("w%d", i)] = w
				}
			}
			rl.Rules = append(rl.Rules, ir.RateLimitRule{Requests: int(l.Requests), Burst: burst, Seconds: secs, Key: l.Key, When: l.When})
		}
		if !ok {
			continue
		}
		if len(keys) > 0 {
			text, err := cel.ValueModule(rl.Package, keys)
			if err != nil {
				t.fail(kind, ns, name, "spec.limits", "generating Rego: %v", err)
				continue
			}
			modules["mcpgate/generated/"+rl.Package+"_keys.rego"] = text
			modules[cel.PreludePath] = cel.Prelude
		}
		if len(conds) > 0 {
			text, err := cel.Module(rl.Package, conds)
			if err != nil {
				t.fail(kind, ns, name, "spec.limits", "generating Rego: %v", err)
				continue
			}
			modules[GeneratedPath(rl.Package)] = text
			modules[cel.PreludePath] = cel.Prelude
		}
		cfg.RateLimit[pkey] = rl
		for _, tg := range targets {
			at.ratelimit[tg] = append(at.ratelimit[tg], pkey)
		}
	}
}
