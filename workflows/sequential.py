"""The sequential family: ingest -> process -> analyse -> report, each step an activity.

The report's step timings come from the workflow's own clock (``workflow.now()``, the time
of the workflow task that saw each step start and end), so they are part of the history
and replay to the same values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from sagaworks.activities.sequential import analyse_text, ingest_text, process_text, render_report
    from sagaworks.contracts.sequential import (
        SEQUENTIAL_STEPS,
        ReportInput,
        SequentialInput,
        SequentialResult,
        SequentialStatus,
        SequentialStep,
        StepTiming,
    )
    from sagaworks.workflows import policies
    from sagaworks.workflows.common import Pausable
    from sagaworks.workflows.cpu import current_cpu_queue

T = TypeVar("T")


@workflow.defn
class SequentialWorkflow(Pausable):
    """Four steps, each on the previous step's output; the first failure ends the run."""

    def __init__(self) -> None:
        self._steps: list[StepTiming] = []
        self._current: SequentialStep | None = None

    async def _step(
        self,
        name: SequentialStep,
        call: Callable[[], Awaitable[T]],
        describe: Callable[[T], str],
        delay: float,
    ) -> T:
        await self._unpaused()
        if delay:
            await workflow.sleep(timedelta(seconds=delay))
        self._current = name
        started = workflow.now()
        value = await call()
        self._steps.append(
            StepTiming(step=name, outcome=describe(value), started_at=started, finished_at=workflow.now())
        )
        return value

    @workflow.run
    async def run(self, request: SequentialInput) -> SequentialResult:
        """Return the report and every step's outcome and timing."""
        delay = request.step_delay_seconds
        cpu = policies.ActivityOptions(**policies.TEXT_ANALYSIS, task_queue=current_cpu_queue())
        ingested = await self._step(
            "ingest",
            lambda: workflow.execute_activity(ingest_text, request.text, **cpu),
            lambda done: f"{done.characters} characters accepted",
            delay,
        )
        processed = await self._step(
            "process",
            lambda: workflow.execute_activity(process_text, ingested.text, **cpu),
            lambda done: f"{done.profile.sentences} sentences, {done.profile.words} words",
            delay,
        )
        analysis = await self._step(
            "analyse",
            lambda: workflow.execute_activity(analyse_text, ingested.text, **cpu),
            lambda done: f"{len(done.keywords.keywords)} keywords, sentiment {done.sentiment.label}",
            delay,
        )
        # The report lists the steps before it; its own timing is in the result.
        steps = [*self._steps]
        report = await self._step(
            "report",
            lambda: workflow.execute_activity(
                render_report,
                ReportInput(steps=steps, profile=processed.profile, analysis=analysis),
                **cpu,
            ),
            lambda done: f"{len(done)} characters of Markdown",
            delay,
        )
        self._current = None
        self._state = "completed"
        return SequentialResult(report=report, steps=self._steps, profile=processed.profile, analysis=analysis)

    @workflow.query
    def status(self) -> SequentialStatus:
        """The step running now and the steps done."""
        return SequentialStatus(
            state=self._state,
            current_step=self._current,
            done=len(self._steps),
            total=len(SEQUENTIAL_STEPS),
            completed_steps=[s.step for s in self._steps],
        )

