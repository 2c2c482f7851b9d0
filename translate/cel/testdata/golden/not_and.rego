# uses_arguments: false
# refs: input.jwt.claims.role input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	c2 := [v1 | v1 := input.jwt.claims.role == "admin"]
	c4 := [v3 | v3 := input.mcp.tool.name == "echo"]
	cel.logical_and([c2, c4]) == false
}
