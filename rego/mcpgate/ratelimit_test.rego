package mcpgate.ratelimit_test

import data.mcpgate

cfg := {
	"version": "v1",
	"routes": {
		"ns/rl/0": {"key": "ns/rl/0", "governed": true, "limited": true, "authz": [], "user": ["tlimits"], "ratelimit": ["ns/gw-limit", "ns/route-limit"]},
		"ns/free/0": {"key": "ns/free/0", "authz": [], "user": [], "ratelimit": []},
	},
	"authn": {"ns/strict": {"key": "ns/strict", "mode": "Strict"}},
	"authz": {},
	"user": {"tlimits": {"name": "tlimits", "ratelimit": true, "deny": false, "allow": false, "http_status": false}},
	"ratelimit": {
		"ns/gw-limit": {"key": "ns/gw-limit", "rules": [{"requests": 100, "burst": 0, "seconds": 60}]},
		"ns/route-limit": {"key": "ns/route-limit", "rules": [{"requests": 5, "burst": 2, "seconds": 1}, {"requests": 1000, "burst": 0, "seconds": 3600}]},
	},
}

decide(route, claims, tool) := d if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": route},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": {"present": true, "valid": true, "claims": claims},
			"mcp": {"method": "tools/call", "tool": {"name": tool, "target": "t", "arguments": {}}},
			"phase": "request",
		}
}

test_every_rule_of_every_level_is_a_descriptor if {
	d := decide("ns/rl/0", {"sub": "alice"}, "echo")
	d.allow
	# user descriptors come from a set: compare regardless of order
	{x | some x in d.ratelimit} == {
		{"key": "local/ns/gw-limit/0", "limit": 100, "period": 60, "burst": 0},
		{"key": "local/ns/route-limit/0", "limit": 7, "period": 1, "burst": 2},
		{"key": "local/ns/route-limit/1", "limit": 1000, "period": 3600, "burst": 0},
		{"key": "user/tlimits/alice", "limit": 3, "period": 60, "burst": 0},
		{"key": "user/tlimits/echo", "limit": 10, "period": 1, "burst": 1},
	}
	count(d.ratelimit) == 5
}

test_user_descriptors_follow_the_input if {
	d := decide("ns/rl/0", {}, "get-sum")
	keys := [x.key | some x in d.ratelimit]
	not "user/tlimits/alice" in keys
	"user/tlimits/get-sum" in keys
}

test_routes_without_limits_have_none if decide("ns/free/0", {"sub": "alice"}, "echo").ratelimit == []

test_denied_requests_carry_no_descriptors if {
	d := mcpgate.decision with data.mcpgate.config as object.union(cfg, {"routes": {"ns/rl/0": {"key": "ns/rl/0", "governed": true, "limited": true, "authn": "ns/strict", "authz": [], "user": ["tlimits"], "ratelimit": ["ns/gw-limit"]}}})
		with input as {
			"route": {"key": "ns/rl/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": {"present": false, "valid": false, "claims": {}},
			"mcp": {"method": "tools/call", "tool": {"name": "echo"}},
			"phase": "request",
		}
	d.http_status == 401
	d.ratelimit == []
}

keyed_cfg := object.union(cfg, {
	"routes": {"ns/keyed/0": {"key": "ns/keyed/0", "governed": true, "limited": true, "authz": [], "user": [], "ratelimit": ["MCPRateLimitPolicy:ns/keyed"]}},
	"ratelimit": {"MCPRateLimitPolicy:ns/keyed": {"key": "MCPRateLimitPolicy:ns/keyed", "package": "p_x", "rules": [
		{"requests": 60, "burst": 0, "seconds": 60, "key": "jwt.sub"},
		{"requests": 5, "burst": 1, "seconds": 1, "when": "mcp.method == \"tools/call\""},
	]}},
})

keyed(claims, method) := d if {
	d := mcpgate.decision with data.mcpgate.config as keyed_cfg
		with input as {
			"route": {"key": "ns/keyed/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": {"present": true, "valid": true, "claims": claims},
			"mcp": {"method": method},
			"phase": "request",
		}
}

test_keyed_limit_counts_per_key_value if {
	keyed({"sub": "alice"}, "tools/call").ratelimit == [
		{"key": `local/MCPRateLimitPolicy:ns/keyed/0/"alice"`, "limit": 60, "period": 60, "burst": 0},
		{"key": "local/MCPRateLimitPolicy:ns/keyed/1", "limit": 6, "period": 1, "burst": 1},
	]
}

test_condition_selects_the_requests if {
	keyed({"sub": "bob"}, "tools/list").ratelimit == [{"key": `local/MCPRateLimitPolicy:ns/keyed/0/"bob"`, "limit": 60, "period": 60, "burst": 0}]
}

test_undefined_key_shares_one_counter if {
	keyed({}, "ping").ratelimit == [{"key": "local/MCPRateLimitPolicy:ns/keyed/0/undefined", "limit": 60, "period": 60, "burst": 0}]
}
