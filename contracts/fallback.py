"""What a step run under :func:`workflows.fallback.with_fallback` reports about itself."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class BranchOutcome(BaseModel):
    """How one step ended: its own result, its fallback's, or nothing."""

    status: Literal["ok", "fallback", "unavailable"]
    activity: str
    """The activity whose result is used (the fallback's name after a fallback)."""
    error: str | None = None
    """Why the primary activity (and the fallback, when it failed too) gave no result."""
