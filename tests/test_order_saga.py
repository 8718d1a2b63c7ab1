"""The order-fulfilment saga on the real dev server, with the real worker and database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Worker

from sagaworks import SagaReport, WorkerResources, error_class, registry
from sagaworks.activities.db import Database
from sagaworks.activities.orders import OrderActivities, invariant_violations, seed_inventory
from sagaworks.client.devserver import temporal_binary
from sagaworks.contracts.orders import (
    ORDER_STEPS,
    ChargeInput,
    FailureInjection,
    OrderResult,
    OrderStatus,
    SealStepsInput,
    SealStepsResult,
    StepResult,
    order_workflow_id,
)
from sagaworks.worker import running_worker, worker_parts
from sagaworks.workflows.order import OrderFulfillmentSaga
from tests.orders import (
    activity_names,
    final_status,
    ledger,
    make_order,
    reset_after,
    start_order,
    wait_for_status,
    wait_until_held,
)


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
    # Each failed attempt had already charged: the ledger shows the charge took effect once.
    assert ledger(db, order.order_id) == {"CHARGE": 1}
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
    status = await _cancel(handle)
    assert await final_status(handle) == "CANCELED"
    assert status.state == "canceled"
    assert [c.step for c in status.compensations][-2:] == ["charge_payment", "create_customer_account"]
    assert invariant_violations(db, {order.order_id: "CANCELED"}) == []


async def _cancel(handle: WorkflowHandle[OrderFulfillmentSaga, OrderResult]) -> OrderStatus:
    """Cancel the run, check it ends cancelled, and return its final status."""
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    return await handle.query(OrderFulfillmentSaga.status)


async def test_pause_holds_the_saga_between_steps_until_resume(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    handle = await start_order(dev_client, task_queue, make_order(step_delay_seconds=1))
    await wait_for_status(handle, lambda s: s.done >= 1)
    await handle.signal(OrderFulfillmentSaga.pause)
    # Held: every activity and timer resolved and the last workflow task asked for nothing,
    # so nothing moves until the resume signal.
    await wait_until_held(handle)
    paused = await handle.query(OrderFulfillmentSaga.status)
    assert paused.state == "paused" and 1 <= paused.done < 5
    # Between steps no step is current: not the one that just finished.
    assert paused.current_step is None, paused
    await handle.signal(OrderFulfillmentSaga.resume)
    assert len((await handle.result()).references) == 5


INVALID_INPUTS = [
    pytest.param(lambda o: o.pop("shipping_address"), "shipping_address", id="missing-field"),
    pytest.param(lambda o: o["items"][0].update(quantity=-3), "items.0.quantity", id="negative-quantity"),
    pytest.param(lambda o: o["items"][0].update(quantity="two"), "items.0.quantity", id="wrong-type"),
    pytest.param(lambda o: o.update(items="WIDGET-1"), "items", id="wrong-container"),
    pytest.param(lambda o: o.update(coupon="FREE"), "coupon", id="extra-field"),
    pytest.param(
        lambda o: o.update(inject_failure={"step": "teleport", "mode": "permanent"}),
        "inject_failure.step",
        id="unknown-step",
    ),
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
            temporal_binary(),
            "workflow",
            "start",
            "--address",
            dev_address,
            "--type",
            "OrderFulfillmentSaga",
            "--task-queue",
            task_queue,
            "--workflow-id",
            workflow_id,
            "--input",
            json.dumps(order.model_dump(mode="json")),
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
    backend = Database(db_url)
    seed_inventory(backend)
    failures = [
        None,
        {"step": "reserve_inventory", "mode": "permanent"},
        {"step": "charge_payment", "mode": "transient", "attempts": 1},
        {"step": "create_shipping_label", "mode": "permanent"},
    ]
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
async def test_steps_are_local_by_default_with_the_same_guarantees(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database, failure: str | None
) -> None:
    inject = {"step": failure, "mode": "permanent"} if failure else None
    order = make_order(local_steps=None, inject_failure=inject)  # as the samples, CLI and API send it
    handle = await start_order(dev_client, task_queue, order)
    if failure is None:
        assert len((await handle.result()).references) == 5
    else:
        with pytest.raises(WorkflowFailureError) as error:
            await handle.result()
        report = SagaReport.model_validate(error.value.cause.details[0])  # type: ignore[attr-defined]  # the failure's cause is typed BaseException
        assert report.failed_step == failure and report.fully_compensated
    history = await handle.fetch_history()
    remote = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    local = [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)["activity_type"]
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    # The check and the steps ran as local activities; compensations (if any) remotely.
    assert local[:2] == ["check_order_items", "create_customer_account"] and "check_order_items" not in remote
    assert all(
        name.startswith(("seal_", "delete_", "refund_", "send_cancellation", "release_", "void_")) for name in remote
    )
    outcome = "COMPLETED" if failure is None else "FAILED"
    assert invariant_violations(db, {order.order_id: outcome}) == []


async def test_cancel_while_a_step_runs_lets_it_finish_then_compensates_it(
    dev_client: Client, task_queue: str, db: Database
) -> None:
    started, gate = asyncio.Event(), threading.Event()
    loop = asyncio.get_running_loop()
    real = OrderActivities(db)

    @activity.defn(name="charge_payment")
    def gated_charge(step: ChargeInput) -> StepResult:
        loop.call_soon_threadsafe(started.set)
        # No heartbeat: the cancel cannot reach this attempt. It charges once the test saw
        # the workflow take the cancel.
        if not gate.wait(timeout=60):
            raise ApplicationError("the test never let the charge go on", non_retryable=True)
        return real.charge_payment(step)

    order = make_order()
    async with _worker_replacing(dev_client, task_queue, db, "charge_payment", gated_charge):
        handle = await start_order(dev_client, task_queue, order)
        await asyncio.wait_for(started.wait(), timeout=30)
        await handle.cancel()
        await _wait_for_history(handle, _took_the_cancel)
        gate.set()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await handle.query(OrderFulfillmentSaga.status)
        events = list((await handle.fetch_history()).events)
    assert isinstance(failure.value.cause, CancelledError)
    assert "send_notification" not in status.completed_steps  # nothing ran after the cancel
    assert [c.step for c in status.compensations] == ["charge_payment", "create_customer_account"]
    # What only run_to_completion guarantees: the refund is scheduled after the charge
    # finished, so it refunds a charge that took effect. Without it the refund runs first,
    # finds nothing, and the charge that follows is refused: no charge and no refund.
    names = activity_names(events)
    charged = next(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and names[e.activity_task_completed_event_attributes.scheduled_event_id] == "charge_payment"
    )
    refund = next(e.event_id for e in events if names.get(e.event_id) == "refund_payment")
    assert charged < refund
    assert ledger(db, order.order_id) == {"CHARGE": 1, "REFUND": 1}
    assert invariant_violations(db, {order.order_id: "CANCELED"}) == []


@contextlib.asynccontextmanager
async def _worker_replacing(
    client: Client, task_queue: str, db: Database, name: str, replacement: Callable[..., Any]
) -> AsyncIterator[Worker]:
    """A worker of the whole catalog, with the activity called ``name`` replaced."""
    acts = [
        a
        for a in worker_parts(registry().families, WorkerResources(db)).activities
        if getattr(a, "__name__", "") != name
    ] + [replacement]
    with ThreadPoolExecutor(4) as executor:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=registry().workflows(),
            activities=acts,
            activity_executor=executor,
            max_concurrent_activities=4,
        ) as worker:
            yield worker


def _took_the_cancel(events: list) -> bool:
    requested = [e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED]
    return bool(requested) and any(
        e.event_id > requested[0] and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events
    )


async def _wait_for_history(handle, predicate, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not predicate(list((await handle.fetch_history()).events)):
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), timeout)


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


async def test_reset_after_step_2_of_a_completed_order_repeats_the_later_steps_once(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order()
    first = await start_order(dev_client, task_queue, order)
    await first.result()
    again = await reset_after(dev_client, first.id, "charge_payment")
    # The reset run repeats steps 3-5 on the rows the first run wrote: same order, same owner.
    result = await again.result()
    assert list(result.references) == list(ORDER_STEPS)
    assert ledger(db, order.order_id) == {"CHARGE": 1}
    assert invariant_violations(db, {order.order_id: "COMPLETED"}) == []


async def test_reset_after_step_2_of_a_running_order_that_then_fails_refunds_once(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    # 5 s between steps: the reset lands long before the first run could reach step 4,
    # however loaded the machine.
    order = make_order(step_delay_seconds=5, inject_failure={"step": "reserve_inventory", "mode": "permanent"})
    first = await start_order(dev_client, task_queue, order)
    await wait_for_status(first, lambda s: s.done >= 3, timeout=60)
    again = await reset_after(dev_client, first.id, "charge_payment")  # the first run is terminated
    with pytest.raises(WorkflowFailureError) as failure:
        await again.result()
    report = SagaReport.model_validate(failure.value.cause.details[0])  # type: ignore[attr-defined]  # the failure's cause is typed BaseException
    assert report.failed_step == "reserve_inventory" and report.fully_compensated
    assert await final_status(dev_client.get_workflow_handle(first.id, run_id=first.result_run_id)) == "TERMINATED"
    assert ledger(db, order.order_id) == {"CHARGE": 1, "REFUND": 1}
    assert invariant_violations(db, {order.order_id: "FAILED"}) == []


async def test_reset_after_step_4_then_cancel_undoes_every_step_the_first_run_took(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order(step_delay_seconds=2)
    first = await start_order(dev_client, task_queue, order)
    await first.result()
    # The reset run waits 2 s before step 5, which the first run already took; it is
    # cancelled in that wait, so it must undo step 5 too although it never reached it.
    again = await reset_after(dev_client, first.id, "reserve_inventory")
    status = await _cancel(again)
    assert [c.step for c in status.compensations] == list(reversed(ORDER_STEPS))
    assert ledger(db, order.order_id) == {"CHARGE": 1, "REFUND": 1}
    assert invariant_violations(db, {order.order_id: "CANCELED"}) == []


async def test_reset_of_a_failed_order_never_charges_it_again(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    order = make_order(inject_failure={"step": "create_shipping_label", "mode": "permanent"})
    first = await start_order(dev_client, task_queue, order)
    with pytest.raises(WorkflowFailureError):
        await first.result()
    again = await reset_after(dev_client, first.id, "reserve_inventory")
    with pytest.raises(WorkflowFailureError) as failure:
        await again.result()
    # Its own order's rows are not "another run's": the step is refused because the failed
    # run compensated it, and the compensations find nothing left to undo.
    assert error_class(failure.value.cause) == "StepAlreadyCompensated"
    assert "submit a new order" in str(failure.value.cause)
    assert ledger(db, order.order_id) == {"CHARGE": 1, "REFUND": 1}
    assert invariant_violations(db, {order.order_id: "FAILED"}) == []


async def test_an_unknown_sku_is_refused_before_anyone_is_charged(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    items = [
        {"sku": "WIDGET-1", "quantity": 1, "unit_price_cents": 100},
        {"sku": "NOPE-9", "quantity": 1, "unit_price_cents": 100},
    ]
    order = make_order(items=items)
    handle = await start_order(dev_client, task_queue, order)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert error_class(failure.value.cause) == "InvalidInput"
    message = str(failure.value.cause.cause)  # type: ignore[attr-defined]  # the failure's cause is typed BaseException
    assert "unknown SKU 'NOPE-9'" in message and "items[1].sku" in message and "WIDGET-1" in message
    history = await handle.fetch_history()
    assert set(activity_names(list(history.events)).values()) == {"check_order_items"}
    assert ledger(db, order.order_id) == {}
    assert invariant_violations(db, {order.order_id: "FAILED"}) == []


async def test_releases_and_reserves_of_the_same_skus_never_deadlock(
    dev_client: Client, task_queue: str, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = Database(db_url)
    seed_inventory(backend)
    # Lines in the reverse of the lock order (sorted SKUs), as a customer may list them.
    items = [
        {"sku": "WIDGET-1", "quantity": 1, "unit_price_cents": 100},
        {"sku": "GADGET-2", "quantity": 1, "unit_price_cents": 100},
    ]
    fail = {"step": "reserve_inventory", "mode": "permanent"}  # reserved, then released
    orders = [make_order(items=items, inject_failure=fail if i % 2 else None) for i in range(40)]
    before = _deadlocks(db_url)
    try:
        with caplog.at_level(logging.WARNING, logger="temporalio.activity"):
            async with running_worker(dev_client, backend, task_queue=task_queue, activity_threads=16):
                handles = [await start_order(dev_client, task_queue, order) for order in orders]
                await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
                outcomes = {o.order_id: await final_status(h) for o, h in zip(orders, handles, strict=True)}
    finally:
        backend.dispose()  # each backend reports its deadlock count as it closes
    logged = [r for r in caplog.records if r.exc_info and "deadlock detected" in str(r.exc_info[1])]
    assert (len(logged), _deadlocks(db_url) - before) == (0, 0)
    expected = {o.order_id: "FAILED" if o.inject_failure else "COMPLETED" for o in orders}
    assert outcomes == expected
    checked = Database(db_url)
    try:
        assert invariant_violations(checked, outcomes) == []
    finally:
        checked.dispose()


def _deadlocks(db_url: str) -> int:
    """Deadlocks PostgreSQL detected in the database so far (SQLite never deadlocks: it
    takes its write lock at BEGIN)."""
    if db_url.startswith("sqlite"):
        return 0
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
    finally:
        engine.dispose()


async def test_when_sealing_fails_every_unreached_step_is_undone(
    dev_client: Client, task_queue: str, db: Database
) -> None:
    @activity.defn(name="seal_unreached_steps")
    def broken_seal(seal: SealStepsInput) -> SealStepsResult:
        raise ApplicationError("the database refused the seal", non_retryable=True)

    order = make_order(inject_failure={"step": "charge_payment", "mode": "permanent"})
    async with _worker_replacing(dev_client, task_queue, db, "seal_unreached_steps", broken_seal):
        handle = await start_order(dev_client, task_queue, order)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    report = SagaReport.model_validate(failure.value.cause.details[0])  # type: ignore[attr-defined]  # the failure's cause is typed BaseException
    # The report still names the step that failed, and nothing that might exist is left.
    assert report.failed_step == "charge_payment" and report.fully_compensated
    assert [c.step for c in report.compensations] == list(reversed(ORDER_STEPS))
    assert ledger(db, order.order_id) == {"CHARGE": 1, "REFUND": 1}
    assert invariant_violations(db, {order.order_id: "FAILED"}) == []
