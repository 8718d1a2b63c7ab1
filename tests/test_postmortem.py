"""The post-mortem of any family's runs, from traces (what their histories recorded)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from sagaworks.client.postmortem import postmortem, postmortem_markdown, postmortem_of
from sagaworks.client.trace import RunTrace, StepOutcome, TraceStep
from tests.orders import make_order, start_order

T0 = datetime(2026, 12, 2, tzinfo=UTC)


def step(name: str, outcome: StepOutcome = "completed", **fields: Any) -> TraceStep:
    return TraceStep(
        kind=fields.pop("kind", "activity"),
        name=name,
        started=T0,
        closed=T0 + timedelta(seconds=1),
        outcome=outcome,
        **fields,
    )


def run(workflow_id: str, status: str, steps: list[TraceStep], **fields: Any) -> RunTrace:
    return RunTrace(
        workflow_id=workflow_id,
        run_id="r1",
        workflow_type="AnyWorkflow",
        status=status,
        started=T0,
        closed=T0 + timedelta(seconds=5),
        duration_ms=5000,
        steps=steps,
        **fields,
    )


def test_fallbacks_breakers_and_attempts_of_runs_of_any_family() -> None:
    traces = [
        run(
            "news-1",
            "COMPLETED",
            [
                step(
                    "summarise",
                    outcome="failed",
                    attempts=1,
                    error_type="CircuitOpen",
                    error="circuit breaker llm is open: too many failures",
                ),
                step("extractive_summary", summary="summarise (fallback: breaker llm open)", attempts=1),
                step(
                    "classify",
                    attempts=3,
                    retried_error_type="RateLimited",
                    result={"value": "x", "fallback": "the model timed out"},
                ),
            ],
        ),
        run("query-1", "COMPLETED", [step("answer", result={"fallbacks": ["viz: breaker viz open"]})]),
        run(
            "order-1",
            "FAILED",
            [
                step("charge_payment", kind="local_activity", attempts=2),
                step(
                    "create_shipping_label",
                    outcome="failed",
                    attempts=4,
                    retried_error_type="Timeout",
                    error_type="InjectedFailure",
                    error="injected",
                ),
                step("refund_payment", summary="compensate charge_payment"),
            ],
            error_type="SagaCompensated",
            error="create_shipping_label failed",
        ),
    ]
    report = postmortem_of(traces)
    assert [(f["workflow_id"], f["step"], f["why"]) for f in report.fallbacks] == [
        ("news-1", "summarise (fallback: breaker llm open)", "breaker llm open"),
        ("news-1", "classify", "the model timed out"),
        ("query-1", "answer", "viz: breaker viz open"),
    ]
    assert [(b["workflow_id"], b["breaker"], b["step"], b["state"]) for b in report.breakers_opened] == [
        ("news-1", "llm", "summarise", "open"),
    ]
    # Retried attempts by the class of the last one retried (a local activity's marker keeps
    # no failure); failed attempts add each step's last, failed one.
    assert report.retries_by_error_class == {"Timeout": 3, "RateLimited": 2, "unknown": 1}
    assert report.failed_attempts_by_error_class == {
        "Timeout": 3,
        "RateLimited": 2,
        "unknown": 1,
        "CircuitOpen": 1,
        "InjectedFailure": 1,
    }
    assert [c["step"] for c in report.compensations] == ["charge_payment"]
    assert [a["workflow_id"] for a in report.aborted] == ["order-1"]
    text = postmortem_markdown(report)
    for section in (
        "### Fallbacks taken",
        "### Breakers opened",
        "### Retries by error class",
        "### Failed attempts by error class",
    ):
        assert section in text, section
    assert "- news-1 llm (open) at summarise" in text
    assert "Mitigation effectiveness" not in text  # no plan-analysis run among them


async def test_postmortem_of_a_live_order_counts_its_failed_attempts(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    order = make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
    handle = await start_order(dev_client, task_queue, order)
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    report = await postmortem(dev_client, workflow_id=handle.id)
    assert report.failed_attempts_by_error_class == {"InjectedFailure": 1}
    assert report.fallbacks == [] and report.breakers_opened == []
    assert "- none" in postmortem_markdown(report).split("### Fallbacks taken")[1]
