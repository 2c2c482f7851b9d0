# uses_arguments: false
# refs: input.jwt.claims.groups[0]
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.jwt.claims.groups[0] == "admin"
