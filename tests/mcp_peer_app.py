"""The peer the MCP probes run against (``tests/test_mcp_probes.py``): the official MCP
Python SDK's Streamable HTTP server (``MCPServer``, stateful, its default SSE answers),
one tool, for uvicorn to serve at ``/mcp``."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("probe-peer")


@server.tool()
def echo(text: str) -> str:
    """Answer ``text``."""
    return text


app = server.streamable_http_app()
