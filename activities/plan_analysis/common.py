"""What every stage of the plan analysis shares: its context, its result, its errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from temporalio.exceptions import ApplicationError

from sagaworks.contracts.plans import Alert, Mitigation, PlanRef, StageOptions


class PlanErrorClass(StrEnum):
    """Failure types of the stages; the risk registry maps them to risks."""

    PDF_CORRUPT = "PdfCorrupt"
    EMPTY_EXTRACTION = "EmptyExtraction"
    NLP_MODEL_MISSING = "NlpModelMissing"
    INSUFFICIENT_TEXT = "InsufficientText"
    MEMORY_EXHAUSTION = "MemoryExhaustion"
    DNP_VALIDATION_FAILED = "DnpValidationFailed"
    MISSING_FINANCIAL_DATA = "MissingFinancialData"
    EMPTY_CAUSAL_GRAPH = "EmptyCausalGraph"
    TOOL_UNAVAILABLE = "ToolUnavailable"
    """A tool the stage needs is not installed on this worker (e.g. Tesseract)."""


def _final(kind: PlanErrorClass) -> Callable[[str], ApplicationError]:
    # What the data is (corrupt, scanned, short...) does not change on a retry.
    return lambda message: ApplicationError(message, type=kind, non_retryable=True)


class PlanError:
    """Factories of the stages' errors."""

    pdf_corrupt = staticmethod(_final(PlanErrorClass.PDF_CORRUPT))
    empty_extraction = staticmethod(_final(PlanErrorClass.EMPTY_EXTRACTION))
    nlp_model_missing = staticmethod(_final(PlanErrorClass.NLP_MODEL_MISSING))
    insufficient_text = staticmethod(_final(PlanErrorClass.INSUFFICIENT_TEXT))
    dnp_validation_failed = staticmethod(_final(PlanErrorClass.DNP_VALIDATION_FAILED))
    missing_financial_data = staticmethod(_final(PlanErrorClass.MISSING_FINANCIAL_DATA))
    empty_causal_graph = staticmethod(_final(PlanErrorClass.EMPTY_CAUSAL_GRAPH))
    unavailable = staticmethod(_final(PlanErrorClass.TOOL_UNAVAILABLE))

    @staticmethod
    def memory_exhaustion(message: str) -> ApplicationError:
        # Memory pressure may pass (another activity finished): retried, and counted
        # by the stage's circuit breaker.
        return ApplicationError(message, type=PlanErrorClass.MEMORY_EXHAUSTION)


@dataclass
class StageResult:
    """A stage's stored output, the metrics later assessments read, and one line."""

    output: dict[str, Any]
    metrics: dict[str, float]
    summary: str
    document: str | None = None


@dataclass
class StageContext:
    """What a stage function may read: the plan, its options, earlier stages' outputs."""

    plan: PlanRef
    options: StageOptions
    read_plan: Callable[[], bytes]
    outputs: dict[str, dict[str, Any]]
    mitigations: tuple[Mitigation, ...] = ()
    alerts: tuple[Alert, ...] = field(default=())
    llm: Any = None
    """The worker's LLM gateway for the semantic stage's LLM pass (:class:`sagaworks.LLM`)."""

    def upstream(self, stage: str) -> dict[str, Any]:
        return self.outputs[stage]
