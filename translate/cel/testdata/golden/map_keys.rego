# uses_arguments: true
# refs: input.mcp.tool.arguments
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	l2 := cel.iterable(input.mcp.tool.arguments)
	every k_1 in l2 { k_1 in ["a", "b"] }
}
