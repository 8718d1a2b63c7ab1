"""Contracts of the risk-aware policy-plan analysis (``plan-analysis`` family).

A municipal development plan (PDF, usually Spanish) goes through nine stages. Each stage
stores its output in the database by content hash (claim check) and hands the workflow a
:class:`StageOutcome`: the key of its output and a few metrics the next stage's risk
assessment reads. The risk model (:class:`RiskRegistry`) is plain data, so the workflow
evaluates it deterministically and its history records every assessment, alert and
mitigation.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from sagaworks import StepStatus, StrictModel, Text

Stage = Literal["load", "extract", "semantic", "causal", "mechanisms", "financial", "dnp", "scoring", "report"]
STAGES: tuple[Stage, ...] = (
    "load",
    "extract",
    "semantic",
    "causal",
    "mechanisms",
    "financial",
    "dnp",
    "scoring",
    "report",
)
"""The nine stages in order."""

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
AlertLevel = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
ALERT_LEVELS: tuple[AlertLevel, ...] = ("INFO", "WARNING", "ERROR", "CRITICAL")
RiskCategory = Literal[
    "DATA_QUALITY",
    "EXTERNAL_DEPENDENCY",
    "RESOURCE_EXHAUSTION",
    "COMPUTATION_ERROR",
    "VALIDATION_FAILURE",
    "CONFIGURATION",
]

MITIGATION_STRATEGIES: dict[str, str] = {
    "retry_with_backup": "none at run time: restore the file from its backup and run again",
    "fallback_ocr": "OCR the pages without a text layer (Tesseract, Spanish)",
    "download_model": "none at run time: install the NLP model on the workers",
    "reduce_confidence_threshold": "accept weaker semantic matches (confidence 0.6 -> 0.3)",
    "batch_processing": "process the document a few pages at a time",
    "reduce_scope": "analyse the first half of the material only",
    "log_and_continue": "record the findings and go on",
    "estimate_from_text": "estimate the budget from amounts quoted in the text",
    "lower_extraction_threshold": "link programmes to goals by shared vocabulary as well",
}
"""Every mitigation a risk may name; each is a branch of the stage it applies to. A
registry naming any other strategy is refused when it loads."""

MetricOp = Literal["<", "<=", ">", ">=", "==", "!="]


class Condition(StrictModel):
    """A pre-stage detection condition over the metrics earlier stages reported."""

    metric: str = Field(min_length=1, max_length=64)
    op: MetricOp
    value: float

    def holds(self, metrics: dict[str, float]) -> bool:
        """Whether the condition holds; a metric not reported yet never triggers it."""
        if self.metric not in metrics:
            return False
        left = metrics[self.metric]
        return {
            "<": left < self.value,
            "<=": left <= self.value,
            ">": left > self.value,
            ">=": left >= self.value,
            "==": left == self.value,
            "!=": left != self.value,
        }[self.op]

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


_RISK_ID = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


class Risk(StrictModel):
    """One entry of the risk registry."""

    id: str
    name: str = Field(min_length=1, max_length=200)
    category: RiskCategory
    severity: Severity
    stages: tuple[Stage, ...] = Field(min_length=1)
    """Stages the risk applies to (before which it is assessed, whose failures it explains)."""
    mitigation: str
    """A name of :data:`MITIGATION_STRATEGIES`."""
    errors: tuple[str, ...] = ()
    """Failure types of a stage that this risk explains (e.g. ``EmptyExtraction``)."""
    detect: tuple[Condition, ...] = ()
    """Pre-stage detection: the risk is present when any condition holds."""

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _RISK_ID.match(value):
            raise ValueError("a risk id is UPPER_SNAKE_CASE, 2-64 characters")
        return value

    @field_validator("mitigation")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in MITIGATION_STRATEGIES:
            raise ValueError(
                f"unknown mitigation strategy {value!r}; known: {', '.join(sorted(MITIGATION_STRATEGIES))}"
            )
        return value


class RiskRegistry(StrictModel):
    """Every risk of a run: the defaults plus what the user's file adds or overrides."""

    risks: tuple[Risk, ...]

    @model_validator(mode="after")
    def _unique(self) -> RiskRegistry:
        seen: set[str] = set()
        for risk in self.risks:
            if risk.id in seen:
                raise ValueError(f"risk {risk.id} is declared twice")
            seen.add(risk.id)
        return self

    def applicable(self, stage: str) -> list[Risk]:
        return [r for r in self.risks if stage in r.stages]

    def for_error(self, stage: str, error_type: str) -> Risk | None:
        """The risk that explains a failure of ``stage`` of type ``error_type``."""
        return next((r for r in self.applicable(stage) if error_type in r.errors), None)

    def get(self, risk_id: str) -> Risk:
        return next(r for r in self.risks if r.id == risk_id)


class InjectedFault(StrictModel):
    """A fault injected into one stage's first-choice path (tests and demos).

    ``memory`` raises MemoryError, ``slow`` outlasts the stage timeout, ``nlp_model``
    makes the NLP model unavailable, ``stall`` holds the stage's first attempt for
    ``seconds`` before it does its work (time to kill a worker mid-stage). A mitigation's
    path never sees the fault.
    """

    stage: Stage
    kind: Literal["memory", "slow", "nlp_model", "stall"]
    seconds: float = Field(default=5, gt=0, le=600)


class PlanInput(StrictModel):
    """Analyse one development plan."""

    plan_id: Text = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Names the run: its workflow id is ``plan-<plan_id>``."""
    path: Text = Field(
        min_length=1,
        max_length=4096,
        description="The plan's PDF as the worker sees it: absolute, or relative to samples/plans/. At most "
        "1,000 pages and 100 MiB unless the worker says otherwise (SAGAWORKS_MAX_PLAN_PAGES, "
        "SAGAWORKS_MAX_PLAN_BYTES).",
    )
    """The plan's PDF as the worker sees it: absolute, or relative to ``samples/plans/``."""
    municipality: Text = Field(default="", max_length=200)
    risk_file: Text | None = Field(default=None, max_length=4096)
    """A YAML or TOML file of extra risks (``risks: [...]``), validated when the run starts."""
    alert_webhook: Text | None = Field(default=None, max_length=2048)
    """POST every alert as JSON to this URL (optional)."""
    stage_timeout_seconds: float = Field(default=300, ge=1, le=3600)
    inject_fault: InjectedFault | None = None
    resume: SkipJsonSchema[PlanResume | None] = None
    """Only in runs restarted before the step runner's restart (:class:`PlanResume`).
    Not in the JSON schema (forms, OpenAPI); catalog parsing refuses it from callers."""


class PlanResume(StrictModel):
    """What a run restarted before the step runner's restart carried in its input: where
    it began and the source run's outcomes of the stages before. No restart writes one now
    (``saga restart ID --from STAGE`` hands the outcomes over through the step runner); it
    is read so that those runs replay."""

    from_stage: Stage
    source_workflow_id: str
    outcomes: tuple[StageOutcome, ...]
    """The source run's outcomes of the stages before ``from_stage``, in order."""


class StageOptions(StrictModel):
    """How a stage runs: the defaults, or what a mitigation changed."""

    ocr: bool = False
    batch_pages: int | None = None
    scope: float = 1.0
    confidence: float = 0.6
    vocabulary_links: bool = False
    estimate_budget: bool = False
    tolerate_findings: bool = False
    llm: str | None = None
    """The model of the semantic stage's LLM pass (``groq:<model>``); None: offline rules only."""


MITIGATION_OPTIONS: dict[str, dict[str, object]] = {
    "retry_with_backup": {},
    "fallback_ocr": {"ocr": True},
    "reduce_confidence_threshold": {"confidence": 0.3},
    "batch_processing": {"batch_pages": 2},
    "reduce_scope": {"scope": 0.5},
    "log_and_continue": {"tolerate_findings": True},
    "estimate_from_text": {"estimate_budget": True},
    "lower_extraction_threshold": {"vocabulary_links": True},
    "download_model": {},
}
"""What each strategy changes in the stage's options (its branch of the stage code). The
two empty ones belong to CRITICAL risks, which abort the run instead of mitigating."""


class Alert(StrictModel):
    level: AlertLevel
    stage: Stage
    risk_id: str | None
    message: str


class Assessment(StrictModel):
    """The risks found present before a stage ran, and why."""

    stage: Stage
    applicable: tuple[str, ...]
    detected: tuple[str, ...]
    reasons: tuple[str, ...]


class Mitigation(StrictModel):
    risk_id: str
    severity: Severity
    category: RiskCategory
    strategy: str
    cause: str
    """The failure (or open breaker) that called for it."""


class StageInput(StrictModel):
    """One stage's activity input: where its inputs are stored and how to run."""

    workflow_id: str
    stage: Stage
    plan: PlanRef
    upstream: dict[str, str]
    """Output keys of the earlier stages this stage reads, by stage."""
    options: StageOptions = StageOptions()
    assessment: Assessment
    mitigation: Mitigation | None = None
    fault: InjectedFault | None = None
    mitigations: tuple[Mitigation, ...] = ()
    alerts: tuple[Alert, ...] = ()
    """What the run mitigated and alerted so far (the report stage writes them down)."""
    force: bool = False
    """Execute even when an output for these inputs is stored (restart)."""


class PlanRef(StrictModel):
    path: str
    content_hash: str
    plan_id: str
    municipality: str


class StageOutcome(StrictModel):
    """What a stage returns to the workflow (its output stays in the database)."""

    stage: Stage
    output_key: str
    metrics: dict[str, float]
    summary: str
    reused: bool
    """The output was already stored for these inputs: the stage did not execute."""
    options: StageOptions
    assessment: Assessment
    mitigation: Mitigation | None = None
    breaker: str | None = None
    """The stage breaker's state after the call (closed, open, half-open)."""
    document: str | None = None
    """The report stage's Markdown, returned as is so clients can print it."""
    fallback: str | None = None
    """Why the semantic stage's LLM pass returned the offline extraction instead (the LLM
    gateway's reason: the provider's error, its open breaker, its spent budget, an unusable
    answer); None when the model's answer was merged or no model was asked."""


class AlertRequest(StrictModel):
    workflow_id: str
    alert: Alert
    webhook: str | None = None


class PrepareRequest(StrictModel):
    plan_id: str
    path: str
    municipality: str
    risk_file: str | None


class PreparedPlan(StrictModel):
    """The plan located and hashed, the run's validated risk registry, and the model of
    the semantic stage's LLM pass when the worker has one."""

    plan: PlanRef
    registry: RiskRegistry
    llm: str | None = None


class PlanResult(BaseModel):
    """The analysis: the score, the report, and what the run met on the way."""

    plan_id: str
    municipality: str
    score: float
    """0-100, from the scoring stage."""
    verdict: str
    report_key: str
    """Where the report's Markdown, HTML and JSON are stored (table plan_stage_outputs)."""
    report: str
    """The report in Markdown."""
    stages: list[StageOutcome]
    mitigations: list[Mitigation]
    alerts: list[Alert]
    highest_alert: AlertLevel | None
    resumed_from: str | None = None
    """The run whose stored stage outputs a restarted run took over."""


class PlanStatus(StepStatus):
    """The step runner's status (``plan``: the nine stages; ``current_step`` is ``prepare``
    while the plan is located and its registry validated), with the plan's alerts."""

    plan_id: str
    highest_alert: AlertLevel | None
    mitigations: int


def plan_workflow_id(plan_id: str) -> str:
    return f"plan-{plan_id}"


ALERT_SEARCH_ATTRIBUTE = "SagaAlertLevel"
"""The Keyword search attribute holding a run's highest alert level."""


def alert_query(level: str) -> str:
    """The visibility query of runs whose highest alert is ``level`` or above."""
    levels = ALERT_LEVELS[ALERT_LEVELS.index(level.upper()) :]
    return f"{ALERT_SEARCH_ATTRIBUTE} IN ({', '.join(repr(v) for v in levels)})"


PlanInput.model_rebuild()
PlanResume.model_rebuild()
StageInput.model_rebuild()


_SUMMARY = re.compile(
    r"^(?P<stage>\w+): mitigate (?P<risk_id>\w+) by (?P<strategy>\w+) \[(?P<severity>\w+)/(?P<category>\w+)\]$"
)


def parse_stage_summary(summary: str) -> tuple[str, dict[str, str] | None]:
    """The stage a stage activity's summary names, and the mitigation's fields if the
    summary names one. Runs on the step runner summarise every execution of a stage by the
    stage's name; runs started before it named a mitigation (``STAGE: mitigate RISK by
    STRATEGY [SEVERITY/CATEGORY]``) and the LLM pass (``semantic: LLM pass by MODEL``)."""
    match = _SUMMARY.match(summary)
    if match is None:
        return summary.split(": LLM pass by ")[0], None
    fields = match.groupdict()
    return fields.pop("stage"), fields
