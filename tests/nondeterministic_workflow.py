"""A buggy workflow for tests/test_determinism.py (its own module: the sandbox imports it alone)."""

from __future__ import annotations

import random
from datetime import datetime

from temporalio import workflow


@workflow.defn
class CallsOutside:
    """Does what no workflow may do: ``call`` names what (read the clock, draw a random
    number, read a file)."""

    @workflow.run
    async def run(self, call: str) -> str:
        if call == "datetime.now":
            return datetime.now().isoformat()
        if call == "random":
            return str(random.random())
        with open(__file__) as source:
            return source.readline()
