package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/mcpgate/mcpgate/ir"
	"github.com/mcpgate/mcpgate/k8s/api/v1alpha1"
	"github.com/mcpgate/mcpgate/translate/cel"
)

// GeneratedPath is where the module compiled from one policy's CEL rules
// lives in the bundle.
func GeneratedPath(pkg string) string { return "mcpgate/generated/" + pkg + ".rego" }

// authz compiles backend.mcp.authorization: every matchExpression becomes
// its own rule (as agentgateway's controller translates them), compiled from
// CEL to Rego. An expression that cannot be compiled is an error naming the
// expression and the column; it never becomes a rule that silently denies.
func (t *translator) authz(p *v1alpha1.AgentgatewayPolicy, modules map[string]string) (az *ir.Authz, set, ok bool) {
	if p.Spec.Backend == nil || p.Spec.Backend.MCP == nil || p.Spec.Backend.MCP.Authorization == nil {
		return nil, false, true
	}
	kind, ns, name := "AgentgatewayPolicy", p.Namespace, p.Name
	field := "spec.backend.mcp.authorization"
	a := p.Spec.Backend.MCP.Authorization
	action := string(orDefault(a.Action, v1alpha1.ActionAllow))
	ok = t.enum(kind, ns, name, field+".action", action, "Allow", "Deny", "Require")
	if len(a.Policy.MatchExpressions) == 0 {
		t.fail(kind, ns, name, field+".policy.matchExpressions", "at least one expression is required")
		return nil, true, false
	}
	memoKey := strings.Join(append([]string{key(ns, name), action}, a.Policy.MatchExpressions...), "\x00")
	if m, hit := authzMemo.get(memoKey); hit && ok {
		modules[GeneratedPath(m.az.Package)] = m.text
		modules[cel.PreludePath] = cel.Prelude
		for k, body := range m.bodies {
			t.bodies[k] = body
		}
		az := *m.az
		az.Rules = append([]ir.AuthzRule(nil), m.az.Rules...)
		return &az, true, true
	}
	sum := sha256.Sum256([]byte(key(ns, name)))
	az = &ir.Authz{Key: key(ns, name), Package: "p_" + hex.EncodeToString(sum[:8])}
	rules := map[string]*cel.Rule{}
	for i, expr := range a.Policy.MatchExpressions {
		r, err := cel.Compile(expr)
		if err != nil {
			t.fail(kind, ns, name, fmt.Sprintf("%s.policy.matchExpressions[%d]", field, i), "%v (in %q)", err, clip(expr))
			ok = false
			continue
		}
		rn := fmt.Sprintf("r%d", i)
		rules[rn] = r
		ln := rn
		if r.UsesArguments {
			// Lists have no arguments: decide them by an approximation
			// that keeps a tool listed when some call of it could pass
			// (over for Allow and Require, under for Deny).
			lr, err := cel.CompileApprox(expr, action != "Deny")
			if err != nil {
				t.fail(kind, ns, name, fmt.Sprintf("%s.policy.matchExpressions[%d]", field, i), "approximating for list results: %v", err)
				ok = false
				continue
			}
			ln = fmt.Sprintf("l%d", i)
			rules[ln] = lr
		}
		az.Rules = append(az.Rules, ir.AuthzRule{Action: action, Expression: expr, Rule: rn, ListRule: ln, UsesArguments: r.UsesArguments})
	}
	if !ok {
		return nil, true, false
	}
	text, err := cel.Module(az.Package, rules)
	if err != nil {
		t.fail(kind, ns, name, field, "generating Rego: %v", err)
		return nil, true, false
	}
	bodies := map[string]string{}
	for rn, r := range rules {
		body, err := cel.BodyText(r)
		if err != nil {
			t.fail(kind, ns, name, field, "generating Rego: %v", err)
			return nil, true, false
		}
		bodies[az.Package+"."+rn] = body
		t.bodies[az.Package+"."+rn] = body
	}
	modules[GeneratedPath(az.Package)] = text + matchSets(az)
	modules[cel.PreludePath] = cel.Prelude
	memo := *az
	memo.Rules = append([]ir.AuthzRule(nil), az.Rules...)
	authzMemo.put(memoKey, authzResult{az: &memo, text: modules[GeneratedPath(az.Package)], bodies: bodies})
	return az, true, true
}

// authzResult is what authz produces for one valid policy.
type authzResult struct {
	az     *ir.Authz
	text   string
	bodies map[string]string // rule bodies for the routes module, by "<package>.<rule>"
}

// authzMemo remembers the translation of valid authorization policies by
// their name, action and expressions: compiling and checking the generated
// module costs milliseconds per policy, and a controller translates every
// policy again on each change. The result depends on nothing else, so
// Translate stays a function of its input.
var authzMemo = &memo[authzResult]{max: 20000}

type memo[V any] struct {
	mu  sync.Mutex
	max int
	m   map[string]V
}

func (c *memo[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *memo[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = map[string]V{} // bounded: start over rather than grow without limit
	}
	c.m[k] = v
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// matchSets adds the two sets the library reads from a generated package:
// the indexes of the rules that match a call (match) and a list item
// (list_match). One reference per policy lets OPA evaluate each rule once per
// decision, instead of looking rules up by name one by one.
func matchSets(az *ir.Authz) string {
	var b strings.Builder
	b.WriteString("\n# The rules that match, by index (read by rego/mcpgate/authz.rego).\n")
	for i, r := range az.Rules {
		fmt.Fprintf(&b, "match contains %d if %s\n\n", i, r.Rule)
	}
	for i, r := range az.Rules {
		fmt.Fprintf(&b, "list_match contains %d if %s\n\n", i, r.ListRule)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
