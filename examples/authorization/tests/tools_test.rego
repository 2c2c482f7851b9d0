# Policy tests for this configuration: `gateway test -f examples/authorization examples/authorization/tests`
# (or `gateway bundle ... -o b.tar.gz && opa test b.tar.gz tests/`).
package tools_test

import data.mcpgate

route := "agentgateway-system/mcp-route/0"

user := {"present": true, "valid": true, "error": "", "claims": {"sub": "u1", "groups": ["mcp-users"]}}

admin := {"present": true, "valid": true, "error": "", "claims": {"sub": "a1", "groups": ["mcp-admins", "mcp-users"]}}

call(jwt, tool, args) := d if {
	d := mcpgate.decision with input as {
		"route": {"key": route},
		"request": {"scheme": "http", "host": "localhost:8080", "path": "/mcp", "method": "POST"},
		"jwt": jwt,
		"mcp": {"method": "tools/call", "tool": {"name": tool, "target": "everything", "arguments": args}},
		"phase": "request",
	}
}

visible(jwt, names) := d.visible.tools if {
	d := mcpgate.decision with input as {
		"route": {"key": route},
		"request": {"scheme": "http", "host": "localhost:8080", "path": "/mcp", "method": "POST"},
		"jwt": jwt,
		"mcp": {"method": "tools/list", "list": {"tools": [{"name": n, "target": "everything"} | some n in names]}},
		"phase": "list",
	}
}

test_users_call_echo if call(user, "echo", {"message": "hi"}).allow

test_users_cannot_see_other_tools if {
	d := call(user, "get-tiny-image", {})
	d.jsonrpc_error.message == "Unknown tool: get-tiny-image"
}

test_admins_call_anything_but_the_environment if {
	call(admin, "get-tiny-image", {}).allow
	not call(admin, "get-env", {}).allow
}

test_large_sums_are_refused if {
	call(user, "get-sum", {"a": 1, "b": 2}).allow
	not call(user, "get-sum", {"a": 1000, "b": 2}).allow
}

test_lists_match_calls if {
	visible(user, ["echo", "get-env", "get-sum", "get-tiny-image"]) == ["echo", "get-sum"]
	visible(admin, ["echo", "get-env", "get-sum", "get-tiny-image"]) == ["echo", "get-sum", "get-tiny-image"]
}

test_missing_token_is_challenged if {
	d := call({"present": false, "valid": false, "error": ""}, "echo", {})
	d.http_status == 401
}
