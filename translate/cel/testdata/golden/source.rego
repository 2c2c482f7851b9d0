# uses_arguments: false
# refs: input.source.address input.source.port
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	startswith(input.source.address, "10.")
	input.source.port != 22
}
