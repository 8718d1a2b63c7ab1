"""Record the LangGraph bridge's histories (tests/histories/langgraph/): a document run,
an approved routing run, an order run undone after a failing node, a cancelled one, a
run restarted from a node (its memo holds the state), an order run whose failing node is
undone too (undos registered before their node) and a run whose node fell back on an
open breaker.

A history already there is kept: it is the evidence that runs recorded by older code
still replay. Delete a file to record it again."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError

from sagaworks import ApprovalDecision
from sagaworks._breakers import BreakerConfig, Breakers
from sagaworks.activities.db import Database
from sagaworks.client.devserver import start_embedded
from sagaworks.langgraph import restart_graph
from sagaworks.worker import running_worker
from tests.langgraph_graphs import (
    QUOTE_BREAKER,
    OrderInput,
    QuoteInput,
    confirmed_order_graph,
    document_graph,
    order_graph,
    quote_graph,
    routing_graph,
    worker,
)

from sagaworks_graphs.families import DocumentInput, RoutingInput

OUT = Path(__file__).parent / "histories" / "langgraph"


async def _save(client: Client, workflow_id: str, name: str) -> None:
    if (OUT / f"{name}.json").exists():
        return
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    (OUT / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1))


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp())
    os.environ["DOCUMENT_GRAPH_STORE"] = str(scratch / "store")
    async with await start_embedded() as env:
        client, queue = env.client, f"record-{uuid.uuid4().hex}"
        async with worker(client, queue):
            await client.execute_workflow(
                document_graph.workflow.run,
                DocumentInput(document_id="d", text="Some text here"),
                id="document-graph--stored",
                task_queue=queue,
            )
            await _save(client, "document-graph--stored", "document-graph--stored")
            routed = await client.start_workflow(
                routing_graph.workflow.run,
                RoutingInput(user_input="admin"),
                id="routing-graph--approved",
                task_queue=queue,
            )
            while True:
                try:
                    await routed.execute_update("approve", ApprovalDecision(approver="ops"))
                    break
                except Exception:  # nothing pending yet
                    await asyncio.sleep(0.05)
            await routed.result()
            await _save(client, routed.id, routed.id)
            try:
                await client.execute_workflow(
                    order_graph.workflow.run,
                    OrderInput(journal=str(scratch / "j1"), fail_at="ship"),
                    id="order-graph--compensated",
                    task_queue=queue,
                )
            except WorkflowFailureError:
                pass
            await _save(client, "order-graph--compensated", "order-graph--compensated")
            await client.execute_workflow(
                order_graph.workflow.run,
                OrderInput(journal=str(scratch / "j3")),
                id="order-graph--source",
                task_queue=queue,
            )
            restarted = await restart_graph(
                client,
                "order-graph--source",
                "pack",
                edits={"steps": ["edited"]},
                new_workflow_id="order-graph--restarted",
            )
            await restarted.result()
            await _save(client, restarted.id, restarted.id)
            cancelled = await client.start_workflow(
                confirmed_order_graph.workflow.run,
                OrderInput(journal=str(scratch / "j2")),
                id="confirmed-order-graph--canceled",
                task_queue=queue,
            )
            while "pending" not in str((await cancelled.describe()).search_attributes):
                await asyncio.sleep(0.05)
            await cancelled.cancel()
            try:
                await cancelled.result()
            except WorkflowFailureError:
                pass
            await _save(client, cancelled.id, cancelled.id)
            try:
                await client.execute_workflow(
                    order_graph.workflow.run,
                    OrderInput(journal=str(scratch / "j4"), fail_after="pack"),
                    id="order-graph--failing-node-undone",
                    task_queue=queue,
                )
            except WorkflowFailureError:
                pass
            await _save(client, "order-graph--failing-node-undone", "order-graph--failing-node-undone")
        db = Database(f"sqlite:///{scratch / 'breakers.db'}")
        async with running_worker(
            client, db, task_queue=queue, families=[quote_graph.family], activity_threads=4, cpu_processes=0
        ):
            try:
                Breakers(db, {QUOTE_BREAKER: BreakerConfig(1, 600)}).call(QUOTE_BREAKER, lambda: 1 / 0, fallback=False)
            except ZeroDivisionError:
                pass  # the breaker is open now
            await client.execute_workflow(
                quote_graph.workflow.run, QuoteInput(question="rates?"), id="quote-graph--fallback", task_queue=queue
            )
            await _save(client, "quote-graph--fallback", "quote-graph--fallback")


if __name__ == "__main__":
    asyncio.run(main())
