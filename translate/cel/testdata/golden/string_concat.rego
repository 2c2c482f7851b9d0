# uses_arguments: false
# refs: input.jwt.claims.sub input.request.headers["x-user"]
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if concat("", ["user:", input.jwt.claims.sub]) == input.request.headers["x-user"]
