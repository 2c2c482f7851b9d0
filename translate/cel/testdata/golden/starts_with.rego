# uses_arguments: false
# refs: input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if startswith(input.mcp.tool.name, "get")
