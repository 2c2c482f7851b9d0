package mcpgate.generated.t_deny

r0 if input.mcp.tool.name == "get-env"

r1 if {
	input.mcp.tool.name == "echo"
	input.mcp.tool.arguments.loud == true
}

l1 := false

match contains 0 if r0

match contains 1 if r1

list_match contains 0 if r0

list_match contains 1 if l1
