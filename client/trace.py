"""The execution trace of any run, derived from its Temporal history (and its children's).

Nothing here reads files we wrote on the side: every timing, attempt count, outcome and
(optionally) result comes from the events Temporal recorded. The same trace serves
``saga trace``, the HTTP API and the post-mortem.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from sagaworks import error_kind
from sagaworks.client.runs import status_name
from sagaworks.client.stats import local_activity_marker

StepKind = Literal["activity", "local_activity", "child_workflow", "timer", "signal", "update"]
StepOutcome = Literal[
    "completed", "failed", "timed_out", "canceled", "terminated", "running", "fired", "received", "rejected"
]


class TraceStep(BaseModel):
    """One thing the run did or received, in the order it began."""

    kind: StepKind
    name: str
    summary: str | None = None
    """The summary the workflow gave the step (shown in the Web UI), e.g. ``compensate charge_payment``."""
    started: datetime
    closed: datetime | None = None
    duration_ms: float | None = None
    attempts: int | None = None
    outcome: StepOutcome
    error_type: str | None = None
    error: str | None = None
    retried_error_type: str | None = None
    """The error class of the attempt before the last one, which Temporal retried (an
    activity's history keeps only that one of the failures it retried)."""
    result: Any = None
    """The step's decoded result, when asked for (``payloads=True``)."""
    child: RunTrace | None = None


class RunTrace(BaseModel):
    """A run from start to close (or to now), step by step."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    started: datetime
    closed: datetime | None
    duration_ms: float | None
    steps: list[TraceStep]
    error_type: str | None = None
    error: str | None = None


def _time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _ms(start: datetime, end: datetime | None) -> float | None:
    return round((end - start).total_seconds() * 1000, 1) if end else None


class _Builder:
    def __init__(self, client: Client, payloads: bool, depth: int) -> None:
        self.client = client
        self.payloads = payloads
        self.depth = depth

    async def error(self, failure: Failure) -> tuple[str, str]:
        """The type and message of the outermost failure that has a type of its own.

        Decoded through the client's data converter: with encryption on, the message is
        in an encrypted payload and the server's copy says only "Encoded failure".
        """
        error = await self.client.data_converter.decode_failure(failure)
        while error.__cause__ is not None and not (isinstance(error, ApplicationError) and error.type):
            error = error.__cause__
        return error_kind(error), getattr(error, "message", None) or str(error)

    async def summary(self, event: HistoryEvent) -> str | None:
        """The summary the workflow gave a command (a payload: encrypted when payloads are)."""
        if not (event.HasField("user_metadata") and event.user_metadata.HasField("summary")):
            return None
        [text] = await self.client.data_converter.decode([event.user_metadata.summary])
        return str(text)

    async def decode(self, payloads: Payloads) -> Any:
        if not self.payloads or not payloads.payloads:
            return None
        values = await self.client.data_converter.decode(payloads.payloads)
        return values[0] if len(values) == 1 else values

    async def run(self, workflow_id: str, run_id: str | None) -> RunTrace:
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        events = list(history.events)
        description = await handle.describe()
        steps: dict[int, TraceStep] = {}  # by the id of the event that began the step
        trace = RunTrace(
            workflow_id=workflow_id,
            run_id=description.run_id,
            workflow_type=description.workflow_type,
            status=status_name(description.status),
            started=_time(events[0].event_time),
            closed=None,
            duration_ms=None,
            steps=[],
        )
        for event in events:
            await self._apply(event, steps, trace)
        trace.steps = [steps[key] for key in sorted(steps)]
        for step in trace.steps:
            step.duration_ms = _ms(step.started, step.closed)
        trace.duration_ms = _ms(trace.started, trace.closed)
        return trace

    async def _apply(self, event: HistoryEvent, steps: dict[int, TraceStep], trace: RunTrace) -> None:
        at = _time(event.event_time)
        which = event.WhichOneof("attributes")
        if which == "activity_task_scheduled_event_attributes":
            attrs = event.activity_task_scheduled_event_attributes
            steps[event.event_id] = TraceStep(
                kind="activity",
                name=attrs.activity_type.name,
                summary=await self.summary(event),
                started=at,
                outcome="running",
            )
        elif which == "activity_task_started_event_attributes":
            started = event.activity_task_started_event_attributes
            steps[started.scheduled_event_id].attempts = started.attempt
            if started.HasField("last_failure"):
                steps[started.scheduled_event_id].retried_error_type, _ = await self.error(started.last_failure)
        elif which in (
            "activity_task_completed_event_attributes",
            "activity_task_failed_event_attributes",
            "activity_task_timed_out_event_attributes",
            "activity_task_canceled_event_attributes",
        ):
            closed = getattr(event, which)
            step = steps[closed.scheduled_event_id]
            step.closed = at
            step.outcome = {
                "activity_task_completed_event_attributes": "completed",
                "activity_task_failed_event_attributes": "failed",
                "activity_task_timed_out_event_attributes": "timed_out",
                "activity_task_canceled_event_attributes": "canceled",
            }[which]  # type: ignore[assignment]  # the dict's values are TraceStep.outcome's literals
            if step.outcome == "completed":
                step.result = await self.decode(closed.result)
            elif closed.HasField("failure"):
                step.error_type, step.error = await self.error(closed.failure)
        elif which == "marker_recorded_event_attributes":
            await self._local_activity(event, steps)
        elif which == "start_child_workflow_execution_initiated_event_attributes":
            initiated = event.start_child_workflow_execution_initiated_event_attributes
            steps[event.event_id] = TraceStep(
                kind="child_workflow",
                name=initiated.workflow_type.name,
                summary=initiated.workflow_id,
                started=at,
                outcome="running",
            )
        elif which == "start_child_workflow_execution_failed_event_attributes":
            start_failed = event.start_child_workflow_execution_failed_event_attributes
            step = steps[start_failed.initiated_event_id]
            step.closed, step.outcome = at, "failed"
            step.error_type, step.error = "StartChildWorkflowFailed", f"could not start: {start_failed.cause}"
        elif (
            which
            and which.startswith("child_workflow_execution_")
            and which != "child_workflow_execution_started_event_attributes"
        ):
            child_closed = getattr(event, which)
            step = steps[child_closed.initiated_event_id]
            step.closed = at
            step.outcome = which.removeprefix("child_workflow_execution_").removesuffix("_event_attributes")  # type: ignore[assignment]  # a child's closing event names one of TraceStep.outcome's literals
            if step.outcome == "completed":
                step.result = await self.decode(child_closed.result)
            elif getattr(child_closed, "failure", None) is not None and child_closed.HasField("failure"):
                step.error_type, step.error = await self.error(child_closed.failure)
            if self.depth > 0:
                execution = child_closed.workflow_execution
                child = _Builder(self.client, self.payloads, self.depth - 1)
                step.child = await child.run(execution.workflow_id, execution.run_id)
        elif which == "timer_started_event_attributes":
            timer = event.timer_started_event_attributes
            seconds = timer.start_to_fire_timeout.ToTimedelta().total_seconds()
            steps[event.event_id] = TraceStep(
                kind="timer",
                name=f"timer {seconds:g} s",
                summary=await self.summary(event),
                started=at,
                outcome="running",
            )
        elif which in ("timer_fired_event_attributes", "timer_canceled_event_attributes"):
            timer_closed = getattr(event, which)
            step = steps[timer_closed.started_event_id]
            step.closed = at
            step.outcome = "fired" if which == "timer_fired_event_attributes" else "canceled"
        elif which == "workflow_execution_signaled_event_attributes":
            name = event.workflow_execution_signaled_event_attributes.signal_name
            steps[event.event_id] = TraceStep(kind="signal", name=name, started=at, closed=at, outcome="received")
        elif which == "workflow_execution_update_accepted_event_attributes":
            accepted = event.workflow_execution_update_accepted_event_attributes
            steps[event.event_id] = TraceStep(
                kind="update",
                name=accepted.accepted_request.input.name,
                summary=accepted.protocol_instance_id,
                started=at,
                outcome="running",
            )
        elif which == "workflow_execution_update_completed_event_attributes":
            update_done = event.workflow_execution_update_completed_event_attributes
            step = steps[update_done.accepted_event_id]
            step.closed = at
            if update_done.outcome.HasField("failure"):
                step.outcome = "failed"
                step.error_type, step.error = await self.error(update_done.outcome.failure)
            else:
                step.outcome = "completed"
                step.result = await self.decode(update_done.outcome.success)
        elif which in (
            "workflow_execution_completed_event_attributes",
            "workflow_execution_failed_event_attributes",
            "workflow_execution_canceled_event_attributes",
            "workflow_execution_terminated_event_attributes",
            "workflow_execution_timed_out_event_attributes",
            "workflow_execution_continued_as_new_event_attributes",
        ):
            trace.closed = at
            attrs = getattr(event, which)
            if hasattr(attrs, "failure") and attrs.HasField("failure"):
                trace.error_type, trace.error = await self.error(attrs.failure)

    async def _local_activity(self, event: HistoryEvent, steps: dict[int, TraceStep]) -> None:
        payload = local_activity_marker(event)
        if payload is None:
            return
        attrs = event.marker_recorded_event_attributes
        try:
            data = json.loads(payload.data)
        except ValueError:  # encoded by a codec like any payload
            [data] = await self.client.data_converter.decode([payload])
        at = _time(event.event_time)
        step = TraceStep(
            kind="local_activity",
            name=data.get("activity_type", "local activity"),
            started=at,
            closed=at,
            attempts=data.get("attempt"),
            outcome="failed" if attrs.HasField("failure") else "completed",
        )
        if attrs.HasField("failure"):
            step.error_type, step.error = await self.error(attrs.failure)
        elif "result" in attrs.details:
            step.result = await self.decode(attrs.details["result"])
        steps[event.event_id] = step


async def trace_run(
    client: Client, workflow_id: str, *, run_id: str | None = None, payloads: bool = False, depth: int = 2
) -> RunTrace:
    """The trace of a run (the latest by default), with child runs down to ``depth`` levels.

    Args:
        payloads: Include each step's decoded result (through the client's codec).
    """
    return await _Builder(client, payloads, depth).run(workflow_id, run_id)


def drop_results(trace: RunTrace) -> None:
    """Clear every step's decoded result, the children's too (a trace without payloads)."""
    for step in trace.steps:
        step.result = None
        if step.child is not None:
            drop_results(step.child)


def trace_markdown(trace: RunTrace, level: int = 2) -> str:
    """The trace as a Markdown report: one table of steps per run, children below."""
    lines = [
        f"{'#' * level} {trace.workflow_type} `{trace.workflow_id}`",
        "",
        f"{trace.status}, {trace.duration_ms or 0:.0f} ms, run `{trace.run_id}`"
        + (f"; {trace.error_type}: {trace.error}" if trace.error else ""),
        "",
        "| # | step | kind | attempts | ms | outcome | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, step in enumerate(trace.steps, 1):
        note = f"{step.error_type}: {step.error}" if step.error else (step.summary or "")
        note = note.replace("|", "\\|").replace("\n", " ")
        ms = f"{step.duration_ms:.0f}" if step.duration_ms is not None else ""
        lines.append(
            f"| {number} | {step.name} | {step.kind} | {step.attempts or ''} | {ms} | {step.outcome} | {note} |"
        )
    for step in trace.steps:
        if step.child is not None:
            lines += ["", trace_markdown(step.child, min(level + 1, 6))]
    return "\n".join(lines)
