# Stand-in for a user module with rate limits, used by ratelimit_test.rego.
package mcpgate.user.tlimits

ratelimit contains {"key": input.jwt.claims.sub, "limit": 3, "period": 60}

ratelimit contains {"key": input.mcp.tool.name, "limit": 10, "period": 1, "burst": 1}
