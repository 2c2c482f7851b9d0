# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	l2 := cel.iterable(input.jwt.claims.groups)
	cel.equals(cel.map_filter([[c4, c6] | some g_1 in l2; c4 := [v3 | v3 := startswith(g_1, "team-")]; c6 := [v5 | v5 := concat("", [g_1, "!"])]]), ["team-a!"])
}
