# uses_arguments: true
# refs: input.mcp.tool.arguments.a input.mcp.tool.arguments.b
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	input.mcp.tool.arguments.a + (input.mcp.tool.arguments.b * 2) <= 100
	input.mcp.tool.arguments.a % 2 == 0
}
