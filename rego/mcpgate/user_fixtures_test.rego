# Stand-ins for user modules, used by user_test.rego.
package mcpgate.user.tsums

deny contains "sums above 1000 are not allowed" if {
	input.mcp.tool.name == "get-sum"
	input.mcp.tool.arguments.a + input.mcp.tool.arguments.b > 1000
}

http_status := 403
