"""Durable MCP tool calls from workflow code, on ``temporalio.mcp.TemporalMCPClient``.

The plugin's activities (``activities/mcp_servers.py``) do the I/O; this adds what the
workflow side needs: each server's tool list is listed once per run and recorded in
history, arguments are validated against the tool's input schema before any call is
scheduled, and every call gets a budget and retry policy from ``workflows/policies.py``.
And the tool's own ``isError`` arrives as a non-retryable ``McpToolError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.errors import validation_error
    from contracts.mcp import McpToolOutput
    from workflows.policies import MCP_LIST, ActivityOptions

if TYPE_CHECKING:
    from mcp.types import Tool
    from temporalio.mcp import TemporalMCPClient


def _mcp_client(server: str, options: ActivityOptions) -> TemporalMCPClient:
    # The MCP SDK is imported on first use, not with the catalog: every `saga` command
    # imports the catalog, and the SDK (a server framework included) takes a second to load.
    with workflow.unsafe.imports_passed_through():
        from temporalio.mcp import TemporalMCPClient

    return TemporalMCPClient(server, activity_config=dict(options))  # type: ignore[arg-type]


def schema_problems(tool: Tool, arguments: dict[str, Any]) -> list[str]:
    """Every way ``arguments`` break ``tool``'s input schema, each naming the argument."""
    with workflow.unsafe.imports_passed_through():
        import jsonschema

    schema = tool.input_schema
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = []
    for problem in sorted(validator.iter_errors(arguments), key=lambda p: list(p.path)):
        where = ".".join(str(p) for p in problem.path)
        problems.append(f"{where}: {problem.message}" if where else problem.message)
    return problems


class McpTools:
    """The configured MCP servers as seen from one workflow run."""

    def __init__(self) -> None:
        self._tools: dict[str, dict[str, Tool]] = {}

    async def tools(self, server: str) -> dict[str, Tool]:
        """``server``'s tools by name, listed once per run."""
        if server not in self._tools:
            listed = await _mcp_client(server, MCP_LIST).list_tools()
            self._tools[server] = {tool.name: tool for tool in listed.tools}
        return self._tools[server]

    async def call(
        self, server: str, tool: str, arguments: dict[str, Any], options: ActivityOptions
    ) -> McpToolOutput:
        """Call ``tool`` of ``server`` as an activity, after checking its arguments.

        Raises a non-retryable validation error naming the argument (no call is made) for
        an unknown tool or arguments its schema refuses; an ``ActivityError`` whose cause
        is an ``McpToolError`` when the tool answers ``isError``.
        """
        known = await self.tools(server)
        if tool not in known:
            raise validation_error(f"{server} has no tool {tool!r}; it has: {', '.join(sorted(known))}", field="tool")
        if problems := schema_problems(known[tool], arguments):
            raise validation_error(f"{server}.{tool} refused: " + "; ".join(problems), field="arguments")
        result = await _mcp_client(server, options).call_tool(tool, arguments)
        text = "\n".join(block.text for block in result.content if block.type == "text")  # type: ignore[union-attr]
        return McpToolOutput(server=server, tool=tool, text=text, structured=result.structured_content)
