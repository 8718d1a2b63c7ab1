"""The routing family's activities: classify by rules, handle per tier, record decisions.

Where the worker has a model (and the request does not ask for ``classifier: rules``), a
request is classified through the LLM gateway
(:class:`sagaworks.LLM`, family ``routing``: ``SAGAWORKS_LLM_ROUTING_*`` or the general
``SAGAWORKS_LLM_*``) with the input's rules as the declared fallback: when the gateway's
``llm`` breaker is open, its budget would be waited out past the step's deadline, the
provider refuses the call or its answer is unusable, the rules classify and the
classification says why (:attr:`Classification.fallback`).

Every outcome lands in ``routed_requests`` (one row per request, written idempotently), so
a retried handler or a replayed run never records a request twice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from temporalio import activity

from sagaworks import LLM, Base, Database, database_errors, keep_alive, validation_error
from sagaworks.contracts.routing import Classification, HandledRequest, HandleInput, RejectionInput, RoutingInput, Tier

FAMILY = "routing"
"""The family's name to the LLM gateway."""
ANSWER_TOKENS = 200
"""The longest answer the model may give (its completion tokens)."""
RESPONSE_HOURS: dict[Tier, int] = {"admin": 1, "premium": 4, "standard": 48}
"""The service level each tier's handler promises."""


class RoutedRequestRow(Base):
    __tablename__ = "routed_requests"
    request_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    requester: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    """handled or rejected."""
    decided_by: Mapped[str | None] = mapped_column(String(200))
    response: Mapped[str] = mapped_column(Text)
    response_hours: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


def classify(request: RoutingInput) -> Classification:
    """Admin terms first, then premium terms, whole words in any case; else standard."""
    for tier, terms in (("admin", request.admin_terms), ("premium", request.premium_terms)):
        matched = [t for t in terms if re.search(rf"\b{re.escape(t)}\b", request.text, re.IGNORECASE)]
        if matched:
            return Classification(tier=tier, matched=matched, classifier="rules")  # type: ignore[arg-type]
    return Classification(tier="standard", matched=[], classifier="rules")


class _LLMTier(BaseModel):
    tier: Tier
    reason: str


_CLASSIFY_PROMPT = (
    "Classify this support request by the access it needs: 'admin' (administrator rights, "
    "root or production access), 'premium' (a paying plan's priority support) or 'standard'. "
    'Answer with JSON only: {"tier": "admin"|"premium"|"standard", "reason": "<one sentence>"}.'
    "\n\nRequest:\n"
)


def _tier_of(answer: str) -> Classification:
    """The model's answer as a classification; ``ValueError`` when it is not the JSON asked for."""
    fenced = re.search(r"\{.*\}", answer, re.DOTALL)
    tier = _LLMTier.model_validate_json(fenced.group(0) if fenced else answer)
    return Classification(tier=tier.tier, matched=[tier.reason], classifier="model")


class RoutingActivities:
    """Activities bound to the application database and the LLM gateway (None: no model)."""

    def __init__(self, db: Database, llm: LLM | None = None) -> None:
        self._db = db
        self._llm = llm

    @activity.defn
    def classify_request(self, request: RoutingInput) -> Classification:
        """The request's tier by the input's rules, or by the model with the rules as its fallback."""
        configured = self._llm is not None and self._llm.configured(FAMILY)
        if request.classifier == "rules" or (request.classifier is None and not configured):
            return classify(request)
        if self._llm is None or not configured:
            raise validation_error(
                "no LLM is configured on the worker (SAGAWORKS_LLM_PROVIDER, GROQ_API_KEY)", field="classifier"
            )
        rules = classify(request)
        with keep_alive():
            answer = self._llm.ask(
                FAMILY,
                _CLASSIFY_PROMPT + request.text,
                parse=_tier_of,
                fallback=lambda: rules,
                max_tokens=ANSWER_TOKENS,
            )
        if answer.value is rules:
            return rules.model_copy(update={"fallback": answer.fallback})
        return answer.value.model_copy(update={"classifier": answer.provider})

    def _record(self, row: RoutedRequestRow) -> None:
        with database_errors(), self._db.transaction() as session:
            session.merge(row)

    def _handle(self, request: HandleInput, response: str) -> HandledRequest:
        hours = RESPONSE_HOURS[request.tier]
        self._record(
            RoutedRequestRow(
                request_id=request.request_id,
                requester=request.requester,
                tier=request.tier,
                outcome="handled",
                decided_by=request.approved_by,
                response=response,
                response_hours=hours,
            )
        )
        return HandledRequest(tier=request.tier, response=response, response_hours=hours)

    @activity.defn
    def handle_admin(self, request: HandleInput) -> HandledRequest:
        """Carry out an approved admin request: recorded with its approver, 1 h response."""
        return self._handle(
            request,
            f"admin request of {request.requester} approved by {request.approved_by}; "
            "an operator carries it out within the hour",
        )

    @activity.defn
    def handle_premium(self, request: HandleInput) -> HandledRequest:
        """Queue a premium request on the priority queue (4 h response)."""
        return self._handle(request, f"queued for {request.requester} on the priority queue")

    @activity.defn
    def handle_standard(self, request: HandleInput) -> HandledRequest:
        """Queue a standard request (48 h response)."""
        return self._handle(request, f"queued for {request.requester} on the standard queue")

    @activity.defn
    def record_rejection(self, request: RejectionInput) -> None:
        """Record a rejected (or auto-rejected) request and why."""
        self._record(
            RoutedRequestRow(
                request_id=request.request_id,
                requester=request.requester,
                tier=request.tier,
                outcome="rejected",
                decided_by=request.rejected_by,
                response=request.reason,
                response_hours=None,
            )
        )
