"""Durable MCP tool calls from workflow code, on the activities of ``temporalio-mcp``.

The worker's ``MCPPlugin`` registers, per configured server, the activities
``temporalio.mcp.<server>.list-tools`` and ``temporalio.mcp.<server>.call-tool`` (the names
its README documents) and does the I/O (``activities/mcp_servers.py``). Workflow code calls
them by name here rather than through ``temporalio.mcp.TemporalMCPClient``: that proxy
imports the whole MCP SDK (a server framework included) with the catalog, which made every
``saga`` command a second slower, and an SDK import first made inside the workflow sandbox
(the replayer has no plugin to pre-import it) fails. Its request and result shapes are the
plugin's: the request dataclass's fields, and ``CallToolResult``/``ListToolsResult`` dumped as
JSON with field names.

This adds what the workflow side needs: each server's tool list is listed once per run
and recorded in history, arguments are validated against the tool's input schema before
any call is scheduled, and every call gets a budget and retry policy from
``sagaworks/policies.py``. A tool's own ``isError`` arrives as a non-retryable
``McpToolError`` (raised by the worker-side guard), and a tool that may write is refused
before it is scheduled unless the configuration allows it for this run's family (the guard
marks each listed tool with its decision).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.errors import validation_error
    from sagaworks.contracts.mcp import REFUSAL_KEY, McpToolOutput
    from sagaworks.policies import MCP_LIST, ActivityOptions

Tool = dict[str, Any]
"""An MCP ``Tool`` as the plugin's list-tools activity returns it (``name``, ``description``,
``input_schema``...)."""


def schema_problems(tool: Tool, arguments: dict[str, Any]) -> list[str]:
    """Every way ``arguments`` break ``tool``'s input schema, each naming the argument."""
    # Imported here: jsonschema comes with the mcp extra, and the catalog imports this module
    # (through the families that call tools) wherever sagaworks is installed.
    with workflow.unsafe.imports_passed_through():
        import jsonschema

    schema = tool.get("input_schema") or {"type": "object"}
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
            listed = await workflow.execute_activity(
                f"temporalio.mcp.{server}.list-tools", {"factory_argument": None}, result_type=dict, **MCP_LIST
            )
            self._tools[server] = {tool["name"]: tool for tool in listed["tools"]}
        return self._tools[server]

    async def call(self, server: str, tool: str, arguments: dict[str, Any], options: ActivityOptions) -> McpToolOutput:
        """Call ``tool`` of ``server`` as an activity, after checking its arguments.

        Raises a non-retryable validation error naming the argument (no call is made) for
        an unknown tool or arguments its schema refuses; an ``ActivityError`` whose cause
        is an ``McpToolError`` when the tool answers ``isError``.
        """
        known = await self.tools(server)
        if tool not in known:
            raise validation_error(f"{server} has no tool {tool!r}; it has: {', '.join(sorted(known))}", field="tool")
        # The worker's guard decided when listing (configuration and the server's annotations);
        # histories recorded before it did carry no decision, and replay as they ran.
        if refusal := known[tool].get(REFUSAL_KEY):
            raise validation_error(refusal, field="tool")
        if problems := schema_problems(known[tool], arguments):
            raise validation_error(f"{server}.{tool} refused: " + "; ".join(problems), field="arguments")
        result = await workflow.execute_activity(
            f"temporalio.mcp.{server}.call-tool",
            {"factory_argument": None, "name": tool, "arguments": arguments, "meta": None},
            result_type=dict,
            **options,
        )
        text = "\n".join(block["text"] for block in result.get("content") or [] if block.get("type") == "text")
        return McpToolOutput(server=server, tool=tool, text=text, structured=result.get("structured_content"))
