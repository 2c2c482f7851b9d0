package mcpgate.user.tonly

allow if input.mcp.tool.name == "echo"
