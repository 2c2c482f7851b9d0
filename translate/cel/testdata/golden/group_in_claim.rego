# uses_arguments: false
# refs: input.jwt.claims.groups
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.member("admin", input.jwt.claims.groups)
