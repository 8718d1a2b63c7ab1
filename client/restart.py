"""Restart a step-runner run from any step, reusing the results of the steps before it.

Everything comes from the source run's history: the step runner schedules each step with
the step's name as its summary (local activities keep it in their marker), so the history
says which result is which step's, and which steps a compensation undid (``compensate
STEP``). The new run is the same workflow, id and input, started with a memo that links it
to its source (:data:`sagaworks.RESTART_MEMO`) and holds each reused result as the very
payload the history recorded (still encrypted when a codec encrypted it); the runner hands
those back instead of scheduling the steps (``sagaworks.Steps``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory, WorkflowQueryFailedError
from temporalio.common import RawValue, WorkflowIDReusePolicy
from temporalio.service import RPCError

from sagaworks import RESTART_MEMO, StepsRestart, restart_result_key
from sagaworks.client.stats import local_activity_marker

COMPENSATE_PREFIX = "compensate "
"""The summary the Saga gives an undo activity: ``compensate STEP``."""


class RestartRefused(Exception):
    """A restart that cannot be made (running source, unknown step, a step never ran...)."""


class RestartNeedsForce(RestartRefused):
    """A restart that would build on steps the source compensated: made only when forced
    (``--force``, the API's ``force=true``, the console's confirmation)."""

    def __init__(self, message: str, undone: list[str]) -> None:
        super().__init__(message)
        self.undone = undone


@dataclass
class SourceSteps:
    """What a run's history says of its steps."""

    order: list[str] = field(default_factory=list)
    """Every step the run reached (its reused steps first), in the order it reached them."""
    results: dict[str, Payload] = field(default_factory=dict)
    """The last successful result of each step, as recorded (encoded) in the history."""
    compensated: list[str] = field(default_factory=list)
    """The steps an undo activity was scheduled for."""
    restart: StepsRestart | None = None
    """Where the run itself was restarted from, if it was."""
    first_run_id: str = ""


async def _summary(client: Client, event: HistoryEvent) -> str | None:
    if not (event.HasField("user_metadata") and event.user_metadata.HasField("summary")):
        return None
    [text] = await client.data_converter.decode([event.user_metadata.summary])
    return str(text)


async def source_steps(client: Client, history: History | WorkflowHistory) -> SourceSteps:
    """The steps of a run, read from its history (and its memo, if it was a restart)."""
    started = history.events[0].workflow_execution_started_event_attributes
    steps = SourceSteps(first_run_id=started.first_execution_run_id or started.original_execution_run_id)
    memo = started.memo.fields
    if RESTART_MEMO in memo:
        [data] = await client.data_converter.decode([memo[RESTART_MEMO]])
        steps.restart = StepsRestart.model_validate(data)
        for reused in steps.restart.reused:
            steps.order.append(reused)
            steps.results[reused] = memo[restart_result_key(reused)]
    scheduled: dict[int, str] = {}
    activity_of: dict[str, str] = {}
    """Each step's activity type, as first scheduled."""

    def step_of(summary: str, activity_type: str) -> str:
        # A step run again may carry its detail after the step's name ("causal: mitigate
        # ..."), as runs recorded before every run of a step was summarised by its name did:
        # the same activity under "STEP: detail" after STEP ran is that step, and its result
        # the step's latest.
        head, separator, _ = summary.partition(": ")
        return head if separator and activity_of.get(head) == activity_type else summary

    def reached(name: str) -> None:
        if name.startswith(COMPENSATE_PREFIX):
            steps.compensated.append(name.removeprefix(COMPENSATE_PREFIX))
        elif name not in steps.order:
            steps.order.append(name)

    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = await _summary(client, event)
            if name is not None:
                activity_type = event.activity_task_scheduled_event_attributes.activity_type.name
                name = step_of(name, activity_type)
                activity_of.setdefault(name, activity_type)
                scheduled[event.event_id] = name
                reached(name)
        elif event.HasField("activity_task_completed_event_attributes"):
            attrs = event.activity_task_completed_event_attributes
            name = scheduled.get(attrs.scheduled_event_id)
            if name is not None and not name.startswith(COMPENSATE_PREFIX) and attrs.result.payloads:
                steps.results[name] = attrs.result.payloads[0]
        elif local_activity_marker(event) is not None:
            name = await _summary(client, event)
            if name is None:
                continue
            reached(name)
            marker = event.marker_recorded_event_attributes
            if not marker.HasField("failure") and "result" in marker.details and not name.startswith(COMPENSATE_PREFIX):
                steps.results[name] = marker.details["result"].payloads[0]
    return steps


@dataclass(frozen=True)
class RestartPlan:
    """What a restart from ``from_step`` reuses."""

    source: str
    from_step: str
    reused: list[str]
    memo: dict[str, Any]


async def declared_steps(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The steps a closed run declares (its ``status`` query's ``plan``), or none when no
    worker answers: a run's history holds only the steps it reached."""
    try:
        status = await handle.query("status", rpc_timeout=timedelta(seconds=10))
    except (RPCError, WorkflowQueryFailedError):
        return []
    return list(status.get("plan") or []) if isinstance(status, dict) else []


def plan_restart(
    workflow_id: str, run_id: str, steps: SourceSteps, from_step: str, *, force: bool, declared: Sequence[str] = ()
) -> RestartPlan:
    """The memo of a run restarted at ``from_step``; raises :class:`RestartRefused`.

    ``declared`` is the run's own list of steps where known (a step after the last one it
    reached can then be named); otherwise the steps it reached, in order.
    """
    if not steps.order:
        raise RestartRefused(f"{workflow_id}: its history records no step results (not a run on the step runner)")
    names = list(declared) or steps.order
    if from_step not in names:
        which = "its steps are" if declared else "restart from one of the steps it reached:"
        raise RestartRefused(f"step {from_step!r} is not a step of {workflow_id}; {which} {', '.join(names)}")
    earlier = names[: names.index(from_step)]
    missing = [s for s in earlier if s not in steps.results]
    if missing:
        raise RestartRefused(
            f"{workflow_id}: step(s) {', '.join(missing)} never completed; restart from {missing[0]} or earlier"
        )
    undone = [s for s in earlier if s in steps.compensated]
    if undone and not force:
        raise RestartNeedsForce(
            f"{workflow_id} compensated step(s) {', '.join(undone)}: their results describe effects that were undone, "
            "so a restart would build on them; restart from an earlier step, or pass --force to reuse them anyway",
            undone,
        )
    source = f"{workflow_id}/{run_id}"
    restart = StepsRestart(
        source=source,
        from_step=from_step,
        reused=earlier,
        origin_run_id=steps.restart.origin_run_id if steps.restart is not None else steps.first_run_id,
        forced=bool(undone),
    )
    memo: dict[str, Any] = {RESTART_MEMO: restart.model_dump(mode="json")}
    memo |= {restart_result_key(name): steps.results[name] for name in earlier}
    return RestartPlan(source=source, from_step=from_step, reused=earlier, memo=memo)


INJECTED_FAULTS = ("inject_failure", "inject_fault", "fail")
"""Input fields that inject a fault for demos and tests (orders, plans, text analyses): a
restart drops them unless asked, since it is meant to get past the failure."""


RESUME_POINT = "resume"
"""The input field where runs restarted before the step runner carried their resume point:
an object naming its ``from_stage`` (every family's resume model had that shape)."""


def resume_point_of(payload: Payload) -> tuple[str, ...]:
    """(:data:`RESUME_POINT`,) when the JSON input ``payload`` carries a resume point, which
    a restart from a step drops (it takes the reused results from its memo); else ()."""
    if payload.metadata.get("encoding") != b"json/plain":
        return ()
    data = json.loads(payload.data)
    carried = data.get(RESUME_POINT) if isinstance(data, dict) else None
    return (RESUME_POINT,) if isinstance(carried, dict) and "from_stage" in carried else ()


def without_fields(payload: Payload, fields: tuple[str, ...]) -> Payload:
    """The JSON input ``payload`` with ``fields`` removed (the model's defaults apply in the
    new run); any other payload unchanged."""
    if payload.metadata.get("encoding") != b"json/plain":
        return payload
    data = json.loads(payload.data)
    if not isinstance(data, dict) or not any(data.get(name) for name in fields):
        return payload
    kept = {name: value for name, value in data.items() if name not in fields}
    return Payload(metadata=dict(payload.metadata), data=json.dumps(kept, separators=(",", ":")).encode())


def handed_over_to(history: WorkflowHistory, workflow_type: str) -> tuple[str, str] | None:
    """The workflow id and run id of the one child of the run's own ``workflow_type`` that
    did its work (however it ended), when the run handed its input over whole to such a run;
    else None."""
    own = [
        event.child_workflow_execution_started_event_attributes.workflow_execution
        for event in history.events
        if event.HasField("child_workflow_execution_started_event_attributes")
        and event.child_workflow_execution_started_event_attributes.workflow_type.name == workflow_type
    ]
    return (own[0].workflow_id, own[0].run_id) if len(own) == 1 else None


async def restart_from_step(
    client: Client,
    workflow_id: str,
    from_step: str,
    *,
    force: bool = False,
    keep_faults: bool = False,
    run_id: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start a new run of closed run ``workflow_id`` (its latest, or ``run_id``) that reuses
    the results of the steps before ``from_step`` and runs that step and the later ones.

    The run's steps are the ones its ``status`` query declares (a worker of its task queue
    answers it), else the ones its history shows it reached.

    Refused (:class:`RestartRefused`) when the run is still open, when ``from_step`` never
    ran, when a step before it never completed, and, unless ``force``, when the run
    compensated a step before it (reusing an undone step's result would build on an
    effect that no longer exists). A fault the source's input injected is dropped unless
    ``keep_faults``, and so is a resume point it carried (:func:`resume_point_of`).
    """
    description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise RestartRefused(f"{workflow_id} is still running; cancel it or wait for it to close")
    # The run described above, even if another run of the id starts meanwhile.
    history = await client.get_workflow_handle(workflow_id, run_id=description.run_id).fetch_history()
    if (heir := handed_over_to(history, description.workflow_type)) is not None:
        # Its steps ran in the run it handed its input to (a document named by another path
        # than its own id's): that run, not a later one of its id, is the one to restart.
        heir_id, heir_run = heir
        return await restart_from_step(
            client, heir_id, from_step, force=force, keep_faults=keep_faults, run_id=heir_run
        )
    source = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    steps = await source_steps(client, history)
    plan = plan_restart(
        workflow_id, description.run_id, steps, from_step, force=force, declared=await declared_steps(source)
    )
    started = history.events[0].workflow_execution_started_event_attributes
    # The input exactly as the source got it: decoded only by the codec, never by a model.
    inputs = list(started.input.payloads)
    codec = client.data_converter.payload_codec
    if codec is not None:
        inputs = await codec.decode(inputs)
    faults = () if keep_faults else INJECTED_FAULTS
    inputs = [without_fields(payload, (*resume_point_of(payload), *faults)) for payload in inputs]
    return await client.start_workflow(
        description.workflow_type,
        args=[RawValue(payload) for payload in inputs],
        id=workflow_id,
        # On the source run's task queue: the workers that served it serve the new run.
        task_queue=description.task_queue,
        # The source is closed; a restart is a deliberate new run of its id.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        memo=plan.memo,
    )
