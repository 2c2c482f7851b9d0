package translate

import (
	"fmt"

	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
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
