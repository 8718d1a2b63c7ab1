"""`saga demo`: run the sample workflows and show their outcomes and UI links."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from temporalio.client import Client, WorkflowFailureError

from client.connection import TASK_QUEUE, connect, ui_url
from contracts.documents import BatchInput, BatchResult
from contracts.orders import OrderInput, OrderResult, order_workflow_id

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

# (sample file, whether the saga is expected to complete)
ORDER_DEMOS = [("order.json", True), ("order-fails-at-shipping.json", False)]


async def _run_order(client: Client, console: Console, sample: str, suffix: str) -> bool:
    order = OrderInput.model_validate_json((SAMPLES / "orders" / sample).read_bytes())
    # A fresh order id per demo run: an order id is fulfilled at most once, ever.
    order = order.model_copy(update={"order_id": f"{order.order_id}-{suffix}"})
    handle = await client.start_workflow(
        "OrderFulfillmentSaga",
        order,
        id=order_workflow_id(order.order_id),
        task_queue=TASK_QUEUE,
        result_type=OrderResult,
    )
    link = ui_url(client, handle.id, handle.result_run_id)
    try:
        result = await handle.result()
    except WorkflowFailureError as failure:
        status = await handle.query("status")
        undone = ", ".join(f"{c['step']} ({c['outcome']})" for c in status["compensations"])
        console.print(f"[yellow]{handle.id}: FAILED and compensated[/yellow]\n  cause: {failure.cause}")
        console.print(f"  compensations, in order: {undone}\n  UI: {link}")
        return False
    refs = ", ".join(f"{step}={ref}" for step, ref in result.references.items())
    console.print(f"[green]{handle.id}: COMPLETED[/green], charged {result.amount_cents / 100:.2f}")
    console.print(f"  {refs}\n  UI: {link}")
    return True


async def _run_documents(client: Client, console: Console, suffix: str) -> bool:
    folder = SAMPLES / "documents"
    handle = await client.start_workflow(
        "DocumentBatch",
        BatchInput(folder=str(folder)),
        id=f"batch-demo-{suffix}",
        task_queue=TASK_QUEUE,
        result_type=BatchResult,
    )
    result = await handle.result()
    console.print(
        f"[green]{handle.id}[/green]: {result.completed} documents processed, {result.rejected} rejected, "
        f"{result.failed} failed\n  UI: {ui_url(client, handle.id, handle.result_run_id)}"
    )
    for outcome in result.documents:
        name = Path(outcome.path).name
        if outcome.status == "COMPLETED":
            console.print(f"  {name}: {outcome.concept_count} concepts (saga result {outcome.workflow_id})")
        else:
            console.print(f"  {name}: {outcome.status} - {outcome.error}")
    # The samples hold five good documents and one bad one per kind of rejection.
    return result.completed == 5 and result.rejected == result.total - 5


async def run_demo(console: Console) -> int:
    """Run every demo; 0 when each ended as expected."""
    client = await connect()
    suffix = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    console.rule("Order-fulfilment sagas")
    outcomes = await asyncio.gather(
        *(_run_order(client, console, sample, suffix) for sample, _ in ORDER_DEMOS)
    )
    expected = [completes for _, completes in ORDER_DEMOS]
    console.rule("Document pipeline: a batch over samples/documents")
    outcomes.append(await _run_documents(client, console, suffix))
    expected.append(True)
    console.rule()
    console.print("All workflows: http://localhost:8233/namespaces/default/workflows")
    return 0 if list(outcomes) == expected else 1
