"""`saga demo`: run the demo samples of every family and show their outcomes and UI links."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from rich.console import Console

from client.connection import connect, ui_url
from client.runs import failure_lines, query_progress, run_outcome, start_run, to_jsonable
from workflows.catalog import FAMILIES, DemoRun, DemoUpdate, Family


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


async def _run(console: Console, fam: Family[Any], demo: DemoRun, suffix: str) -> bool:
    client = await connect()
    handle = await start_run(client, fam, fam.sample_input(demo.sample, suffix))
    for update in demo.updates:
        await _send(console, handle, update)
    outcome = await run_outcome(handle, wait=demo.expect != "RUNNING")
    link = ui_url(client, handle.id, handle.result_run_id)
    colour = "green" if outcome.status == demo.expect else "red"
    console.print(f"[{colour}]{handle.id}: {outcome.status}[/{colour}] (expected {demo.expect}; sample {demo.sample})")
    if outcome.status == "COMPLETED":
        console.print(f"  {summarize(outcome.result)}", markup=False)
    elif outcome.status == "RUNNING":
        console.print(f"  {summarize(await _progress_at(handle, demo.shown_at))}", markup=False)
    for line in failure_lines(outcome.failure or []):
        console.print(f"  {line}", markup=False)
    console.print(f"  UI: {link}\n  console: {CONSOLE}/runs/{quote(handle.id, safe='')}")
    return outcome.status == demo.expect


async def _progress_at(handle: Any, step: str, patience: float = 60) -> Any:
    """The run's status once its current step mentions ``step`` (or after ``patience`` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        progress = await query_progress(handle)
        if isinstance(progress, str) or step in (progress.current_step or "") or loop.time() > deadline:
            return progress
        await asyncio.sleep(0.2)


async def _send(console: Console, handle: Any, update: DemoUpdate, within: float = 60) -> None:
    """Send ``update``, once the run's current step mentions ``update.when_step``."""

    async def waiting() -> None:
        while update.when_step not in (getattr(await query_progress(handle), "current_step", None) or ""):
            await asyncio.sleep(0.2)

    if update.when_step:
        await asyncio.wait_for(waiting(), within)
    answer = await handle.execute_update(update.name, update.arg)
    where = f" waited at {update.when_step!r};" if update.when_step else ""
    console.print(f"  {handle.id}{where} sent {update.name}: {summarize(answer)}", markup=False)


async def run_demo(console: Console) -> int:
    """Run every family's demo samples, family by family; 0 when each ended as expected."""
    suffix = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    verdicts: list[bool] = []
    for fam in FAMILIES:
        if not fam.demo:
            continue
        console.print(f"\n[bold]== {fam.name}[/bold]: {fam.description}")
        verdicts += await asyncio.gather(*(_run(console, fam, demo, suffix) for demo in fam.demo))
    client = await connect()
    console.print(f"\nAll runs in the Temporal UI: {ui_url(client, '').rstrip('/')}")
    console.print(f"Web console (catalog, start forms, runs): {CONSOLE}/")
    return 0 if all(verdicts) else 1
