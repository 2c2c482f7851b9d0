package mcpgate.generated.t_require

r0 if input.jwt.claims.sub
