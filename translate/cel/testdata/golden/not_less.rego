# uses_arguments: true
# refs: input.mcp.tool.arguments.a
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.greater_or_equal(input.mcp.tool.arguments.a, 10)
