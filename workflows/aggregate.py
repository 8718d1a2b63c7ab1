"""``aggregate``: one question fanned out to several MCP sources, partial failure kept.

Every item of every relevant source (each city, search term, query) is its own activity,
all in parallel, each bounded by its source's budget (``policies.MCP_BUDGETS``: weather
5 s per city, files 10 s, database 15 s per attempt). A failed item never fails the run:
the result lists completed, partial, failed and skipped sources with each item's error.
An item's answer over ``MAX_ITEM_RESULT_BYTES`` (16 KiB) fails that item, so the result
stays bounded. Pausing holds items that have not started; cancelling cancels the calls in
flight (the step runner's pause, cancel and status; the fan-out keeps its shape).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from sagaworks import McpTools, StepWorkflow, failure_text
    from sagaworks.contracts.aggregate import (
        MAX_ITEM_RESULT_BYTES,
        AggregateInput,
        AggregateResult,
        AggregateStatus,
        ItemReport,
        SourceReport,
        plan_sources,
    )
    from sagaworks.policies import MCP_BUDGETS, mcp_call

ATTEMPTS = 2
"""Each item is tried twice: one retry for a transient fault, within the answer's patience."""


@workflow.defn
class Aggregation(StepWorkflow):
    """Answer a question from weather, files and the database, whatever each manages."""

    # Its branches are no steps: a restart would reuse nothing (run it again instead).
    restarts_from_steps = False

    def __init__(self) -> None:
        super().__init__()
        self._sources: list[SourceReport] = []
        self._mcp = McpTools()

    @workflow.run
    async def run(self, request: AggregateInput) -> AggregateResult:
        self._sources = plan_sources(request)
        async with self.steps.plan(()):
            await asyncio.gather(*(self._source(source) for source in self._sources if source.state != "skipped"))
        return self._result(request.question)

    async def _source(self, source: SourceReport) -> None:
        source.state = "running"
        arguments: list[dict[str, Any]]
        if source.source == "files":
            # search_files needs a root the server allows; the server says which.
            root = await self._call(source, None, "list_allowed_directories", {})
            if root is None:
                return
            directory = root.text.splitlines()[-1].strip()
            arguments = [{"path": directory, "pattern": f"**/*{item.item}*"} for item in source.items]
            tool = "search_files"
        elif source.source == "weather":
            arguments = [{"city": item.item} for item in source.items]
            tool = "get_weather"
        else:
            arguments = [{"query": item.item} for item in source.items]
            tool = "read_query"
        await asyncio.gather(
            *(self._call(source, item, tool, args) for item, args in zip(source.items, arguments, strict=True))
        )
        source.settle()

    async def _call(self, source: SourceReport, item: ItemReport | None, tool: str, arguments: dict[str, Any]) -> Any:
        """One call of ``source``; failures are recorded on ``item`` (or the whole source)."""
        await self.steps.unpaused()
        if item is not None:
            item.state = "running"
        try:
            output = await self._mcp.call(
                source.source, tool, arguments, mcp_call(MCP_BUDGETS[source.source], ATTEMPTS)
            )
        except (ActivityError, ApplicationError) as failure:
            for target in [item] if item is not None else source.items:
                target.state, target.error = "failed", failure_text(failure)
            if item is None:
                source.state = "failed"
            return None
        if item is not None:
            result = output.structured if output.structured is not None else output.text
            size = len(json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=str).encode())
            if size > MAX_ITEM_RESULT_BYTES:
                # Each answer is bounded by the worker's guard; the result holds up to 31 of them.
                item.state = "failed"
                item.error = (
                    f"McpResultTooLarge: {source.source}.{tool} answered {size:,} bytes, over the "
                    f"{MAX_ITEM_RESULT_BYTES:,} bytes an aggregate keeps per item: ask for less, "
                    f"or call the tool alone (saga mcp call)"
                )
            else:
                item.state = "completed"
                item.result = result
        return output

    def _result(self, question: str) -> AggregateResult:
        by_state: dict[str, list[str]] = {}
        for source in self._sources:
            by_state.setdefault(source.state, []).append(source.source)
        answered = by_state.get("completed", []) + by_state.get("partial", [])
        summary = (f"answered from {', '.join(answered)}" if answered else "no source could answer") + "".join(
            f"; {state}: {', '.join(names)}" for state, names in by_state.items() if state in ("partial", "failed")
        )
        return AggregateResult(
            question=question,
            sources=self._sources,
            completed=by_state.get("completed", []),
            partial=by_state.get("partial", []),
            failed=by_state.get("failed", []),
            skipped=by_state.get("skipped", []),
            summary=summary,
        )

    @workflow.query
    def status(self) -> AggregateStatus:
        """Each source's state and items, live."""
        items = [item for source in self._sources for item in source.items]
        running = [s.source for s in self._sources if s.state == "running"]
        done = sum(item.state in ("completed", "failed") for item in items)
        return AggregateStatus(
            **dict(self.steps.status())
            | {"current_step": ", ".join(running) or None, "done": done, "total": len(items)},
            sources=self._sources,
        )
