# uses_arguments: false
# refs: input.jwt.claims.sub input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	input.jwt.claims.sub == "test-user"
	input.mcp.tool.name == "add"
}
