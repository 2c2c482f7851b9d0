# uses_arguments: false
# refs: input.jwt.claims.role input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.logical_or([[v1 | v1 := input.jwt.claims.role == "admin"], [v2 | v2 := input.mcp.tool.name == "echo"]])
