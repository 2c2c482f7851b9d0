# METADATA
# title: mcpgate decision
# description: |
#   The one question the gateway asks for every MCP message. The answer is a
#   single object (see docs/input.md): Go enforces it and never re-decides.
#   Order of checks: route known, authentication, authorization, then the
#   rate-limit descriptors of an allowed request (counted by Go), so
#   anonymous or refused traffic never drains anyone's budget. For list results (input.phase == "list") the answer says which
#   items the caller may see.
package mcpgate

import data.mcpgate.authn
import data.mcpgate.authz
import data.mcpgate.ratelimit

# The route the listener matched. Undefined for a route the active bundle
# does not know (the gateway and the bundle disagree): that denies.
route := data.mcpgate.config.routes[input.route.key]

decision := unknown_route if {
	not route
} else := list_result if {
	input.phase == "list"
} else := authn.challenge if {
	authn_checked
	authn.reject
} else := authz.denial if {
	route.governed
	authz.refused
} else := dry_run if {
	route.dry_run
} else := allowed if {
	route.limited
} else := unlimited

# authn_checked holds when the authentication rules must run: a valid
# token (Go sets valid only together with present) can be refused only for
# missing scopes, on routes that require some (route.scoped, written by
# translate); this keeps the rules off the common path.
authn_checked if not input.jwt.valid

authn_checked if route.scoped

# dry_run is the permit of a route with dry-run policies, with what they
# would have refused (never enforced: allow stays true).
dry_run := object.union(permit, {"dry_run": {
	"would_deny": count(authz.would_deny) > 0,
	"reasons": sort(authz.would_deny),
}})

permit := allowed if route.limited

else := unlimited

# route.governed and route.limited are written by translate (ir.Route):
# governed holds when authorization rules, user modules or rate limits apply
# to the route, limited when rate limits or user modules (which may return
# descriptors) do. The rest of the library is skipped for routes without any.
allowed := {
	"allow": true,
	"http_status": 200,
	"reasons": [],
	"headers": {},
	"ratelimit": ratelimit.descriptors,
}

unlimited := {
	"allow": true,
	"http_status": 200,
	"reasons": [],
	"headers": {},
	"ratelimit": [],
}

list_result := {
	"allow": true,
	"http_status": 200,
	"reasons": [],
	"headers": {},
	"ratelimit": [],
	"visible": authz.visible,
}

unknown_route := {
	"allow": false,
	"http_status": 404,
	"jsonrpc_error": {"code": -32601, "message": "no route for this path"},
	"reasons": ["unknown route"],
	"headers": {},
	"ratelimit": [],
}
