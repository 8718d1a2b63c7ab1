"""Behaviour shared by every workflow family: pause and resume between steps."""

from __future__ import annotations

from temporalio import workflow


class Pausable:
    """Pause and resume signals for a workflow that checks :meth:`_unpaused` between steps.

    The workflow sets ``_state``; pausing turns ``running`` into ``paused`` and back.
    """

    _paused: bool = False
    _state: str = "running"

    @workflow.signal
    def pause(self) -> None:
        """Start no new step until resumed."""
        self._paused = True
        if self._state == "running":
            self._state = "paused"

    @workflow.signal
    def resume(self) -> None:
        """Go on after a pause."""
        self._paused = False
        if self._state == "paused":
            self._state = "running"

    async def _unpaused(self) -> None:
        await workflow.wait_condition(lambda: not self._paused)
