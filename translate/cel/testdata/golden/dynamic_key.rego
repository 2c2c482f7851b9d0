# uses_arguments: false
# refs: input.jwt.claims.header_name input.jwt.claims.header_value input.request.headers
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.request.headers[input.jwt.claims.header_name] == input.jwt.claims.header_value
