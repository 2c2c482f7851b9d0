# uses_arguments: false
# refs: input.jwt.claims.org input.jwt.claims.org.id
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	input.jwt.claims.org != null
	cel.has_field(input.jwt.claims.org, "id")
}
