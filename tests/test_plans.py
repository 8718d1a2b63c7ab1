"""The plan-analysis family on the dev server: every default risk handled as its severity
says, claim-check reuse, breakers across runs, alerts by search attribute, webhook."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from sagaworks import registry
from sagaworks._breakers import BreakerConfig
from sagaworks.activities.db import Database
from sagaworks.activities.plan_analysis.extraction import ocr_available
from sagaworks.client.runs import list_runs, visibility_query
from sagaworks.contracts.plans import STAGES, PlanStatus, alert_query
from tests.plans import failure_of, make_plan, plan_settings, plan_worker, run_plan, start_plan


@pytest_asyncio.fixture
async def worker(dev_client: Client, db: Database, task_queue: str, tmp_path: Path) -> AsyncIterator[None]:
    async with plan_worker(dev_client, db, task_queue, plan_settings(tmp_path, breaker=BreakerConfig(2, 600))):
        yield


def _mitigated(result) -> dict[str, str]:
    return {m.risk_id: m.strategy for m in result.mitigations}


async def test_a_sound_plan_is_analysed_without_mitigation(dev_client: Client, worker: None, task_queue: str) -> None:
    result = await run_plan(dev_client, task_queue, make_plan("plan-bueno"))
    assert [o.stage for o in result.stages] == list(STAGES)
    assert result.mitigations == [] and result.alerts == [] and result.highest_alert is None
    assert result.score >= 80 and "sólido" in result.verdict
    assert "Aulas rurales dignas" in result.report and "Los totales cuadran" in result.report
    assert all(not o.reused for o in result.stages)
    stages = {o.stage: o for o in result.stages}
    assert stages["semantic"].metrics["programmes"] == 6 and stages["financial"].metrics["findings"] == 0
    assert stages["causal"].metrics["chains"] == 6


async def test_a_rerun_of_the_same_plan_reuses_every_finished_stage(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    first = await run_plan(dev_client, task_queue, make_plan("plan-bueno"))
    second = await run_plan(dev_client, task_queue, make_plan("plan-bueno"))
    # The report differs only in the plan id it names; every other stage is reused as stored.
    assert [o.reused for o in second.stages] == [True] * 8 + [False]
    assert [o.output_key for o in second.stages[:8]] == [o.output_key for o in first.stages[:8]]


async def test_scanned_page_is_read_by_ocr(dev_client: Client, worker: None, task_queue: str) -> None:
    if not ocr_available():
        pytest.skip("Tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-spa; .ci/run does)")
    result = await run_plan(dev_client, task_queue, make_plan("plan-escaneado"))
    assert _mitigated(result) == {"EMPTY_EXTRACTION": "fallback_ocr"}
    extract = result.stages[1]
    assert extract.metrics["ocr_pages"] == 1 and extract.options.ocr
    assert extract.assessment.detected == ("EMPTY_EXTRACTION",)  # seen before the stage ran
    # HIGH: an ERROR alert before the stage and for its failure, INFO once mitigated.
    assert [(a.level, a.risk_id) for a in result.alerts] == [("ERROR", "EMPTY_EXTRACTION")] * 2 + [
        ("INFO", "EMPTY_EXTRACTION")
    ]
    # The OCR'd page's programmes are found like the others.
    assert result.stages[2].metrics["programmes"] == 6


async def test_a_flawed_plan_mitigates_and_reports_its_findings(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    result = await run_plan(dev_client, task_queue, make_plan("plan-presupuesto-roto"))
    assert _mitigated(result) == {"DNP_VALIDATION_FAIL": "log_and_continue"}
    assert result.highest_alert == "INFO"  # LOW risks only inform
    assert "50% de los programas completos" in result.report
    assert "los años no son consecutivos: [2024, 2025, 2027, 2028]" in result.report
    assert "el programa P2.2 (Salud materno infantil) no tiene recursos asignados" in result.report
    assert "'2.1 Acueductos veredales': el total de la fila (7.000) no es la suma de sus años (6.300)" in result.report
    assert "total 2025: dice 5.750 pero los programas suman 5.500" in result.report
    assert result.score < 80


async def test_a_brief_plan_meets_four_risks_and_mitigates_each(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    result = await run_plan(dev_client, task_queue, make_plan("plan-breve"))
    assert _mitigated(result) == {
        "INSUFFICIENT_TEXT": "reduce_confidence_threshold",
        "EMPTY_CAUSAL_GRAPH": "lower_extraction_threshold",
        "MISSING_FINANCIAL_DATA": "estimate_from_text",
        "DNP_VALIDATION_FAIL": "log_and_continue",
    }
    assert {m.severity for m in result.mitigations} == {"MEDIUM", "HIGH", "LOW"}
    assert result.highest_alert == "ERROR"
    stages = {o.stage: o for o in result.stages}
    assert stages["semantic"].options.confidence == 0.3 and stages["causal"].options.vocabulary_links
    assert "INSUFFICIENT_TEXT" in stages["semantic"].assessment.detected
    assert "MISSING_FINANCIAL_DATA" in stages["financial"].assessment.detected
    assert "Riesgos mitigados" in result.report and "EMPTY_CAUSAL_GRAPH (HIGH)" in result.report


async def test_a_restart_after_the_mitigated_stages_keeps_their_mitigations_in_the_report(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    from sagaworks.client.postmortem import restart_run
    from sagaworks.contracts.plans import PlanResult

    first = await start_plan(dev_client, task_queue, make_plan("plan-breve"))
    source = await first.result()
    restarted = await restart_run(dev_client, first.id, "report")
    result = await dev_client.get_workflow_handle(
        restarted.id, run_id=restarted.result_run_id, result_type=PlanResult
    ).result()
    # The reused stages' mitigations are the source run's, listed as its were.
    assert result.mitigations == source.mitigations and len(result.mitigations) == 4
    assert "Riesgos mitigados" in result.report and "EMPTY_CAUSAL_GRAPH (HIGH)" in result.report
    status = await dev_client.get_workflow_handle(restarted.id, run_id=restarted.result_run_id).query(
        "status", result_type=PlanStatus
    )
    reused = [t for t in status.steps if t.reused]
    assert reused and all(t.outcome != "done" for t in reused), [(t.step, t.outcome) for t in reused]


async def test_a_corrupt_pdf_aborts_at_once_naming_the_risk(dev_client: Client, worker: None, task_queue: str) -> None:
    handle, cause = await failure_of(dev_client, task_queue, make_plan("plan-corrupto"))
    assert isinstance(cause, ApplicationError) and cause.type == "CriticalRisk"
    assert "PDF_CORRUPT" in cause.message and "stage load" in cause.message
    status = await handle.query("status", result_type=PlanStatus)
    assert status.done == 0 and status.highest_alert == "CRITICAL"


@pytest.mark.parametrize(
    ("fault", "risk", "strategy", "error_type"),
    [
        ({"stage": "extract", "kind": "memory"}, "MEMORY_EXHAUSTION", "batch_processing", "MemoryExhaustion"),
        ({"stage": "mechanisms", "kind": "slow"}, "TIMEOUT", "reduce_scope", "StageTimeout"),
    ],
)
async def test_injected_faults_are_mitigated(
    dev_client: Client, worker: None, task_queue: str, fault: dict, risk: str, strategy: str, error_type: str
) -> None:
    result = await run_plan(
        dev_client, task_queue, make_plan("plan-bueno", inject_fault=fault, stage_timeout_seconds=2)
    )
    assert _mitigated(result) == {risk: strategy}
    [mitigation] = result.mitigations
    assert mitigation.cause.startswith(f"{fault['stage']}: {error_type}")
    stage = next(o for o in result.stages if o.stage == fault["stage"])
    assert stage.mitigation == mitigation and stage.summary


async def test_a_missing_nlp_model_aborts(dev_client: Client, worker: None, task_queue: str) -> None:
    plan = make_plan("plan-bueno", inject_fault={"stage": "semantic", "kind": "nlp_model"})
    handle, cause = await failure_of(dev_client, task_queue, plan)
    assert cause.type == "CriticalRisk" and "NLP_MODEL_MISSING" in cause.message and "stage semantic" in cause.message
    assert (await handle.query("status", result_type=PlanStatus)).done == 2  # load and extract only


async def test_a_failing_stage_opens_its_breaker_for_later_runs(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    faulty = make_plan("plan-bueno", inject_fault={"stage": "financial", "kind": "memory"})
    first = await run_plan(dev_client, task_queue, faulty)  # two failed attempts: the breaker (2 failures) opens
    assert _mitigated(first) == {"MEMORY_EXHAUSTION": "batch_processing"}
    # A later run of a sound plan: its financial stage fails fast into a mitigation.
    later = await start_plan(dev_client, task_queue, make_plan("plan-bueno"))
    result = await later.result()
    assert _mitigated(result) == {"TIMEOUT": "reduce_scope"}
    assert result.mitigations[0].cause.startswith("financial: CircuitOpen")
    assert ("CRITICAL", "TIMEOUT") in [(a.level, a.risk_id) for a in result.alerts]
    history = await later.fetch_history()
    failed = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    [open_failure] = failed
    assert (
        open_failure.activity_task_failed_event_attributes.failure.cause.application_failure_info.type == "CircuitOpen"
        or open_failure.activity_task_failed_event_attributes.failure.application_failure_info.type == "CircuitOpen"
    )


async def test_alert_levels_are_searchable(dev_client: Client, worker: None, task_queue: str) -> None:
    corrupt = make_plan("plan-corrupto")
    brief = make_plan("plan-breve")
    await failure_of(dev_client, task_queue, corrupt)
    await run_plan(dev_client, task_queue, brief)
    fam = registry().family("plan-analysis")

    async def ids(level: str) -> set[str]:
        query = visibility_query(family=fam, query=f"{alert_query(level)} AND TaskQueue = '{task_queue}'")
        return {r["workflow_id"] for r in await list_runs(dev_client, query, limit=50)}

    wanted = {"CRITICAL": {f"plan-{corrupt.plan_id}"}, "ERROR": {f"plan-{corrupt.plan_id}", f"plan-{brief.plan_id}"}}
    for _ in range(100):  # visibility is eventually consistent
        found = {level: await ids(level) for level in wanted}
        if found == wanted:
            break
        await asyncio.sleep(0.1)
    assert found == wanted


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", _Hook.received
    server.shutdown()


async def test_alerts_are_posted_to_the_webhook(
    dev_client: Client, worker: None, task_queue: str, webhook: tuple[str, list[dict]]
) -> None:
    url, received = webhook
    plan = make_plan("plan-breve", alert_webhook=url)
    result = await run_plan(dev_client, task_queue, plan)
    assert [(r["level"], r["risk_id"], r["message"]) for r in received] == [
        (a.level, a.risk_id, a.message) for a in result.alerts
    ]
    assert {r["workflow_id"] for r in received} == {f"plan-{plan.plan_id}"}


async def test_an_unreachable_webhook_does_not_stop_the_analysis(
    dev_client: Client, worker: None, task_queue: str
) -> None:
    result = await run_plan(
        dev_client, task_queue, make_plan("plan-presupuesto-roto", alert_webhook="http://127.0.0.1:9/x")
    )
    assert result.alerts and _mitigated(result) == {"DNP_VALIDATION_FAIL": "log_and_continue"}


async def test_a_plan_over_the_page_limit_fails_before_any_stage_naming_it(
    dev_client: Client, db: Database, task_queue: str, tmp_path: Path
) -> None:
    from dataclasses import replace

    from sagaworks.workflows.plan_analysis import PlanAnalysisWorkflow
    from tests.plans import write_long_plan

    write_long_plan(tmp_path / "long.pdf", 7)
    settings = replace(plan_settings(tmp_path), max_pages=6)
    async with plan_worker(dev_client, db, task_queue, settings):
        handle, cause = await failure_of(dev_client, task_queue, make_plan(path=str(tmp_path / "long.pdf")))
        status = await handle.query(PlanAnalysisWorkflow.status)
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert cause.message.endswith("7 pages, over the limit of 6 pages (SAGAWORKS_MAX_PLAN_PAGES)")
    assert status.done == 0
