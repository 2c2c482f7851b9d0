package mcpgate.authn_test

import data.mcpgate

cfg := {"version": "v1", "routes": {"ns/r/0": {"key": "ns/r/0", "authn": "ns/p"}, "ns/open/0": {"key": "ns/open/0"}}, "authn": {"ns/p": {"key": "ns/p", "mode": "Strict"}}}

req := {"scheme": "http", "host": "gw.example:8080", "path": "/mcp", "method": "POST"}

with_mode(m) := object.union(cfg, {"authn": {"ns/p": {"key": "ns/p", "mode": m}}})

valid := {"present": true, "valid": true, "error": "", "claims": {"sub": "alice"}}

expired := {"present": true, "valid": false, "error": "token is expired"}

missing := {"present": false, "valid": false, "error": ""}

decide(mode, jwt) := d if {
	d := mcpgate.decision with data.mcpgate.config as with_mode(mode)
		with input as {"route": {"key": "ns/r/0"}, "request": req, "jwt": jwt}
}

test_strict_missing_token_is_401 if {
	d := decide("Strict", missing)
	d.allow == false
	d.http_status == 401
	d.www_authenticate == `Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource/mcp"`
	d.oauth_error == {"error": "unauthorized", "error_description": "missing bearer token"}
}

test_strict_invalid_token_is_401_with_invalid_token_error if {
	d := decide("Strict", expired)
	d.http_status == 401
	d.oauth_error.error_description == "invalid bearer token: token is expired"
	contains(d.www_authenticate, `error="invalid_token"`)
	startswith(d.www_authenticate, `Bearer resource_metadata="http://gw.example:8080/`)
}

test_strict_valid_token_allows if {
	d := decide("Strict", valid)
	d.allow == true
	d.http_status == 200
}

test_optional_missing_allows if decide("Optional", missing).allow == true

test_optional_invalid_is_401 if decide("Optional", expired).http_status == 401

test_optional_valid_allows if decide("Optional", valid).allow == true

test_permissive_never_rejects if {
	decide("Permissive", missing).allow == true
	decide("Permissive", expired).allow == true
	decide("Permissive", valid).allow == true
}

test_route_without_authentication_allows if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {"route": {"key": "ns/open/0"}, "request": req, "jwt": missing}
	d.allow == true
}

test_unknown_route_denies if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {"route": {"key": "ns/nope/0"}, "request": req, "jwt": valid}
	d.allow == false
	d.http_status == 404
}

test_quote_in_path_cannot_break_the_header if {
	d := mcpgate.decision with data.mcpgate.config as cfg
		with input as {"route": {"key": "ns/r/0"}, "request": object.union(req, {"path": `/mcp"x`}), "jwt": missing}
	d.www_authenticate == `Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource/mcp%22x"`
}

# Step-up: scopes required by the policy.

scoped := object.union(cfg, {"routes": {"ns/r/0": {"scoped": true}}, "authn": {"ns/p": {
	"key": "ns/p", "mode": "Strict", "scoped": true,
	"required_scopes": ["mcp:read"],
	"tool_scopes": {"echo": ["mcp:write"], "printEnv": ["mcp:admin", "mcp:write"]},
}}})

scoped_decide(jwt, mcp) := d if {
	d := mcpgate.decision with data.mcpgate.config as scoped
		with input as {"route": {"key": "ns/r/0"}, "request": req, "jwt": jwt, "mcp": mcp}
}

with_claims(c) := object.union(valid, {"claims": c})

call(tool) := {"method": "tools/call", "tool": {"name": tool}}

list := {"method": "tools/list"}

test_missing_token_401_names_required_scopes if {
	d := scoped_decide(missing, list)
	d.http_status == 401
	d.www_authenticate == `Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource/mcp", scope="mcp:read"`
}

test_missing_token_401_on_tool_call_names_the_tool_scopes_too if {
	d := scoped_decide(missing, call("echo"))
	d.http_status == 401
	endswith(d.www_authenticate, `, scope="mcp:read mcp:write"`)
}

test_invalid_token_401_keeps_invalid_token_and_scope if {
	d := scoped_decide(expired, list)
	d.http_status == 401
	d.www_authenticate == `Bearer resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource/mcp", error="invalid_token", scope="mcp:read"`
}

test_token_without_scopes_is_403_insufficient_scope if {
	d := scoped_decide(valid, list)
	d.allow == false
	d.http_status == 403
	d.www_authenticate == `Bearer error="insufficient_scope", scope="mcp:read", resource_metadata="http://gw.example:8080/.well-known/oauth-protected-resource/mcp", error_description="insufficient scope: missing mcp:read"`
	d.oauth_error == {"error": "insufficient_scope", "error_description": "insufficient scope: missing mcp:read"}
}

test_scope_string_claim_satisfies if scoped_decide(with_claims({"scope": "openid mcp:read"}), list).allow == true

test_scp_array_claim_satisfies if scoped_decide(with_claims({"scp": ["mcp:read"]}), list).allow == true

test_scp_string_claim_satisfies if scoped_decide(with_claims({"scp": "mcp:read other"}), list).allow == true

test_scope_prefix_does_not_satisfy if {
	d := scoped_decide(with_claims({"scope": "mcp:reader"}), list)
	d.http_status == 403
}

test_non_string_scope_claims_grant_nothing if {
	scoped_decide(with_claims({"scope": ["mcp:read"]}), list).http_status == 403
	scoped_decide(with_claims({"scp": [{"mcp:read": true}]}), list).http_status == 403
}

test_tool_scope_step_up_asks_for_all_scopes_of_the_call if {
	d := scoped_decide(with_claims({"scp": ["mcp:read"]}), call("echo"))
	d.http_status == 403
	contains(d.www_authenticate, `scope="mcp:read mcp:write"`)
	d.reasons == ["insufficient scope: missing mcp:write"]
}

test_tool_scope_lists_every_missing_scope if {
	d := scoped_decide(with_claims({"scope": "mcp:read"}), call("printEnv"))
	d.reasons == ["insufficient scope: missing mcp:admin mcp:write"]
	contains(d.www_authenticate, `scope="mcp:admin mcp:read mcp:write"`)
}

test_tool_scopes_granted_allow if {
	scoped_decide(with_claims({"scope": "mcp:read mcp:write"}), call("echo")).allow == true
}

test_tool_without_extra_scopes_needs_only_the_route_scopes if {
	scoped_decide(with_claims({"scope": "mcp:read"}), call("add")).allow == true
}

test_tool_scopes_apply_only_to_tools_call if {
	# A prompts/get named like a scoped tool is not a tool call.
	scoped_decide(with_claims({"scope": "mcp:read"}), {"method": "prompts/get", "prompt": {"name": "echo"}}).allow == true
}

test_optional_mode_enforces_scopes_on_tokens_but_admits_anonymous if {
	opt := object.union(scoped, {"authn": {"ns/p": {"mode": "Optional"}}})
	d1 := mcpgate.decision with data.mcpgate.config as opt
		with input as {"route": {"key": "ns/r/0"}, "request": req, "jwt": valid, "mcp": list}
	d1.http_status == 403
	d2 := mcpgate.decision with data.mcpgate.config as opt
		with input as {"route": {"key": "ns/r/0"}, "request": req, "jwt": missing, "mcp": list}
	d2.allow == true
}

test_no_scope_suffix_without_required_scopes if {
	d := decide("Strict", missing)
	not contains(d.www_authenticate, "scope=")
}
