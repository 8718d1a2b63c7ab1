"""A workflow that calls an MCP call-tool activity without listing the tools first, as any
workflow code could: the workflow-side check never runs, only the worker's guard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from sagaworks.contracts.mcp import McpCallInput


@workflow.defn
class DirectToolCall:
    @workflow.run
    async def run(self, request: McpCallInput) -> dict[str, Any]:
        return await workflow.execute_activity(
            f"temporalio.mcp.{request.server}.call-tool",
            {"factory_argument": None, "name": request.tool, "arguments": request.arguments, "meta": None},
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=2),
        )
