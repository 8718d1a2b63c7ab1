"""The LangGraph bridge: a plain LangGraph graph run durably (sagaworks.langgraph)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Replayer, Worker

from sagaworks import ApprovalDecision
from sagaworks._breakers import BreakerConfig, Breakers
from sagaworks.activities.db import Database
from sagaworks.langgraph import restart_graph
from sagaworks.policies import llm_task_queue
from sagaworks.worker import running_worker
from tests.langgraph_graphs import (
    GRAPHS,
    QUOTE_BREAKER,
    BookInput,
    FanInput,
    OrderInput,
    QuoteInput,
    SlowInput,
    TicketInput,
    book_graph,
    confirmed_order_graph,
    document_graph,
    fan_builder,
    fan_graph,
    order_graph,
    quote_builder,
    quote_graph,
    routing_graph,
    slow_graph,
    ticket_builder,
    ticket_graph,
    worker,
)
from tests.test_restart import _saga

from sagaworks_graphs import document as doc  # noqa: E402 (on sys.path through tests.langgraph_graphs)
from sagaworks_graphs import routing as rt
from sagaworks_graphs.families import DocumentInput, RoutingInput

HISTORIES = Path(__file__).parent / "histories" / "langgraph"
TEXT = (
    "Durable Execution\nTemporal keeps workflow state durable across crashes.\n"
    + "Saga compensation undoes steps. " * 30
)


@pytest_asyncio.fixture
async def graph_worker(
    dev_client: Client, task_queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Worker]:
    monkeypatch.setenv(doc.STORE_DIR_ENV, str(tmp_path / "store"))
    async with worker(dev_client, task_queue) as w:
        yield w


def node_runs(history: WorkflowHistory, graph: str) -> Counter[str]:
    """How many times each node's activity was scheduled in a run."""
    return Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name.removeprefix(f"{graph}.")
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


async def decide(handle: WorkflowHandle[Any, Any], update: str, decision: ApprovalDecision) -> None:
    """Send the decision; a refusal because nothing waits yet means "not yet" (never a query first)."""
    while True:
        try:
            await handle.execute_update(update, decision)
            return
        except WorkflowUpdateFailedError as err:
            assert isinstance(err.cause, ApplicationError) and "no approval is pending" in err.cause.message, err
            await asyncio.sleep(0.05)


async def test_invoke_and_sagaworks_end_in_the_same_state(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    for document in (DocumentInput(document_id="doc-1", text=TEXT), DocumentInput(document_id="doc-2", text=" ")):
        expected = doc.graph.invoke(document.model_dump())
        handle = await dev_client.start_workflow(
            document_graph.workflow.run, document, id=f"doc-{uuid.uuid4()}", task_queue=task_queue
        )
        result = await handle.result()
        state = (await handle.query("status"))["values"]
        assert state == expected
        assert result.status == expected["status"]
        runs = node_runs(await handle.fetch_history(), "document-graph")
        assert set(runs) == (
            {"validate", "parse", "chunk", "extract", "store"}
            if expected["status"] == "stored"
            else {"validate", "error"}
        )


async def test_a_dataclass_state_ends_the_same_as_with_invoke(
    dev_client: Client, task_queue: str, graph_worker: Worker
) -> None:
    expected = ticket_builder().compile().invoke({"ticket_id": "T-1"})
    result = await dev_client.execute_workflow(
        ticket_graph.workflow.run, TicketInput(ticket_id="T-1"), id=f"ticket-{uuid.uuid4()}", task_queue=task_queue
    )
    assert result == expected == {"ticket_id": "T-1", "status": "closed", "notes": ["triaged T-1", "closed"]}


async def test_send_fans_out_in_parallel_and_reducers_merge_as_in_langgraph(
    dev_client: Client, task_queue: str, graph_worker: Worker
) -> None:
    words = ["durable", "graph", "on", "temporal"]
    expected = fan_builder().compile().invoke({"words": words})
    handle = await dev_client.start_workflow(
        fan_graph.workflow.run, FanInput(words=words), id=f"fan-{uuid.uuid4()}", task_queue=task_queue
    )
    assert await handle.result() == expected
    assert node_runs(await handle.fetch_history(), "fan-graph") == Counter(start=1, measure=4, sum_up=1)


async def test_a_node_longer_than_its_heartbeat_timeout_finishes_and_gets_the_run_as_thread(
    dev_client: Client, task_queue: str, graph_worker: Worker
) -> None:
    handle = await dev_client.start_workflow(
        slow_graph.workflow.run, SlowInput(seconds=2.5), id=f"slow-{uuid.uuid4()}", task_queue=task_queue
    )
    assert (await handle.result())["thread"] == handle.id


async def test_interrupt_waits_for_approval_and_resumes_with_the_decision(
    dev_client: Client, task_queue: str, graph_worker: Worker
) -> None:
    approved = await dev_client.start_workflow(
        routing_graph.workflow.run,
        RoutingInput(user_input="admin: reset"),
        id=f"route-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    refusal = "no approval is pending"
    while "no approval is pending" in refusal:  # the approver check comes once the interrupt waits
        try:
            await approved.execute_update("approve", ApprovalDecision(approver="mallory"))
            pytest.fail("mallory is not an approver")
        except WorkflowUpdateFailedError as err:
            refusal = str(getattr(err.cause, "message", err.cause))
    assert refusal == "approver: mallory is not one of ops"
    status = await approved.query("status")
    assert status["approval"] == "pending" and status["interrupt"]["question"] == "grant full access?"
    assert status["current_step"] == "approval_check: awaiting approval"
    await decide(approved, "approve", ApprovalDecision(approver="ops"))
    assert (await approved.result()).result.startswith("APPROVED: Admin processing")

    rejected = await dev_client.start_workflow(
        routing_graph.workflow.run,
        RoutingInput(user_input="admin: drop"),
        id=f"route-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await decide(rejected, "reject", ApprovalDecision(approver="ops", reason="not today"))
    assert (await rejected.result()).result.startswith("DENIED: Admin processing")
    assert node_runs(await rejected.fetch_history(), "routing-graph")["approval_check"] == 2  # stopped, resumed

    # No interrupt on this path: the same graph, no approval asked.
    plain = await dev_client.execute_workflow(
        routing_graph.workflow.run,
        RoutingInput(user_input="premium user"),
        id=f"route-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    assert plain.processing_path == "premium"
    assert rt.graph.invoke({"user_input": "premium user"})["result"] == plain.result


async def test_an_interrupt_nobody_decides_escalates_then_resumes_as_rejected(
    time_skipping_env: Any, task_queue: str
) -> None:
    client = time_skipping_env.client
    async with worker(client, task_queue):
        handle = await client.start_workflow(
            routing_graph.workflow.run,
            RoutingInput(user_input="admin"),
            id=f"route-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        result = await handle.result()  # time skips through both deadlines
        status = await handle.query("status")
    assert result.result.startswith("DENIED: ")
    assert status["approval"] == "rejected"
    assert status["escalation"] == "no decision within 4 h, nor by cto within 20 h: rejected"
    assert status["values"]["approver"] == "escalation"


async def test_a_failing_node_undoes_the_completed_nodes_in_reverse(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    with pytest.raises(WorkflowFailureError) as failure:
        await dev_client.execute_workflow(
            order_graph.workflow.run,
            OrderInput(journal=str(journal), fail_at="ship"),
            id=f"order-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    assert isinstance(failure.value.cause, ApplicationError) and failure.value.cause.type == "SagaCompensated"
    assert journal.read_text().split("\n")[:-1] == [
        "reserve",
        "charge",
        "pack",
        "undo pack",
        "undo charge",
        "undo reserve",
    ]


async def test_a_failing_packet_of_a_fan_out_undoes_its_siblings_that_finished_after_it(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    with pytest.raises(WorkflowFailureError):
        await dev_client.execute_workflow(
            book_graph.workflow.run,
            BookInput(journal=str(journal), items=["a", "bad", "c"]),
            id=f"book-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    lines = journal.read_text().split("\n")[:-1]
    # The failing packet's undo runs too (registered before it ran; it must be safe for it).
    assert sorted(lines[:2]) == ["book a", "book c"] and sorted(lines[2:]) == ["undo a", "undo bad", "undo c"]


async def test_a_node_that_takes_effect_then_fails_is_undone_too(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    handle = await dev_client.start_workflow(
        order_graph.workflow.run,
        OrderInput(journal=str(journal), fail_after="pack"),
        id=f"order-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert journal.read_text().split("\n")[:-1] == [
        "reserve",
        "charge",
        "pack",
        "undo pack",
        "undo charge",
        "undo reserve",
    ]
    status = await handle.query("status")
    assert [c["step"] for c in status["compensations"]] == ["pack", "charge", "reserve"]
    assert status["completed_steps"] == ["reserve", "charge"]


async def test_an_open_breaker_sends_the_node_to_its_fallback_and_the_status_says_so(
    dev_client: Client, task_queue: str, db: Database
) -> None:
    async with running_worker(
        dev_client, db, task_queue=task_queue, families=[quote_graph.family], activity_threads=4, cpu_processes=0
    ):
        closed = await dev_client.start_workflow(
            quote_graph.workflow.run, QuoteInput(question="rates?"), id=f"quote-{uuid.uuid4()}", task_queue=task_queue
        )
        assert await closed.result() == {"question": "rates?", "answer": "MODEL: RATES?", "source": "model"}
        # The node's activity ran on the rate-limited LLM queue, the others on the main one.
        scheduled = [
            e.activity_task_scheduled_event_attributes
            for e in (await closed.fetch_history()).events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        queues = {s.activity_type.name: s.task_queue.name for s in scheduled}
        assert queues == {"quote-graph.ask_model": llm_task_queue(task_queue), "quote-graph.polish": task_queue}

        with pytest.raises(ZeroDivisionError):  # one failure opens it (threshold 1, 10 min)
            Breakers(db, {QUOTE_BREAKER: BreakerConfig(1, 600)}).call(QUOTE_BREAKER, lambda: 1 / 0, fallback=False)
        handle = await dev_client.start_workflow(
            quote_graph.workflow.run, QuoteInput(question="rates?"), id=f"quote-{uuid.uuid4()}", task_queue=task_queue
        )
        assert await handle.result() == {"question": "rates?", "answer": "CACHED: TRY AGAIN LATER", "source": "cache"}
        status = await handle.query("status")
    first, second = status["updates"]
    assert (first["node"], first["fallback"], first["breaker"]) == ("ask_model", "cached_answer", QUOTE_BREAKER)
    assert (second["node"], second["fallback"]) == ("polish", None)
    assert status["steps"][0]["outcome"] == f"fallback to cached_answer: breaker {QUOTE_BREAKER} open"
    assert node_runs(await handle.fetch_history(), "quote-graph") == Counter(ask_model=1, cached_answer=1, polish=1)


async def test_a_cancel_undoes_the_completed_nodes_in_reverse(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    handle = await dev_client.start_workflow(
        confirmed_order_graph.workflow.run,
        OrderInput(journal=str(journal)),
        id=f"order-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    # Cancelled while the interrupt waits: reserve and charge are done, nothing after.
    while not await _approval_pending(handle):
        await asyncio.sleep(0.05)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert journal.read_text().split("\n")[:-1] == ["reserve", "charge", "undo charge", "undo reserve"]
    status = await handle.query("status")
    assert status["state"] == "canceled"
    assert [c["step"] for c in status["compensations"]] == ["charge", "reserve"]


async def _approval_pending(handle: WorkflowHandle[Any, Any]) -> bool:
    # Only read to decide when to cancel (no Update follows from it).
    history = await handle.fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES for e in history.events)


async def test_a_paused_graph_starts_no_node_until_resumed(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    handle = await dev_client.start_workflow(
        order_graph.workflow.run,
        OrderInput(journal=str(tmp_path / "journal"), gate=str(gate)),
        id=f"order-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    while not node_runs(await handle.fetch_history(), "order-graph")["pack"]:
        await asyncio.sleep(0.05)
    await handle.signal("pause")
    gate.touch()  # pack ends while paused
    while (status := await handle.query("status"))["done"] < 3:
        await asyncio.sleep(0.05)
    assert status["state"] == "paused" and status["completed_steps"] == ["reserve", "charge", "pack"]
    assert "ship" not in node_runs(await handle.fetch_history(), "order-graph")
    await handle.signal("resume")
    assert (await handle.result())["steps"] == ["reserve", "charge", "pack", "ship", "notify"]


async def test_restart_from_a_node_with_edited_state(
    dev_client: Client, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    source = await dev_client.start_workflow(
        order_graph.workflow.run, OrderInput(journal=str(journal)), id=f"order-{uuid.uuid4()}", task_queue=task_queue
    )
    assert (await source.result())["steps"] == ["reserve", "charge", "pack", "ship", "notify"]
    with pytest.raises(ValueError, match="never reached node 'nope'"):
        await restart_graph(dev_client, source.id, "nope")
    restarted = await restart_graph(dev_client, source.id, "pack", edits={"steps": ["edited"]})
    assert (await restarted.result())["steps"] == ["edited", "pack", "ship", "notify"]
    assert node_runs(await restarted.fetch_history(), "order-graph") == Counter(pack=1, ship=1, notify=1)
    status = await restarted.query("status")
    assert status["restarted_from"] == f"{source.id}/{source.result_run_id}"
    assert journal.read_text().split("\n")[:-1] == [
        "reserve",
        "charge",
        "pack",
        "ship",
        "notify",
        "pack",
        "ship",
        "notify",
    ]


async def test_saga_restart_restarts_a_graph_run_from_a_node_with_set(
    dev_client: Client, dev_address: str, task_queue: str, graph_worker: Worker, tmp_path: Path
) -> None:
    source = await dev_client.start_workflow(
        order_graph.workflow.run,
        OrderInput(journal=str(tmp_path / "journal")),
        id=f"order-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    await source.result()
    refused = await asyncio.to_thread(_saga, dev_address, "restart", source.id, "--from", "pack", "--set", "steps")
    assert refused.returncode == 2 and "--set 'steps': expected KEY=VALUE" in refused.stderr
    done = await asyncio.to_thread(
        _saga, dev_address, "restart", source.id, "--from", "ship", "--set", 'steps=["from the cli"]'
    )
    assert done.returncode == 0, done.stderr
    new_id = done.stdout.split("restarted ")[1].split(" from ship")[0]
    restarted = dev_client.get_workflow_handle(new_id)
    assert (await restarted.result())["steps"] == ["from the cli", "ship", "notify"]
    assert (await restarted.query("status"))["restarted_from"].startswith(source.id + "/")


async def test_a_worker_killed_mid_graph_resumes_without_rerunning_completed_nodes(
    dev_client: Client, dev_address: str, task_queue: str, tmp_path: Path
) -> None:
    journal, gate = tmp_path / "journal", tmp_path / "gate"
    command = [sys.executable, "-m", "tests.langgraph_graphs", dev_address, task_queue]
    root = Path(__file__).resolve().parents[1]
    first = subprocess.Popen(command, cwd=root)
    try:
        handle = await dev_client.start_workflow(
            order_graph.workflow.run,
            OrderInput(journal=str(journal), gate=str(gate)),
            id=f"order-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        while not node_runs(await handle.fetch_history(), "order-graph")["pack"]:
            await asyncio.sleep(0.05)
        first.kill()  # SIGKILL while pack is held: no drain, as if the machine died
        first.wait(timeout=30)
    finally:
        first.kill()
    gate.touch()
    second = subprocess.Popen(command, cwd=root)
    try:
        # pack's attempt on the dead worker times out (start-to-close) and is retried here.
        result = await handle.result()
    finally:
        second.kill()
        second.wait(timeout=30)
    assert result["steps"] == ["reserve", "charge", "pack", "ship", "notify"]
    assert node_runs(await handle.fetch_history(), "order-graph") == Counter(
        reserve=1, charge=1, pack=1, ship=1, notify=1
    )
    assert journal.read_text().split("\n")[:-1] == ["reserve", "charge", "pack", "ship", "notify"]


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_graph_histories_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    from sagaworks.client.connection import DATA_CONVERTER

    await Replayer(
        workflows=[g.workflow for g in [*GRAPHS, quote_graph]], data_converter=DATA_CONVERTER
    ).replay_workflow(history)


def test_the_recorded_graph_histories_are_there() -> None:
    assert {p.stem for p in HISTORIES.glob("*.json")} >= {
        "document-graph--stored",
        "routing-graph--approved",
        "order-graph--compensated",
        "confirmed-order-graph--canceled",
        "order-graph--restarted",
        # recorded with undos registered before their node, and with a breaker's fallback
        "order-graph--failing-node-undone",
        "quote-graph--fallback",
    }


def test_the_example_package_registers_its_graphs_as_families() -> None:
    import importlib
    import tomllib

    import sagaworks

    declared = tomllib.loads((Path(__file__).parents[1] / "examples" / "langgraph" / "pyproject.toml").read_text())
    entry_points = declared["project"]["entry-points"]["sagaworks.families"]
    assert entry_points == {
        "document-graph": "sagaworks_graphs.families:document",
        "routing-graph": "sagaworks_graphs.families:routing",
    }
    for name, target in entry_points.items():
        module, _, attr = target.partition(":")
        family = getattr(importlib.import_module(module), attr)
        assert isinstance(family, sagaworks.Family)
        assert (family.name, family.workflow_type) == (name, f"langgraph-{name}")
        assert set(family.updates) >= {"approve", "reject"} and family.approval is not None


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "langgraph"


@pytest.fixture
def example_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example package as ``pip install examples/langgraph`` would make it visible (its
    dist-info with the entry points of its pyproject.toml), on sys.path for this test only,
    and a registry discovered afresh with it; the folder to put on a CLI's PYTHONPATH."""
    import tomllib

    from sagaworks import registry
    from tests.distributions import write_dist_info

    declared = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = write_dist_info(tmp_path / "site", declared["name"], declared["entry-points"]["sagaworks.families"])
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    yield site
    registry.cache_clear()


async def _cli(address: str, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {
        "TEMPORAL_ADDRESS": address,
        "PYTHONPATH": f"{site}{os.pathsep}{EXAMPLE}",
    }
    saga = str(Path(sys.executable).parent / "saga")
    return await asyncio.to_thread(subprocess.run, [saga, *args], capture_output=True, text=True, env=env, timeout=120)


async def _cli_decide(address: str, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``saga approve|reject``, again while the run has not reached its interrupt yet."""
    while True:
        answer = await _cli(address, site, *args)
        if answer.returncode == 0 or "no approval is pending" not in answer.stderr:
            return answer
        await asyncio.sleep(0.1)


async def test_saga_approve_reject_and_run_wait_serve_the_example_graphs_registered_by_entry_point(
    example_installed: Path, dev_client: Client, dev_address: str, db: Database, tmp_path: Path
) -> None:
    from sagaworks.client.connection import TASK_QUEUE

    async def start(text: str, *flags: str) -> subprocess.CompletedProcess[str]:
        request = tmp_path / f"{uuid.uuid4()}.json"
        request.write_text(json.dumps({"user_input": text}))
        return await _cli(dev_address, example_installed, "run", "routing-graph", "--input", str(request), *flags)

    catalog = await _cli(dev_address, example_installed, "catalog")
    assert "routing-graph  (langgraph-routing-graph)" in catalog.stdout and "document-graph" in catalog.stdout
    async with running_worker(dev_client, db, task_queue=TASK_QUEUE, activity_threads=4, cpu_processes=0):
        ids = []
        for text in ("admin: reset", "admin: drop"):
            started = await start(text, "--json")
            assert started.returncode == 0, started.stderr
            ids.append(json.loads(started.stdout)["workflow_id"])
        refused = await _cli_decide(dev_address, example_installed, "approve", ids[0], "--approver", "mallory")
        assert refused.returncode != 0 and "mallory is not one of ops" in refused.stderr
        approved = await _cli_decide(dev_address, example_installed, "approve", ids[0], "--approver", "ops")
        assert approved.returncode == 0, approved.stderr
        assert f"{ids[0]}: approved by ops" in approved.stdout
        rejected = await _cli_decide(
            dev_address, example_installed, "reject", ids[1], "--approver", "ops", "--reason", "not today"
        )
        assert rejected.returncode == 0, rejected.stderr
        results = [await dev_client.get_workflow_handle(i).result() for i in ids]
        assert results[0]["result"].startswith("APPROVED: Admin processing")
        assert results[1]["result"].startswith("DENIED: Admin processing")

        # --wait follows the run's status query (the nodes as they run) to its end.
        waited = await start("premium user", "--wait")
        assert waited.returncode == 0, waited.stderr
        assert "COMPLETED" in waited.stdout and "Premium processing" in waited.stdout
        assert ": completed" in waited.stderr and "2/2" in waited.stderr
        assert '  classify_user: {"user_type": "premium", "requires_approval": false}' in waited.stderr
        assert '  premium_processing: {"result": "Premium processing: premium user' in waited.stderr
        workflow_id = waited.stdout.split("Started ")[1].split()[0]
        status = json.loads((await _cli(dev_address, example_installed, "status", workflow_id, "--json")).stdout)
    assert status["family"] == "routing-graph"
    assert [u["node"] for u in status["progress"]["updates"]] == ["classify_user", "premium_processing"]


async def test_the_api_approves_and_rejects_an_example_graph_and_streams_its_node_updates(
    example_installed: Path, dev_client: Client, dev_address: str, db: Database, task_queue: str, tmp_path: Path
) -> None:
    import httpx

    from sagaworks.client.api import ApiSettings
    from tests.apiserver import api_server, read_events

    settings = ApiSettings(task_queue=task_queue, address=dev_address, database_url=f"sqlite:///{tmp_path / 'api.db'}")
    async with running_worker(dev_client, db, task_queue=task_queue, activity_threads=4, cpu_processes=0):
        with api_server(settings) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:

                async def start(text: str) -> str:
                    started = await http.post("/api/workflows/routing-graph", json={"user_input": text})
                    assert started.status_code == 201, started.text
                    return started.json()["workflow_id"]

                async def decide_over_http(workflow_id: str, update: str, body: dict[str, Any]) -> httpx.Response:
                    while True:
                        answer = await http.post(f"/api/workflows/{workflow_id}/updates/{update}", json=body)
                        if answer.status_code == 200 or "no approval is pending" not in answer.text:
                            return answer
                        await asyncio.sleep(0.1)

                approve_id, reject_id = await start("admin: reset"), await start("admin: drop")
                approved = await decide_over_http(approve_id, "approve", {"approver": "ops"})
                assert approved.status_code == 200, approved.text
                assert approved.json()["result"]["decision"] == "approved"
                rejected = await decide_over_http(reject_id, "reject", {"approver": "ops", "reason": "not today"})
                assert rejected.status_code == 200, rejected.text
                for workflow_id, verdict in ((approve_id, "APPROVED"), (reject_id, "DENIED")):
                    result = await dev_client.get_workflow_handle(workflow_id).result()
                    assert result["result"].startswith(f"{verdict}: Admin processing")

                events = await read_events(http, approve_id)
                page = await http.get(f"/runs/{approve_id}")  # the console's run page
                assert page.status_code == 200, page.text
                updates_html = page.text.split('id="node-updates"')[1]
                assert all(node in updates_html for node in ("classify_user", "admin_processing", "approval_check"))
    statuses = [data["progress"] for kind, data in events if kind == "status" and isinstance(data["progress"], dict)]
    assert statuses, events
    assert [u["node"] for u in statuses[-1]["updates"]] == ["classify_user", "admin_processing", "approval_check"]
    assert statuses[-1]["updates"][-1]["update"]["approver"] == "ops"
    assert events[-1][0] == "result" and events[-1][1]["status"] == "COMPLETED"


def test_a_node_policy_is_checked_at_registration() -> None:
    from sagaworks.langgraph import NodePolicy, register_graph

    for policy, expected in (
        (NodePolicy(fallback="cached_answer"), "ask_model: a fallback needs a breaker"),
        (NodePolicy(breaker="model", fallback="nowhere"), "not 'nowhere'"),
        (NodePolicy(breaker="model", fallback="ask_model"), "not 'ask_model'"),
        (NodePolicy(breaker=" "), "breaker name ' '"),
    ):
        with pytest.raises(ValueError, match=expected):
            register_graph("bad-quote", quote_builder(), input_model=QuoteInput, nodes={"ask_model": policy})
    # A graph with breakers needs the worker's database: a plain activity list is refused.
    with pytest.raises(ValueError, match="nodes ask_model go through breakers"):
        _ = quote_graph.activities
