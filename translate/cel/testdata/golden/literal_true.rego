# uses_arguments: false
# refs: 
package mcpgate.generated.golden

import data.mcpgate.cel

r0 := true
