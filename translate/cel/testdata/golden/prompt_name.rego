# uses_arguments: false
# refs: input.mcp.prompt.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.mcp.prompt.name == "greeting"
