"""Contracts of the iterative family: search -> evaluate -> refine until good enough."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sagaworks import StepStatus, StrictData, StrictModel, Text
from sagaworks.contracts.search import Hit, Quality


class Round(StrictData):
    """One search round: the query it ran and how good its hits were (strict: a run's input
    carries its rounds across continue-as-new, and so may a caller's)."""

    iteration: int
    query: Text
    quality: Quality
    hits: int


class Best(StrictData):
    """The best round so far, with its hits."""

    iteration: int
    query: Text
    quality: Quality
    hits: list[Hit]


class IterativeInput(StrictModel):
    """Search the stored documents, refining the query until the quality target or the cap."""

    query: Text = Field(min_length=1, max_length=500)
    target_quality: float = Field(default=0.85, ge=0, le=1)
    max_iterations: int = Field(default=5, ge=1, le=1000)
    top_k: int = Field(default=5, ge=1, le=50)
    iterations_per_run: int = Field(default=20, ge=1, le=500)
    """Rounds one run makes before it continues as new (sooner when Temporal suggests it)."""
    # Carried across continue-as-new; a new search leaves them at their defaults.
    current_query: Text | None = None
    rounds: list[Round] = Field(default_factory=list)
    best: Best | None = None


class IterativeResult(BaseModel):
    query: str
    stopped: Literal["target-reached", "iteration-cap"]
    iterations: int
    best: Best
    rounds: list[Round]


class IterativeStatus(StepStatus):
    """``done``/``total`` count rounds against the cap; ``steps`` are this run's rounds'
    steps (``search N``, ``evaluate N``, ``refine N``; a run continued as new starts afresh)."""

    best_quality: float | None
    current_query: str | None
