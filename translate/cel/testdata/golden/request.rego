# uses_arguments: false
# refs: input.request.host input.request.method input.request.path
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	input.request.method == "POST"
	input.request.path == "/mcp"
	endswith(input.request.host, ".example.com")
}
