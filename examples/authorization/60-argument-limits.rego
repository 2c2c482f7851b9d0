# A rule on arguments, in Rego: applies to every route of this configuration
# (a .rego file next to the YAML). In Kubernetes, the same module goes into an
# MCPRegoPolicy with targetRefs.
package mcpgate.user.argument_limits

deny contains "get-sum is limited to operands below 1000" if {
	input.mcp.tool.name == "get-sum"
	some operand in ["a", "b"]
	input.mcp.tool.arguments[operand] >= 1000
}
