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
#   User modules (package mcpgate.user.<name>) add deny reasons and allows.
#   Authorization applies to the messages that name one item (tools/call,
#   prompts/get, resources/read and (un)subscribe, completion/complete) and
#   filters list results with the same rules, so a caller only sees what it
#   may use.
package mcpgate.authz

# completion/complete names a prompt or a resource (template) too: answering
# it would reveal a hidden item.
item_methods := {"tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe", "completion/complete"}

# The merge of the route's rules is generated per route, rule by rule, in
# package mcpgate.generated.routes (translate/routes_module.go): deny_hit and
# require_miss hold the reasons of matching Deny and unmet Require rules,
# allow_hit and has_allow tell whether an Allow rule matched and whether
# there is any. List results have no arguments: for them a rule that reads
# mcp.tool.arguments is decided by an approximation compiled with it — for
# Allow and Require rules true whenever some arguments could satisfy it, for
# Deny rules true only when every argument would. So a tool stays listed
# whenever some call of it could be allowed; rules that do not read the
# arguments decide lists and calls identically.
routes := data.mcpgate.generated.routes

denied := {r | some r in routes.deny_hit}

unmet := {r | some r in routes.require_miss}

unallowed contains "no Allow rule matched" if {
	routes.has_allow
	not routes.allow_hit
}

# A user module's deny set refuses, whatever the method; entries are reasons.
user_denied contains sprintf("mcpgate.user.%s: %v", [u, [d]]) if {
	some [u, d] in data.mcpgate.generated.routes.user_deny
}

# refusals is the set of reasons the item in input.mcp is refused; empty
# when it is permitted.
refusals := ((denied | unmet) | unallowed) | user_denied

# refused holds when the current message must be refused. It is the cheap
# question asked of every message: each rule stops at the first reason, and
# the reasons themselves (deny, below) are computed only for a denial.
refused if some _ in routes.user_deny

refused if {
	input.mcp.method in item_methods
	item_refused
}

# item_refused holds when the item in input.mcp (a call's, or one list
# entry's) is refused: refusals (below) is not empty.
item_refused if some _ in routes.deny_hit

item_refused if some _ in routes.require_miss

item_refused if {
	routes.has_allow
	not routes.allow_hit
}

item_refused if some _ in routes.user_deny

# would_deny is the set of reasons the message would be refused for if the
# route's dry-run policies (annotation mcpgate.dev/dry-run) were enforced
# too. It is reported in the decision and never refuses anything.
would_deny contains r if {
	input.mcp.method in item_methods
	some r in routes.dry_deny_hit
}

would_deny contains r if {
	input.mcp.method in item_methods
	some r in routes.dry_require_miss
}

would_deny contains "no Allow rule matched (dry-run Allow rules included)" if {
	input.mcp.method in item_methods
	routes.dry_has_allow
	not routes.allow_hit
	not routes.dry_allow_hit
}

# deny is the set of reasons to refuse the current message: every rule for
# a message naming an item, user modules' deny for any message.
deny := refusals if input.mcp.method in item_methods

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

user_status := min(data.mcpgate.generated.routes.user_status)

status := user_status if {
	user_status >= 400
} else := 200 if {
	input.mcp.method in item_methods
} else := 403

code := -32602 if status == 200

else := -32600

message := unknown_message if status == 200

else := "request denied by policy"

unknown_message := sprintf("Unknown tool: %s", [input.mcp.tool.name]) if input.mcp.tool.name

else := sprintf("Unknown prompt: %s", [input.mcp.prompt.name]) if input.mcp.prompt.name

else := sprintf("Unknown resource: %s", [input.mcp.resource.uri])

# visible lists, for a list result in input.mcp.list, the names (URIs for
# resources, URI templates for templates) the caller may use: one
# evaluation per list response, not one per item. Each item is judged
# against the request's input with the item in place of mcp.tool (prompt,
# resource) and without the list itself, which keeps every item's input
# small: replacing a field of an input that holds the whole list would copy
# the list once per item.
visible := {
	"tools": [t.name |
		some t in object.get(input.mcp.list, "tools", [])
		item := item_input("tool", t)
		not item_refused with input as item
	],
	"prompts": [x.name |
		some x in object.get(input.mcp.list, "prompts", [])
		item := item_input("prompt", x)
		not item_refused with input as item
	],
	"resources": [x.uri |
		some x in object.get(input.mcp.list, "resources", [])
		item := item_input("resource", x)
		not item_refused with input as item
	],
	"resource_templates": [x.uriTemplate |
		some x in object.get(input.mcp.list, "resource_templates", [])
		item := item_input("resource", x)
		not item_refused with input as item
	],
}

list_base := object.remove(input, ["mcp"])

list_mcp := object.remove(input.mcp, ["list"])

item_input(kind, x) := object.union(list_base, {"mcp": object.union(list_mcp, {kind: x})})
