# uses_arguments: false
# refs: input.jwt.claims.role input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	c2 := [v1 | v1 := input.mcp.tool.name != "delete"]
	cel.conditional(input.jwt.claims.role == "admin", [true], c2) == true
}
