"""Restart from any step of a family on the step runner (``saga restart ID --from STEP``):
the new run's history schedules nothing for the reused steps, once each for the others;
steps the source compensated are refused unless forced."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Worker

from sagaworks import RESTART_MEMO
from sagaworks.activities.db import Database
from sagaworks.client.postmortem import RestartRefused, restart_run
from sagaworks.contracts.orders import ORDER_STEPS, OrderResult
from sagaworks.contracts.sequential import SequentialInput, SequentialResult
from sagaworks.workflows.catalog import SAMPLES
from sagaworks.workflows.order import OrderFulfillmentSaga
from sagaworks.workflows.sequential import SequentialWorkflow
from tests.orders import ledger, make_order, start_order, wait_for_status, wait_until_held
from tests.test_restart import _saga

TEXT = json.loads((SAMPLES / "sequential/billing-retrospective.json").read_text())["text"]


async def executed(handle: WorkflowHandle[Any, Any]) -> Counter[str]:
    """How many times the run scheduled each activity type (activities and local activities)."""
    counts: Counter[str] = Counter()
    for event in (await handle.fetch_history()).events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            counts[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                counts[json.loads(marker.details["data"].payloads[0].data)["activity_type"]] += 1
    return counts


async def _terminated_after_two_steps(client: Client, task_queue: str, **order: Any) -> WorkflowHandle[Any, Any]:
    """An order stopped for good after its second step, as an operator terminates a stuck run
    (nothing compensated)."""
    handle = await start_order(client, task_queue, make_order(step_delay_seconds=5, **order))
    await wait_for_status(handle, lambda s: s.done == 2, timeout=60)
    await handle.signal(OrderFulfillmentSaga.pause)  # within the 5 s before step 3
    await wait_until_held(handle)
    assert (await handle.query(OrderFulfillmentSaga.status)).done == 2
    await handle.terminate("stuck")
    return handle


@pytest.mark.parametrize("local_steps", [False, None], ids=["remote-steps", "local-steps"])
async def test_order_restart_from_a_middle_step_reuses_the_steps_before_it(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database, local_steps: bool | None
) -> None:
    source = await _terminated_after_two_steps(dev_client, task_queue, local_steps=local_steps)
    # The restart keeps the source's input (5 s between steps) but waits before no reused step.
    handle = await restart_run(dev_client, source.id, "send_notification")
    status = await wait_for_status(handle, lambda s: s.done >= 3, timeout=60, query=OrderFulfillmentSaga.status)
    await handle.terminate("checked")
    counts = await executed(handle)
    assert counts["create_customer_account"] == counts["charge_payment"] == 0
    assert counts["send_notification"] == 1
    assert status.restarted_from == f"{source.id}/{source.result_run_id}"
    assert [(t.step, t.reused) for t in status.steps[:3]] == [
        ("create_customer_account", True),
        ("charge_payment", True),
        ("send_notification", False),
    ]
    assert ledger(db, source.id.removeprefix("order-")) == {"CHARGE": 1}


async def test_order_restart_completes_the_order_on_the_source_runs_rows(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    first = await start_order(dev_client, task_queue, make_order())
    done = await first.result()
    handle = await restart_run(dev_client, first.id, "reserve_inventory")
    again = await dev_client.get_workflow_handle(
        handle.id, run_id=handle.result_run_id, result_type=OrderResult
    ).result()
    counts = await executed(handle)
    assert [counts[s] for s in ORDER_STEPS] == [0, 0, 0, 1, 1]
    # The repeated steps find the rows the source wrote (same keys, same owner): same ids.
    assert again.references == done.references
    assert ledger(db, done.order_id) == {"CHARGE": 1}


async def test_order_restart_refuses_compensated_steps_unless_forced(
    dev_client: Client, order_worker: Worker, task_queue: str, db: Database
) -> None:
    failed = await start_order(
        dev_client, task_queue, make_order(inject_failure={"step": "reserve_inventory", "mode": "permanent"})
    )
    with pytest.raises(WorkflowFailureError):
        await failed.result()
    with pytest.raises(
        RestartRefused,
        match=(r"compensated step\(s\) create_customer_account, charge_payment, send_notification: .* pass --force"),
    ):
        await restart_run(dev_client, failed.id, "reserve_inventory")
    with pytest.raises(
        RestartRefused,
        match="step 'teleport' is not a step of .*; its steps are create_customer_account, charge_payment, send",
    ):
        await restart_run(dev_client, failed.id, "teleport")
    forced = await restart_run(dev_client, failed.id, "reserve_inventory", force=True)
    # The reserve step was compensated (sealed) too: it can never take effect again, and
    # the forced run fails and undoes again what it reused (no-ops: already undone).
    with pytest.raises(WorkflowFailureError) as failure:
        await forced.result()
    assert "StepAlreadyCompensated" in str(failure.value.cause.__cause__.__cause__)  # type: ignore[union-attr]  # the chain is there: the assertion reads it
    counts = await executed(forced)
    assert counts["create_customer_account"] == counts["charge_payment"] == counts["send_notification"] == 0
    memo = await (await forced.describe()).memo_value(RESTART_MEMO)
    assert memo["forced"] is True and memo["reused"][-3:] == [
        "create_customer_account",
        "charge_payment",
        "send_notification",
    ]
    assert ledger(db, failed.id.removeprefix("order-")) == {"CHARGE": 1, "REFUND": 1}


async def test_sequential_restart_from_analyse_and_again_from_report(
    dev_client: Client, order_worker: Worker, task_queue: str
) -> None:
    first = await dev_client.start_workflow(
        SequentialWorkflow.run, SequentialInput(text=TEXT), id=f"seq-{uuid.uuid4()}", task_queue=task_queue
    )
    source = await first.result()
    restarted = await restart_run(dev_client, first.id, "analyse")
    result = await dev_client.get_workflow_handle(
        restarted.id, run_id=restarted.result_run_id, result_type=SequentialResult
    ).result()
    assert await executed(restarted) == Counter({"analyse_text": 1, "render_report": 1})
    assert [(s.step, s.reused) for s in result.steps] == [
        ("ingest", True),
        ("process", True),
        ("analyse", False),
        ("report", False),
    ]
    assert (result.profile, result.analysis) == (source.profile, source.analysis)
    # A restart of the restart: what it reused is carried over from its memo.
    again = await restart_run(dev_client, first.id, "report")
    final = await dev_client.get_workflow_handle(
        again.id, run_id=again.result_run_id, result_type=SequentialResult
    ).result()
    assert await executed(again) == Counter({"render_report": 1})
    assert final.analysis == source.analysis and [s.reused for s in final.steps] == [True, True, True, False]


async def test_the_cli_restarts_a_sequential_run_from_a_step(
    dev_client: Client, dev_address: str, order_worker: Worker, task_queue: str
) -> None:
    first = await dev_client.start_workflow(
        SequentialWorkflow.run, SequentialInput(text=TEXT), id=f"seq-{uuid.uuid4()}", task_queue=task_queue
    )
    await first.result()
    refused = await asyncio.to_thread(_saga, dev_address, "restart", first.id, "--from", "publish")
    assert refused.returncode == 1 and "its steps are ingest, process, analyse, report" in refused.stderr
    done = await asyncio.to_thread(_saga, dev_address, "restart", first.id, "--from", "report")
    assert done.returncode == 0, done.stderr
    assert f"restarted {first.id} from report" in done.stdout
    await dev_client.get_workflow_handle(first.id).result()
    assert await executed(dev_client.get_workflow_handle(first.id)) == Counter({"render_report": 1})
