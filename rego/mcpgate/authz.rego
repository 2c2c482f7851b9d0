# METADATA
# title: mcpgate tool authorization
# description: |
#   agentgateway's backend.mcp.authorization semantics over the CEL rules
#   compiled to Rego (package mcpgate.generated.<policy>). Every policy
#   attached to the route, at any level, contributes its rules to one set:
#     - no rules: everything is allowed;
#     - any matching Deny rule refuses;
#     - any Require rule that does not match refuses;
#     - if there are Allow rules, one of them must match.
#   A rule whose CEL errors (a missing claim, a wrong type) does not match.
#   Authorization applies to the messages that name one item (tools/call,
#   prompts/get, resources/read and (un)subscribe) and filters list results
#   with the same rules, so a caller only sees what it may use.
package mcpgate.authz

import data.mcpgate.config

# Every rule that applies to this route, as [policy key, index, rule].
rules := [[p, i, r] |
	some p in config.routes[input.route.key].authz
	some i, r in config.authz[p].rules
]

# The user Rego modules (package mcpgate.user.<name>) that apply here.
user_modules := config.routes[input.route.key].user

has_allow_rules if {
	some [_, _, r] in rules
	r.action == "Allow"
}

has_allow_rules if {
	some u in user_modules
	config.user[u].allow
}

# A user module's deny set refuses, whatever the method; entries are reasons.
user_denied := {sprintf("mcpgate.user.%s: %v", [u, [d]]) |
	some u in user_modules
	config.user[u].deny
	some d in data.mcpgate.user[u].deny
}

# completion/complete names a prompt or a resource (template) too: answering
# it would reveal a hidden item.
item_methods := {"tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete"}

# hit(p, r, list) holds when rule r of policy p matches the item in
# input.mcp. List results have no arguments: for them (list = true) a rule
# that reads mcp.tool.arguments is decided by its list_rule, compiled from an
# approximation of its CEL expression: for Allow and Require rules true
# whenever some arguments could satisfy it, for Deny rules true only when
# every argument would. So a tool stays listed whenever some call of it could
# be allowed, and rules that do not read the arguments decide lists and calls
# identically (list_rule == rule).
hit(p, r, list) if data.mcpgate.generated[config.authz[p].package][rule_name(r, list)]

rule_name(r, false) := r.rule

rule_name(r, true) := r.list_rule

any_allow_hit(list) if {
	some [p, _, r] in rules
	r.action == "Allow"
	hit(p, r, list)
}

any_allow_hit(_) if {
	some u in user_modules
	config.user[u].allow
	data.mcpgate.user[u].allow == true
}

# refusals(list) is the set of reasons the item in input.mcp is refused;
# empty when it is permitted.
refusals(list) := ((denied(list) | unmet(list)) | unallowed(list)) | user_denied

denied(list) := {sprintf("%s rule %d (Deny) matched: %s", [p, i, r.expression]) |
	some [p, i, r] in rules
	r.action == "Deny"
	hit(p, r, list)
}

unmet(list) := {sprintf("%s rule %d (Require) did not match: %s", [p, i, r.expression]) |
	some [p, i, r] in rules
	r.action == "Require"
	not hit(p, r, list)
}

unallowed(list) := {"no Allow rule matched"} if {
	has_allow_rules
	not any_allow_hit(list)
} else := set()

# deny is the set of reasons to refuse the current message: every rule for
# a message naming an item, user modules' deny for any message.
deny := refusals(false) if input.mcp.method in item_methods

else := user_denied

# The refusal hides the item: agentgateway answers a denied call as if the
# tool did not exist (JSON-RPC -32602 inside a 200). Other messages are
# refused with 403. A user module may choose the status of the denials it
# causes (http_status), e.g. 403 instead of hiding a tool.
denial := {
	"allow": false,
	"http_status": status,
	"jsonrpc_error": {"code": code, "message": message},
	"reasons": sort(deny),
	"headers": {},
	"ratelimit": [],
}

user_status := min({s |
	some u in user_modules
	config.user[u].http_status
	count({d | some d in data.mcpgate.user[u].deny}) > 0
	s := data.mcpgate.user[u].http_status
})

status := user_status if {
	user_status >= 400
} else := 200 if {
	input.mcp.method in item_methods
} else := 403

code := -32602 if status == 200

else := -32600

message := unknown_message if status == 200

else := "request denied by policy"

unknown_message := sprintf("Unknown tool: %s", [input.mcp.tool.name]) if input.mcp.tool

else := sprintf("Unknown prompt: %s", [input.mcp.prompt.name]) if input.mcp.prompt

else := sprintf("Unknown resource: %s", [input.mcp.resource.uri])

# visible lists, for a list result in input.mcp.list, the names (URIs for
# resources, URI templates for templates) the caller may use: one
# evaluation per list response, not one per item.
visible := {
	"tools": [t.name |
		some t in object.get(input.mcp.list, "tools", [])
		count(refusals(true)) == 0 with input.mcp.tool as t
	],
	"prompts": [x.name |
		some x in object.get(input.mcp.list, "prompts", [])
		count(refusals(true)) == 0 with input.mcp.prompt as x
	],
	"resources": [x.uri |
		some x in object.get(input.mcp.list, "resources", [])
		count(refusals(true)) == 0 with input.mcp.resource as x
	],
	"resource_templates": [x.uriTemplate |
		some x in object.get(input.mcp.list, "resource_templates", [])
		count(refusals(true)) == 0 with input.mcp.resource as x
	],
}
