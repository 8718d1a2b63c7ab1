"""Contracts shared by every workflow family."""

from __future__ import annotations

from pydantic import BaseModel


class ProgressStatus(BaseModel):
    """What every workflow's ``status`` query reports, so one client can show progress."""

    state: str
    """running, paused, compensating, completed, failed or canceled."""
    current_step: str | None
    done: int
    total: int
