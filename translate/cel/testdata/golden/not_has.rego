# uses_arguments: false
# refs: input.jwt.claims.email
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.has_field(input.jwt.claims, "email") == false
