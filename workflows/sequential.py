"""The sequential family: ingest -> process -> analyse -> report, each step an activity.

The report's step timings come from the workflow's own clock (``workflow.now()``, the time
of the workflow task that saw each step start and end), so they are part of the history
and replay to the same values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import ActivityOptions, StepWorkflow, policies
    from sagaworks.activities.sequential import analyse_text, ingest_text, process_text, render_report
    from sagaworks.contracts.sequential import SEQUENTIAL_STEPS, ReportInput, SequentialInput, SequentialResult
    from sagaworks.workflows.cpu import current_cpu_queue

R = TypeVar("R")


@workflow.defn
class SequentialWorkflow(StepWorkflow):
    """Four steps, each on the previous step's output; the first failure ends the run."""

    @workflow.run
    async def run(self, request: SequentialInput) -> SequentialResult:
        """Return the report and every step's outcome and timing."""
        cpu = ActivityOptions(**policies.TEXT_ANALYSIS, task_queue=current_cpu_queue())
        delay = timedelta(seconds=request.step_delay_seconds)

        async def step(name: str, activity: Callable[..., R], arg: Any, describe: Callable[[R], str]) -> R:
            if delay:
                await workflow.sleep(delay)
            return await steps.run(name, activity, arg, describe=describe)

        async with self.steps.plan(SEQUENTIAL_STEPS, options=cpu) as steps:
            ingested = await step("ingest", ingest_text, request.text, lambda r: f"{r.characters} characters accepted")
            processed = await step(
                "process", process_text, ingested.text, lambda r: f"{r.profile.sentences} sentences, {r.profile.words} words"
            )
            analysis = await step(
                "analyse", analyse_text, ingested.text,
                lambda r: f"{len(r.keywords.keywords)} keywords, sentiment {r.sentiment.label}",
            )
            # The report lists the steps before it; its own timing is in the result.
            report_input = ReportInput(steps=steps.timings, profile=processed.profile, analysis=analysis)
            report = await step("report", render_report, report_input, lambda r: f"{len(r)} characters of Markdown")
        return SequentialResult(report=report, steps=steps.timings, profile=processed.profile, analysis=analysis)
