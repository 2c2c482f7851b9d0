# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	some g_1 in cel.iterable(input.jwt.claims.groups)
	endswith(g_1, "-users") == false
}
