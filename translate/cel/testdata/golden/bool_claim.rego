# uses_arguments: false
# refs: input.jwt.claims.email_verified
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.jwt.claims.email_verified == true
