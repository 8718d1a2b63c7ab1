"""The query workflow: a question -> plan (NLP agent) -> rows (data agent) -> chart (viz agent).

Pre-flight health checks first: a data agent that is down fails the run at once (it has
no fallback; an open data breaker instead delays the data step to its trial); an NLP agent that is down is replaced by the offline parser, a viz agent by
a table. The same fallbacks catch a step that fails after its retries or whose breaker is
open. Pause/resume apply between agents; a cancel ends the run as CANCELED.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    import pydantic

    from sagaworks.activities.errors import ErrorClass, QueryErrorClass
    from sagaworks.contracts.query import (
        AGENTS,
        AgentHealth,
        AgentName,
        Chart,
        DataInput,
        DataResult,
        HealthInput,
        HealthReport,
        PlanInput,
        PlanResult,
        QueryInput,
        QueryResult,
        QueryState,
        QueryStatus,
        VizInput,
        VizResult,
    )
    from sagaworks import policies
    from sagaworks import Pausable

STEPS = ("health", "nlp", "data", "viz")
ResultT = TypeVar("ResultT")


def _cause_type(err: BaseException) -> str | None:
    cause = err.cause if isinstance(err, ActivityError) else None
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn(failure_exception_types=[pydantic.ValidationError])
class QueryWorkflow(Pausable):
    """Answer a question about the data with a plan, its SQL, the rows and a chart."""

    def __init__(self) -> None:
        self._state: QueryState = "running"
        self._paused = False
        self._current: AgentName | None = None
        self._completed: list[str] = []
        self._failed: list[str] = []
        self._fallbacks: list[str] = []

    @workflow.query
    def status(self) -> QueryStatus:
        """Current agent, completed and failed steps, fallbacks used."""
        return QueryStatus(
            state=self._state,
            current_step=self._current,
            done=len(self._completed),
            total=len(STEPS),
            current_agent=self._current,
            completed_steps=list(self._completed),
            failed_steps=list(self._failed),
            fallbacks=list(self._fallbacks),
        )

    @workflow.run
    async def run(self, request: QueryInput) -> QueryResult:
        """Answer ``request.question``; fails with the step's error when no fallback exists."""
        try:
            result = await self._answer(request)
        except BaseException as err:
            self._state = "canceled" if is_cancelled_exception(err) else "failed"
            if self._current is not None:
                self._failed.append(self._current)
            raise
        self._state, self._current = "completed", None
        workflow.set_current_details("completed")
        return result

    async def _between_agents(self, request: QueryInput, agent: AgentName) -> None:
        if request.pause_between_agents_seconds:
            await workflow.sleep(request.pause_between_agents_seconds)
        await self._unpaused()
        self._current = agent
        workflow.set_current_details(f"agent: {agent}")

    async def _answer(self, request: QueryInput) -> QueryResult:
        workflow.set_current_details("pre-flight health checks")
        # A local activity: a few probes of at most 3 s each, not worth a server round trip.
        health: HealthReport = await workflow.execute_local_activity(
            "query_check_agents",
            HealthInput(agents=list(AGENTS)),
            result_type=HealthReport,
            summary="health",
            **policies.QUERY_HEALTH,
        )
        self._completed.append("health")
        data_health = health.of("data")
        # An open data breaker is no reason to fail now: the data step waits for its trial.
        if not data_health.up and not data_health.waiting_for_trial:
            self._failed.append("health")
            raise ApplicationError(
                f"the data agent is unavailable and has no fallback: {data_health.detail}",
                type=QueryErrorClass.AGENT_UNAVAILABLE,
                non_retryable=True,
            )
        for agent in ("nlp", "viz"):
            if not health.of(agent).up:
                self._fallbacks.append(f"{agent}: down at pre-flight ({health.of(agent).detail})")

        # A restarted run (saga restart --from-stage data|viz) takes the earlier agents'
        # outcomes over from its source run instead of calling them.
        resume = request.resume
        await self._between_agents(request, "nlp")
        planned = resume.nlp if resume is not None and resume.nlp is not None else await self._plan(request, health.of("nlp"))
        self._completed.append("nlp")

        await self._between_agents(request, "data")
        data: DataResult = resume.data if resume is not None and resume.data is not None else await self._call(
            "query_run", DataInput(plan=planned.plan), DataResult, policies.QUERY_DATA, local=_in_worker(data_health)
        )
        self._completed.append("data")

        await self._between_agents(request, "viz")
        chart, chart_by = await self._chart(planned, data, health.of("viz"))
        self._completed.append("viz")
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
            resumed_from=resume.source_workflow_id if resume is not None else None,
        )

    async def _call(
        self,
        activity: str,
        arg: object,
        result_type: type[ResultT],
        options: policies.ActivityOptions,
        *,
        local: bool,
        task_queue: str | None = None,
    ) -> ResultT:
        """An agent's activity: a local activity when the agent runs in the worker and
        needs no rate limit (short, idempotent, our own database only), saving a server
        round trip per agent; a regular activity otherwise."""
        summary = activity.removeprefix("query_")
        if local:
            return await workflow.execute_local_activity(activity, arg, result_type=result_type, summary=summary, **options)
        return await workflow.execute_activity(
            activity, arg, result_type=result_type, task_queue=task_queue, summary=summary, **options
        )

    async def _plan(self, request: QueryInput, nlp: AgentHealth) -> PlanResult:
        ask = PlanInput(question=request.question)
        if nlp.up:
            # LLM calls wait for the rate-limited queue; the offline parser has no limit.
            queue = workflow.info().task_queue
            try:
                return await self._call(
                    "query_plan",
                    ask,
                    PlanResult,
                    policies.QUERY_NLP,
                    local=_in_worker(nlp),
                    task_queue=policies.llm_task_queue(queue) if nlp.rate_limited else queue,
                )
            except ActivityError as err:
                if _cause_type(err) == ErrorClass.VALIDATION:
                    raise  # the question itself is at fault: no fallback can answer it
                self._fallbacks.append(f"nlp: {err.cause or err} -> offline parser")
        return await self._call("query_plan_offline", ask, PlanResult, policies.QUERY_NLP, local=True)

    async def _chart(self, planned: PlanResult, data: DataResult, viz: AgentHealth) -> tuple[Chart, str]:
        if viz.up:
            try:
                result = await self._call(
                    "query_render",
                    VizInput(plan=planned.plan, columns=data.columns, rows=data.rows),
                    VizResult,
                    policies.QUERY_VIZ,
                    local=_in_worker(viz),
                )
                return result.chart, result.produced_by
            except ActivityError as err:
                self._fallbacks.append(f"viz: {err.cause or err} -> table")
        return Chart(kind="table"), "fallback:table"


def _in_worker(agent: AgentHealth) -> bool:
    return agent.mode == "local" and not agent.rate_limited
