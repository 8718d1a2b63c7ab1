"""`saga demo` runs a family's samples at once and prints each run's lines together."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from rich.console import Console

from sagaworks import DemoRun
from sagaworks.client import demo


async def test_the_runs_of_a_family_print_their_blocks_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    first_started = asyncio.Event()
    second_done = asyncio.Event()

    async def run(console: Any, fam: Any, run: DemoRun, suffix: str) -> bool:
        # The first run's update line, then the second run's whole block, then the first's end:
        # the order a ticket waiting for its assignment and a quick ticket print in.
        if run.sample == "T-1001":
            console.print("T-1001 sent assign")
            first_started.set()
            await second_done.wait()
            console.print("T-1001: COMPLETED")
        else:
            await first_started.wait()
            console.print("T-1002 sent assign")
            console.print("T-1002: COMPLETED")
            second_done.set()
        return True

    monkeypatch.setattr(demo, "_run_into", run)
    out = io.StringIO()
    console = Console(file=out, width=200)
    no_family: Any = None  # the stand-in above never reads the family
    runs = [demo._run(console, no_family, DemoRun(sample), "") for sample in ("T-1001", "T-1002")]
    assert await asyncio.gather(*runs) == [True, True]
    assert out.getvalue().splitlines() == [
        "T-1002 sent assign",
        "T-1002: COMPLETED",
        "T-1001 sent assign",
        "T-1001: COMPLETED",
    ]
