# Stand-in for the generated mcpgate.generated.routes module, matching the
# configurations of authz_test.rego, user_test.rego and ratelimit_test.rego
# (translate/routes_module.go generates the real one).
package mcpgate.generated.routes

# Routes with authorization rules, as translate/routes_module.go writes them.
allow_routes := {"ns/r/0", "ns/allow-only/0"}

deny_routes := {"ns/r/0", "ns/deny-only/0"}

has_allow if input.route.key in allow_routes

has_allow if input.route.key == "ns/only/0"

allow_hit if {
	input.route.key in allow_routes
	data.mcpgate.generated.t_allow.r0
}

allow_hit if {
	input.route.key in allow_routes
	data.mcpgate.generated.t_allow.r1
}

allow_hit if {
	input.route.key in allow_routes
	input.phase != "list"
	data.mcpgate.generated.t_allow.r2
}

allow_hit if {
	input.route.key in allow_routes
	input.phase == "list"
	data.mcpgate.generated.t_allow.l2
}

allow_hit if {
	input.route.key == "ns/only/0"
	data.mcpgate.user.tonly.allow == true
}

deny_hit contains "ns/deny rule 0 (Deny) matched: mcp.tool.name == \"get-env\"" if {
	input.route.key in deny_routes
	data.mcpgate.generated.t_deny.r0
}

deny_hit contains "ns/deny rule 1 (Deny) matched: mcp.tool.name == \"echo\" && mcp.tool.arguments.loud == true" if {
	input.route.key in deny_routes
	input.phase != "list"
	data.mcpgate.generated.t_deny.r1
}

deny_hit contains "ns/deny rule 1 (Deny) matched: mcp.tool.name == \"echo\" && mcp.tool.arguments.loud == true" if {
	input.route.key in deny_routes
	input.phase == "list"
	data.mcpgate.generated.t_deny.l1
}

require_miss contains "ns/require rule 0 (Require) did not match: has(jwt.sub)" if {
	input.route.key == "ns/r/0"
	not data.mcpgate.generated.t_require.r0
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

user_deny contains ["thide", d] if {
	input.route.key == "ns/hidden/0"
	some d in data.mcpgate.user.thide.deny
}

user_ratelimit contains ["tlimits", x] if {
	input.route.key == "ns/rl/0"
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

# Dry-run policies: ns/dry-deny on ns/dry/0 (which also has ns/allow),
# ns/dry-allow on ns/dry-allow/0.
allow_hit if {
	input.route.key == "ns/dry/0"
	data.mcpgate.generated.t_allow.r0
}

allow_hit if {
	input.route.key == "ns/dry/0"
	data.mcpgate.generated.t_allow.r1
}

has_allow if input.route.key == "ns/dry/0"

dry_deny_hit contains "ns/dry-deny rule 0 (Deny) matched: mcp.tool.name == \"echo\"" if {
	input.route.key == "ns/dry/0"
	input.mcp.tool.name == "echo"
}

dry_allow_hit if {
	input.route.key == "ns/dry-allow/0"
	input.mcp.tool.name == "echo"
}

dry_has_allow if input.route.key == "ns/dry-allow/0"
