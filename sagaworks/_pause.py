"""Behaviour shared by every workflow family: pause and resume between steps, refusals of
Update validators."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

UPDATE_REFUSED = "UpdateRefused"
"""The type of an Update validator's refusal."""


def refusal(message: str) -> ApplicationError:
    """What an Update validator raises to refuse: non-retryable, so clients (the official
    CLI, the UI) do not present the refusal as a fault that a retry would clear; the
    message names the field or the state that refused it."""
    return ApplicationError(message, type=UPDATE_REFUSED, non_retryable=True)


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
