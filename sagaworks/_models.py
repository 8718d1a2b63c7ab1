"""The engine's payloads: what a saga reports and what every ``status`` query answers.

Their JSON shape is part of recorded histories (a saga's failure details, a query's
answer): fields may be added with defaults, never renamed or removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

RunState = Literal["running", "paused", "compensating", "completed", "failed", "canceled"]
"""Where a run stands, as every ``status`` query names it."""


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


class StepTiming(BaseModel):
    """One step as the workflow saw it: its outcome and its start and end (workflow time,
    ``workflow.now()``, so they replay to the same values)."""

    step: str
    outcome: str
    """What the step's ``describe`` said of its result (``done`` when it says nothing)."""
    started_at: datetime
    finished_at: datetime
    reused: bool = False
    """Taken over from the run this one restarted (``saga restart ID --from STEP``): not
    executed again."""

    @property
    def seconds(self) -> float:
        """How long the step took, in workflow time."""
        return (self.finished_at - self.started_at).total_seconds()


class StepStatus(ProgressStatus):
    """The ``status`` of a workflow on the step runner (:class:`sagaworks.StepWorkflow`)."""

    state: RunState
    plan: list[str] = []
    """The run's steps, in order (what ``saga restart ID --from STEP`` may name)."""
    completed_steps: list[str] = []
    compensations: list[CompensationRecord] = []
    steps: list[StepTiming] = []
    """Each completed step's timing, in order."""
    restarted_from: str | None = None
    """``workflow_id/run_id`` of the run whose step results this run reused, if any."""


RESTART_MEMO = "sagaworks.restart"
"""The memo key of a restarted run's :class:`StepsRestart`; each reused step's result is
the memo value ``sagaworks.restart/STEP`` (the payload the source run's history holds)."""


def restart_result_key(step: str) -> str:
    """The memo key holding a reused ``step``'s result in a restarted run."""
    return f"{RESTART_MEMO}/{step}"


class StepsRestart(BaseModel):
    """Where a restarted run comes from and which step results it reuses (its memo)."""

    source: str
    """``workflow_id/run_id`` of the run whose results it reuses."""
    from_step: str
    """The first step it runs again; the steps before it are reused."""
    reused: list[str]
    """The steps whose results the memo holds, in the order the source ran them."""
    origin_run_id: str
    """The first run id of the first run of the chain (a restart of a restart keeps it):
    the owner of the effects every run of the chain applies (see :attr:`Steps.origin_run_id`)."""
    forced: bool = False
    """Reused although the source compensated some of them (``--force``)."""
