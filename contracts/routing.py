"""Contracts of the routing family: classify a request, route it, approve admin requests."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from sagaworks import ApprovalProgress, ApprovalState, StepStatus, StrictModel, Text

Tier = Literal["admin", "premium", "standard"]
Escalation = Literal["auto-reject", "second-group"]


def routing_workflow_id(request_id: str) -> str:
    """The workflow id of a request's routing run: one run per request, ever."""
    return f"routing-{request_id}"


class RoutingInput(StrictModel):
    """A request to classify and route; admin requests wait for a human approval."""

    # The JSON Schema says what the validator below refuses, so a client can tell beforehand.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"escalation": {"const": "second-group"}}, "required": ["escalation"]},
            "then": {"properties": {"escalation_approvers": {"minItems": 1}}, "required": ["escalation_approvers"]},
        }
    )

    request_id: Text = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    requester: Text = Field(min_length=1, max_length=200)
    text: Text = Field(min_length=1, max_length=10_000)
    classifier: Literal["rules", "llm"] | None = None
    """Unset: the worker's model decides when one is configured, else the terms below;
    ``rules``: always the terms below; ``llm``: the model, refused where none is configured."""
    admin_terms: list[Text] = Field(default_factory=lambda: ["admin", "administrator", "root access", "sudo"])
    """Words that make a request an admin request (whole words, any case)."""
    premium_terms: list[Text] = Field(default_factory=lambda: ["premium", "pro plan", "priority", "enterprise"])
    deadline_seconds: int = Field(default=86_400, ge=1, le=30 * 86_400)
    """How long an admin request waits for a decision before it escalates (default 24 h)."""
    escalation: Escalation = "auto-reject"
    """What a missed deadline does: reject, or ask :attr:`escalation_approvers` next."""
    approvers: list[Text] = Field(default_factory=list)
    """Who may decide (empty: anyone named)."""
    escalation_approvers: list[Text] = Field(default_factory=list, validate_default=True)
    """The second group asked after the deadline when escalation is ``second-group``."""
    escalation_deadline_seconds: int = Field(default=86_400, ge=1, le=30 * 86_400)
    """How long the second group has; after it the request is rejected."""

    @field_validator("escalation_approvers")
    @classmethod
    def _second_group_named(cls, approvers: list[str], info: ValidationInfo) -> list[str]:
        # A field's validator (``escalation`` is validated before it), so the error names it.
        if info.data.get("escalation") == "second-group" and not approvers:
            raise ValueError("escalation 'second-group' needs at least one approver")
        return approvers


ROUTING_STEPS = ("classify", "handle")
"""The routing run's steps (an admin request's approval waits between them); a rejected
request's last step is ``record rejection``."""


class Classification(BaseModel):
    tier: Tier
    matched: list[str]
    """The terms that decided the tier (none for standard)."""
    classifier: str
    """``rules``, or the model that classified (``groq:MODEL``; ``llm:MODEL`` in runs
    recorded before the LLM gateway)."""
    fallback: str | None = None
    """Why the rules classified a request that asked for the model (the gateway's breaker
    open, its budget spent, the model's answer unusable...); None otherwise."""


class HandleInput(StrictModel):
    request_id: str
    requester: str
    text: str
    tier: Tier
    approved_by: str | None = None


class HandledRequest(BaseModel):
    """What the tier's handler did: its response and the service level it promised."""

    tier: Tier
    response: str
    response_hours: int


class RejectionInput(StrictModel):
    request_id: str
    requester: str
    tier: Tier
    rejected_by: str
    reason: str


class RoutingResult(BaseModel):
    request_id: str
    classification: Classification
    approval: ApprovalState
    decided_by: str | None
    reason: str | None
    escalated: bool
    """The deadline passed without a decision."""
    escalation: str | None
    """What the escalation did, in words."""
    handled: HandledRequest | None
    """None when the request was rejected."""


class RoutingStatus(StepStatus, ApprovalProgress):
    """The step runner's status (``plan``: classify, handle) with ``done``/``total``
    counting the approval too (admin only); the approval's fields are the engine's
    (``approval``, ``deadline``, ``approvers``...)."""

    tier: Tier | None
