# uses_arguments: false
# refs: input.request.headers["x-team"]
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if input.request.headers["x-team"] == "a"
