"""What a circuit breaker reports: its state as every worker process sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

BreakerState = Literal["closed", "open", "half-open"]


class BreakerStatus(BaseModel):
    """One breaker's row of the application database."""

    name: str
    state: BreakerState
    failures: int
    """Consecutive failures counted while closed."""
    trips: int
    """How many times it opened (activations), ever."""
    fail_max: int
    reset_timeout_seconds: float
    last_transition_at: datetime | None
    opened_at: datetime | None
    next_trial_at: datetime | None
    """When an open breaker lets a trial call through (None unless open)."""
