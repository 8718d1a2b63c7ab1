"""Contracts shared by every workflow family."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Annotated, Any, ClassVar, Self

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


class StageResume(StrictModel):
    """Where a restarted run begins (``saga restart ID --from-stage STAGE``), and what it
    takes over from the source run for the stages before ``from_stage``.

    Each restartable family's resume point subclasses it with the outcomes its stages
    need; :meth:`taking_over` builds one from the outcomes read from the source run's
    history (JSON data, by stage), :meth:`carried` gives them back (so a restart of a
    restarted run takes over what its own source carried).
    """

    from_stage: str
    source_workflow_id: str
    """``workflow_id/run_id`` of the run whose outcomes these are."""

    STAGE_FIELDS: ClassVar[dict[str, str]] = {}
    """The field holding a stage's outcome, where it is not the stage's own name."""

    @classmethod
    def taking_over(cls, from_stage: str, source_workflow_id: str, outcomes: dict[str, Any]) -> Self:
        """The resume point at ``from_stage`` holding the ``outcomes`` (JSON data, by
        stage) of the stages before it."""
        fields = {cls.STAGE_FIELDS.get(stage, stage): outcome for stage, outcome in outcomes.items()}
        return cls.model_validate(
            {"from_stage": from_stage, "source_workflow_id": source_workflow_id, **fields}, strict=False
        )

    def carried(self) -> dict[str, Any]:
        """The outcomes this resume point carries, by stage, as JSON data."""
        data = self.model_dump(mode="json", exclude={"from_stage", "source_workflow_id"})
        stage_of = {name: stage for stage, name in self.STAGE_FIELDS.items()}
        return {stage_of.get(name, name): value for name, value in data.items() if value is not None}
