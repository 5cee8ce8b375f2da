"""`nanobanana mcp`: nanobanana's tools for AI agents, over the Model Context Protocol.

- policy.py: what the user allowed (the budget, the directories files may be read from);
- adapter.py: the one module that uses the CLI's engine and stores;
- tools.py: each tool's schema, argument checks and answer;
- server.py: the protocol, through the `mcp` SDK (the `mcp` extra), imported only to serve;
- clients.py: the snippet that registers the server with each MCP client.
"""
