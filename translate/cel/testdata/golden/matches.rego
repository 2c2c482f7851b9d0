# uses_arguments: false
# refs: input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if regex.match("^get.*", input.mcp.tool.name)
