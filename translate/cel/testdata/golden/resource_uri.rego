# uses_arguments: false
# refs: input.mcp.resource.uri
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if startswith(input.mcp.resource.uri, "demo://")
