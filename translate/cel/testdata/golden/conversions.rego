# uses_arguments: false
# refs: input.jwt.claims.level input.request.headers["x-count"]
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	cel.to_int(input.request.headers["x-count"]) < 5
	cel.to_string(input.jwt.claims.level) == "3"
}
