# uses_arguments: false
# refs: input.jwt.claims.realm_access.roles
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if cel.member("admin", input.jwt.claims.realm_access.roles)
