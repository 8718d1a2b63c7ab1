"""Contracts shared by every workflow family."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel
from temporalio import workflow


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


Text = Annotated[str, AfterValidator(_no_control_characters)]
"""A string input field: no NUL or other control characters (tabs and newlines aside)."""


class ProgressStatus(BaseModel):
    """What every workflow's ``status`` query reports, so one client can show progress."""

    state: str
    """running, paused, compensating, completed, failed or canceled."""
    current_step: str | None
    done: int
    total: int


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
