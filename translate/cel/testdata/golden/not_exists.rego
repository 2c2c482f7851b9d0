# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	l2 := cel.iterable(input.jwt.claims.groups)
	every g_1 in l2 { g_1 != "banned" }
}
