# METADATA
# title: mcpgate authentication
# description: |
#   Decides, from the verification result Go put in input.jwt, whether the
#   request must be refused with 401. Go checks signatures, expiry, issuer and
#   audience; the modes (Strict, Optional, Permissive) are decided here.
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

challenge := {
	"allow": false,
	"http_status": 401,
	"www_authenticate": www_authenticate,
	"oauth_error": {"error": "unauthorized", "error_description": reject},
	"reasons": [reject],
	"headers": {},
	"ratelimit": [],
}

# RFC 9728 §5.1: the challenge points at the protected resource metadata of
# this path. RFC 6750 §3.1: a token that was sent but is bad gets
# error="invalid_token".
www_authenticate := sprintf(`Bearer resource_metadata="%s", error="invalid_token"`, [metadata_url]) if {
	input.jwt.present
} else := sprintf(`Bearer resource_metadata="%s"`, [metadata_url])

metadata_url := concat("", [
	input.request.scheme, "://", input.request.host,
	"/.well-known/oauth-protected-resource",
	replace(input.request.path, `"`, "%22"),
])
