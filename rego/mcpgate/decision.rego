# METADATA
# title: mcpgate decision
# description: |
#   The one question the gateway asks for every MCP message. The answer is a
#   single object (see docs/input.md): Go enforces it and never re-decides.
#   Order of checks: route known, then authentication; authorization and rate
#   limits join here as they are added.
package mcpgate

import data.mcpgate.authn

# The route the listener matched. Undefined for a route the active bundle
# does not know (the gateway and the bundle disagree): that denies.
route := data.mcpgate.config.routes[input.route.key]

decision := unknown_route if {
	not route
} else := authn.challenge if {
	authn.reject
} else := allowed

allowed := {
	"allow": true,
	"http_status": 200,
	"reasons": [],
	"headers": {},
	"ratelimit": [],
}

unknown_route := {
	"allow": false,
	"http_status": 404,
	"jsonrpc_error": {"code": -32601, "message": "no route for this path"},
	"reasons": ["unknown route"],
	"headers": {},
	"ratelimit": [],
}
