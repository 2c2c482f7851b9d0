package mcpgate.generated.t_require

r0 if input.jwt.claims.sub

match contains 0 if r0

list_match contains 0 if r0
