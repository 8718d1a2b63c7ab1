"""One MCP tool call through Temporal: ``saga mcp call SERVER TOOL --args JSON``."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from sagaworks import McpTools, StepWorkflow, failure_text
    from sagaworks.contracts.mcp import (
        McpCallInput,
        McpCallStatus,
        McpListInput,
        McpServerTools,
        McpToolInfo,
        McpToolOutput,
    )
    from sagaworks.policies import mcp_call


@workflow.defn
class McpToolCall(StepWorkflow):
    """List the server's tools, validate the arguments, call the tool (one activity); the
    step runner's status, pause (before the call) and cancel."""

    # Its one call is no step: a restart would reuse nothing (run it again instead).
    restarts_from_steps = False

    def __init__(self) -> None:
        super().__init__()
        self._input: McpCallInput | None = None
        self._done = 0

    @workflow.run
    async def run(self, request: McpCallInput) -> McpToolOutput:
        self._input = request
        async with self.steps.plan(()):
            await self.steps.unpaused()
            output = await McpTools().call(
                request.server, request.tool, request.arguments, mcp_call(request.timeout_seconds)
            )
            self._done = 1
        return output

    @workflow.query
    def status(self) -> McpCallStatus:
        """Whether the call has answered."""
        request = self._input
        status = self.steps.status()
        calling = not self._done and status.state in ("running", "paused")
        return McpCallStatus(
            **dict(status) | {"current_step": "call" if calling else None, "done": self._done, "total": 1},
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
