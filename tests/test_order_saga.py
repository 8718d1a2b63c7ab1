"""The order-fulfilment saga on the real dev server, with the real worker and database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from activities.db import Database
from activities import build_activities
from activities.orders import OrderActivities, Payment, invariant_violations
from client.devserver import temporal_binary
from tests.orders import final_status, make_order, start_order, wait_for_status
from workflows.order import OrderFulfillmentSaga
from workflows.catalog import WORKFLOWS
from contracts.orders import ORDER_STEPS, ChargeInput, FailureInjection, OrderResult, StepResult, order_workflow_id
from contracts.common import SagaReport


async def test_happy_path_completes_every_step(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order()
    handle = await start_order(dev_client, task_queue, order)
    result = await handle.result()

    assert result.amount_cents == 2 * 1999 + 500
    assert list(result.references) == list(ORDER_STEPS)
    status = await handle.query(OrderFulfillmentSaga.status)
    assert status.state == "completed" and status.done == status.total == 5
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []


@pytest.mark.parametrize("step_index", range(len(ORDER_STEPS)))
async def test_permanent_failure_compensates_every_step_taken(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database, step_index: int
) -> None:
    step = ORDER_STEPS[step_index]
    order = make_order(inject_failure={"step": step, "mode": "permanent"})
    handle = await start_order(dev_client, task_queue, order)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "SagaCompensated"
    report = SagaReport.model_validate(cause.details[0])
    assert report.failed_step == step
    # Compensations are registered before each step (it may take effect and still fail),
    # so the failed step is undone too, then the earlier ones in reverse.
    assert [r.step for r in report.compensations] == list(reversed(ORDER_STEPS[: step_index + 1]))
    assert await final_status(handle) == "FAILED"
    assert invariant_violations(db, {order.order_id: "FAILED"}) == []


async def test_transient_failure_is_retried_and_the_step_applied_once(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order(inject_failure={"step": "charge_payment", "mode": "transient", "attempts": 2})
    handle = await start_order(dev_client, task_queue, order)
    await handle.result()

    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) == 3  # two injected failures, then success
    with db.transaction() as session:
        payments = session.query(Payment).filter_by(order_id=order.order_id).all()
    assert len(payments) == 1  # each failed attempt had already charged: never twice
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []


async def test_out_of_stock_fails_for_good_and_compensates(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order(items=[{"sku": "GIZMO-3", "quantity": 1000, "unit_price_cents": 1}])
    handle = await start_order(dev_client, task_queue, order)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert "not enough stock of GIZMO-3" in str(failure.value.cause)
    assert invariant_violations(db, {order.order_id: "FAILED"}) == []


async def test_cancel_mid_saga_compensates_and_ends_canceled(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order(step_delay_seconds=0.5)
    handle = await start_order(dev_client, task_queue, order)
    await wait_for_status(handle, lambda s: s.done >= 2)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    assert isinstance(failure.value.cause, CancelledError)
    assert await final_status(handle) == "CANCELED"
    status = await handle.query(OrderFulfillmentSaga.status)
    assert status.state == "canceled"
    assert [c.step for c in status.compensations][-2:] == ["charge_payment", "create_customer_account"]
    assert invariant_violations(db, {order.order_id: "CANCELED"}) == []


async def test_pause_holds_the_saga_between_steps_until_resume(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    handle = await start_order(dev_client, task_queue, make_order(step_delay_seconds=0.3))
    await handle.signal(OrderFulfillmentSaga.pause)
    await wait_for_status(handle, lambda s: s.state == "paused")
    await asyncio.sleep(0.5)  # a step already running when the signal came may finish
    paused = await handle.query(OrderFulfillmentSaga.status)
    await asyncio.sleep(1.0)
    still = await handle.query(OrderFulfillmentSaga.status)
    assert still.done == paused.done < 5
    await handle.signal(OrderFulfillmentSaga.resume)
    assert len((await handle.result()).references) == 5


INVALID_INPUTS = [
    pytest.param(lambda o: o.pop("shipping_address"), "shipping_address", id="missing-field"),
    pytest.param(lambda o: o["items"][0].update(quantity=-3), "items.0.quantity", id="negative-quantity"),
    pytest.param(lambda o: o["items"][0].update(quantity="two"), "items.0.quantity", id="wrong-type"),
    pytest.param(lambda o: o.update(items="WIDGET-1"), "items", id="wrong-container"),
    pytest.param(lambda o: o.update(coupon="FREE"), "coupon", id="extra-field"),
    pytest.param(lambda o: o.update(inject_failure={"step": "teleport", "mode": "permanent"}),
                 "inject_failure.step", id="unknown-step"),
]


@pytest.mark.parametrize(("corrupt", "field"), INVALID_INPUTS)
async def test_invalid_input_fails_the_workflow_at_once_naming_the_field(
    dev_client: Client, order_worker: Worker, task_queue: str, corrupt, field: str
) -> None:
    raw = make_order().model_dump(mode="json")
    corrupt(raw)
    handle = await dev_client.start_workflow(
        "OrderFulfillmentSaga", raw, id=f"bad-{uuid.uuid4()}", task_queue=task_queue
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=20)
    assert field in str(failure.value.cause)
    assert await final_status(handle) == "FAILED"
    history = await handle.fetch_history()
    assert not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events)


async def test_official_cli_starts_the_saga_with_plain_json(
    dev_client: Client, dev_address: str, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order()
    workflow_id = order_workflow_id(order.order_id)
    subprocess.run(
        [
            temporal_binary(), "workflow", "start",
            "--address", dev_address,
            "--type", "OrderFulfillmentSaga",
            "--task-queue", task_queue,
            "--workflow-id", workflow_id,
            "--input", json.dumps(order.model_dump(mode="json")),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    result = await dev_client.get_workflow_handle(workflow_id, result_type=OrderResult).result()
    assert result.order_id == order.order_id
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []


def test_failure_injection_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts"):
        FailureInjection.model_validate({"step": "charge_payment", "mode": "transient", "attempts": 0})


async def test_concurrent_orders_keep_the_invariants_on_each_backend(
    dev_client: Client, task_queue: str, db_url: str
) -> None:
    from activities.orders import seed_inventory
    from worker import running_worker

    backend = Database(db_url)
    seed_inventory(backend)
    failures = [None, {"step": "reserve_inventory", "mode": "permanent"},
                {"step": "charge_payment", "mode": "transient", "attempts": 1},
                {"step": "create_shipping_label", "mode": "permanent"}]
    orders = [make_order(inject_failure=failures[i % len(failures)]) for i in range(12)]
    try:
        async with running_worker(dev_client, backend, task_queue=task_queue, activity_threads=8):
            handles = [await start_order(dev_client, task_queue, order) for order in orders]
            await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
            outcomes = {o.order_id: await final_status(h) for o, h in zip(orders, handles, strict=True)}
        assert sorted(outcomes.values()).count("COMPLETED") == 6
        assert invariant_violations(backend, outcomes) == []
    finally:
        backend.dispose()


@pytest.mark.parametrize("failure", [None, "charge_payment", "create_shipping_label"])
async def test_local_steps_keep_the_same_guarantees(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database, failure: str | None
) -> None:
    inject = {"step": failure, "mode": "permanent"} if failure else None
    order = make_order(local_steps=True, inject_failure=inject)
    handle = await start_order(dev_client, task_queue, order)
    if failure is None:
        assert len((await handle.result()).references) == 5
    else:
        with pytest.raises(WorkflowFailureError) as error:
            await handle.result()
        report = SagaReport.model_validate(error.value.cause.details[0])  # type: ignore[union-attr]
        assert report.failed_step == failure and report.fully_compensated
    history = await handle.fetch_history()
    assert not any(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                   and e.activity_task_scheduled_event_attributes.activity_type.name == "charge_payment"
                   for e in history.events)  # the steps ran as local activities
    outcome = "COMPLETED" if failure is None else "FAILED"
    assert invariant_violations(db, {order.order_id: outcome}) == []


async def test_cancel_while_a_step_runs_lets_it_finish_then_compensates_it(
    dev_client: Client, task_queue: str, db: Database
) -> None:
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    real = OrderActivities(db)

    @activity.defn(name="charge_payment")
    def slow_charge(step: ChargeInput) -> StepResult:
        loop.call_soon_threadsafe(started.set)
        time.sleep(1.5)  # no heartbeat: the cancel cannot reach this attempt
        return real.charge_payment(step)

    acts = [a for a in build_activities(db) if getattr(a, "__name__", "") != "charge_payment"] + [slow_charge]
    order = make_order()
    with ThreadPoolExecutor(4) as executor:
        async with Worker(dev_client, task_queue=task_queue, workflows=WORKFLOWS, activities=acts,
                          activity_executor=executor, max_concurrent_activities=4):
            handle = await start_order(dev_client, task_queue, order)
            await asyncio.wait_for(started.wait(), timeout=30)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            status = await handle.query(OrderFulfillmentSaga.status)
    assert isinstance(failure.value.cause, CancelledError)
    assert "send_notification" not in status.completed_steps  # nothing ran after the cancel
    assert [c.step for c in status.compensations] == ["charge_payment", "create_customer_account"]
    assert invariant_violations(db, {order.order_id: "CANCELED"}) == []


async def test_a_saga_under_another_workflow_id_is_refused_before_any_step(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order()
    first = await start_order(dev_client, task_queue, order)
    await first.result()
    # The same order under another id would otherwise be charged a second time.
    other = await dev_client.start_workflow(
        OrderFulfillmentSaga.run, order, id=f"again-{uuid.uuid4()}", task_queue=task_queue
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await other.result()
    assert f"workflow id must be '{order_workflow_id(order.order_id)}'" in str(failure.value.cause)
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []


async def test_resubmitting_a_completed_order_under_its_id_is_refused_and_undoes_nothing(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order()
    await (await start_order(dev_client, task_queue, order)).result()
    # The client's default reuse policy allows a new run once the first has closed.
    again = await start_order(dev_client, task_queue, order.model_copy(update={"inject_failure": None}))
    with pytest.raises(WorkflowFailureError) as failure:
        await again.result()
    assert "already processed by another run" in str(failure.value.cause)
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []
