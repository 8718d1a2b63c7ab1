"""A workflow that takes signalled notes (the encryption tests' signal probe)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn
class NoteTaker:
    """Keeps the notes it is signalled until told to finish (encryption tests' signal probe)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    @workflow.run
    async def run(self, count: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.notes) >= count)
        return self.notes

    @workflow.signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @workflow.query
    def taken(self) -> list[str]:
        return self.notes
