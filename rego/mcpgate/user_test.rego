package mcpgate.user_test

import data.mcpgate

# Routes with user modules (stand-ins below: mcpgate.user.tsums, tonly).
cfg := {
	"version": "v1",
	"routes": {
		"ns/sums/0": {"key": "ns/sums/0", "governed": true, "limited": true, "authz": [], "user": ["tsums"]},
		"ns/only/0": {"key": "ns/only/0", "governed": true, "limited": true, "authz": [], "user": ["tonly"]},
		"ns/hidden/0": {"key": "ns/hidden/0", "governed": true, "limited": true, "authz": [], "user": ["thide"]},
	},
	"authn": {},
	"authz": {},
	"user": {
		"tsums": {"name": "tsums", "deny": true, "allow": false, "ratelimit": false, "http_status": true},
		"tonly": {"name": "tonly", "deny": false, "allow": true, "ratelimit": false, "http_status": false},
		"thide": {"name": "thide", "deny": true, "allow": false, "ratelimit": false, "http_status": false},
	},
}

decide(route, method, tool, args) := d if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": route},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": {"present": true, "valid": true, "claims": {"sub": "alice"}},
			"mcp": {"method": method, "tool": {"name": tool, "target": "t", "arguments": args}},
			"phase": "request",
		}
}

test_user_deny_with_its_own_status if {
	d := decide("ns/sums/0", "tools/call", "get-sum", {"a": 999, "b": 2})
	not d.allow
	d.http_status == 403
	d.jsonrpc_error == {"code": -32600, "message": "request denied by policy"}
	d.reasons == [`mcpgate.user.tsums: ["sums above 1000 are not allowed"]`]
}

test_user_deny_not_firing_allows if decide("ns/sums/0", "tools/call", "get-sum", {"a": 1, "b": 2}).allow

test_user_allow_is_an_allow_rule if {
	decide("ns/only/0", "tools/call", "echo", {}).allow
	d := decide("ns/only/0", "tools/call", "printEnv", {})
	d.jsonrpc_error.message == "Unknown tool: printEnv"
}

test_user_deny_applies_to_any_method if {
	d := decide("ns/hidden/0", "initialize", "", {})
	d.http_status == 403
	decide("ns/hidden/0", "ping", "", {}).allow
}

test_user_deny_without_status_hides_tools if {
	d := decide("ns/hidden/0", "tools/call", "secret", {})
	d.http_status == 200
	d.jsonrpc_error.code == -32602
}

test_user_rules_filter_lists if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": "ns/only/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": {"present": true, "valid": true, "claims": {}},
			"mcp": {"method": "tools/list", "list": {"tools": [{"name": "echo"}, {"name": "printEnv"}]}},
			"phase": "list",
		}
	d.visible.tools == ["echo"]
}
