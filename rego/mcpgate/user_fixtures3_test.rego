package mcpgate.user.thide

deny contains "no initialize here" if input.mcp.method == "initialize"

deny contains "secret tools are hidden" if input.mcp.tool.name == "secret"
