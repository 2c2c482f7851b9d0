# uses_arguments: false
# refs: input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.mcp.tool.name != "printEnv"
