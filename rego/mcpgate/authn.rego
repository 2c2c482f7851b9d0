# METADATA
# title: mcpgate authentication
# description: |
#   Decides, from the verification result Go put in input.jwt, whether the
#   request must be refused with 401, or with 403 insufficient_scope when a
#   valid token lacks scopes the policy requires (step-up authorization).
#   Go checks signatures, expiry, issuer and audience; the modes (Strict,
#   Optional, Permissive) and the scopes are decided here.
package mcpgate.authn

# The authentication policy of the matched route; undefined when none applies.
config := data.mcpgate.config.authn[data.mcpgate.config.routes[input.route.key].authn]

# reject holds the reason when the request must be refused.
# Strict: a valid token is required.
reject := "missing bearer token" if {
	config.mode == "Strict"
	not input.jwt.present
}

# Strict and Optional: a token that is present must be valid.
# Permissive never rejects (claims are only filled in for valid tokens).
reject := concat(": ", ["invalid bearer token", input.jwt.error]) if {
	config.mode in {"Strict", "Optional"}
	input.jwt.present
	not input.jwt.valid
}

# Strict and Optional: a valid token must carry every required scope.
# (Optional lets a request without any token through, as it always does.)
reject := concat(" ", ["insufficient scope: missing", concat(" ", sort(missing_scopes))]) if {
	config.scoped
	config.mode in {"Strict", "Optional"}
	input.jwt.valid
	count(missing_scopes) > 0
}

challenge := insufficient_scope if {
	config.scoped
	input.jwt.valid
	count(missing_scopes) > 0
} else := {
	"allow": false,
	"http_status": 401,
	"www_authenticate": www_authenticate,
	"oauth_error": {"error": "unauthorized", "error_description": reject},
	"reasons": [reject],
	"headers": {},
	"ratelimit": [],
}

# RFC 6750 §3.1 and MCP 2025-11-25 "scope challenge handling": 403 with the
# scopes the client should ask for. scope= lists every scope this request
# needs (not only the missing ones), so a client that replaces its token
# keeps what it already had.
insufficient_scope := {
	"allow": false,
	"http_status": 403,
	"www_authenticate": sprintf(`Bearer error="insufficient_scope", scope="%s", resource_metadata="%s", error_description="%s"`, [scope_param, metadata_url, reject]),
	"oauth_error": {"error": "insufficient_scope", "error_description": reject},
	"reasons": [reject],
	"headers": {},
	"ratelimit": [],
}

# RFC 9728 §5.1: the challenge points at the protected resource metadata of
# this path. RFC 6750 §3.1: a token that was sent but is bad gets
# error="invalid_token". Where the policy requires scopes, scope= names
# them (MCP 2025-11-25: the client asks for exactly these).
www_authenticate := sprintf(`Bearer resource_metadata="%s", error="invalid_token"%s`, [metadata_url, scope_suffix]) if {
	input.jwt.present
} else := sprintf(`Bearer resource_metadata="%s"%s`, [metadata_url, scope_suffix])

scope_suffix := sprintf(`, scope="%s"`, [scope_param]) if {
	config.scoped
	count(required_scopes) > 0
} else := ""

# The scopes this request needs: those of the route's policy, plus those of
# the tool for tools/call. Scope tokens were validated at translation time
# (no quotes, spaces or backslashes), so they are safe inside the header.
required_scopes contains s if some s in config.required_scopes

required_scopes contains s if {
	input.mcp.method == "tools/call"
	some s in config.tool_scopes[input.mcp.tool.name]
}

scope_param := concat(" ", sort(required_scopes))

missing_scopes := {s | some s in required_scopes; not token_scopes[s]}

# The scopes granted to the token: "scope" is a space-separated string
# (RFC 8693 §4.2, RFC 9068 §2.2.3); "scp" is an array (ORY Hydra, Okta) or a
# string (Entra).
token_scopes contains s if {
	is_string(input.jwt.claims.scope)
	some s in split(input.jwt.claims.scope, " ")
	s != ""
}

token_scopes contains s if {
	is_array(input.jwt.claims.scp)
	some s in input.jwt.claims.scp
	is_string(s)
}

token_scopes contains s if {
	is_string(input.jwt.claims.scp)
	some s in split(input.jwt.claims.scp, " ")
	s != ""
}

metadata_url := concat("", [
	input.request.scheme, "://", input.request.host,
	"/.well-known/oauth-protected-resource",
	replace(input.request.path, `"`, "%22"),
])
