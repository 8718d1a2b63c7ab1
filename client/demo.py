"""`saga demo`: run the demo samples of every family and show their outcomes and UI links."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from rich.console import Console
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from sagaworks import APPROVAL_REFUSED, UPDATE_REFUSED, DemoRun, DemoUpdate, Family, registry
from sagaworks.client import devserver
from sagaworks.client.connection import connect, ui_url
from sagaworks.client.runs import Outcome, failure_lines, query_progress, run_outcome, start_run, to_jsonable
from sagaworks.contracts.breakers import BreakerStatus

CONSOLE = os.environ.get("SAGAWORKS_CONSOLE_URL", "http://127.0.0.1:8000").rstrip("/")
"""Where `saga dev up` serves the web console (`saga api`)."""


def summarize(result: Any) -> str:
    """One line of a result: its scalar fields, and the size of its lists and mappings."""
    data = to_jsonable(result)
    if not isinstance(data, dict):
        return str(data)
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            parts.append(f"{key}: {len(value)} items")
        elif isinstance(value, dict):
            parts.append(f"{key}: {len(value)} entries")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


class _Block:
    """A run's lines, kept until the run is over and then printed together: the runs of a
    family go at once, and lines printed as each arrived would interleave two runs' output."""

    def __init__(self) -> None:
        self.lines: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def print(self, *objects: Any, **options: Any) -> None:
        self.lines.append((objects, options))

    def print_to(self, console: Console) -> None:
        for objects, options in self.lines:
            console.print(*objects, **options)


async def _run(console: Console, fam: Family[Any], demo: DemoRun, suffix: str) -> bool:
    block = _Block()
    try:
        return await _run_into(block, fam, demo, suffix)
    finally:
        block.print_to(console)


async def _run_into(console: Any, fam: Family[Any], demo: DemoRun, suffix: str) -> bool:
    client = await connect()
    handle = await start_run(client, fam, fam.sample_input(demo.sample, suffix))
    for update in demo.updates:
        await _send(console, handle, update)
    outcome = await run_outcome(handle, wait=demo.expect != "RUNNING")
    link = ui_url(client, handle.id, handle.result_run_id)
    empty = missing_content(demo, outcome)
    passed = outcome.status == demo.expect and not empty
    colour = "green" if passed else "red"
    console.print(f"[{colour}]{handle.id}: {outcome.status}[/{colour}] (expected {demo.expect}; sample {demo.sample})")
    if outcome.status == "COMPLETED":
        console.print(f"  {summarize(outcome.result)}", markup=False)
    if empty:
        console.print(f"  [red]completed without {demo.result_means or 'its result'}: {', '.join(empty)} missing[/red]")
    elif outcome.status == "RUNNING":
        console.print(f"  {summarize(await progress_at(handle, demo.shown_at))}", markup=False)
    for line in failure_lines(outcome.failure or []):
        console.print(f"  {line}", markup=False)
    _links(console, link, handle.id)
    return passed


def missing_content(demo: DemoRun, outcome: Outcome) -> list[str]:
    """What a completed run's result lacks of what the demo says it must contain (a news
    digest whose feeds all failed completes with no article: the demo must not pass it)."""
    if outcome.status != "COMPLETED":
        return []
    return demo.missing_from(to_jsonable(outcome.result))


def _links(console: Any, ui_link: str, workflow_id: str) -> None:
    console.print(f"  UI: {ui_link}\n  console: {CONSOLE}/runs/{quote(workflow_id, safe='')}")


SERVED_AGENTS = {"viz": (devserver.VIZ_AGENT, devserver.start_viz_agent)}
"""The agents `saga dev up` serves as processes of their own: background name, starter."""


def _breaker(name: str) -> BreakerStatus:
    """Breaker ``name`` as every worker sees it (what `saga breakers` lists)."""
    from sagaworks._breakers import breaker_statuses

    for status in breaker_statuses():
        if status.name == name:
            return status
    raise LookupError(f"no breaker {name!r} in the application database: is the worker's DATABASE_URL the same?")


def _breaker_line(status: BreakerStatus) -> str:
    trial = f", next trial {status.next_trial_at:%H:%M:%S} UTC" if status.next_trial_at else ""
    return (
        f"breaker {status.name}: {status.state.upper()}, "
        f"{status.failures}/{status.fail_max} failures, {status.trips} trips{trial}"
    )


async def _until_trial_due(console: Console, agent: str) -> None:
    """Return once breaker ``agent`` is not open, or its trial time has come (the next
    run's health probe is then the trial)."""
    try:
        status = _breaker(agent)
    except LookupError:
        return  # no worker has created the breakers yet: none is open
    trial = status.next_trial_at
    if status.state == "open" and trial is not None and trial > datetime.now(UTC):
        console.print(f"  {_breaker_line(status)}: waiting for its trial", markup=False)
        await asyncio.sleep((trial - datetime.now(UTC)).total_seconds() + 0.1)


async def _run_once(fam: Family[Any], demo: DemoRun, suffix: str) -> tuple[Any, Outcome, dict[str, Any]]:
    client = await connect()
    handle = await start_run(client, fam, fam.sample_input(demo.sample, suffix))
    outcome = await run_outcome(handle)
    result = to_jsonable(outcome.result) if outcome.status == "COMPLETED" else {}
    return handle, outcome, result


async def _outage(console: Console, fam: Family[Any], demo: DemoRun, suffix: str) -> bool:
    """Stop ``demo.stops_agent``, run the sample until its breaker is open, show a run with
    the breaker open, serve the agent again and show the trial run that closes it."""
    agent = demo.stops_agent
    background, start_agent = SERVED_AGENTS[agent]
    if devserver.running_pid(background) is None:
        console.print(
            f"[yellow]{demo.sample}: skipped, no {agent} agent of `saga dev up` to stop "
            f"({agent.upper()}_AGENT_URL points elsewhere, --no-{agent}-agent, "
            "or it could not be served: see `saga dev up`)[/yellow]"
        )
        return True
    client = await connect()
    devserver.stop_background(background)
    try:
        console.print(f"{agent} agent stopped: each run's pre-flight probe fails and counts toward its breaker")
        for attempt in range(1, _breaker(agent).fail_max + 2):
            if _breaker(agent).state == "open":
                break
            handle, outcome, result = await _run_once(fam, demo, f"{suffix}-down{attempt}")
            chart = result.get("chart", {}).get("kind")
            console.print(
                f"  {handle.id}: {outcome.status}, chart {chart}; {_breaker_line(_breaker(agent))}", markup=False
            )

        handle, outcome, result = await _run_once(fam, demo, f"{suffix}-open")
        fallbacks = result.get("fallbacks", [])
        degraded = (
            outcome.status == "COMPLETED"
            and not missing_content(demo, outcome)
            and result["chart"]["kind"] == "table"
            and result["produced_by"]["chart"] == "fallback:table"
            and any(f.startswith(f"{agent}:") and f"circuit breaker {agent} is open" in f for f in fallbacks)
        )
        colour = "green" if degraded else "red"
        console.print(
            f"[{colour}]{handle.id}: {outcome.status}, degraded to a {result.get('chart', {}).get('kind')}[/{colour}] "
            f"(expected a table, the {agent} agent stopped and its breaker open; sample {demo.sample})"
        )
        console.print(f"  produced by: {result.get('produced_by')}", markup=False)
        for fallback in fallbacks:
            console.print(f"  fallback: {fallback}", markup=False)
        console.print(
            f"  {_breaker_line(_breaker(agent))} (`saga breakers`, {CONSOLE}/api/circuit-breakers/status)", markup=False
        )
        for line in failure_lines(outcome.failure or []):
            console.print(f"  {line}", markup=False)
        _links(console, ui_url(client, handle.id, handle.result_run_id), handle.id)
    finally:
        # Served again even when a run above failed: the agent is never left stopped.
        pid, _ = await asyncio.to_thread(start_agent)
    console.print(f"{agent} agent served again (pid {pid})")
    await _until_trial_due(console, agent)
    handle, outcome, result = await _run_once(fam, demo, f"{suffix}-back")
    status = _breaker(agent)
    recovered = (
        outcome.status == "COMPLETED"
        and not missing_content(demo, outcome)
        and result["chart"]["kind"] != "table"
        and status.state == "closed"
    )
    colour = "green" if recovered else "red"
    console.print(
        f"[{colour}]{handle.id}: {outcome.status}, chart {result.get('chart', {}).get('kind')}[/{colour}] "
        f"(expected a chart: its pre-flight probe was the trial) {_breaker_line(status)}"
    )
    _links(console, ui_url(client, handle.id, handle.result_run_id), handle.id)
    return degraded and recovered


async def progress_at(handle: Any, step: str, patience: float = 60) -> Any:
    """The run's status once its current step mentions ``step`` (or after ``patience`` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        progress = await query_progress(handle)
        if isinstance(progress, str) or step in (progress.current_step or "") or loop.time() > deadline:
            return progress
        await asyncio.sleep(0.2)


NOT_YET = (UPDATE_REFUSED, APPROVAL_REFUSED)
"""The refusals of an update sent before its run got there (a ticket not yet classified,
an approval not yet pending): an update with a ``when_step`` is sent again after them."""


async def send_demo_update(handle: Any, update: DemoUpdate, within: float = 60) -> Any:
    """Send ``update``; its answer. An update with a ``when_step`` is refused by its
    validator until the run gets there, so a refusal is sent again for ``within`` seconds.

    The run's status is never queried first: an Update that follows a status query by
    moments can share a workflow task with a command the query's task made, and the SDK
    then records that command before the Update's acceptance, an order no replay
    reproduces (tests/histories/unreplayable/). A refused Update leaves no trace in the
    history. Shared by ``saga demo``, the history recorder (tests/record_histories.py) and
    the chaos run (tests/chaos.py).

    A lost connection (the server restarting, the worker killed while the update waits) is
    retried for ``within`` seconds under the same update id, so an update the server had
    accepted is not applied twice; only a refused update is sent again under a new id."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    update_id = f"{update.name}-{uuid.uuid4()}"
    while True:
        try:
            return await handle.execute_update(update.name, update.arg, id=update_id)
        except WorkflowUpdateFailedError as refused:
            not_yet = isinstance(refused.cause, ApplicationError) and refused.cause.type in NOT_YET
            if not (update.when_step and not_yet) or loop.time() > deadline:
                raise
            update_id = f"{update.name}-{uuid.uuid4()}"
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            if loop.time() > deadline:
                raise
        await asyncio.sleep(0.2)


async def _send(console: Any, handle: Any, update: DemoUpdate) -> None:
    answer = await send_demo_update(handle, update)
    where = f" once at {update.when_step!r};" if update.when_step else ""
    console.print(f"  {handle.id}{where} sent {update.name}: {summarize(answer)}", markup=False)


async def run_demo(console: Console) -> int:
    """Run every family's demo samples, family by family; 0 when each ended as expected."""
    suffix = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    verdicts: list[bool] = []
    for fam in registry().demo_order():
        console.print(f"\n[bold]== {fam.name}[/bold]: {fam.description}")
        outages = [demo for demo in fam.demo if demo.stops_agent]
        for agent in {demo.stops_agent for demo in outages}:
            # A demo cut short earlier may have left the breaker open.
            await _until_trial_due(console, agent)
        plain = (_run(console, fam, demo, suffix) for demo in fam.demo if not demo.stops_agent)
        verdicts += await asyncio.gather(*plain)
        for demo in outages:  # one at a time, after the others: they stop an agent
            verdicts.append(await _outage(console, fam, demo, suffix))
    client = await connect()
    console.print(f"\nAll runs in the Temporal UI: {ui_url(client, '').rstrip('/')}")
    console.print(f"Web console (catalog, start forms, runs): {CONSOLE}/")
    return 0 if all(verdicts) else 1
