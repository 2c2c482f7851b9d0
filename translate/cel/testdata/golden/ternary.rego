# uses_arguments: false
# refs: input.jwt.claims.role input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.conditional(input.jwt.claims.role == "admin", [true], [v1 | v1 := input.mcp.tool.name != "delete"]) == true
