"""Contracts shared by every workflow family."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


Text = Annotated[str, AfterValidator(_no_control_characters)]
"""A string input field: no NUL or other control characters (tabs and newlines aside)."""


def text_key(*parts: str) -> str:
    """A short stable digest of texts: runs of the same input share a workflow id."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class StrictModel(BaseModel):
    """A payload that forbids unknown fields, validates strictly and never changes.

    A wrong type or an out-of-range number fails at the boundary with the field named.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ProgressStatus(BaseModel):
    """What every workflow's ``status`` query reports, so one client can show progress."""

    state: str
    """running, paused, compensating, completed, failed or canceled."""
    current_step: str | None
    done: int
    total: int


class CompensationRecord(BaseModel):
    """What happened to one registered compensation."""

    step: str
    activity: str
    outcome: Literal["compensated", "failed"]
    error: str | None = None


class SagaReport(BaseModel):
    """The failure details of a compensated saga."""

    failed_step: str | None
    cause: str
    compensations: list[CompensationRecord]

    @property
    def fully_compensated(self) -> bool:
        """Whether every registered compensation succeeded."""
        return all(c.outcome == "compensated" for c in self.compensations)
