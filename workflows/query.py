"""The query workflow: a question -> plan (NLP agent) -> rows (data agent) -> chart (viz agent).

Pre-flight health checks first: a data agent that is down fails the run at once (it has
no fallback); an NLP agent that is down is replaced by the offline parser, a viz agent by
a table. The same fallbacks catch a step that fails after its retries or whose breaker is
open. Pause/resume apply between agents; a cancel ends the run as CANCELED.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    import pydantic

    from activities.errors import ErrorClass, QueryErrorClass
    from contracts.query import (
        AGENTS,
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
    from workflows import policies
    from workflows.common import Pausable

STEPS = ("health", "nlp", "data", "viz")


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
        if not data_health.up:
            self._failed.append("health")
            raise ApplicationError(
                f"the data agent is unavailable and has no fallback: {data_health.detail}",
                type=QueryErrorClass.AGENT_UNAVAILABLE,
                non_retryable=True,
            )
        for agent in ("nlp", "viz"):
            if not health.of(agent).up:
                self._fallbacks.append(f"{agent}: down at pre-flight ({health.of(agent).detail})")

        await self._between_agents(request, "nlp")
        planned = await self._plan(request, nlp_up=health.of("nlp").up)
        self._completed.append("nlp")

        await self._between_agents(request, "data")
        data: DataResult = await workflow.execute_activity(
            "query_run", DataInput(plan=planned.plan), result_type=DataResult, summary="data", **policies.QUERY_DATA
        )
        self._completed.append("data")

        await self._between_agents(request, "viz")
        chart, chart_by = await self._chart(planned, data, viz_up=health.of("viz").up)
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
        )

    async def _plan(self, request: QueryInput, *, nlp_up: bool) -> PlanResult:
        ask = PlanInput(question=request.question)
        if nlp_up:
            try:
                return await workflow.execute_activity(
                    "query_plan",
                    ask,
                    result_type=PlanResult,
                    task_queue=policies.llm_task_queue(workflow.info().task_queue),
                    summary="nlp",
                    **policies.QUERY_NLP,
                )
            except ActivityError as err:
                if _cause_type(err) == ErrorClass.VALIDATION:
                    raise  # the question itself is at fault: no fallback can answer it
                self._fallbacks.append(f"nlp: {err.cause or err} -> offline parser")
        return await workflow.execute_activity(
            "query_plan_offline", ask, result_type=PlanResult, summary="nlp fallback", **policies.QUERY_NLP
        )

    async def _chart(self, planned: PlanResult, data: DataResult, *, viz_up: bool) -> tuple[Chart, str]:
        if viz_up:
            try:
                viz: VizResult = await workflow.execute_activity(
                    "query_render",
                    VizInput(plan=planned.plan, columns=data.columns, rows=data.rows),
                    result_type=VizResult,
                    summary="viz",
                    **policies.QUERY_VIZ,
                )
                return viz.chart, viz.produced_by
            except ActivityError as err:
                self._fallbacks.append(f"viz: {err.cause or err} -> table")
        return Chart(kind="table"), "fallback:table"
