"""The query family's activities: health checks and the three agents, behind breakers.

Each agent runs in-process unless its ``<AGENT>_AGENT_URL`` is set, then over HTTP. Every
call to a dependency goes through its shared circuit breaker (``sagaworks.Breakers``):
``nlp`` (remote NLP agent) or ``llm`` (the Groq provider in-process), ``data``, ``viz``.
Retryable failures carry a jittered ``next_retry_delay`` computed from the activity's own
retry policy (Temporal's backoff has no jitter), so retries of many runs spread out.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from sagaworks import CIRCUIT_OPEN, LLM, Breakers, BreakerStatus, Database
from sagaworks.activities.query.agents import DataAgent, OfflinePlanner, Planner, nlp_agent, planner_from_env, viz_agent
from sagaworks.activities.query.dataset import DataSource, data_source_from_env
from sagaworks.activities.query.remote import AgentClient
from sagaworks.contracts.query import (
    AGENTS,
    AgentHealth,
    AgentName,
    DataInput,
    DataResult,
    HealthInput,
    HealthReport,
    PlanInput,
    PlanResult,
    VizInput,
    VizResult,
)

T = TypeVar("T")


@dataclass
class QuerySettings:
    """How the query agents are reached; :meth:`from_env` reads the environment."""

    agent_urls: dict[AgentName, str] = field(default_factory=dict)
    """Agents served remotely (``NLP_AGENT_URL``, ``DATA_AGENT_URL``, ``VIZ_AGENT_URL``)."""
    planner: Planner | None = None
    """The in-process NLP provider (default: :func:`planner_from_env`: the LLM gateway's
    model, or the offline parser)."""
    source: DataSource | None = None
    """What the in-process data agent reads (default: :func:`data_source_from_env`)."""
    statement_timeout: float = 10

    @classmethod
    def from_env(cls) -> QuerySettings:
        urls = {
            name: os.environ[f"{name.upper()}_AGENT_URL"]
            for name in AGENTS
            if os.environ.get(f"{name.upper()}_AGENT_URL")
        }
        return cls(agent_urls=urls, statement_timeout=float(os.environ.get("QUERY_STATEMENT_TIMEOUT_SECONDS", "10")))


def jittered_delay(attempt: int, initial: float, coefficient: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random."""
    step = min(maximum, initial * coefficient ** max(0, attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


_rng = random.Random()


def _agent_call(agent: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Measure an agent's activity and jitter its retries.

    Every attempt is counted (``sagaworks_query_agent_attempts`` by agent, attempt number
    and outcome: the success rate by step and the retry distribution) and timed
    (``sagaworks_query_agent_seconds``) through the worker's Prometheus metrics. A
    retryable failure gets a jittered ``next_retry_delay`` from the activity's own retry
    policy, unless it carries its own (a 429's Retry-After, an open breaker's trial time).
    """

    def decorate(func: Callable[..., T]) -> Callable[..., T]:
        @wraps(func)
        def wrapper(*args: Any) -> T:
            info = activity.info()
            meter = activity.metric_meter()
            started = time.perf_counter()
            outcome = "failed"
            try:
                result = func(*args)
                outcome = "succeeded"
                return result
            except ApplicationError as err:
                outcome = str(err.type or "failed")
                policy = info.retry_policy
                if err.non_retryable or err.next_retry_delay is not None or policy is None:
                    raise
                seconds = jittered_delay(
                    info.attempt,
                    policy.initial_interval.total_seconds(),
                    policy.backoff_coefficient,
                    (policy.maximum_interval or policy.initial_interval * 100).total_seconds(),
                    _rng,
                )
                raise ApplicationError(
                    err.message, *err.details, type=err.type, next_retry_delay=timedelta(seconds=seconds)
                ) from err
            finally:
                labels = {"agent": agent, "outcome": outcome}
                meter.create_counter(
                    "sagaworks_query_agent_attempts", "Query agent attempts by agent, attempt and outcome"
                ).add(1, {**labels, "attempt": str(min(info.attempt, 10))})
                meter.create_histogram_float("sagaworks_query_agent_seconds", "Time per query agent call", "s").record(
                    time.perf_counter() - started, labels
                )

        return wrapper

    return decorate


class QueryActivities:
    """The activities of :class:`workflows.query.QueryWorkflow`, bound to one database."""

    def __init__(self, db: Database, settings: QuerySettings | None = None, llm: LLM | None = None) -> None:
        self._db = db
        self._llm = llm
        self.settings = settings or QuerySettings.from_env()
        self.breakers = Breakers(db)
        self.data = DataAgent(self.settings.source or data_source_from_env(db.url), self.settings.statement_timeout)
        self._planner = self.settings.planner
        self.offline = OfflinePlanner()
        self.clients = {name: AgentClient(name, url) for name, url in self.settings.agent_urls.items()}

    @property
    def planner(self) -> Planner:
        if self._planner is None:
            self._planner = planner_from_env(self._llm or LLM(self._db))
        return self._planner

    @activity.defn(name="query_check_agents")
    def check_agents(self, request: HealthInput) -> HealthReport:
        """Pre-flight: is each agent reachable and its breaker not open?

        A remote agent is probed through its breaker, so a dead agent's probes count
        toward opening it, an open breaker is not probed before its trial time, and the
        first probe after it is the trial that closes it again.
        """
        statuses = {s.name: s for s in self.breakers.statuses()}
        return HealthReport(agents=[self._health(agent, statuses) for agent in request.agents])

    def _health(self, agent: AgentName, statuses: dict[str, BreakerStatus]) -> AgentHealth:
        client = self.clients.get(agent)
        if client is None:
            status = statuses[self._breaker_of(agent)]
            waiting = status.next_trial_at is not None and status.next_trial_at > datetime.now(UTC)
            detail = f"breaker {status.name} open until {status.next_trial_at:%H:%M:%S}" if waiting else "in-process"
            rate_limited = agent == "nlp" and not isinstance(self.planner, OfflinePlanner)
            return AgentHealth(
                agent=agent,
                mode="local",
                up=not waiting,
                breaker=status.state,
                detail=detail,
                waiting_for_trial=waiting,
                rate_limited=rate_limited,
            )
        waiting = False
        try:
            self.breakers.call(agent, client.health)
            up, detail = True, client.base_url
        except ApplicationError as err:
            up, detail, waiting = False, err.message, err.type == CIRCUIT_OPEN
        return AgentHealth(
            agent=agent,
            mode="remote",
            up=up,
            breaker=self.breakers.status(agent).state,
            detail=detail,
            waiting_for_trial=waiting,
            rate_limited=agent == "nlp",
        )

    def _breaker_of(self, agent: AgentName) -> str:
        if agent == "nlp" and agent not in self.clients:
            return "llm"
        return agent

    @activity.defn(name="query_plan")
    @_agent_call("nlp")
    def plan(self, request: PlanInput) -> PlanResult:
        """Question -> plan by the NLP agent (remote, or the configured provider)."""
        catalog = request.catalog or self.data.catalog()
        request = request.model_copy(update={"catalog": catalog})
        client = self.clients.get("nlp")
        if client is not None:
            return self.breakers.call("nlp", client.call, request, PlanResult)
        # The gateway's model behind its own ``llm`` breaker, the offline parser as its fallback.
        return nlp_agent(self.planner, self.data, request)

    @activity.defn(name="query_plan_offline")
    @_agent_call("nlp-fallback")
    def plan_offline(self, request: PlanInput) -> PlanResult:
        """The NLP fallback: the offline parser, in the worker."""
        result = nlp_agent(self.offline, self.data, request)
        return result.model_copy(update={"produced_by": "fallback:offline-parser"})

    @activity.defn(name="query_run")
    @_agent_call("data")
    def run(self, request: DataInput) -> DataResult:
        """Plan -> rows by the data agent; an open breaker delays the retry to its trial."""
        client = self.clients.get("data")
        if client is not None:
            return self.breakers.call("data", client.call, request, DataResult, fallback=False)
        return self.breakers.call("data", self.data.run, request, fallback=False)

    @activity.defn(name="query_render")
    @_agent_call("viz")
    def render(self, request: VizInput) -> VizResult:
        """Rows -> chart by the viz agent; an open breaker fails at once (table fallback)."""
        client = self.clients.get("viz")
        if client is not None:
            return self.breakers.call("viz", client.call, request, VizResult)
        return self.breakers.call("viz", viz_agent, request)

    def activities(self) -> list[Callable[..., Any]]:
        """The activities of the main task queue (the plan too, for the offline parser)."""
        return [self.check_agents, self.plan, self.plan_offline, self.run, self.render]

    def llm_activities(self) -> list[Callable[..., Any]]:
        """The activities of the rate-limited LLM task queue."""
        return [self.plan]
