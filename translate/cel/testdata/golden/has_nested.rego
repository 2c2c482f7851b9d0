# uses_arguments: false
# refs: input.jwt.claims.nested.key
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	cel.has_field(input.jwt.claims.nested, "key")
	input.jwt.claims.nested.key == "value"
}
