"""What the saga takes, what each step gets, what it returns."""

from pydantic import BaseModel, Field


class Signup(BaseModel):
    signup_id: str
    email: str
    plan: str
    price_cents: int = Field(gt=0)
    inject_failure: str | None = None
    """A step that fails on purpose, to watch the compensations (`saga restart` drops
    this field from the new run's input, as it drops every injected fault)."""


class Step(BaseModel):
    """What a step and its undo get: the step's idempotency key, its owner, the signup."""

    key: str
    run_id: str
    signup: Signup


class Welcome(BaseModel):
    signup_id: str
    references: dict[str, str]
