"""Standard protocols: AutoBot as an MCP server (mcp_server.py) and an A2A agent (a2a_server.py).

Both serve the operator's tool registry (chat/tools/) with the same permissions, approvals
and audit as the chat (see docs/interop.md)."""
