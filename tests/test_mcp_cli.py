"""``saga mcp list|call`` and ``saga tickets``, run as a user runs them, against the dev server."""

from __future__ import annotations

import asyncio
import json
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from sagaworks.client.connection import TASK_QUEUE
from sagaworks.contracts.support import TicketInput
from sagaworks.workflows.support_ticket import SupportTicket
from tests.test_cli import default_queue_worker, saga  # noqa: F401 - fixtures


async def test_mcp_list_shows_servers_tools_and_timeouts(saga, default_queue_worker: Worker) -> None:
    run = await saga("mcp", "list")
    assert run.code == 0, run.stderr
    assert "weather: Recorded daily weather by city" in run.stdout
    assert "  get_weather(city, [date])  5 s" in run.stdout
    assert "  read_query(query)  15 s" in run.stdout


async def test_mcp_call_prints_the_tools_answer(saga, default_queue_worker: Worker) -> None:
    run = await saga("mcp", "call", "weather", "get_weather", "--args", '{"city": "Seattle", "date": "2015-06-01"}')
    assert run.code == 0, run.stderr
    observation = json.loads(run.stdout)
    assert (observation["city"], observation["date"]) == ("Seattle", "2015-06-01")
    assert {"precipitation_mm", "temp_max_c", "temp_min_c", "wind_m_s", "conditions"} <= set(observation)


async def test_mcp_call_refuses_bad_arguments_and_reports_tool_errors(saga, default_queue_worker: Worker) -> None:
    bad = await saga("mcp", "call", "weather", "get_weather", "--args", '{"town": "Seattle"}')
    assert bad.code == 1 and "'city' is a required property" in bad.stderr
    not_json = await saga("mcp", "call", "weather", "get_weather", "--args", "{city")
    assert not_json.code == 2 and "--args: not JSON" in not_json.stderr
    unknown = await saga("mcp", "call", "nowhere", "x")
    assert unknown.code == 2 and "no MCP server 'nowhere'; configured: weather, files, database" in unknown.stderr
    tool_error = await saga("mcp", "call", "weather", "get_weather", "--args", '{"city": "Atlantis"}')
    assert tool_error.code == 1 and "no weather station for 'Atlantis'" in tool_error.stderr


async def test_tickets_lists_a_queue_by_search_attributes(
    saga, default_queue_worker: Worker, dev_client: Client
) -> None:
    ticket_id = f"T-{uuid.uuid4().hex[:8]}"
    handle = await dev_client.start_workflow(
        SupportTicket.run,
        TicketInput(ticket_id=ticket_id, customer_email="ada@example.com", subject="Urgent: payment failed"),
        id=f"ticket-{ticket_id}",
        task_queue=TASK_QUEUE,
    )
    try:
        for _ in range(100):
            critical = await saga("tickets", "--priority", "critical", "--state", "open", "--json")
            if any(row["workflow_id"] == handle.id for row in json.loads(critical.stdout or "[]")):
                break
            await asyncio.sleep(0.2)
        row = next(row for row in json.loads(critical.stdout) if row["workflow_id"] == handle.id)
        assert (row["type"], row["priority"], row["state"]) == ("customer_service", "CRITICAL", "open")
        low = await saga("tickets", "--priority", "LOW", "--json")
        assert handle.id not in low.stdout
        bad = await saga("tickets", "--priority", "SOON")
        assert bad.code == 2 and "expected one of LOW, MEDIUM, HIGH, CRITICAL" in bad.stderr
    finally:
        await handle.terminate("test over")


async def test_demo_runs_an_aggregation_and_opens_two_tickets(
    default_queue_worker: Worker, dev_address: str, monkeypatch
) -> None:
    from io import StringIO

    from rich.console import Console

    from sagaworks import registry
    from sagaworks.client.demo import _run

    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_address)
    output = StringIO()
    console = Console(file=output, width=300)
    suffix = uuid.uuid4().hex[:8]
    for name in ("aggregate", "support-ticket"):
        fam = registry().family(name)
        assert all([await _run(console, fam, demo, suffix) for demo in fam.demo]), output.getvalue()
    shown = output.getvalue()
    assert "partial: weather" in shown
    assert f"ticket-T-1001-{suffix}: RUNNING" in shown and "current_step=resolved, MEDIUM" in shown
    assert f"ticket-T-1002-{suffix}: RUNNING" in shown and "escalated (trigger words: manager, unacceptable)" in shown
