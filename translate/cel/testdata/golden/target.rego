# uses_arguments: false
# refs: input.mcp.tool.name input.mcp.tool.target
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	input.mcp.tool.target == "github"
	startswith(input.mcp.tool.name, "list_")
}
