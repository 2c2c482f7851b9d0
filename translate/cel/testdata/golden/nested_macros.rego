# uses_arguments: false
# refs: input.jwt.claims.orgs
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	some o_1 in cel.iterable(input.jwt.claims.orgs)
	some t_2 in cel.iterable(o_1.teams)
	t_2 == "sre"
}
