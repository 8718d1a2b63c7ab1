"""The plan-analysis activities: prepare the run, run one stage, raise one alert.

Every stage runs through :meth:`PlanActivities.run_plan_stage`: it finds the stage's
output by content hash (claim check) and returns it without executing when it is stored;
otherwise it executes the stage (its first-choice path through the stage's circuit
breaker, a mitigation's path without it), stores the output and returns the key and the
metrics the workflow's next risk assessment reads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from temporalio import activity

from sagaworks import LLM, BreakerConfig, Breakers, Database, ErrorClass, error, keep_alive, validation_error
from sagaworks.activities.plan_analysis import analysis, audit, extraction, llm_pass, report
from sagaworks.activities.plan_analysis.common import PlanError, StageContext, StageResult
from sagaworks.activities.plan_analysis.registry import load_registry
from sagaworks.activities.plan_analysis.store import OutputStore, output_key
from sagaworks.contracts.plans import (
    STAGES,
    Alert,
    AlertRequest,
    InjectedFault,
    PlanRef,
    PreparedPlan,
    PrepareRequest,
    StageInput,
    StageOutcome,
)

SAMPLE_PLANS = Path(__file__).resolve().parents[2] / "samples" / "plans"
"""Where a relative plan path points."""

STAGE_FUNCTIONS: dict[str, Callable[[StageContext], StageResult]] = {
    "load": extraction.load,
    "extract": extraction.extract,
    "semantic": analysis.semantic,
    "causal": analysis.causal,
    "mechanisms": analysis.mechanisms,
    "financial": audit.financial,
    "dnp": audit.dnp,
    "scoring": audit.scoring,
    "report": report.report,
}
READS: dict[str, tuple[str, ...]] = {
    "load": (),
    "extract": ("load",),
    "semantic": ("extract",),
    "causal": ("semantic",),
    "mechanisms": ("causal",),
    "financial": ("extract", "semantic"),
    "dnp": ("semantic",),
    "scoring": ("semantic", "mechanisms", "financial", "dnp"),
    "report": ("semantic", "mechanisms", "financial", "dnp", "scoring"),
}
"""The earlier outputs each stage reads."""

log = structlog.get_logger("sagaworks.plans")


def breaker_name(stage: str) -> str:
    return f"plan-{stage}"


def _roots_from_env() -> tuple[Path, ...]:
    raw = os.environ.get("SAGAWORKS_PLAN_ROOTS")
    paths = raw.split(os.pathsep) if raw else [str(SAMPLE_PLANS), os.getcwd()]
    return tuple(Path(p).resolve() for p in paths if p)


def _breaker_from_env() -> BreakerConfig:
    raw = os.environ.get("SAGAWORKS_PLAN_BREAKER", "3/300")
    try:
        failures, seconds = raw.split("/")
        return BreakerConfig(int(failures), float(seconds))
    except ValueError:
        raise SystemExit(
            f"SAGAWORKS_PLAN_BREAKER={raw!r}: expected <failures>/<recovery seconds>, e.g. 3/300"
        ) from None


@dataclass(frozen=True)
class PlanSettings:
    """Limits of the plan activities (environment variables in parentheses)."""

    roots: tuple[Path, ...] = field(default_factory=_roots_from_env)
    """Folders plans may be read from (``SAGAWORKS_PLAN_ROOTS``; default samples/plans and
    the worker's working directory)."""
    breaker: BreakerConfig = field(default_factory=_breaker_from_env)
    """Every stage's breaker (``SAGAWORKS_PLAN_BREAKER``, default 3 failures / 300 s)."""
    max_bytes: int = field(default_factory=lambda: int(os.environ.get("SAGAWORKS_MAX_PLAN_BYTES", 100 * 2**20)))
    """Largest plan accepted (``SAGAWORKS_MAX_PLAN_BYTES``, default 100 MiB)."""
    max_pages: int = field(default_factory=lambda: int(os.environ.get("SAGAWORKS_MAX_PLAN_PAGES", 1_000)))
    """Most pages a plan may have (``SAGAWORKS_MAX_PLAN_PAGES``, default 1,000): each stage's
    time grows with them (OCR takes seconds a scanned page), bounded by its timeout."""
    llm: LLM | None = None
    """The LLM gateway of the semantic stage's LLM pass (default: the worker's gateway, else
    one on the worker's database configured by the environment; no pass when it configures
    no model)."""


def _page_count(path: Path) -> int | None:
    """The PDF's page count, or None when pypdf cannot tell (the load stage reports why)."""
    import pypdf

    try:
        return len(pypdf.PdfReader(path, strict=False).pages)
    except Exception:  # noqa: BLE001 - a PDF that cannot be read is the load stage's PDF_CORRUPT
        return None


class PlanActivities:
    """The plan-analysis activities over one application database."""

    def __init__(self, db: Database, settings: PlanSettings | None = None, llm: LLM | None = None) -> None:
        self._settings = settings or PlanSettings()
        self._llm = self._settings.llm or llm or LLM(db)
        self._store = OutputStore(db)
        self._breakers = Breakers(db, {breaker_name(s): self._settings.breaker for s in STAGES})

    def activities(self) -> list[Callable[..., Any]]:
        return [self.prepare_plan, self.run_plan_stage, self.plan_alert]

    def llm_activities(self) -> list[Callable[..., Any]]:
        """What the LLM task queue serves: stages run with ``options.llm`` (the semantic pass)."""
        return [self.run_plan_stage]

    def _resolve(self, path_text: str) -> Path:
        path = Path(path_text)
        path = (path if path.is_absolute() else SAMPLE_PLANS / path).resolve()
        if not any(path.is_relative_to(root) for root in self._settings.roots):
            raise validation_error("outside the allowed plan roots (SAGAWORKS_PLAN_ROOTS)", field=path_text)
        if not path.is_file():
            raise validation_error("plan file not found", field=path_text)
        if path.stat().st_size > self._settings.max_bytes:
            raise validation_error(
                f"over the limit of {self._settings.max_bytes} bytes (SAGAWORKS_MAX_PLAN_BYTES)", field=path_text
            )
        return path

    @activity.defn
    def prepare_plan(self, request: PrepareRequest) -> PreparedPlan:
        """Locate and hash the plan and validate the run's risk registry (defaults + file)."""
        path = self._resolve(request.path)
        pages = _page_count(path)
        if pages is not None and pages > self._settings.max_pages:
            raise validation_error(
                f"{pages} pages, over the limit of {self._settings.max_pages} pages (SAGAWORKS_MAX_PLAN_PAGES)",
                field=request.path,
            )
        registry = load_registry(request.risk_file)
        return PreparedPlan(
            plan=PlanRef(
                path=str(path),
                content_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
                plan_id=request.plan_id,
                municipality=request.municipality,
            ),
            registry=registry,
            llm=llm_pass.model_of(self._llm),
        )

    @activity.defn
    def run_plan_stage(self, request: StageInput) -> StageOutcome:
        """Run one stage, or return its stored output for the same inputs. The LLM pass
        (``options.llm``) whose model falls back returns the offline extraction, saying why."""
        try:
            return self._run_stage(request)
        except llm_pass.FellBack as fell_back:
            offline = request.model_copy(update={"options": request.options.model_copy(update={"llm": None})})
            outcome = self._run_stage(offline.model_copy(update={"force": False}))
            return outcome.model_copy(update={"fallback": fell_back.reason})

    def _run_stage(self, request: StageInput) -> StageOutcome:
        key = output_key(request)
        stored = None if request.force else self._store.get(key)
        reused = stored is not None
        if stored is None:
            with keep_alive():
                if request.mitigation is None and request.options.llm is None:
                    # The first-choice path goes through the stage's breaker; an open
                    # breaker fails fast (CircuitOpen) and the workflow mitigates. The LLM
                    # pass stays outside it: a model's faults say nothing of the stage's.
                    result = self._breakers.call(breaker_name(request.stage), self._execute, request, fallback=True)
                else:
                    result = self._execute(request)
            stored = {
                "result": result.output,
                "metrics": result.metrics,
                "summary": result.summary,
                "document": result.document,
            }
            # Outside a workflow (an activity started on its own) the run that asked is the input's.
            produced_by = activity.info().workflow_id or request.workflow_id
            self._store.put(key, request.stage, request.plan.content_hash, stored, produced_by)
        return StageOutcome(
            stage=request.stage,
            output_key=key,
            metrics=stored["metrics"],
            summary=stored["summary"],
            reused=reused,
            options=request.options,
            assessment=request.assessment,
            mitigation=request.mitigation,
            breaker=self._breakers.status(breaker_name(request.stage)).state,
            document=stored["document"],
        )

    def _execute(self, request: StageInput) -> StageResult:
        fault = (
            request.fault
            if request.mitigation is None and request.fault and request.fault.stage == request.stage
            else None
        )
        ctx = StageContext(
            plan=request.plan,
            options=request.options,
            read_plan=lambda: self._resolve(request.plan.path).read_bytes(),
            outputs={
                stage: self._store.require(request.upstream[stage], stage)["result"] for stage in READS[request.stage]
            },
            mitigations=request.mitigations,
            alerts=request.alerts,
            llm=self._llm,
        )
        try:
            if fault is not None:
                self._inject(fault)
            return STAGE_FUNCTIONS[request.stage](ctx)
        except MemoryError:
            raise PlanError.memory_exhaustion(f"stage {request.stage} ran out of memory") from None

    @staticmethod
    def _inject(fault: InjectedFault) -> None:
        if fault.kind == "memory":
            raise MemoryError("injected")
        if fault.kind == "nlp_model":
            raise PlanError.nlp_model_missing("injected: the NLP model is not installed on this worker")
        if fault.kind == "stall":
            if activity.info().attempt == 1:
                time.sleep(fault.seconds)
            return
        # slow: outlast the stage's timeout (heartbeating, so only the timeout ends it)
        deadline = time.monotonic() + activity.info().start_to_close_timeout.total_seconds() + 1  # type: ignore[union-attr]
        while time.monotonic() < deadline and not activity.is_cancelled():
            time.sleep(0.1)

    @activity.defn
    def plan_alert(self, request: AlertRequest) -> Alert:
        """Log the alert, count it (Prometheus, by level and risk), POST it to the webhook."""
        alert = request.alert
        level = {
            "INFO": logging.INFO,
            "WARNING": logging.WARNING,
            "ERROR": logging.ERROR,
            "CRITICAL": logging.CRITICAL,
        }[alert.level]
        log.log(
            level,
            "plan_alert",
            alert_level=alert.level,
            risk=alert.risk_id,
            stage=alert.stage,
            workflow_id=request.workflow_id,
            message=alert.message,
        )
        activity.metric_meter().create_counter("sagaworks_plan_alerts", "Plan-analysis alerts, by level and risk").add(
            1, {"level": alert.level, "risk": alert.risk_id or "none"}
        )
        if request.webhook:
            self._post(request.webhook, {"workflow_id": request.workflow_id, **alert.model_dump(mode="json")})
        return alert

    @staticmethod
    def _post(url: str, payload: dict[str, Any]) -> None:
        import httpx

        try:
            response = httpx.post(url, json=payload, timeout=10)
        except httpx.HTTPError as err:
            raise error(ErrorClass.EXTERNAL, f"alert webhook {url}: {err}") from err
        if response.status_code >= 500 or response.status_code == 429:
            raise error(ErrorClass.EXTERNAL, f"alert webhook {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise error(ErrorClass.EXTERNAL, f"alert webhook {url}: HTTP {response.status_code}", non_retryable=True)
