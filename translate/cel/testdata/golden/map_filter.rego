# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	l2 := cel.iterable(input.jwt.claims.groups)
	l6 := cel.collect([c4 | some g_1 in l2; c4 := [v3 | v3 := count(g_1)]])
	count(cel.filter([[n_5, c8] | some n_5 in l6; c8 := [v7 | v7 := cel.greater(n_5, 3)]])) >= 1
}
