# uses_arguments: false
# refs: input.jwt.claims.level
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.greater_or_equal(cel.dyn(input.jwt.claims.level), 2)
