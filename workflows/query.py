"""The query workflow: a question -> plan (NLP agent) -> rows (data agent) -> chart (viz agent).

Pre-flight health checks first: a data agent that is down fails the run at once (it has
no fallback; an open data breaker instead delays the data step to its trial); an NLP agent
that is down is replaced by the offline parser, a viz agent by a table. The same fallbacks
catch a step that fails after its retries or whose breaker is open.

The agents are steps of the step runner (:class:`sagaworks.StepWorkflow`): ``status``,
pause/resume between agents, a cancel ends the run as CANCELED, and ``saga restart ID
--from data|viz`` reuses the earlier agents' results (the health check runs again in
every run: it is about now, so it is no step). A step that falls back keeps its name:
the fallback's result is the step's, and what a restart reuses.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks import ErrorClass, Steps, StepWorkflow, policies
    from sagaworks.activities.query.activities import QueryActivities
    from sagaworks.contracts.query import (
        AGENT_UNAVAILABLE,
        AGENTS,
        QUERY_STEPS,
        AgentHealth,
        Chart,
        DataInput,
        DataResult,
        HealthInput,
        HealthReport,
        PlanInput,
        PlanResult,
        QueryInput,
        QueryResult,
        QueryStatus,
        VizInput,
        VizResult,
    )


def _cause_type(err: BaseException) -> str | None:
    cause = err.cause if isinstance(err, ActivityError) else None
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class QueryWorkflow(StepWorkflow):
    """Answer a question about the data with a plan, its SQL, the rows and a chart."""

    def __init__(self) -> None:
        super().__init__()
        self._health_checked = False
        self._failed: list[str] = []
        self._fallbacks: list[str] = []

    @workflow.query
    def status(self) -> QueryStatus:
        """Current agent, completed and failed steps (the health check first), fallbacks used."""
        status = self.steps.status()
        health = ["health"] if self._health_checked else []
        return QueryStatus(
            **{
                **dict(status),
                "done": status.done + len(health),
                "total": len(QUERY_STEPS) + 1,
                "completed_steps": health + status.completed_steps,
            },
            current_agent=status.current_step,  # type: ignore[arg-type]
            failed_steps=list(self._failed),
            fallbacks=list(self._fallbacks),
        )

    @workflow.run
    async def run(self, request: QueryInput) -> QueryResult:
        """Answer ``request.question``; fails with the step's error when no fallback exists."""
        async with self.steps.plan(QUERY_STEPS) as steps:
            try:
                result = await self._answer(steps, request)
            except BaseException:
                # The step runner forgets the current step as the error leaves it.
                if steps.current_step is not None:
                    self._failed.append(steps.current_step)
                raise
        workflow.set_current_details("completed")
        return result

    async def _answer(self, steps: Steps, request: QueryInput) -> QueryResult:
        workflow.set_current_details("pre-flight health checks")
        # A local activity: a few probes of at most 3 s each, not worth a server round trip.
        health: HealthReport = await workflow.execute_local_activity_method(
            QueryActivities.check_agents, HealthInput(agents=list(AGENTS)), summary="health", **policies.QUERY_HEALTH
        )
        self._health_checked = True
        data_health = health.of("data")
        # An open data breaker is no reason to fail now: the data step waits for its trial.
        if not data_health.up and not data_health.waiting_for_trial:
            self._failed.append("health")
            raise ApplicationError(
                f"the data agent is unavailable and has no fallback: {data_health.detail}",
                type=AGENT_UNAVAILABLE,
                non_retryable=True,
            )
        for agent in ("nlp", "viz"):
            if not health.of(agent).up:
                self._fallbacks.append(f"{agent}: down at pre-flight ({health.of(agent).detail})")

        # Runs restarted before the step runner's restart carry the earlier agents'
        # outcomes in their input (``resume``): they replay taking them over.
        legacy = request.resume
        delay = request.pause_between_agents_seconds
        if legacy is not None and legacy.nlp is not None:
            planned = legacy.nlp
        else:
            planned = await self._plan(steps, request, health.of("nlp"), delay)
        if legacy is not None and legacy.data is not None:
            data = legacy.data
        else:
            data = await steps.run(
                "data",
                QueryActivities.run,
                DataInput(plan=planned.plan),
                options=policies.QUERY_DATA,
                local=_in_worker(data_health),
                delay=delay,
                describe=lambda d: f"{len(d.rows)} rows",
            )
        chart, chart_by = await self._chart(steps, planned, data, health.of("viz"), delay)
        restart = steps.restart
        return QueryResult(
            question=request.question,
            plan=planned.plan,
            sql=data.sql,
            columns=data.columns,
            rows=data.rows[: request.max_rows],
            row_count=len(data.rows),
            truncated=data.truncated or len(data.rows) > request.max_rows,
            chart=chart,
            produced_by={"plan": planned.produced_by, "rows": data.produced_by, "chart": chart_by},
            fallbacks=list(self._fallbacks),
            resumed_from=legacy.source_workflow_id if legacy is not None else restart.source if restart else None,
        )

    async def _plan(self, steps: Steps, request: QueryInput, nlp: AgentHealth, delay: float) -> PlanResult:
        ask = PlanInput(question=request.question)
        describe = _produced_by
        if nlp.up:
            # LLM calls wait for the rate-limited queue; the offline parser has no limit.
            local = _in_worker(nlp)
            options = policies.QUERY_NLP
            if nlp.rate_limited:
                options = policies.ActivityOptions(
                    **options, task_queue=policies.llm_task_queue(workflow.info().task_queue)
                )
            try:
                planned: PlanResult = await steps.run(
                    "nlp", QueryActivities.plan, ask, options=options, local=local, delay=delay, describe=describe
                )
                if planned.fallback is not None:  # the gateway's declared fallback planned
                    self._fallbacks.append(f"nlp: {planned.fallback} -> offline parser")
                return planned
            except ActivityError as err:
                if _cause_type(err) == ErrorClass.VALIDATION:
                    raise  # the question itself is at fault: no fallback can answer it
                self._fallbacks.append(f"nlp: {err.cause or err} -> offline parser")
                delay = 0  # the step waited already
        return await steps.run(
            "nlp",
            QueryActivities.plan_offline,
            ask,
            options=policies.QUERY_NLP,
            local=True,
            delay=delay,
            describe=describe,
        )

    async def _chart(
        self, steps: Steps, planned: PlanResult, data: DataResult, viz: AgentHealth, delay: float
    ) -> tuple[Chart, str]:
        if viz.up:
            try:
                result: VizResult = await steps.run(
                    "viz",
                    QueryActivities.render,
                    VizInput(plan=planned.plan, columns=data.columns, rows=data.rows),
                    options=policies.QUERY_VIZ,
                    local=_in_worker(viz),
                    delay=delay,
                    describe=_produced_by,
                )
                return result.chart, result.produced_by
            except ActivityError as err:
                self._fallbacks.append(f"viz: {err.cause or err} -> table")
        elif delay:
            await workflow.sleep(delay)
        return Chart(kind="table"), "fallback:table"


def _produced_by(result: Any) -> str:
    return f"by {result.produced_by}"


def _in_worker(agent: AgentHealth) -> bool:
    return agent.mode == "local" and not agent.rate_limited
