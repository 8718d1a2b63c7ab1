"""Temporal Schedules of catalog families: create, list, describe, pause, unpause, trigger,
delete. Shared by ``saga schedule`` and the HTTP API.

Every schedule starts the family's workflow with a validated input under the family's
workflow id (Temporal appends the scheduled time) and skips a run while the previous one
is still running (``ScheduleOverlapPolicy.SKIP``), so two digests never overlap.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from sagaworks import Family
from sagaworks.client.connection import TASK_QUEUE


def schedule_id_for(family: Family[Any], arg: BaseModel) -> str:
    """The default schedule id: the family's workflow id for this input."""
    return f"schedule-{family.workflow_id(arg)}"


async def create_schedule(
    client: Client,
    family: Family[Any],
    arg: BaseModel,
    *,
    cron: str,
    schedule_id: str | None = None,
    task_queue: str = TASK_QUEUE,
    paused: bool = False,
) -> ScheduleHandle:
    """Create a schedule running ``family`` with ``arg`` on ``cron`` (UTC); overlaps skipped.

    Raises :class:`~sagaworks.workflows.catalog.RunRefused` for an input the configuration refuses."""
    family.check_allowed(arg)
    return await client.create_schedule(
        schedule_id or schedule_id_for(family, arg),
        Schedule(
            action=ScheduleActionStartWorkflow(
                family.workflow_type, arg, id=family.workflow_id(arg), task_queue=task_queue
            ),
            spec=ScheduleSpec(cron_expressions=[cron]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(paused=paused, note=f"created by saga for {family.name}"),
        ),
    )


_FULL = {"minute": (0, 59), "hour": (0, 23), "day_of_month": (1, 31), "month": (1, 12), "day_of_week": (0, 6)}


def _cron_of(calendar: Any) -> str:
    """A calendar spec (the server's form of a cron expression) written as cron again."""
    fields = []
    for name, full in _FULL.items():
        ranges = getattr(calendar, name)
        parts = []
        for r in ranges:
            end = max(r.end, r.start)
            if (r.start, end) == full and r.step <= 1:
                parts.append("*")
                continue
            text = str(r.start) if end == r.start else f"{r.start}-{end}"
            parts.append(f"{text}/{r.step}" if r.step > 1 else text)
        fields.append(",".join(parts) or "*")
    return " ".join(fields)


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def describe_schedule(client: Client, schedule_id: str) -> dict[str, Any]:
    """A schedule's spec, state, recent and next runs, and how many runs it skipped."""
    described = await client.get_schedule_handle(schedule_id).describe()
    schedule, info = described.schedule, described.info
    action = schedule.action
    return {
        "schedule_id": described.id,
        "workflow_type": getattr(action, "workflow", None),
        # The server keeps a cron expression as a calendar spec.
        "cron": list(schedule.spec.cron_expressions) + [_cron_of(c) for c in schedule.spec.calendars],
        "paused": schedule.state.paused,
        "note": schedule.state.note,
        "overlap": schedule.policy.overlap.name,
        "actions": info.num_actions,
        "skipped_overlap": info.num_actions_skipped_overlap,
        "running": [r.workflow_id for r in info.running_actions if isinstance(r, ScheduleActionExecutionStartWorkflow)],
        "recent": [
            {
                "scheduled_at": _time(a.scheduled_at),
                "started_at": _time(a.started_at),
                "workflow_id": getattr(a.action, "workflow_id", None),
                "run_id": getattr(a.action, "first_execution_run_id", None),
            }
            for a in info.recent_actions
        ],
        "next": [_time(t) for t in info.next_action_times[:3]],
    }


async def list_schedules(client: Client) -> list[dict[str, Any]]:
    """Every schedule of the namespace: id, workflow type, paused, next run."""
    rows = []
    async for listed in await client.list_schedules():
        state = listed.schedule.state if listed.schedule else None
        rows.append(
            {
                "schedule_id": listed.id,
                "workflow_type": getattr(listed.schedule.action, "workflow", None) if listed.schedule else None,
                "paused": bool(state and state.paused),
                "next": _time(listed.info.next_action_times[0])
                if listed.info and listed.info.next_action_times
                else None,
            }
        )
    return rows


async def set_paused(client: Client, schedule_id: str, paused: bool, note: str | None = None) -> None:
    """Pause or unpause a schedule."""
    handle = client.get_schedule_handle(schedule_id)
    if paused:
        await handle.pause(note=note or "paused by saga")
    else:
        await handle.unpause(note=note or "unpaused by saga")


async def trigger_schedule(client: Client, schedule_id: str) -> None:
    """Run the schedule's action now, under its overlap policy (skipped while one runs)."""
    await client.get_schedule_handle(schedule_id).trigger()


async def delete_schedule(client: Client, schedule_id: str) -> None:
    """Delete a schedule (its runs are kept)."""
    await client.get_schedule_handle(schedule_id).delete()
