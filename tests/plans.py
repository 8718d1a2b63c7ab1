"""Helpers of the plan-analysis tests: a worker with test settings, starting plans."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities.breakers import BreakerConfig
from activities.db import Database
from activities.plans.activities import SAMPLE_PLANS, PlanSettings
from contracts.plans import PlanInput, PlanResult, plan_workflow_id
from worker import running_worker
from workflows.plan import PlanAnalysisWorkflow


def plan_settings(*extra_roots: Path, breaker: BreakerConfig = BreakerConfig(3, 600)) -> PlanSettings:
    return PlanSettings(roots=(SAMPLE_PLANS, *extra_roots), breaker=breaker)


@contextlib.asynccontextmanager
async def plan_worker(client: Client, db: Database, task_queue: str, settings: PlanSettings) -> AsyncIterator[None]:
    async with running_worker(client, db, task_queue=task_queue, activity_threads=4, plans=settings):
        yield


def make_plan(sample: str = "plan-bueno", **fields: Any) -> PlanInput:
    """A plan input for a sample PDF (``samples/plans/<sample>.pdf``) with a fresh id."""
    data: dict[str, Any] = {"plan_id": f"{sample}-{uuid.uuid4().hex[:8]}", "path": f"{sample}.pdf", "municipality": "San Isidro"}
    return PlanInput.model_validate({**data, **fields}, strict=False)


async def start_plan(client: Client, task_queue: str, plan: PlanInput) -> WorkflowHandle[PlanAnalysisWorkflow, PlanResult]:
    return await client.start_workflow(
        PlanAnalysisWorkflow.run, plan, id=plan_workflow_id(plan.plan_id), task_queue=task_queue
    )


async def run_plan(client: Client, task_queue: str, plan: PlanInput) -> PlanResult:
    return await (await start_plan(client, task_queue, plan)).result()


async def failure_of(client: Client, task_queue: str, plan: PlanInput) -> tuple[WorkflowHandle[Any, Any], Any]:
    """Run a plan that must fail; return its handle and the failure's cause."""
    handle = await start_plan(client, task_queue, plan)
    try:
        await handle.result()
    except WorkflowFailureError as failure:
        return handle, failure.cause
    raise AssertionError(f"{handle.id} completed; it should have failed")
