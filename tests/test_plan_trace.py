"""Trace, post-mortem and restart of plan runs, asserted against what the runs did."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowFailureError

from sagaworks._breakers import BreakerConfig
from sagaworks.activities.db import Database
from sagaworks.client.postmortem import (
    RestartRefused,
    postmortem,
    postmortem_markdown,
    restart_run,
    risk_markdown,
    run_report,
)
from sagaworks.contracts.plans import STAGES, PlanResult
from tests.plans import failure_of, make_plan, plan_settings, plan_worker, run_plan


@pytest_asyncio.fixture
async def worker(dev_client: Client, db: Database, task_queue: str, tmp_path: Path) -> AsyncIterator[None]:
    async with plan_worker(dev_client, db, task_queue, plan_settings(tmp_path, breaker=BreakerConfig(2, 600))):
        yield


async def test_the_risk_view_equals_what_the_run_did(dev_client: Client, worker: None, task_queue: str) -> None:
    plan = make_plan("plan-breve")
    result = await run_plan(dev_client, task_queue, plan)
    report = await run_report(dev_client, f"plan-{plan.plan_id}")
    view = report.risks
    assert view is not None and view.status == "COMPLETED"
    # Alerts: the same, in the same order, as the run's result lists them.
    assert [(a.level, a.stage, a.risk_id, a.message) for a in view.alerts] == [
        (a.level, a.stage, a.risk_id, a.message) for a in result.alerts
    ]
    # Mitigations: the same risks and strategies, each succeeded.
    assert [(m.stage, m.risk_id, m.severity, m.category, m.strategy) for m in view.mitigations] == [
        (m.cause.split(":")[0], m.risk_id, m.severity, m.category, m.strategy) for m in result.mitigations
    ]
    assert all(m.succeeded for m in view.mitigations)
    # Stages: each failed first choice, then its mitigation; the last execution of each
    # stage is the outcome the result holds.
    completed = [row for row in view.stages if row.outcome == "completed"]
    assert [row.stage for row in completed] == list(STAGES)
    assert [row.summary for row in completed] == [o.summary for o in result.stages]
    assert [tuple(row.detected) for row in completed] == [o.assessment.detected for o in result.stages]
    failed = [(row.stage, row.error_type) for row in view.stages if row.outcome == "failed"]
    assert failed == [
        ("semantic", "InsufficientText"),
        ("causal", "EmptyCausalGraph"),
        ("financial", "MissingFinancialData"),
        ("dnp", "DnpValidationFailed"),
    ]
    assert view.breakers == {stage: "closed" for stage in STAGES}
    text = risk_markdown(view)
    assert "| causal | 1 |" in text and "EMPTY_CAUSAL_GRAPH -> lower_extraction_threshold" in text

    pm = await postmortem(dev_client, workflow_id=f"plan-{plan.plan_id}")
    assert pm.mitigation_by_severity["MEDIUM"].total == 2 and pm.mitigation_by_severity["MEDIUM"].rate == 1.0
    assert set(pm.mitigation_by_category) == {"DATA_QUALITY", "COMPUTATION_ERROR", "VALIDATION_FAILURE"}
    assert [f["stage"] for f in pm.failed_stages] == ["semantic", "causal", "financial", "dnp"]
    assert pm.critical_alerts == [] and pm.aborted == []
    assert dict(pm.frequent_risks)["INSUFFICIENT_TEXT"] == sum(
        1 for a in result.alerts if a.risk_id == "INSUFFICIENT_TEXT"
    )
    assert pm.risk_runs == 1 and "### Mitigation effectiveness by severity" in postmortem_markdown(pm)


async def test_postmortem_over_a_family_counts_aborts_and_failed_mitigations(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    corrupt = make_plan("plan-corrupto")
    await failure_of(dev_client, task_queue, corrupt)
    # Two failed attempts open the dnp breaker (2 failures): the next run fails it fast.
    await run_plan(dev_client, task_queue, make_plan("plan-bueno", inject_fault={"stage": "dnp", "kind": "memory"}))
    await run_plan(dev_client, task_queue, make_plan("plan-bueno"))
    for _ in range(100):  # visibility is eventually consistent
        pm = await postmortem(
            dev_client, family_name="plan-analysis", since=timedelta(hours=1), query=f"TaskQueue = '{task_queue}'"
        )
        if len(pm.runs) == 3:
            break
        await asyncio.sleep(0.1)
    assert pm.statuses == {"FAILED": 1, "COMPLETED": 2}
    assert [(a["workflow_id"], a["error_type"]) for a in pm.aborted] == [(f"plan-{corrupt.plan_id}", "CriticalRisk")]
    assert any(
        a["workflow_id"] == f"plan-{corrupt.plan_id}" and a["risk_id"] == "PDF_CORRUPT" for a in pm.critical_alerts
    )
    # The breaker opened in the first bueno run: the second failed fast (CircuitOpen -> TIMEOUT).
    assert pm.mitigation_by_severity["HIGH"].succeeded >= 1 and pm.mitigation_by_severity["MEDIUM"].succeeded >= 1
    assert any(f["error_type"] == "CircuitOpen" for f in pm.failed_stages)


async def test_restart_from_a_middle_stage_runs_only_the_later_stages(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    plan = make_plan("plan-presupuesto-roto")
    first = await run_plan(dev_client, task_queue, plan)
    workflow_id = f"plan-{plan.plan_id}"
    handle = await restart_run(dev_client, workflow_id, "financial")
    second = PlanResult.model_validate(await handle.result(), strict=False)
    history = await handle.fetch_history()
    summaries = [
        e.user_metadata.summary.data.decode()
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes") and e.user_metadata.HasField("summary")
    ]
    stages_run = [json.loads(s).split(":")[0] for s in summaries if not json.loads(s).startswith(("alert", "prepare"))]
    assert stages_run == ["financial", "dnp", "dnp", "scoring", "report"]  # dnp: first choice, then its mitigation
    assert second.resumed_from and second.resumed_from.startswith(f"{workflow_id}/")
    # The earlier stages are the first run's outcomes; the later ones executed again (not reused).
    assert [o.output_key for o in second.stages[:5]] == [o.output_key for o in first.stages[:5]]
    assert [o.reused for o in second.stages[5:]] == [False] * 4
    assert second.score == first.score
    # The new run is the same workflow id's latest run; the first run's trace is intact.
    view = (await run_report(dev_client, workflow_id)).risks
    assert view is not None and [r.stage for r in view.stages if r.outcome == "completed"] == [
        "financial",
        "dnp",
        "scoring",
        "report",
    ]
    with pytest.raises(RestartRefused, match="'nowhere' is not a step of .*; its steps are load, extract, semantic"):
        await restart_run(dev_client, workflow_id, "nowhere")


async def test_restart_refuses_a_stage_the_source_never_reached(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    plan = make_plan("plan-bueno", inject_fault={"stage": "semantic", "kind": "nlp_model"})
    await failure_of(dev_client, task_queue, plan)
    with pytest.raises(RestartRefused, match="semantic never completed"):
        await restart_run(dev_client, f"plan-{plan.plan_id}", "causal")


async def test_a_restart_drops_the_injected_fault_unless_asked_to_keep_it(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    plan = make_plan("plan-bueno", inject_fault={"stage": "semantic", "kind": "nlp_model"})
    await failure_of(dev_client, task_queue, plan)
    workflow_id = f"plan-{plan.plan_id}"
    kept = await restart_run(dev_client, workflow_id, "semantic", keep_faults=True)
    with pytest.raises(WorkflowFailureError):  # asked for: the fault is in the new run's input
        await kept.result()
    restarted = await restart_run(dev_client, workflow_id, "semantic")
    result = PlanResult.model_validate(await restarted.result(), strict=False)
    assert result.resumed_from and result.resumed_from.startswith(f"{workflow_id}/")
    started = (await restarted.fetch_history()).events[0].workflow_execution_started_event_attributes
    [new_input] = await dev_client.data_converter.decode(started.input.payloads)
    assert new_input.get("inject_fault") is None  # dropped: the model's default applies


def _saga(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"TEMPORAL_ADDRESS": address}
    saga = str(Path(sys.executable).parent / "saga")
    return subprocess.run([saga, *args], capture_output=True, text=True, env=env, timeout=120)


async def test_the_cli_traces_lists_and_restarts(
    dev_client: Client, dev_address: str, worker: None, task_queue: str
) -> None:
    corrupt = make_plan("plan-corrupto")
    await failure_of(dev_client, task_queue, corrupt)
    wid = f"plan-{corrupt.plan_id}"
    traced = await asyncio.to_thread(_saga, dev_address, "trace", wid, "--md")
    assert traced.returncode == 0, traced.stderr
    assert "### Alerts" in traced.stdout and "**CRITICAL** load (PDF_CORRUPT)" in traced.stdout
    as_json = json.loads((await asyncio.to_thread(_saga, dev_address, "trace", wid, "--json")).stdout)
    assert as_json["risks"]["error_type"] == "CriticalRisk"
    pm = await asyncio.to_thread(_saga, dev_address, "postmortem", wid)
    assert pm.returncode == 0 and "PDF_CORRUPT" in pm.stdout
    for _ in range(100):
        listed = await asyncio.to_thread(
            _saga, dev_address, "list", "--alert", "CRITICAL", "--family", "plan-analysis", "--limit", "100"
        )
        if wid in listed.stdout:
            break
        await asyncio.sleep(0.2)
    assert wid in listed.stdout
    bad = await asyncio.to_thread(_saga, dev_address, "list", "--alert", "LOUD")
    assert bad.returncode == 2 and "--alert LOUD" in bad.stderr
    refused = await asyncio.to_thread(_saga, dev_address, "restart", wid, "--from-stage", "report")
    assert refused.returncode == 1 and "never completed" in refused.stderr
