"""The sequential family: ingest -> process -> analyse -> report, each step an activity.

The report's step timings come from the workflow's own clock (``workflow.now()``, the time
of the workflow task that saw each step start and end), so they are part of the history
and replay to the same values.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks import ActivityOptions, StepWorkflow, current_cpu_queue, policies
    from sagaworks.activities.sequential import analyse_text, ingest_text, process_text, render_report
    from sagaworks.contracts.sequential import SEQUENTIAL_STEPS, ReportInput, SequentialInput, SequentialResult


@workflow.defn
class SequentialWorkflow(StepWorkflow):
    """Four steps, each on the previous step's output; the first failure ends the run."""

    @workflow.run
    async def run(self, request: SequentialInput) -> SequentialResult:
        """Return the report and every step's outcome and timing."""
        cpu = ActivityOptions(**policies.TEXT_ANALYSIS, task_queue=current_cpu_queue())
        async with self.steps.plan(SEQUENTIAL_STEPS, options=cpu) as steps:
            delay = request.step_delay_seconds
            ingested = await steps.run(
                "ingest",
                ingest_text,
                request.text,
                delay=delay,
                describe=lambda r: f"{r.characters} characters accepted",
            )
            processed = await steps.run(
                "process",
                process_text,
                ingested.text,
                delay=delay,
                describe=lambda r: f"{r.profile.sentences} sentences, {r.profile.words} words",
            )
            analysis = await steps.run(
                "analyse",
                analyse_text,
                ingested.text,
                delay=delay,
                describe=lambda r: f"{len(r.keywords.keywords)} keywords, sentiment {r.sentiment.label}",
            )
            # The report lists the steps before it; its own timing is in the result.
            report_input = ReportInput(steps=steps.timings, profile=processed.profile, analysis=analysis)
            report = await steps.run(
                "report",
                render_report,
                report_input,
                delay=delay,
                describe=lambda r: f"{len(r)} characters of Markdown",
            )
        return SequentialResult(report=report, steps=steps.timings, profile=processed.profile, analysis=analysis)
