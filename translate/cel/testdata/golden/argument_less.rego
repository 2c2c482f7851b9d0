# uses_arguments: true
# refs: input.mcp.tool.arguments.a
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.less(input.mcp.tool.arguments.a, 10)
