"""One MCP tool call through Temporal: ``saga mcp call SERVER TOOL --args JSON``."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from sagaworks import Pausable

with workflow.unsafe.imports_passed_through():
    from sagaworks.contracts.mcp import (
        McpCallInput,
        McpCallStatus,
        McpListInput,
        McpServerTools,
        McpToolInfo,
        McpToolOutput,
    )
    from sagaworks.workflows.aggregate import failure_text
    from sagaworks.workflows.mcp import McpTools
    from sagaworks.policies import mcp_call


@workflow.defn
class McpToolCall(Pausable):
    """List the server's tools, validate the arguments, call the tool (one activity)."""

    def __init__(self) -> None:
        self._input: McpCallInput | None = None
        self._done = 0

    @workflow.run
    async def run(self, request: McpCallInput) -> McpToolOutput:
        self._input = request
        await self._unpaused()
        output = await McpTools().call(
            request.server, request.tool, request.arguments, mcp_call(request.timeout_seconds)
        )
        self._done = 1
        self._state = "completed"
        return output

    @workflow.query
    def status(self) -> McpCallStatus:
        """Whether the call has answered."""
        request = self._input
        return McpCallStatus(
            state=self._state,
            current_step=None if self._done else "call",
            done=self._done,
            total=1,
            server=request.server if request else "",
            tool=request.tool if request else "",
        )


@workflow.defn
class McpListTools:
    """Every tool of the given servers, one listing activity per server in parallel."""

    @workflow.run
    async def run(self, request: McpListInput) -> list[McpServerTools]:
        return list(await asyncio.gather(*(self._server(name) for name in request.servers)))

    @staticmethod
    async def _server(name: str) -> McpServerTools:
        try:
            tools = await McpTools().tools(name)
        except ActivityError as failure:
            return McpServerTools(server=name, error=failure_text(failure))
        return McpServerTools(server=name, tools=[_tool_info(tool) for tool in tools.values()])


def _tool_info(tool: dict[str, Any]) -> McpToolInfo:
    schema = tool.get("input_schema") or {}
    required = list(schema.get("required", []))
    description = (tool.get("description") or "").strip()
    return McpToolInfo(
        name=tool["name"],
        description=description.splitlines()[0] if description else "",
        required=required,
        optional=[name for name in schema.get("properties", {}) if name not in required],
    )
