# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	l2 := cel.iterable(input.jwt.claims.groups)
	l5 := cel.collect([[v3 | v3 := count(g_1)] | some g_1 in l2])
	count(cel.filter([[n_4, [v6 | v6 := cel.greater(n_4, 3)]] | some n_4 in l5])) >= 1
}
