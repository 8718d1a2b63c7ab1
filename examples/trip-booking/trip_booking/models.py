"""The inputs and results of the two workflows and of their activities."""

from pydantic import BaseModel

from sagaworks import ApprovalProgress, StepStatus


class TripInput(BaseModel):
    trip_id: str
    traveller: str
    hotel: str
    flight: str
    amount_cents: int
    fail_at: str | None = None
    """A step that fails on purpose (to see the compensations)."""
    step_delay_seconds: float = 0
    """A durable pause before each step (to watch a run, pause or cancel it)."""


class BookingStep(BaseModel):
    """What a booking activity and its undo get: the trip and the step's idempotency key."""

    key: str
    run_id: str
    trip: TripInput


class TripResult(BaseModel):
    trip_id: str
    references: dict[str, str]


class PostInput(BaseModel):
    topic: str
    approver: str = "editor"
    deadline_seconds: float = 3600
    """How long the approver has before the chief editor is asked (for as long again)."""


class Draft(BaseModel):
    topic: str
    text: str
    issues: list[str] = []


class PostResult(BaseModel):
    topic: str
    published: bool
    decided_by: str
    text: str
    escalation: str | None = None


class PostStatus(StepStatus, ApprovalProgress):
    """The step runner's status plus where the approval stands."""
