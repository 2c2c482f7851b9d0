# uses_arguments: false
# refs: input.mcp.method
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.mcp.method == "tools/list"
