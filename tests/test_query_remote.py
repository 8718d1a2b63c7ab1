"""Remote mode with real processes: three agents served over HTTP, two worker processes.

Kill the viz agent: runs degrade to tables; after the threshold its breaker is OPEN for
both workers (each of them reports it). Restart the agent: after the recovery time one
trial closes the breaker and charts come back.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from sagaworks._breakers import breaker_statuses
from sagaworks.activities.db import Database
from tests.queries import start_query
from tests.workers import WorkerProcess


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentProcess:
    """``python -m activities.query.remote AGENT --port N``."""

    def __init__(self, agent: str, database_url: str, log: Path) -> None:
        self.agent, self.port, self.log = agent, _free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"DATABASE_URL": database_url, "SAGAWORKS_LLM_PROVIDER": "offline"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sagaworks.activities.query.remote", self.agent, "--port", str(self.port)],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=out,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).json() == {"agent": self.agent, "status": "ok"}:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"{self.agent} agent never became healthy"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    Database(url).dispose()  # the schema, before several processes race to create it
    yield url


async def _health_check_identity(client: Client, workflow_id: str) -> str:
    """The identity (pid@host) of the worker that ran the run's pre-flight health check.

    It is a local activity: a marker recorded by the workflow task that ran it.
    """
    completed: dict[int, str] = {}
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            completed[event.event_id] = event.workflow_task_completed_event_attributes.identity
        if event.HasField("marker_recorded_event_attributes"):
            return completed[event.marker_recorded_event_attributes.workflow_task_completed_event_id]
    raise AssertionError(f"no health check in {workflow_id}")


async def test_breaker_opens_for_every_worker_and_a_trial_closes_it(
    dev_client: Client, dev_address: str, task_queue: str, database_url: str, tmp_path: Path
) -> None:
    agents = {name: AgentProcess(name, database_url, tmp_path / f"{name}.log") for name in ("nlp", "data", "viz")}
    workers = [
        WorkerProcess(
            dev_address,
            task_queue,
            database_url,
            tmp_path / f"worker{i}.log",
            NLP_AGENT_URL=agents["nlp"].url,
            DATA_AGENT_URL=agents["data"].url,
            VIZ_AGENT_URL=agents["viz"].url,
            SAGAWORKS_BREAKER_VIZ="2/4",
        )
        for i in range(2)
    ]
    try:
        for agent in agents.values():
            agent.start()
        for worker in workers:
            worker.start()
        first = await (await start_query(dev_client, task_queue, "average mpg by origin")).result()
        assert first.chart.kind == "bar" and first.produced_by == {
            "plan": "nlp-agent:offline-parser",
            "rows": "data-agent",
            "chart": "viz-agent",
        }

        agents["viz"].kill()
        db = Database(database_url)
        seen_open_by: set[str] = set()
        for _ in range(30):
            handle = await start_query(dev_client, task_queue, "average mpg by origin")
            result = await handle.result()
            assert result.chart.kind == "table" and result.produced_by["chart"] == "fallback:table"
            assert len(result.rows) == 3
            if "circuit breaker viz is open" in result.fallbacks[0]:
                seen_open_by.add(await _health_check_identity(dev_client, handle.id))
                viz = {s.name: s for s in breaker_statuses(db)}["viz"]
                assert viz.state == "open" and viz.next_trial_at is not None
            if len(seen_open_by) == 2:
                break
        assert len(seen_open_by) == 2, f"only {seen_open_by} reported the open breaker"

        agents["viz"].start()
        viz = {s.name: s for s in breaker_statuses(db)}["viz"]
        assert viz.state == "open" and viz.next_trial_at is not None
        while datetime.now(UTC) <= viz.next_trial_at:
            await asyncio.sleep(0.05)
        back = await (await start_query(dev_client, task_queue, "average mpg by origin")).result()
        assert back.chart.kind == "bar" and back.fallbacks == []
        assert {s.name: s.state for s in breaker_statuses(db)}["viz"] == "closed"
        db.dispose()
    finally:
        for worker in workers:
            worker.stop()
        for agent in agents.values():
            if agent.process is not None and agent.process.poll() is None:
                agent.kill()


async def test_demo_degrades_to_a_table_with_the_viz_breaker_open_and_dev_down_stops_the_agent(
    dev_client: Client, dev_address: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`saga demo`'s outage run against the viz agent `saga dev up` serves, then `saga dev down`."""
    from io import StringIO

    from rich.console import Console

    from sagaworks import registry
    from sagaworks.activities.query.activities import QuerySettings
    from sagaworks.client import devserver
    from sagaworks.client.connection import TASK_QUEUE
    from sagaworks.client.demo import _outage
    from sagaworks.worker import running_worker

    monkeypatch.setattr(devserver, "STATE_DIR", tmp_path)
    monkeypatch.setenv("SAGAWORKS_VIZ_AGENT_PORT", str(_free_port()))
    monkeypatch.setenv("VIZ_AGENT_URL", devserver.viz_agent_url())
    monkeypatch.setenv("SAGAWORKS_BREAKER_VIZ", "2/3")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_address)
    fam = registry().family("query")
    [outage] = [demo for demo in fam.demo if demo.stops_agent == "viz"]
    output = StringIO()
    console = Console(file=output, width=300)
    db = Database(database_url)
    try:
        first_pid, _ = await asyncio.to_thread(devserver.start_viz_agent)
        async with running_worker(
            dev_client, db, task_queue=TASK_QUEUE, activity_threads=4, settings=[QuerySettings.from_env()]
        ):
            assert await _outage(console, fam, outage, uuid.uuid4().hex[:8]), output.getvalue()
        shown = output.getvalue()
        assert "viz agent stopped" in shown
        assert "degraded to a table" in shown and "'chart': 'fallback:table'" in shown
        assert "fallback: viz: down at pre-flight (circuit breaker viz is open" in shown
        assert "breaker viz: OPEN, 2/2 failures" in shown
        assert "chart bar" in shown and "breaker viz: CLOSED" in shown
        assert shown.count("console: http://127.0.0.1:8000/runs/query-mpg-by-origin-") == 2
        assert {s.name: s.state for s in breaker_statuses(db)}["viz"] == "closed"
        agent_pid = devserver.running_pid(devserver.VIZ_AGENT)
        assert agent_pid is not None and agent_pid != first_pid  # served again by the demo

        down = subprocess.run(
            [str(Path(sys.executable).parent / "saga"), "dev", "down"],
            env={**os.environ, "SAGAWORKS_STATE_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert down.returncode == 0 and f"{devserver.VIZ_AGENT}: stopped" in down.stdout, down
        assert not devserver._alive(agent_pid) and devserver.running_pid(devserver.VIZ_AGENT) is None
    finally:
        devserver.stop_background(devserver.VIZ_AGENT)
        db.dispose()
