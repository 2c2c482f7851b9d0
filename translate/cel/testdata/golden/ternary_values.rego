# uses_arguments: true
# refs: input.jwt.claims.tier input.mcp.tool.arguments.count
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.greater(cel.conditional(input.jwt.claims.tier == "gold", [100], [10]), input.mcp.tool.arguments.count)
