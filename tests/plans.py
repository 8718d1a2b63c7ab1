"""Helpers of the plan-analysis tests: a worker with test settings, starting plans."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from sagaworks import LLM, LLMBudget, LLMSettings
from sagaworks._breakers import BreakerConfig
from sagaworks.activities.db import Database
from sagaworks.activities.plan_analysis.activities import SAMPLE_PLANS, PlanSettings
from sagaworks.contracts.plans import PlanInput, PlanResult, plan_workflow_id
from sagaworks.worker import running_worker
from sagaworks.workflows.plan_analysis import PlanAnalysisWorkflow


def _gateway_db() -> Database:
    """A database of its own for a test gateway's ``llm`` breaker (a file: each connection
    to an in-memory SQLite database would be another database)."""
    return Database(f"sqlite:///{tempfile.mkdtemp(prefix='plan-llm-')}/gateway.db")


def plan_settings(*extra_roots: Path, breaker: BreakerConfig = BreakerConfig(3, 600)) -> PlanSettings:
    """Test settings without a model (an offline gateway: no LLM pass)."""
    offline = LLM(_gateway_db(), settings=LLMSettings(), budget=LLMBudget(requests=0, tokens=0))
    return PlanSettings(roots=(SAMPLE_PLANS, *extra_roots), breaker=breaker, llm=offline)


def llm_plan_settings(base_url: str) -> PlanSettings:
    """Test settings whose semantic stage has an LLM pass by Groq's ``test-model`` at
    ``base_url`` (a local chat-completions server: tests/fake_chat_server.py), through the
    LLM gateway without a budget."""
    model = LLMSettings("groq", "test-model", base_url, "test-key")
    llm = LLM(_gateway_db(), settings=model, budget=LLMBudget(requests=0, tokens=0))
    return PlanSettings(roots=(SAMPLE_PLANS,), breaker=BreakerConfig(3, 600), llm=llm)


SEMANTIC_ANSWER: dict[str, Any] = {
    "goals": [
        {"text": "Aumentar la cobertura y la permanencia escolar en la zona rural."},  # in the plan: confirmed
        {"text": "Erradicar la pobreza extrema en el municipio."},  # not in the plan: refused
    ],
    "programmes": [
        {
            "code": "1.1",
            "name": "Aulas rurales dignas",
            "goal": None,
            "indicator": None,
            "baseline": None,
            "target": None,
            "responsible": None,
        },  # the rules found it: confirmed
        {
            "code": None,
            "name": "programa de alimentación",  # only in prose: added
            "goal": "Aumentar la cobertura y la permanencia escolar en la zona rural.",
            "indicator": "Raciones servidas por día",  # not in the plan: refused
            "baseline": None,
            "target": None,
            "responsible": "Secretaría de Educación",
        },  # in the plan: filled
        {
            "code": "9.9",
            "name": "Programa de cohetes espaciales",
            "goal": None,
            "indicator": None,
            "baseline": None,
            "target": None,
            "responsible": None,
        },  # not in the plan: refused
    ],
}
"""A model's answer for plan-bueno: what it confirms, adds, fills, and what the merge refuses."""


@contextlib.asynccontextmanager
async def plan_worker(client: Client, db: Database, task_queue: str, settings: PlanSettings) -> AsyncIterator[None]:
    async with running_worker(client, db, task_queue=task_queue, activity_threads=4, settings=[settings]):
        yield


def make_plan(sample: str = "plan-bueno", **fields: Any) -> PlanInput:
    """A plan input for a sample PDF (``samples/plans/<sample>.pdf``) with a fresh id."""
    data: dict[str, Any] = {
        "plan_id": f"{sample}-{uuid.uuid4().hex[:8]}",
        "path": f"{sample}.pdf",
        "municipality": "San Isidro",
    }
    return PlanInput.model_validate({**data, **fields}, strict=False)


async def start_plan(
    client: Client, task_queue: str, plan: PlanInput
) -> WorkflowHandle[PlanAnalysisWorkflow, PlanResult]:
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


def write_long_plan(path: Path, pages: int, scanned: tuple[int, ...] = ()) -> None:
    """A plan of ``pages`` pages: the sample's title page, axis pages (its three axes over and
    over, each programme under a code of its own; the pages in ``scanned`` only a picture of
    their text) and its investment table on the last page."""
    from bench.plan_samples import BUDGET, DIAGNOSTICO, EJES, PERIOD, _amount, _lines, _page_text, _pdf, _scanned_page

    pdf = _pdf()
    pdf.add_page()
    _lines(pdf, f"PLAN DE DESARROLLO MUNICIPAL {PERIOD}", bold=True)
    _lines(pdf, "Municipio de San Isidro de los Andes, departamento de Antioquia")
    _lines(pdf, "1. Diagnóstico", bold=True)
    _lines(pdf, DIAGNOSTICO)
    for number in range(2, pages):
        title, objective, programmes = EJES[number % len(EJES)]
        renumbered = [(f"{number}.{k}", *programme[1:]) for k, programme in enumerate(programmes, 1)]
        lines = _page_text((f"{title} ({number})", objective, renumbered), {})
        if number in scanned:
            _scanned_page(pdf, lines)
            continue
        pdf.add_page()
        for text, bold in lines:
            _lines(pdf, text, bold)
    pdf.add_page()
    _lines(pdf, "5. Plan plurianual de inversiones (millones de pesos)", bold=True)
    pdf.set_font("DejaVu", size=9)
    with pdf.table(
        col_widths=(60, 22, 22, 22, 22, 26), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    ) as table:
        table.row(["Programa", "2024", "2025", "2026", "2027", "Total"])
        for name, values in BUDGET:
            table.row([name, *(_amount(v) for v in values), _amount(sum(values))])
        sums = [sum(values[k] for _, values in BUDGET) for k in range(4)]
        table.row(["Total", *(_amount(v) for v in sums), _amount(sum(sums))])
    path.write_bytes(bytes(pdf.output()))
