package mcpgate.authz_test

import data.mcpgate

# Hand-written stand-ins for the modules translate/cel generates.
cfg := {
	"version": "v1",
	"routes": {
		"ns/r/0": {"key": "ns/r/0", "governed": true, "authz": ["ns/allow", "ns/deny", "ns/require"]},
		"ns/open/0": {"key": "ns/open/0", "authz": []},
		"ns/allow-only/0": {"key": "ns/allow-only/0", "governed": true, "authz": ["ns/allow"]},
		"ns/deny-only/0": {"key": "ns/deny-only/0", "governed": true, "authz": ["ns/deny"]},
		"ns/dry/0": {"key": "ns/dry/0", "governed": true, "dry_run": true, "authz": ["ns/allow", "ns/dry-deny"]},
		"ns/dry-allow/0": {"key": "ns/dry-allow/0", "governed": true, "dry_run": true, "authz": ["ns/dry-allow"]},
	},
	"authn": {},
	"authz": {
		"ns/allow": {"key": "ns/allow", "package": "t_allow", "rules": [
			{"action": "Allow", "expression": "mcp.tool.name == \"echo\"", "rule": "r0", "list_rule": "r0", "uses_arguments": false},
			{"action": "Allow", "expression": "\"admins\" in jwt.groups", "rule": "r1", "list_rule": "r1", "uses_arguments": false},
			{"action": "Allow", "expression": "mcp.tool.name == \"get-sum\" && mcp.tool.arguments.a < 100", "rule": "r2", "list_rule": "l2", "uses_arguments": true},
		]},
		"ns/deny": {"key": "ns/deny", "package": "t_deny", "rules": [
			{"action": "Deny", "expression": "mcp.tool.name == \"get-env\"", "rule": "r0", "list_rule": "r0", "uses_arguments": false},
			{"action": "Deny", "expression": "mcp.tool.name == \"echo\" && mcp.tool.arguments.loud == true", "rule": "r1", "list_rule": "l1", "uses_arguments": true},
		]},
		"ns/require": {"key": "ns/require", "package": "t_require", "rules": [{"action": "Require", "expression": "has(jwt.sub)", "rule": "r0", "list_rule": "r0", "uses_arguments": false}]},
	},
}

alice := {"present": true, "valid": true, "error": "", "claims": {"sub": "alice", "groups": ["users"]}}

admin := {"present": true, "valid": true, "error": "", "claims": {"sub": "root", "groups": ["admins"]}}

nosub := {"present": true, "valid": true, "error": "", "claims": {"groups": ["admins"]}}

call(route, jwt, tool, args) := d if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": route},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": jwt,
			"mcp": {"method": "tools/call", "tool": {"name": tool, "target": "t", "arguments": args}},
			"phase": "request",
		}
}

list(route, jwt, names) := v if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": route},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": jwt,
			"mcp": {"method": "tools/list", "list": {"tools": [{"name": n, "target": "t"} | some n in names]}},
			"phase": "list",
		}
	d.allow
	v := d.visible.tools
}

test_allow_rule_admits_its_tool if call("ns/r/0", alice, "echo", {}).allow

test_other_tool_is_unknown if {
	d := call("ns/r/0", alice, "printEnv", {})
	not d.allow
	d.http_status == 200
	d.jsonrpc_error == {"code": -32602, "message": "Unknown tool: printEnv"}
	d.reasons == ["no Allow rule matched"]
}

test_claim_rule_admits_every_tool_for_admins if call("ns/r/0", admin, "printEnv", {}).allow

test_deny_beats_allow if {
	d := call("ns/r/0", admin, "get-env", {})
	not d.allow
	startswith(d.reasons[0], "ns/deny rule 0 (Deny) matched")
}

test_require_must_hold if {
	d := call("ns/r/0", nosub, "echo", {})
	not d.allow
	some reason in d.reasons
	startswith(reason, "ns/require rule 0 (Require) did not match")
}

test_argument_rule_decides_calls if {
	call("ns/r/0", alice, "get-sum", {"a": 1}).allow
	not call("ns/r/0", alice, "get-sum", {"a": 500}).allow
	not call("ns/r/0", alice, "get-sum", {}).allow
}

test_argument_deny_rule_decides_calls if {
	call("ns/r/0", alice, "echo", {"loud": false}).allow
	not call("ns/r/0", alice, "echo", {"loud": true}).allow
}

test_no_rules_allow_everything if call("ns/open/0", alice, "anything", {}).allow

test_deny_only_allows_the_rest if {
	call("ns/deny-only/0", alice, "echo", {}).allow
	not call("ns/deny-only/0", alice, "get-env", {}).allow
}

test_calls_of_other_items_are_refused_as_unknown if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": "ns/allow-only/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": alice,
			"mcp": {"method": "prompts/get", "prompt": {"name": "greet", "target": "t", "arguments": {}}},
			"phase": "request",
		}
	d.jsonrpc_error.message == "Unknown prompt: greet"
	r := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": "ns/allow-only/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": alice,
			"mcp": {"method": "resources/read", "resource": {"uri": "demo://x", "target": "t"}},
			"phase": "request",
		}
	r.jsonrpc_error.message == "Unknown resource: demo://x"
}

test_non_item_methods_are_not_authorized_here if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": "ns/allow-only/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": alice,
			"mcp": {"method": "initialize"},
			"phase": "request",
		}
	d.allow
}

test_list_shows_exactly_the_callable_tools if {
	list("ns/r/0", alice, ["echo", "get-sum", "get-env", "printEnv"]) == ["echo", "get-sum"]
	list("ns/r/0", admin, ["echo", "get-sum", "get-env", "printEnv"]) == ["echo", "get-sum", "printEnv"]
	list("ns/r/0", nosub, ["echo"]) == []
	list("ns/open/0", alice, ["a", "b"]) == ["a", "b"]
}

test_list_of_prompts_and_resources if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": "ns/deny-only/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": alice,
			"mcp": {"method": "resources/list", "list": {
				"resources": [{"uri": "demo://a", "name": "a", "target": "t"}],
				"prompts": [{"name": "p", "target": "t"}],
				"resource_templates": [{"uriTemplate": "demo://{x}", "name": "x", "target": "t"}],
			}},
			"phase": "list",
		}
	d.visible.resources == ["demo://a"]
	d.visible.prompts == ["p"]
	d.visible.resource_templates == ["demo://{x}"]
}

test_completion_of_a_hidden_prompt_is_refused if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {
			"route": {"key": "ns/allow-only/0"},
			"request": {"scheme": "http", "host": "h", "path": "/mcp", "method": "POST"},
			"jwt": alice,
			"mcp": {"method": "completion/complete", "prompt": {"name": "secret-prompt", "target": "t", "arguments": {}}},
			"phase": "request",
		}
	d.jsonrpc_error.message == "Unknown prompt: secret-prompt"
}

# Dry-run policies (routes ns/dry/0, ns/dry-allow/0 in the fixture routes
# module): reported in dry_run, never enforced.
test_dry_run_deny_is_reported_not_enforced if {
	d := call("ns/dry/0", alice, "echo", {})
	d.allow
	d.dry_run.would_deny
	d.dry_run.reasons == ["ns/dry-deny rule 0 (Deny) matched: mcp.tool.name == \"echo\""]
}

test_dry_run_without_hit_reports_nothing if {
	d := call("ns/dry/0", admin, "other", {})
	d.allow
	not d.dry_run.would_deny
	d.dry_run.reasons == []
}

test_enforced_rules_still_refuse_on_dry_run_routes if {
	d := call("ns/dry/0", alice, "other", {})
	not d.allow
	d.jsonrpc_error.code == -32602
}

test_dry_run_allow_rules_report_unmatched_calls if {
	d := call("ns/dry-allow/0", alice, "other", {})
	d.allow
	d.dry_run.reasons == ["no Allow rule matched (dry-run Allow rules included)"]
	call("ns/dry-allow/0", alice, "echo", {}).dry_run.would_deny == false
}

test_dry_run_never_hides_listed_tools if list("ns/dry/0", alice, ["echo", "other"]) == ["echo"]
