# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	l2 := cel.iterable(input.jwt.claims.groups)
	cel.exists_one([c4 | some g_1 in l2; c4 := [v3 | v3 := contains(g_1, "admin")]])
}
