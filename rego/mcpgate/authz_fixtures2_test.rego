package mcpgate.generated.t_deny

r0 if input.mcp.tool.name == "get-env"

r1 if {
	input.mcp.tool.name == "echo"
	input.mcp.tool.arguments.loud == true
}

l1 := false
