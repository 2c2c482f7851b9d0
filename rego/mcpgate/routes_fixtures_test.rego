# Stand-in for the generated mcpgate.generated.routes module, matching the
# configurations of authz_test.rego, user_test.rego and ratelimit_test.rego
# (translate/routes_module.go generates the real one).
package mcpgate.generated.routes

authz_routes := {
	"ns/r/0": {"ns/allow": "t_allow", "ns/deny": "t_deny", "ns/require": "t_require"},
	"ns/allow-only/0": {"ns/allow": "t_allow"},
	"ns/deny-only/0": {"ns/deny": "t_deny"},
}

hits contains [p, i] if {
	input.phase != "list"
	some p, pkg in authz_routes[input.route.key]
	some i in data.mcpgate.generated[pkg].match
}

hits contains [p, i] if {
	input.phase == "list"
	some p, pkg in authz_routes[input.route.key]
	some i in data.mcpgate.generated[pkg].list_match
}

user_deny contains ["tsums", d] if {
	input.route.key == "ns/sums/0"
	some d in data.mcpgate.user.tsums.deny
}

user_status contains s if {
	input.route.key == "ns/sums/0"
	count(data.mcpgate.user.tsums.deny) > 0
	s := data.mcpgate.user.tsums.http_status
}

user_allow contains "tonly" if {
	input.route.key == "ns/only/0"
	data.mcpgate.user.tonly.allow == true
}

user_deny contains ["thide", d] if {
	input.route.key == "ns/hidden/0"
	some d in data.mcpgate.user.thide.deny
}

user_ratelimit contains ["tlimits", x] if {
	input.route.key == "ns/r/0"
	some x in data.mcpgate.user.tlimits.ratelimit
}

limit_key contains ["MCPRateLimitPolicy:ns/keyed", 0, k] if {
	input.route.key == "ns/keyed/0"
	k := input.jwt.claims.sub
}

limit_when contains ["MCPRateLimitPolicy:ns/keyed", 1] if {
	input.route.key == "ns/keyed/0"
	input.mcp.method == "tools/call"
}
