"""A worker SIGKILLed in the middle of a plan stage: the run resumes on a new worker at that
stage (earlier stages are not run again) and its alerts reach the Prometheus counter."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from sagaworks.contracts.plans import STAGES, PlanResult
from tests.plans import make_plan, start_plan
from tests.workers import WorkerProcess


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _stage_running(handle, stage: str) -> None:  # noqa: ANN001 - a WorkflowHandle
    for _ in range(600):
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if (
                pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and pending.activity_type.name == "run_plan_stage"
            ):
                status = await handle.query("status")
                if status["current_step"] == stage:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"stage {stage} never started")


async def test_worker_killed_mid_stage_resumes_at_that_stage(
    dev_client: Client, dev_address: str, task_queue: str, tmp_path: Path
) -> None:
    port = _free_port()
    database = f"sqlite:///{tmp_path / 'app.db'}"
    first = WorkerProcess(dev_address, task_queue, database, tmp_path / "worker-1.log")
    second = WorkerProcess(
        dev_address, task_queue, database, tmp_path / "worker-2.log", SAGAWORKS_METRICS_PORT=str(port)
    )
    try:
        first.start()
        # The brief plan meets four risks (alerts); its semantic stage stalls on attempt 1.
        plan = make_plan("plan-breve", inject_fault={"stage": "semantic", "kind": "stall", "seconds": 60})
        handle = await start_plan(dev_client, task_queue, plan)
        await _stage_running(handle, "semantic")
        first.kill()  # mid-stage, no goodbye
        second.start()
        result = await asyncio.wait_for(handle.result(), timeout=120)
        assert isinstance(result, PlanResult) and [o.stage for o in result.stages] == list(STAGES)
        history = await handle.fetch_history()
        started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
        scheduled = {e.event_id: e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")}
        attempts = [
            (
                scheduled[
                    e.activity_task_started_event_attributes.scheduled_event_id
                ].user_metadata.summary.data.decode(),
                e.activity_task_started_event_attributes.attempt,
            )
            for e in started
        ]
        # load and extract ran once each, before the kill; semantic's first choice needed
        # a second attempt (on the new worker), then went on as usual.
        assert attempts[1:3] == [('"load"', 1), ('"extract"', 1)]
        assert ('"semantic"', 2) in attempts
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
        counted = [
            line
            for line in metrics.splitlines()
            if line.startswith("sagaworks_plan_alerts") and 'risk="EMPTY_CAUSAL_GRAPH"' in line
        ]
        assert counted and any('level="ERROR"' in line for line in counted), metrics[:2000]
    finally:
        first.stop()
        second.stop()
