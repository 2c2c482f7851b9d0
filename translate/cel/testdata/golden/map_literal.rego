# uses_arguments: false
# refs: input.mcp.tool.name
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	t1 := {"add": 2, "echo": 1}
	t1[input.mcp.tool.name] == 1
}
