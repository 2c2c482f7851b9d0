# Stand-ins for generated modules (package mcpgate.generated.<policy>), used
# by authz_test.rego. The list rules (l*) are the approximations translate
# would compile: Allow over-approximates, Deny under-approximates.
package mcpgate.generated.t_allow

r0 if input.mcp.tool.name == "echo"

r1 if "admins" in input.jwt.claims.groups

r2 if {
	input.mcp.tool.name == "get-sum"
	input.mcp.tool.arguments.a < 100
}

l2 if input.mcp.tool.name == "get-sum"

match contains 0 if r0

match contains 1 if r1

match contains 2 if r2

list_match contains 0 if r0

list_match contains 1 if r1

list_match contains 2 if l2
