"""MCP servers of our own that the default MCP configuration (``mcp_servers/servers.toml``) runs.

The other servers of that configuration come from the registries: the reference SQLite
server from PyPI (in its own environment, ``.venv-mcp-sqlite``) and the reference
filesystem server from npm (``mcp_servers/node_modules``); ``make install`` installs both.
"""
