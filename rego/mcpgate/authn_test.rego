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
