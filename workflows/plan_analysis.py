"""Risk-aware analysis of a municipal development plan: nine stages, each wrapped in a
pre-stage risk assessment, a circuit breaker (in the activity) and severity-aware failure
handling.

Before each stage the workflow evaluates the registry's detection conditions against the
metrics earlier stages reported and records the assessment in the stage's input (so the
history holds it). A stage failure is mapped to the risk that explains it: CRITICAL aborts
the run naming the risk; HIGH, MEDIUM and LOW run the risk's mitigation (the same stage
with the options the strategy sets) and the run goes on. Alerts go through an activity
(structured log, Prometheus counter, optional webhook) and the run's highest level is a
search attribute. With a model configured on the worker (``PreparedPlan.llm``), the semantic
stage runs a second time on the LLM task queue as an LLM pass that confirms, completes and
adds to the offline extraction (``activities/plan_analysis/llm_pass.py``, through the LLM
gateway); if the pass fails, or the gateway falls back (its breaker open, its budget spent,
the answer unusable), the offline outcome stands and a WARNING alert says why. Activities
are called by name (``activities.plan_analysis.activities``), so the catalog, and the CLI
through it, never imports the PDF, OCR and breaker libraries. Temporal's history is the
checkpoint chain and the audit trail: the trace and post-mortem are derived from it
(client/postmortem.py).

The stages are steps of the step runner (:class:`sagaworks.StepWorkflow`): ``status``,
pause before a stage, cancel, and ``saga restart ID --from STAGE``, which reuses the earlier
stages' outcomes (their outputs stay stored by content hash) and runs that stage and the
later ones again. A stage keeps its step name through its mitigation and the LLM pass, so
the last outcome a stage returned is the one a restart reuses. Preparing the plan is no
step: it runs in every run, since the file, the registry and the worker's model are about
now.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks import CIRCUIT_OPEN, Steps, StepWorkflow, policies
    from sagaworks.contracts.plans import (
        ALERT_LEVELS,
        ALERT_SEARCH_ATTRIBUTE,
        MITIGATION_OPTIONS,
        STAGES,
        Alert,
        AlertLevel,
        AlertRequest,
        Assessment,
        Mitigation,
        PlanInput,
        PlanRef,
        PlanResult,
        PlanResume,
        PlanStatus,
        PreparedPlan,
        PrepareRequest,
        Risk,
        RiskRegistry,
        Stage,
        StageInput,
        StageOptions,
        StageOutcome,
    )

ALERT_LEVEL_KEY = SearchAttributeKey.for_keyword(ALERT_SEARCH_ATTRIBUTE)
SEVERITY_ALERT: dict[str, AlertLevel] = {"LOW": "INFO", "MEDIUM": "WARNING", "HIGH": "ERROR", "CRITICAL": "CRITICAL"}
"""The alert level a detected or realised risk raises: one level per severity, so an alert's
level says how grave its risk is."""
PRE_STAGE_ALERT_SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")
"""Risks detected before a stage that raise an alert before it runs (LOW ones are recorded only)."""
SEMANTIC_LLM_PATCH = "plan-semantic-llm-pass"
"""Runs since this patch may add the semantic stage's LLM pass (only when the worker has a
model, so offline runs record the same commands as before)."""


def assess(registry: RiskRegistry, stage: str, metrics: dict[str, float]) -> tuple[Assessment, list[Risk]]:
    """Which of the stage's risks the metrics so far show present, and why."""
    applicable = registry.applicable(stage)
    detected: list[Risk] = []
    reasons: list[str] = []
    for risk in applicable:
        holding = [c for c in risk.detect if c.holds(metrics)]
        if holding:
            detected.append(risk)
            reasons += [f"{risk.id}: {c.describe()} (is {metrics[c.metric]:g})" for c in holding]
    assessment = Assessment(
        stage=stage,  # type: ignore[arg-type]
        applicable=tuple(r.id for r in applicable),
        detected=tuple(r.id for r in detected),
        reasons=tuple(reasons),
    )
    return assessment, detected


def failure_type(err: ActivityError) -> str:
    """The error type a stage failed with (``StageTimeout`` when it ran out of time)."""
    cause = err.cause
    if isinstance(cause, TemporalTimeoutError):
        return "StageTimeout"
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause else "ActivityError"


def _message(err: ActivityError) -> str:
    return getattr(err.cause, "message", None) or str(err.cause or err)


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class PlanAnalysisWorkflow(StepWorkflow):
    """Analyse one development plan; the result is the report and what was mitigated."""

    def __init__(self) -> None:
        super().__init__()
        self._plan_id = ""
        self._preparing = False
        self._alerts: list[Alert] = []
        self._mitigations: list[Mitigation] = []
        self._highest: AlertLevel | None = None

    @workflow.run
    async def run(self, request: PlanInput) -> PlanResult:
        """Run the nine stages (a restart reuses those before the stage it names)."""
        self._plan_id = request.plan_id
        async with self.steps.plan(STAGES) as steps:
            return await self._analyse(steps, request)

    async def _analyse(self, steps: Steps, request: PlanInput) -> PlanResult:
        # Preparing is no stage: a pause holds before the first stage, as it always has
        # (a run paused before preparing replays as it began).
        self._preparing = True
        workflow.set_current_details("prepare")
        try:
            prepared = await workflow.execute_activity(
                "prepare_plan",
                PrepareRequest(
                    plan_id=request.plan_id,
                    path=request.path,
                    municipality=request.municipality,
                    risk_file=request.risk_file,
                ),
                summary="prepare: locate the plan, validate the risk registry",
                result_type=PreparedPlan,
                **policies.PROCESSING,
            )
        except ActivityError as err:
            # Fail with the reason itself (the bad file, the bad registry entry).
            raise ApplicationError(_message(err), type=failure_type(err), non_retryable=True) from err
        finally:
            self._preparing = False
        # Runs restarted before the step runner's restart carry the earlier stages'
        # outcomes in their input (``resume``); they take those over as they did.
        legacy = request.resume
        outcomes = self._taken_over(steps, legacy) if legacy is not None else {}
        restart = steps.restart
        force = legacy is not None or restart is not None
        for stage in STAGES[len(outcomes) :]:
            if steps.reuses(stage):
                # The source run's outcome (its output stays stored): no assessment, no call.
                outcomes[stage] = reused = await steps.run(
                    stage, "run_plan_stage", None, result_type=StageOutcome, describe=_outcome
                )
                if reused.mitigation is not None:
                    # The source run's mitigation stands: the report and the result list it.
                    self._mitigations.append(reused.mitigation)
                continue
            outcomes[stage] = await self._stage(request, prepared.plan, prepared.registry, stage, outcomes, force=force)
            if stage == "semantic" and prepared.llm and workflow.patched(SEMANTIC_LLM_PATCH):
                outcomes[stage] = await self._llm_pass(request, prepared.plan, outcomes, prepared.llm, force=force)
        report = outcomes["report"]
        resumed_from = legacy.source_workflow_id if legacy is not None else restart.source if restart else None
        return PlanResult(
            plan_id=request.plan_id,
            municipality=request.municipality,
            score=outcomes["scoring"].metrics["score"],
            verdict=outcomes["scoring"].summary,
            report_key=report.output_key,
            report=report.document or "",
            stages=[outcomes[s] for s in STAGES],
            mitigations=self._mitigations,
            alerts=self._alerts,
            highest_alert=self._highest,
            resumed_from=resumed_from,
        )

    @staticmethod
    def _taken_over(steps: Steps, legacy: PlanResume) -> dict[str, StageOutcome]:
        first = STAGES.index(legacy.from_stage)
        carried = {o.stage: o for o in legacy.outcomes}
        missing = [s for s in STAGES[:first] if s not in carried]
        if missing:
            raise ApplicationError(
                f"resume: no stored outcome of stage(s) {', '.join(missing)}",
                type="ValidationError",
                non_retryable=True,
            )
        return {s: steps.taken_over(s, carried[s], describe=_outcome) for s in STAGES[:first]}

    async def _stage(
        self,
        request: PlanInput,
        plan: PlanRef,
        registry: RiskRegistry,
        stage: Stage,
        outcomes: dict[str, StageOutcome],
        *,
        force: bool,
    ) -> StageOutcome:
        metrics = {k: v for outcome in outcomes.values() for k, v in outcome.metrics.items()}
        assessment, detected = assess(registry, stage, metrics)
        # A paused run raises no alert of the stage it holds before; once held here, the
        # stage begins after its alerts without holding again (as plan runs always have).
        await self.steps.unpaused()
        for foreseen in detected:
            if foreseen.severity in PRE_STAGE_ALERT_SEVERITIES:
                reason = next(r for r in assessment.reasons if r.startswith(foreseen.id))
                await self._alert(
                    request,
                    SEVERITY_ALERT[foreseen.severity],
                    stage,
                    foreseen.id,
                    f"{foreseen.name} before {stage}: {reason}",
                )
        critical = next((r for r in detected if r.severity == "CRITICAL"), None)
        if critical is not None:
            raise self._abort(critical, stage, "detected before the stage ran")
        stage_input = StageInput(
            workflow_id=workflow.info().workflow_id,
            stage=stage,
            plan=plan,
            upstream={s: o.output_key for s, o in outcomes.items()},
            assessment=assessment,
            fault=request.inject_fault,
            force=force,
            mitigations=tuple(self._mitigations),
            alerts=tuple(self._alerts),
        )
        try:
            return await self._execute(request, stage_input)
        except ActivityError as err:
            kind = failure_type(err)
            risk = registry.for_error(stage, kind)
            if risk is None:
                raise  # a failure no risk explains fails the run as it is
            cause = f"{stage}: {kind}: {_message(err)}"
            await self._alert(request, SEVERITY_ALERT[risk.severity], stage, risk.id, f"{risk.name}: {cause}")
            if kind == CIRCUIT_OPEN:
                await self._alert(
                    request,
                    "CRITICAL",
                    stage,
                    risk.id,
                    f"the {stage} breaker is open: failing fast into {risk.mitigation}",
                )
            if risk.severity == "CRITICAL":
                raise self._abort(risk, stage, _message(err)) from err
        mitigation = Mitigation(
            risk_id=risk.id, severity=risk.severity, category=risk.category, strategy=risk.mitigation, cause=cause
        )
        mitigated = stage_input.model_copy(
            update={
                "mitigation": mitigation,
                "options": StageOptions.model_validate(
                    {**stage_input.options.model_dump(), **MITIGATION_OPTIONS[risk.mitigation]}
                ),
            }
        )
        try:
            outcome = await self._execute(request, mitigated)
        except ActivityError as err:
            await self._alert(request, "ERROR", stage, risk.id, f"mitigation {risk.mitigation} failed: {_message(err)}")
            raise ApplicationError(
                f"{risk.id} at stage {stage}: mitigation {risk.mitigation} failed: "
                f"{failure_type(err)}: {_message(err)}",
                {"risk": risk.id, "stage": stage, "strategy": risk.mitigation},
                type="MitigationFailed",
                non_retryable=True,
            ) from err
        self._mitigations.append(mitigation)
        await self._alert(
            request, "INFO", stage, risk.id, f"{risk.id} mitigated by {risk.mitigation}: {outcome.summary}"
        )
        return outcome

    async def _llm_pass(
        self, request: PlanInput, plan: PlanRef, outcomes: dict[str, StageOutcome], model: str, *, force: bool
    ) -> StageOutcome:
        """The semantic step again, on the LLM task queue, with the model's answer merged
        in; its outcome replaces the offline one. When the gateway falls back, the pass
        returns the offline extraction saying why (``fallback``); when it fails, the
        offline outcome stands. Either way a WARNING alert gives the reason."""
        offline = outcomes["semantic"]
        stage_input = StageInput(
            workflow_id=workflow.info().workflow_id,
            stage="semantic",
            plan=plan,
            upstream={s: o.output_key for s, o in outcomes.items() if s != "semantic"},
            options=offline.options.model_copy(update={"llm": model}),
            assessment=offline.assessment,
            # The stage's mitigation, if it had one, stays in the outcome this pass replaces.
            mitigation=offline.mitigation,
            force=force,
        )
        options = policies.ActivityOptions(
            **policies.LLM_PASS, task_queue=policies.llm_task_queue(workflow.info().task_queue)
        )
        try:
            outcome = await self.steps.run(
                "semantic", "run_plan_stage", stage_input, options=options, result_type=StageOutcome, describe=_outcome
            )
        except ActivityError as err:
            why = f"{failure_type(err)}: {_message(err)}"
            outcome = offline
        else:
            if outcome.fallback is None:
                return outcome
            why = f"ModelError: {outcome.fallback}"
        await self._alert(
            request, "WARNING", "semantic", None, f"LLM pass by {model} failed ({why}): the offline extraction stands"
        )
        return outcome

    def _abort(self, risk: Risk, stage: str, why: str) -> ApplicationError:
        return ApplicationError(
            f"CRITICAL risk {risk.id} ({risk.name}) at stage {stage}: {why}",
            {"risk": risk.id, "stage": stage, "category": risk.category},
            type="CriticalRisk",
            non_retryable=True,
        )

    async def _execute(self, request: PlanInput, stage_input: StageInput) -> StageOutcome:
        """Run the stage as its step (a mitigation is the same step again, with the
        mitigation in its input and result)."""
        options = policies.ActivityOptions(
            **policies.PLAN_STAGE, start_to_close_timeout=timedelta(seconds=request.stage_timeout_seconds)
        )
        return await self.steps.run(
            stage_input.stage,
            "run_plan_stage",
            stage_input,
            options=options,
            result_type=StageOutcome,
            describe=_outcome,
            held=True,
        )

    async def _alert(
        self, request: PlanInput, level: AlertLevel, stage: str, risk_id: str | None, message: str
    ) -> None:
        alert = Alert(level=level, stage=stage, risk_id=risk_id, message=message[:1000])  # type: ignore[arg-type]
        self._alerts.append(alert)
        if self._highest is None or ALERT_LEVELS.index(level) > ALERT_LEVELS.index(self._highest):
            self._highest = level
            workflow.upsert_search_attributes([ALERT_LEVEL_KEY.value_set(level)])
        try:
            await workflow.execute_activity(
                "plan_alert",
                AlertRequest(workflow_id=workflow.info().workflow_id, alert=alert, webhook=request.alert_webhook),
                summary=f"alert {level}: {risk_id or stage}",
                **policies.PLAN_ALERT,
            )
        except ActivityError as err:
            # A webhook that stays down must not stop the analysis; the alert is in the
            # history and the result either way.
            workflow.logger.warning("Alert delivery failed: %s", _message(err))

    @workflow.query
    def status(self) -> PlanStatus:
        """The steps' status, the plan, the highest alert so far and the mitigations."""
        status = self.steps.status()
        current = "prepare" if self._preparing else status.current_step
        return PlanStatus(
            **dict(status) | {"current_step": current},
            plan_id=self._plan_id,
            highest_alert=self._highest,
            mitigations=len(self._mitigations),
        )


def _outcome(outcome: StageOutcome) -> str:
    return outcome.summary
