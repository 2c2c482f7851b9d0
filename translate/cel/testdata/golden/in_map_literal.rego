# uses_arguments: false
# refs: input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.member(input.mcp.tool.name, {"echo": true})
