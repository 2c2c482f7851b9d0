# uses_arguments: false
# refs: input.jwt.claims.role input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	input.jwt.claims.role != "admin"
	input.mcp.tool.name != "echo"
}
