# uses_arguments: false
# refs: 
package mcpgate.generated.golden

import data.mcpgate.cel

r0 if {
	cel.divide(-7, 2) == -3
	t1 := -7 % 2
	t1 == -1
}
