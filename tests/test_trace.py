"""`saga trace`: the trace derived from history equals what the run did."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from sagaworks.activities.db import Database
from sagaworks.client.connection import data_converter
from sagaworks.client.trace import trace_markdown, trace_run
from sagaworks.contracts.orders import ORDER_STEPS
from sagaworks.worker import running_worker
from tests.encryption import TEST_ENV
from tests.orders import make_order, start_order, wait_for_status


async def test_trace_of_a_compensated_saga_with_a_retried_step(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    order = make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
    retried = make_order(inject_failure={"step": "charge_payment", "mode": "transient", "attempts": 2})
    failing = await start_order(dev_client, task_queue, order)
    with contextlib.suppress(WorkflowFailureError):
        await failing.result()
    await (await start_order(dev_client, task_queue, retried)).result()

    trace = await trace_run(dev_client, failing.id, payloads=True)
    assert trace.status == "FAILED" and trace.error_type == "SagaCompensated"
    names = [step.name for step in trace.steps]
    undo = [
        "void_shipping_label",
        "release_inventory",
        "send_cancellation_notice",
        "refund_payment",
        "delete_customer_account",
    ]
    # The items check, the five steps (the last fails: no step is left unreached), the undos.
    assert names == ["check_order_items", *ORDER_STEPS, *undo]
    label = trace.steps[5]
    assert (label.outcome, label.error_type) == ("failed", "InjectedFailure")
    assert all(step.outcome == "completed" for step in trace.steps if step is not label)
    assert [s.summary for s in trace.steps[6:]] == [f"compensate {step}" for step in reversed(ORDER_STEPS)]
    charge = trace.steps[2]
    assert charge.result["key"].endswith(":charge_payment")  # decoded payload of that step
    # Every step lies inside the run, and in the order it began.
    # A closed run's steps have both times (None only while a step runs).
    assert all(trace.started <= s.started <= s.closed <= trace.closed for s in trace.steps)  # type: ignore[operator]
    assert [s.started for s in trace.steps] == sorted(s.started for s in trace.steps)

    retried_trace = await trace_run(dev_client, f"order-{retried.order_id}")
    charge = next(step for step in retried_trace.steps if step.name == "charge_payment")
    assert charge.attempts == 3 and charge.outcome == "completed"  # two injected failures, then success

    report = trace_markdown(trace)
    assert "| 6 | create_shipping_label | activity | 1 |" in report and "InjectedFailure" in report


async def test_trace_of_a_cancelled_run_shows_timers_signals_and_the_cancel(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    handle = await start_order(dev_client, task_queue, make_order(step_delay_seconds=0.2))
    await wait_for_status(handle, lambda s: s.done >= 2)
    await handle.signal("pause")
    await handle.signal("resume")
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    trace = await trace_run(dev_client, handle.id)
    assert trace.status == "CANCELED"
    kinds = {step.kind for step in trace.steps}
    assert {"activity", "timer", "signal"} <= kinds
    assert [s.name for s in trace.steps if s.kind == "signal"] == ["pause", "resume"]
    assert any(step.summary == "compensate charge_payment" for step in trace.steps)


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn(sandboxed=False)
class ShoutChild:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn(sandboxed=False)
class ShoutParent:
    @workflow.run
    async def run(self, texts: list[str]) -> list[str]:
        return [
            await workflow.execute_child_workflow(ShoutChild.run, text, id=f"{workflow.info().workflow_id}-{i}")
            for i, text in enumerate(texts)
        ]


async def test_trace_follows_child_runs(dev_client: Client, task_queue: str) -> None:
    async with Worker(dev_client, task_queue=task_queue, workflows=[ShoutParent, ShoutChild], activities=[shout]):
        handle = await dev_client.start_workflow(
            ShoutParent.run, ["a", "b"], id=f"parent-{task_queue}", task_queue=task_queue
        )
        assert await handle.result() == ["A", "B"]
    trace = await trace_run(dev_client, handle.id, payloads=True)
    children = [step for step in trace.steps if step.kind == "child_workflow"]
    assert [(c.name, c.summary, c.outcome, c.result) for c in children] == [
        ("ShoutChild", f"{handle.id}-0", "completed", "A"),
        ("ShoutChild", f"{handle.id}-1", "completed", "B"),
    ]
    # Traced at depth 1: every child's own trace is there.
    assert [[(s.name, s.result) for s in c.child.steps] for c in children] == [[("shout", "A")], [("shout", "B")]]  # type: ignore[union-attr]
    shallow = await trace_run(dev_client, handle.id, depth=0)
    assert all(step.child is None for step in shallow.steps)


async def test_trace_of_an_encrypted_run_decodes_summaries_and_errors(
    dev_client: Client, db: Database, task_queue: str
) -> None:
    address = dev_client.service_client.config.target_host
    encrypted = await Client.connect(address, data_converter=data_converter(TEST_ENV))
    async with running_worker(encrypted, db, task_queue=task_queue, activity_threads=4):
        order = make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
        handle = await start_order(encrypted, task_queue, order)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
    trace = await trace_run(encrypted, handle.id, payloads=True)
    label = next(step for step in trace.steps if step.name == "create_shipping_label")
    assert (label.error_type, label.error) == ("InjectedFailure", "injected permanent failure at create_shipping_label")
    assert "compensate charge_payment" in [step.summary for step in trace.steps]
    assert trace.error_type == "SagaCompensated" and "create_shipping_label" in (trace.error or "")
    assert next(s for s in trace.steps if s.name == "charge_payment").result["key"].endswith(":charge_payment")


async def test_postmortem_of_order_runs_lists_steps_compensations_and_retries_without_risk_sections(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    from sagaworks.client.postmortem import postmortem, postmortem_markdown

    failing = await start_order(
        dev_client, task_queue, make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
    )
    with contextlib.suppress(WorkflowFailureError):
        await failing.result()
    retried = await start_order(
        dev_client,
        task_queue,
        make_order(inject_failure={"step": "charge_payment", "mode": "transient", "attempts": 2}),
    )
    await retried.result()

    report = await postmortem(dev_client, workflow_id=failing.id)
    assert [(f["step"], f["error_type"]) for f in report.failed_steps] == [("create_shipping_label", "InjectedFailure")]
    assert [(c["step"], c["outcome"]) for c in report.compensations] == [
        (step, "completed") for step in reversed(ORDER_STEPS)
    ]
    assert report.risk_runs == 0
    text = postmortem_markdown(report)
    assert "### Compensations" in text and "refund_payment" in text
    for plan_section in ("Failed stages", "Mitigation effectiveness", "Critical alerts", "Most frequent risks"):
        assert plan_section not in text, plan_section

    again = await postmortem(dev_client, workflow_id=retried.id)
    # The charge failed twice before it took: two retries, by the class the attempts reported.
    assert again.retries_by_error_class == {"InjectedFailure": 2}
    assert again.failed_steps == [] and again.compensations == []
    assert "- InjectedFailure: 2" in postmortem_markdown(again)
